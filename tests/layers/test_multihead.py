"""MultiHeadAttention against a float64 reference built from its own weights, against
torch.nn.MultiheadAttention, and its masks, GQA/MQA, cross attention and errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.layers import AttentionCore, MultiHeadAttention
from attnlab.ops import masks as M


def reference_mha(mha, query, key=None, value=None, mask=None, dtype=torch.float64):
    """MHA written from the definition with explicit loops over heads, in ``dtype``.

    ``mask`` is a dense bool tensor broadcastable to (B, H, Tq, Tk), True = attend.
    Fully masked rows give a zero head output (so the result is the out_proj bias).
    """
    key = query if key is None else key
    value = key if value is None else value

    def lin(layer, x):
        w = layer.weight.to(dtype)
        b = layer.bias.to(dtype) if layer.bias is not None else 0.0
        return x.to(dtype) @ w.T + b

    h, hkv, d = mha.num_heads, mha.num_kv_heads, mha.head_dim
    q, k, v = lin(mha.q_proj, query), lin(mha.k_proj, key), lin(mha.v_proj, value)
    bsz, tq, tk = query.shape[0], query.shape[1], key.shape[1]
    heads = []
    for head in range(h):
        g = head // (h // hkv)
        qh = q[..., head * d : (head + 1) * d]  # (B, Tq, D)
        kh = k[..., g * d : (g + 1) * d]
        vh = v[..., g * d : (g + 1) * d]
        s = qh @ kh.transpose(1, 2) / math.sqrt(d)  # (B, Tq, Tk)
        if mask is not None:
            m = mask.expand(bsz, h, tq, tk)[:, head]
            s = s.masked_fill(~m, float("-inf"))
        w = torch.softmax(s, -1).nan_to_num(0.0)
        heads.append(w @ vh)
    out = torch.cat(heads, -1)  # (B, Tq, E)
    return lin(mha.out_proj, out)


def err(a, b):
    return (a.double() - b.double()).abs().max().item()


def check_budget(got, mha, *args, atol=1e-6, **kwargs):
    """|got - ref64| <= 2 |ref32 - ref64| + atol (DESIGN §4)."""
    ref64 = reference_mha(mha, *args, **kwargs)
    ref32 = reference_mha(mha, *args, dtype=torch.float32, **kwargs)
    assert err(got, ref64) <= 2 * err(ref32, ref64) + atol


@pytest.mark.parametrize("num_kv_heads", [None, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("t", [1, 7, 113])
def test_matches_reference(num_kv_heads, t):
    mha = MultiHeadAttention(48, 6 if num_kv_heads != 2 else 4, num_kv_heads=num_kv_heads)
    x = torch.randn(2, t, 48)
    check_budget(mha(x), mha, x)
    check_budget(mha(x, causal=True), mha, x, mask=torch.ones(t, t).tril().bool())
    out64 = mha.double()(x.double())
    assert err(out64, reference_mha(mha, x)) < 1e-12


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_bfloat16_within_twice_the_naive_error(backend):
    mha = MultiHeadAttention(64, 8, num_kv_heads=2, backend=backend).to(torch.bfloat16)
    x = torch.randn(2, 37, 64).to(torch.bfloat16)
    causal = torch.ones(37, 37).tril().bool()
    ref64 = reference_mha(mha, x, mask=causal)
    naive = reference_mha(mha, x, mask=causal, dtype=torch.bfloat16)
    got = mha(x, causal=True)
    assert got.dtype == torch.bfloat16
    assert err(got, ref64) <= 2 * err(naive, ref64) + 1e-3


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_gradients_match_reference(backend):
    mha = MultiHeadAttention(16, 4, num_kv_heads=2, backend=backend).double()
    x = torch.randn(2, 7, 16, dtype=torch.float64, requires_grad=True)
    causal = torch.ones(7, 7).tril().bool()
    g1 = torch.autograd.grad(mha(x, causal=True).square().sum(), [x, *mha.parameters()])
    x2 = x.detach().requires_grad_()
    g2 = torch.autograd.grad(
        reference_mha(mha, x2, mask=causal).square().sum(), [x2, *mha.parameters()]
    )
    for a, b in zip(g1, g2, strict=True):
        assert err(a, b) < 1e-10


def test_equals_torch_multihead_attention():
    e, h, t = 32, 4, 9
    ours = MultiHeadAttention(e, h).eval()
    theirs = torch.nn.MultiheadAttention(e, h, batch_first=True).eval()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(3, t, e)
    lengths = torch.tensor([9, 5, 2])
    pad = torch.arange(t)[None] >= lengths[:, None]  # torch: True = ignore
    causal = torch.ones(t, t, dtype=torch.bool).triu(1)
    expected, _ = theirs(x, x, x, key_padding_mask=pad, attn_mask=causal, need_weights=False)
    got = ours(x, mask=M.Padding(lengths), causal=True)
    assert err(got, expected) < 1e-5
    expected, _ = theirs(x, x, x, need_weights=False)
    assert err(ours(x), expected) < 1e-5


def test_cross_attention_with_kdim_vdim():
    mha = MultiHeadAttention(24, 3, kdim=10, vdim=6, num_kv_heads=1)
    q, k, v = torch.randn(2, 5, 24), torch.randn(2, 17, 10), torch.randn(2, 17, 6)
    out = mha(q, k, v)
    assert out.shape == (2, 5, 24)
    check_budget(out, mha, q, k, v)
    lengths = torch.tensor([17, 3])
    dense = (torch.arange(17)[None] < lengths[:, None])[:, None, None]  # (B, 1, 1, Tk)
    check_budget(mha(q, k, v, mask=M.Padding(lengths)), mha, q, k, v, mask=dense)
    check_budget(mha(q, k, v, mask=dense), mha, q, k, v, mask=dense)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_masks_match_dense_reference(backend):
    mha = MultiHeadAttention(32, 4, backend=backend)
    b, tq, tk = 2, 7, 17
    q, kv = torch.randn(b, tq, 32), torch.randn(b, tk, 32)
    lengths = torch.tensor([17, 11])
    typed = M.Padding(lengths) & M.Causal() & M.Window(4, 0)
    dense = typed.dense(tq, tk)
    check_budget(mha(q, kv, mask=typed), mha, q, kv, mask=dense)
    check_budget(
        mha(q, kv, mask=M.Padding(lengths), causal=True, window=(4, 0)), mha, q, kv, mask=dense
    )
    # causal with Tq != Tk is bottom-right aligned: query i sees keys j <= i + Tk - Tq
    br = torch.arange(tk)[None] <= torch.arange(tq)[:, None] + (tk - tq)
    check_budget(mha(q, kv, causal=True), mha, q, kv, mask=br)
    random = torch.rand(b, 4, tq, tk) > 0.5
    check_budget(mha(q, kv, mask=random), mha, q, kv, mask=random)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
def test_fully_masked_rows_give_zeros_and_finite_gradients(backend):
    mha = MultiHeadAttention(16, 2, bias=False, backend=backend)
    x = torch.randn(2, 5, 16, requires_grad=True)
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mask[0, :, 2] = False  # query 2 of example 0 sees nothing
    mask[1] = False  # example 1 sees nothing at all
    out = mha(x, mask=mask)
    assert torch.isfinite(out).all()
    assert out[0, 2].abs().max() == 0 and out[1].abs().max() == 0
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in [x, *mha.parameters()])
    with_bias = MultiHeadAttention(16, 2, backend=backend)
    row = with_bias(x, mask=mask)[1, 0]
    assert torch.allclose(row, with_bias.out_proj.bias)  # zeros before out_proj


def test_float_mask_is_added_to_scores():
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(1, 6, 16)
    bias = torch.zeros(1, 1, 6, 6)
    bias[..., 3:] = float("-inf")
    keep = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    keep[..., 3:] = False
    assert err(mha(x, mask=bias), mha(x, mask=keep)) < 1e-6


def test_core_hook_sees_q_k_and_mask():
    mha = MultiHeadAttention(16, 4, num_kv_heads=2)
    seen = {}

    def hook(module, args, kwargs):
        seen["q"], seen["k"] = args[0].shape, args[1].shape
        seen["mask"], seen["causal"] = kwargs["mask"], kwargs["causal"]

    assert isinstance(mha.core, AttentionCore)
    mha.core.register_forward_pre_hook(hook, with_kwargs=True)
    pad = M.Padding(torch.tensor([3, 5]))
    mha(torch.randn(2, 5, 16), mask=pad, causal=True)
    assert seen == {"q": (2, 4, 5, 4), "k": (2, 2, 5, 4), "mask": pad, "causal": True}
    assert not any("weight" in n for n, _ in mha.named_buffers())


def test_dropout_only_in_training():
    mha = MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 9, 16)
    mha.eval()
    assert torch.equal(mha(x), mha(x))
    mha.train()
    assert err(mha(x), mha.eval()(x)) > 1e-3


@settings(max_examples=20, deadline=None)
@given(
    b=st.integers(1, 3),
    tq=st.integers(1, 9),
    tk=st.integers(1, 9),
    heads=st.sampled_from([(4, 4), (4, 2), (4, 1), (2, 1)]),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_and_masks(b, tq, tk, heads, seed):
    g = torch.Generator().manual_seed(seed)
    h, hkv = heads
    mha = MultiHeadAttention(8 * h, h, num_kv_heads=hkv, kdim=5, vdim=5)
    q, kv = torch.randn(b, tq, 8 * h, generator=g), torch.randn(b, tk, 5, generator=g)
    mask = torch.rand(b, 1, tq, tk, generator=g) > 0.3
    check_budget(mha(q, kv, mask=mask), mha, q, kv, mask=mask)


def test_errors_name_the_values():
    with pytest.raises(ValueError, match="embed_dim 30 is not divisible by num_heads 4"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="num_kv_heads 3 does not divide num_heads 4"):
        MultiHeadAttention(32, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_heads must be a positive int, got 0"):
        MultiHeadAttention(32, 0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        MultiHeadAttention(32, 4, dropout=1.5)
    mha = MultiHeadAttention(32, 4, kdim=10)
    with pytest.raises(
        ValueError, match=r"query must be \(B, T, 32\) with 3 dims, got shape \(4, 32\)"
    ):
        mha(torch.randn(4, 32))
    with pytest.raises(ValueError, match="query has 16 features, expected 32"):
        mha(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="key has 32 features, expected 10"):
        mha(torch.randn(2, 3, 32), torch.randn(2, 3, 32))
    with pytest.raises(ValueError, match="key has batch size 3, but query has 2"):
        mha(torch.randn(2, 3, 32), torch.randn(3, 3, 10))
    with pytest.raises(ValueError, match="key has 4 positions but value has 5"):
        mha(torch.randn(2, 3, 32), torch.randn(2, 4, 10), torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match="not broadcastable"):
        MultiHeadAttention(32, 4)(torch.randn(2, 3, 32), mask=torch.ones(2, 1, 3, 4).bool())
    with pytest.raises(ValueError, match="value has 10 features, expected 32"):
        mha(torch.randn(2, 3, 32), torch.randn(2, 4, 10))
    with pytest.raises(TypeError, match="cache must be a KVCache"):
        MultiHeadAttention(32, 4)(torch.randn(2, 3, 32), cache={})
