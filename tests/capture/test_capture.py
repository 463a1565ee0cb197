from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attnlab.capture import attention_modules, capture
from attnlab.layers import AttentionCore, WeightsTap
from attnlab.ops import attention
from attnlab.ops import masks as M


class TwoCores(nn.Module):
    """A toy model calling AttentionCore twice and passing explicit weights through a tap."""

    def __init__(self) -> None:
        super().__init__()
        self.first = AttentionCore()
        self.second = AttentionCore(backend="math")
        self.tap = WeightsTap()

    def forward(self, q, k, v, lengths):
        mask = M.Padding(lengths)
        x = self.first(q, k, v, mask=mask, causal=True)
        y = self.second(x, k, v, mask=mask, scale=0.3)
        pooled = torch.softmax(y.sum(-1, keepdim=True).transpose(-1, -2), -1)  # (B, H, 1, T)
        self.tap(pooled)
        return y


def test_attention_core_capture_matches_weights_and_keeps_output():
    torch.manual_seed(0)
    b, h, t, d = 2, 3, 7, 8
    q, k, v = (torch.randn(b, h, t, d) for _ in range(3))
    lengths = torch.tensor([7, 4])
    model = TwoCores()
    ref = model(q, k, v, lengths)
    with capture(model) as rec:
        out = model(q, k, v, lengths)
    assert torch.equal(out, ref)
    assert rec.names == ["first", "second", "tap"]
    mask = M.Padding(lengths) & M.Causal()
    x, w1 = attention(q, k, v, mask=mask, return_weights=True)
    torch.testing.assert_close(rec.weights[0], w1, atol=1e-6, rtol=0)
    _, w2 = attention(x, k, v, mask=M.Padding(lengths), scale=0.3, return_weights=True)
    torch.testing.assert_close(rec.weights[1], w2, atol=1e-6, rtol=0)
    assert rec.weights[2].shape == (b, h, 1, t)
    # padding stripped per example: example 1 has 4 valid queries and keys
    ex = rec.example(1)
    assert ex[0].shape == (h, 4, 4) and ex[1].shape == (h, 4, 4)
    torch.testing.assert_close(ex[0], w1[1, :, :4, :4], atol=1e-6, rtol=0)
    # hooks are gone after the block
    assert not model.first._forward_hooks and not model.tap._forward_hooks


def test_layer_and_head_selection():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 4, 5, 8) for _ in range(3))
    model = TwoCores()
    with capture(model, layers=["sec*"], heads=[2, 0]) as rec:
        model(q, k, v, torch.tensor([5]))
    assert rec.names == ["second"] and rec.heads == [[2, 0]]
    assert rec.weights[0].shape == (1, 2, 5, 5)
    with capture(model, layers=[-1, 0]) as rec:
        model(q, k, v, torch.tensor([5]))
    assert rec.names == ["first", "tap"]


def test_capture_errors_name_the_problem():
    with pytest.raises(ValueError, match="no attention module"):
        capture(nn.Linear(3, 3))
    model = TwoCores()
    with pytest.raises(ValueError, match="layer 5 out of range"):
        capture(model, layers=[5])
    with pytest.raises(ValueError, match="no attention module matches 'nope'"):
        capture(model, layers=["nope"])
    q, k, v = (torch.randn(1, 2, 5, 8) for _ in range(3))
    with pytest.raises(ValueError, match=r"heads \[3\] out of range"), capture(model, heads=[3]):
        model(q, k, v, torch.tensor([5]))
    assert not model.first._forward_hooks  # removed even after an error


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kdim", [None, 6])
def test_torch_mha_matches_its_own_weights(batch_first, kdim):
    torch.manual_seed(2)
    e, h, tq, tk = 8, 2, 5, 7 if kdim else 5
    mha = nn.MultiheadAttention(
        e, h, batch_first=batch_first, kdim=kdim, vdim=kdim, add_bias_kv=kdim is not None
    ).eval()
    kd = kdim or e
    q = torch.randn(3, tq, e)
    kv = torch.randn(3, tk, kd)
    kpm = torch.zeros(3, tk, dtype=torch.bool)
    kpm[1, -2:] = True  # padding keys of example 1
    causal = torch.triu(torch.ones(tq, tk, dtype=torch.bool), 1 + tk - tq)
    args = (
        (q, kv, kv) if batch_first else (q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1))
    )
    with torch.no_grad():
        ref_out, ref_w = mha(
            *args, key_padding_mask=kpm, attn_mask=causal, average_attn_weights=False
        )
        fast = mha(*args, key_padding_mask=kpm, attn_mask=causal, need_weights=False)[0]
        with capture(mha) as rec:
            out, none = mha(*args, key_padding_mask=kpm, attn_mask=causal, need_weights=False)
    assert none is None  # need_weights stays as the caller set it
    assert torch.equal(out, fast)
    extra = 1 if kdim else 0
    assert rec.weights[0].shape == (3, h, tq, tk + extra)
    torch.testing.assert_close(rec.weights[0], ref_w, atol=1e-6, rtol=0)
    assert rec.key_valid[0][1].tolist() == [True] * (tk - 2) + [False, False] + [True] * extra
    del ref_out


