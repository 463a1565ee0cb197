"""Every recorded attention carries the role its layer set; validity follows the role."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.capture import Recording, capture
from attnlab.layers import (
    CBAM,
    AdditiveAttention,
    AttentionCore,
    AttentionPooling,
    LuongAttention,
    MultiHeadAttention,
    SqueezeExcite,
    TransformerDecoderBlock,
    WeightsTap,
)
from attnlab.ops import masks as M


def _hand_weights(mha: MultiHeadAttention, x, mem, allowed) -> torch.Tensor:
    """softmax(Q K^T / sqrt(D)) in float64 by hand; allowed (B, 1, Tq, Tk)."""
    b, tq, _ = x.shape
    tk = mem.shape[1]
    h, d = mha.num_heads, mha.head_dim
    q = mha.q_proj(x).view(b, tq, h, d).transpose(1, 2).double()  # (B, H, Tq, D)
    k = mha.k_proj(mem).view(b, tk, h, d).transpose(1, 2).double()  # (B, H, Tk, D)
    s = (q @ k.transpose(-1, -2) * d**-0.5).masked_fill(~allowed, float("-inf"))
    return torch.nan_to_num(torch.softmax(s, -1)).float()


@pytest.mark.parametrize(("tq", "tk", "src_lengths"), [(5, 5, [5, 3]), (4, 7, [7, 2])])
def test_decoder_cross_attention_keeps_every_target_row(tq, tk, src_lengths):
    torch.manual_seed(0)
    block = TransformerDecoderBlock(16, 2, memory_dim=12).eval()
    y, mem = torch.randn(2, tq, 16), torch.randn(2, tk, 12)
    lengths = torch.tensor(src_lengths)
    with torch.no_grad():
        ref = block(y, mem, memory_mask=M.Padding(lengths))
        with capture(block) as rec:
            out = block(y, mem, memory_mask=M.Padding(lengths))
        h = block.norm2(y + block.self_attn(block.norm1(y), causal=True))  # pre-norm input
        expected = _hand_weights(block.cross_attn, h, mem, M.Padding(lengths).dense(tq, tk))
    assert torch.equal(out, ref)
    assert rec.names == ["self_attn.core", "cross_attn.core"]
    assert rec.roles == ["self", "cross"]
    torch.testing.assert_close(rec.weights[1], expected, atol=1e-5, rtol=0)
    # 3 real source positions, all target rows: (H, Tq, 3), never (H, 3, 3)
    cross = rec.by_role("cross")
    assert cross.example(1)[0].shape == (2, tq, src_lengths[1])
    assert cross.query_valid[0].all()
    torch.testing.assert_close(cross.example(1)[0], expected[1][:, :, : src_lengths[1]])
    assert rec.example(1)[0].shape == (2, tq, tq)  # causal self attention, no padding


def test_decoder_self_attention_padding_is_also_query_padding():
    torch.manual_seed(1)
    block = TransformerDecoderBlock(16, 2).eval()
    y, mem = torch.randn(2, 6, 16), torch.randn(2, 4, 16)
    with torch.no_grad(), capture(block) as rec:
        block(y, mem, mask=M.Padding(torch.tensor([6, 4])), memory_mask=M.Padding([4, 1]))
    assert rec.query_valid[0][1].tolist() == [True] * 4 + [False] * 2
    assert [tuple(w.shape) for w in rec.example(1)] == [(2, 4, 4), (2, 6, 1)]


def test_roles_of_layers_and_their_validation():
    assert MultiHeadAttention(8, 2).core.role == "self"
    assert MultiHeadAttention(8, 2, role="cross").core.role == "cross"
    assert AdditiveAttention(4).tap.role == "cross" and LuongAttention(4).tap.role == "cross"
    assert AdditiveAttention(4, role="self").tap.role == "self"
    assert LuongAttention(4, score="dot", role="self").tap.role == "self"
    assert AttentionPooling(4).tap.role == "pool"
    assert "role='cross'" in repr(MultiHeadAttention(8, 2, role="cross"))
    with pytest.raises(ValueError, match="role must be one of 'self', 'cross', got 'pool'"):
        MultiHeadAttention(8, 2, role="pool")
    with pytest.raises(ValueError, match="got 'gate'"):
        WeightsTap(role="gate")
    with pytest.raises(ValueError, match="'channel-gate'"):
        AttentionCore(role="channel-gate")


def test_additive_cross_attention_rows_and_keys():
    torch.manual_seed(2)
    layer = AdditiveAttention(query_dim=8, key_dim=6, hidden_dim=5)
    query, keys = torch.randn(2, 4, 8), torch.randn(2, 7, 6)
    with torch.no_grad(), capture(layer) as rec:
        _, weights = layer(query, keys, lengths=torch.tensor([7, 2]))
    assert rec.roles == ["cross"]
    assert rec.example(1)[0].shape == (1, 4, 2)  # 4 decoder steps over 2 real keys
    torch.testing.assert_close(rec.example(1)[0][0], weights[1, :, :2])


def test_pooling_role_one_query_over_the_real_keys():
    torch.manual_seed(3)
    pool = AttentionPooling(8, hidden_dim=6)
    x = torch.randn(3, 5, 8)
    lengths = torch.tensor([5, 2, 0])
    with torch.no_grad(), capture(pool) as rec:
        _, weights = pool(x, lengths)
    assert rec.roles == ["pool"] and rec.heads == [[0]]
    assert [tuple(w.shape) for w in rec.example(1)] == [(1, 1, 2)]
    torch.testing.assert_close(rec.example(1)[0][0, 0], weights[1, :2])
    assert rec.key_valid[0][1].tolist() == [True, True, False, False, False]
    assert rec.example(2)[0].shape == (1, 0, 0)  # an empty sequence pools nothing


def test_squeeze_excite_gate_recorded_once_per_call_as_b_c():
    torch.manual_seed(4)
    se = SqueezeExcite(12, reduction=4).eval()
    x = torch.randn(2, 12, 5, 7)
    with torch.no_grad():
        ref = se(x)
        with capture(se) as rec:
            out = se(x)
            se(x[:1])
        gate = torch.sigmoid(se.fc2(se.act(se.fc1(x.mean((2, 3), keepdim=True)))))[:, :, 0, 0]
    assert torch.equal(out, ref)
    assert rec.roles == ["channel-gate", "channel-gate"] and rec.heads == [[], []]
    assert [tuple(w.shape) for w in rec.weights] == [(2, 12), (1, 12)]
    assert rec.query_valid == [None, None]
    torch.testing.assert_close(rec.weights[0], gate)
    assert rec.by_role("channel-gate").example(0)[1].shape == (12,)


def test_cbam_records_a_channel_gate_and_a_spatial_map():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), CBAM(8, reduction=2, kernel_size=3))
    model.eval()
    x = torch.randn(2, 3, 6, 5)
    with torch.no_grad():
        ref = model(x)
        with capture(model) as rec:
            out = model(x)
        cbam, h = model[1], model[0](x)
        gate = cbam.channel(h)  # (B, C, 1, 1)
        spatial = cbam.spatial(h * gate)  # (B, 1, H, W)
    assert torch.equal(out, ref)
    assert rec.names == ["1.channel.tap", "1.spatial.tap"]
    assert rec.roles == ["channel-gate", "spatial"]
    assert rec.weights[0].shape == (2, 8) and rec.weights[1].shape == (2, 6, 5)
    torch.testing.assert_close(rec.weights[0], gate[:, :, 0, 0])
    torch.testing.assert_close(rec.weights[1], spatial[:, 0])
    assert [tuple(e.shape) for e in rec.example(0)] == [(8,), (6, 5)]
    assert len(rec.by_role("spatial")) == 1 and rec.by_role("spatial")[0].name == "1.spatial.tap"
    with pytest.raises(ValueError, match="entries differ in shape"):
        rec.stacked(0)


def test_gate_tap_with_the_wrong_shape_is_refused():
    tap = WeightsTap(role="channel-gate")
    with pytest.raises(ValueError, match=r"expected \(B, C\)"), capture(tap):
        tap(torch.rand(2, 3, 1, 1))


def test_by_role_filters_and_checks_names():
    torch.manual_seed(6)
    block = TransformerDecoderBlock(8, 2).eval()
    with torch.no_grad(), capture(block) as rec:
        block(torch.randn(1, 3, 8), torch.randn(1, 4, 8))
    assert isinstance(rec.by_role("self", "cross"), Recording)
    assert rec.by_role("self").names == ["self_attn.core"]
    assert [e.role for e in rec] == ["self", "cross"]
    with pytest.raises(ValueError, match="got 'selfish'"):
        rec.by_role("selfish")


def test_torch_decoder_layer_roles():
    torch.manual_seed(7)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True).eval()
    tgt, mem = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    kpm = torch.tensor([[False] * 5, [False, False, True, True, True]])
    with torch.no_grad(), capture(layer) as rec:
        layer(tgt, mem, memory_key_padding_mask=kpm)
    assert rec.names == ["self_attn", "multihead_attn"] and rec.roles == ["self", "cross"]
    assert rec.example(1)[1].shape == (2, 3, 2)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_default_transformer_encoder_fast_path_with_padding():
    # nn.TransformerEncoder in eval mode turns a padded batch into a nested tensor before
    # its layers run; capture pads it back and leaves the fast path and outputs alone.
    torch.manual_seed(8)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2).eval()
    assert enc.use_nested_tensor
    x = torch.randn(2, 5, 16)
    kpm = torch.tensor([[False] * 4 + [True], [False] * 3 + [True] * 2])
    with torch.no_grad():
        ref = enc(x, src_key_padding_mask=kpm)
    with torch.no_grad(), capture(enc) as rec:
        out = enc(x, src_key_padding_mask=kpm)
    with torch.no_grad():
        expected = enc.layers[0].self_attn(
            x, x, x, key_padding_mask=kpm, average_attn_weights=False
        )[1]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert out[1, 3:].abs().max() == 0  # padding still comes out as zeros (nested path)
    assert rec.names == ["layers.0.self_attn", "layers.1.self_attn"]
    assert rec.weights[0].shape == (2, 4, 5, 5)
    assert [tuple(w.shape) for w in rec.example(1)] == [(4, 3, 3), (4, 3, 3)]
    torch.testing.assert_close(rec.example(0)[0], expected[0][:, :4, :4], atol=1e-6, rtol=0)
    torch.testing.assert_close(rec.example(1)[0], expected[1][:, :3, :3], atol=1e-6, rtol=0)
