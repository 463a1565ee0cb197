"""Transformer blocks equal PyTorch's own layers when the weights are copied over."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.layers import MultiHeadAttention, TransformerDecoderBlock, TransformerEncoderBlock
from attnlab.ops import masks as M


def err(a, b):
    return (a.double() - b.double()).abs().max().item()


def copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        theirs.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)


def copy_common(ours, theirs, norms) -> None:
    with torch.no_grad():
        theirs.linear1.load_state_dict(ours.mlp.fc1.state_dict())
        theirs.linear2.load_state_dict(ours.mlp.fc2.state_dict())
        for a, b in norms:
            b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_equals_torch_layer(norm_first):
    e, h, t = 32, 4, 9
    ours = TransformerEncoderBlock(e, h, mlp_ratio=2.0, norm_first=norm_first).eval()
    theirs = nn.TransformerEncoderLayer(
        e, h, 2 * e, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
    ).eval()
    copy_attention(ours.attn, theirs.self_attn)
    copy_common(ours, theirs, [(ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2)])
    x = torch.randn(3, t, e)
    lengths = torch.tensor([9, 4, 1])
    pad = torch.arange(t)[None] >= lengths[:, None]  # torch: True = ignore
    with torch.no_grad():
        expected = theirs(x, src_key_padding_mask=pad)
        got = ours(x, mask=M.Padding(lengths))
    valid = ~pad  # torch's fast path may zero padded rows; compare the real ones
    assert err(got[valid], expected[valid]) < 1e-5
    causal = nn.Transformer.generate_square_subsequent_mask(t)
    with torch.no_grad():
        assert err(ours(x, causal=True), theirs(x, src_mask=causal, is_causal=True)) < 1e-5


def test_encoder_padding_does_not_leak_and_gradients_flow():
    block = TransformerEncoderBlock(16, 2, num_kv_heads=1)
    x = torch.randn(2, 7, 16, requires_grad=True)
    mask = M.Padding(torch.tensor([7, 3]))
    out = block(x, mask=mask)
    x2 = x.detach().clone()
    x2[1, 3:] = 50.0
    assert err(block(x2, mask=mask)[1, :3], out[1, :3]) < 1e-5
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in block.parameters())


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_equals_torch_layer(norm_first):
    e, h = 32, 4
    ours = TransformerDecoderBlock(e, h, mlp_ratio=2.0, norm_first=norm_first).eval()
    theirs = nn.TransformerDecoderLayer(
        e, h, 2 * e, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
    ).eval()
    copy_attention(ours.self_attn, theirs.self_attn)
    copy_attention(ours.cross_attn, theirs.multihead_attn)
    norms = [(ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2), (ours.norm3, theirs.norm3)]
    copy_common(ours, theirs, norms)
    y, memory = torch.randn(2, 7, e), torch.randn(2, 11, e)
    src_lengths = torch.tensor([11, 6])
    mem_pad = torch.arange(11)[None] >= src_lengths[:, None]
    causal = nn.Transformer.generate_square_subsequent_mask(7)
    with torch.no_grad():
        expected = theirs(y, memory, tgt_mask=causal, memory_key_padding_mask=mem_pad)
        got = ours(y, memory, memory_mask=M.Padding(src_lengths))
    assert err(got, expected) < 1e-5


def test_errors_name_the_values():
    with pytest.raises(ValueError, match="embed_dim 30 is not divisible by num_heads 4"):
        TransformerEncoderBlock(30, 4)
    with pytest.raises(ValueError, match="num_kv_heads 3 does not divide num_heads 4"):
        TransformerEncoderBlock(32, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="mlp_ratio must be a positive number, got 0"):
        TransformerEncoderBlock(32, 4, mlp_ratio=0)
    with pytest.raises(ValueError, match="key has 16 features, expected 32"):
        TransformerDecoderBlock(32, 4)(torch.randn(2, 3, 32), torch.randn(2, 5, 16))