def test_unbatched_mha_and_float_mask():
    torch.manual_seed(3)
    mha = nn.MultiheadAttention(4, 2).eval()
    x = torch.randn(6, 4)  # (T, E) unbatched
    bias = torch.randn(6, 6)
    with torch.no_grad(), capture(mha, heads=[1]) as rec:
        mha(x, x, x, attn_mask=bias, need_weights=False)
    ref = mha(x, x, x, attn_mask=bias, average_attn_weights=False)[1]  # (H, T, T)
    torch.testing.assert_close(rec.weights[0][0, 0], ref[1], atol=1e-6, rtol=0)


def test_minilm_sdpa_capture_equals_eager(minilm, minilm_eager):
    model, tok = minilm
    assert model.config._attn_implementation == "sdpa"
    texts = [
        "Attention is all you need.",
        "A much longer second sentence, padded less than the first?",
    ]
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        plain = model(**batch).last_hidden_state
        with capture(model, tokenizer=tok) as rec:
            out = model(**batch).last_hidden_state
        eager = minilm_eager(**batch, output_attentions=True).attentions
    assert torch.equal(out, plain)
    assert len(rec.weights) == len(eager) == 6
    assert rec.names[0] == "encoder.layer.0.attention.self"
    n0 = int(batch["attention_mask"][0].sum())
    assert rec.tokens[0][0] == "[CLS]" and len(rec.tokens[0]) == n0
    assert len(rec.tokens[1]) == batch["input_ids"].shape[1]
    for b in range(2):
        keep = batch["attention_mask"][b].bool()
        for w, ref in zip(rec.example(b), eager, strict=True):
            expected = ref[b][:, keep][:, :, keep]  # (H, T_b, T_b)
            assert w.shape == expected.shape
            assert (w - expected).abs().max() <= 1e-5
    # full padded tensors agree on every valid query row as well
    for w, ref in zip(rec.weights, eager, strict=True):
        rows = batch["attention_mask"].bool()
        assert (w - ref).abs().amax(-1)[rows[:, None].expand(-1, 12, -1)].max() <= 1e-5


def test_minilm_selected_layers_heads(minilm):
    model, tok = minilm
    batch = tok(["one two three"], return_tensors="pt")
    with torch.no_grad(), capture(model, layers=[0, -1], heads=[3]) as rec:
        model(**batch)
    assert rec.names == ["encoder.layer.0.attention.self", "encoder.layer.5.attention.self"]
    assert [w.shape[1] for w in rec.weights] == [1, 1]
    assert rec.stacked(0).shape == (2, 1, 5, 5)
    assert rec.tokens is None
    assert len(attention_modules(model)) == 6


def test_torch_transformer_encoder_layers():
    # torch's encoder layer turns its fused inference path off when any hook is attached,
    # so under capture it runs the regular path: equal up to float rounding.
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 5, 16)
    kpm = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with torch.no_grad():
        ref = enc(x, src_key_padding_mask=kpm)
        with capture(enc) as rec:
            out = enc(x, src_key_padding_mask=kpm)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        # post-norm layers: the first attention sees x itself
        expected = enc.layers[0].self_attn(
            x, x, x, key_padding_mask=kpm, average_attn_weights=False
        )[1]
    assert rec.names == ["layers.0.self_attn", "layers.1.self_attn"]
    torch.testing.assert_close(rec.weights[0], expected, atol=1e-6, rtol=0)
    assert rec.example(1)[1].shape == (4, 3, 3)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    b=st.integers(1, 3),
    h=st.sampled_from([1, 2, 4]),
    t=st.sampled_from([1, 7, 13]),
    causal=st.booleans(),
    window=st.one_of(st.none(), st.integers(0, 4)),
    data=st.data(),
)
def test_capture_equals_returned_weights_for_any_mask(b, h, t, causal, window, data):
    lengths = torch.tensor(data.draw(st.lists(st.integers(0, t), min_size=b, max_size=b)))
    g = torch.Generator().manual_seed(b * 100 + h * 10 + t)
    q, k, v = (torch.randn(b, h, t, 8, generator=g) for _ in range(3))
    core = AttentionCore()
    kw = {"mask": M.Padding(lengths), "causal": causal, "window": window}
    _, expected = attention(q, k, v, return_weights=True, **kw)
    with capture(core) as rec:
        core(q, k, v, **kw)
    torch.testing.assert_close(rec.weights[0], expected, atol=1e-6, rtol=0)
    assert not rec.weights[0].isnan().any()
    for i, n in enumerate(lengths.tolist()):
        assert rec.key_valid[0][i].sum() <= n  # padding keys are never kept
        assert rec.example(i)[0].shape[-1] == rec.key_valid[0][i].sum()
