"""Capture through attnlab's own layers equals weights computed by hand."""

from __future__ import annotations

import torch
from torch import nn

from attnlab.capture import capture
from attnlab.layers import AdditiveAttention, AttentionPooling, MultiHeadAttention
from attnlab.layers.transformer import TransformerEncoderBlock
from attnlab.ops import masks as M


def _eager_mha_weights(
    mha: MultiHeadAttention, x: torch.Tensor, allowed: torch.Tensor
) -> torch.Tensor:
    """softmax(Q K^T / sqrt(D)) by hand, GQA heads shared; allowed (B, 1, Tq, Tk)."""
    b, t, _ = x.shape
    h, hkv, d = mha.num_heads, mha.num_kv_heads, mha.head_dim
    q = mha.q_proj(x).view(b, t, h, d).transpose(1, 2).double()  # (B, H, T, D)
    k = mha.k_proj(x).view(b, t, hkv, d).transpose(1, 2).double()  # (B, Hkv, T, D)
    k = k.repeat_interleave(h // hkv, 1)  # (B, H, T, D)
    s = (q @ k.transpose(-1, -2)) * d**-0.5
    s = s.masked_fill(~allowed, float("-inf"))
    w = torch.softmax(s, -1)
    return torch.nan_to_num(w).float()


def test_multihead_gqa_with_padding_and_causal_mask():
    torch.manual_seed(0)
    mha = MultiHeadAttention(24, 6, num_kv_heads=2).eval()
    x = torch.randn(3, 9, 24)
    lengths = torch.tensor([9, 5, 1])
    mask = M.Padding(lengths)
    with torch.no_grad():
        ref = mha(x, mask=mask, causal=True)
        with capture(mha) as rec:
            out = mha(x, mask=mask, causal=True)
    assert torch.equal(out, ref)
    assert rec.names == ["core"]
    allowed = (M.Padding(lengths) & M.Causal()).dense(9, 9)  # (B, 1, T, T)
    expected = _eager_mha_weights(mha, x, allowed)
    torch.testing.assert_close(rec.weights[0], expected, atol=1e-5, rtol=0)
    assert [w.shape for w in rec.example(1)] == [(6, 5, 5)]
    assert rec.example(2)[0].shape == (6, 1, 1)


def test_encoder_stack_with_pooling_head():
    torch.manual_seed(1)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(TransformerEncoderBlock(16, 4) for _ in range(3))
            self.pool = AttentionPooling(16)

        def forward(self, x, lengths):
            for block in self.blocks:
                x = block(x, mask=M.Padding(lengths))
            return self.pool(x, lengths)

    model = Classifier().eval()
    x = torch.randn(2, 7, 16)
    lengths = torch.tensor([7, 3])
    with torch.no_grad():
        ref_pooled, ref_w = model(x, lengths)
        with capture(model, layers=["blocks.*", "pool.tap"], heads=[0, 2]) as rec:
            pooled, _ = model(x, lengths)
    assert torch.equal(pooled, ref_pooled)
    assert rec.names == [
        "blocks.0.attn.core",
        "blocks.1.attn.core",
        "blocks.2.attn.core",
        "pool.tap",
    ]
    assert rec.heads == [[0, 2], [0, 2], [0, 2], [0]]  # the single-head tap keeps its head
    torch.testing.assert_close(rec.weights[3][:, 0, 0], ref_w)
    ex = rec.example(1)
    assert [tuple(e.shape) for e in ex] == [(2, 3, 3)] * 3 + [(1, 1, 3)]


def test_additive_attention_tap_records_returned_weights():
    torch.manual_seed(2)
    layer = AdditiveAttention(query_dim=8, key_dim=6, hidden_dim=5)
    query = torch.randn(2, 4, 8)
    keys = torch.randn(2, 7, 6)
    with torch.no_grad(), capture(layer) as rec:
        _, weights = layer(query, keys, keys, lengths=torch.tensor([7, 2]))
    got = rec.weights[0]
    assert got.shape[-2:] == (4, 7)
    torch.testing.assert_close(got.reshape(weights.shape), weights)
    assert rec.key_valid[0][1].tolist() == [True, True] + [False] * 5
