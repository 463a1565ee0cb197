"""attention() against an independent float64 oracle, for every backend that can run."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.ops import attention, explain
from attnlab.ops import masks as M
from attnlab.ops.backends import BACKENDS
from attnlab.testing import assert_within_budget, max_err, naive, oracle

HEADS = [(4, 4), (4, 2), (4, 1)]  # MHA, GQA, MQA
SIZES = [(1, 1), (7, 7), (1, 17), (7, 17), (113, 113), (17, 7), (203, 113)]
FORWARD_MASKS = [
    "none",
    "causal",
    "window",
    "padding",
    "pad&causal",
    "document",
    "doc|window",
    "custom",
]


def make_qkv(b, h, hkv, tq, tk, d=16, dv=None, dtype=torch.float32, grad=False):
    dv = d if dv is None else dv
    q = torch.randn(b, h, tq, d, dtype=dtype)
    k = torch.randn(b, hkv, tk, d, dtype=dtype)
    v = torch.randn(b, hkv, tk, dv, dtype=dtype)
    if grad:
        for t in (q, k, v):
            t.requires_grad_(True)
    return q, k, v


def mask_cases(b, tq, tk):
    lengths = torch.randint(0, tk + 1, (b,))
    lengths[0] = tk
    ids = torch.sort(torch.randint(0, 3, (b, tk)), dim=1).values
    return {
        "none": None,
        "causal": M.Causal(),
        "window": M.Window(3, 0),
        "window2": M.Window(2, 5),
        "padding": M.Padding(lengths),
        "pad&causal": M.Padding(lengths) & M.Causal(),
        "document": M.Document(ids),
        "doc|window": M.Document(ids) | M.Window(1, 1),
        "custom": M.Custom(lambda i, j: (i + j) % 3 == 0),
        "dense": M.Custom(torch.rand(b, 1, tq, tk) > 0.3),
    }


def backends_for(return_weights=False):
    return [n for n in BACKENDS if not return_weights or BACKENDS[n].returns_weights] + ["auto"]


@pytest.mark.parametrize("backend", backends_for())
@pytest.mark.parametrize(("h", "hkv"), HEADS)
@pytest.mark.parametrize(
    ("tq", "tk", "mask_name"),
    [
        (tq, tk, name)
        for tq, tk in SIZES
        for name in FORWARD_MASKS
        # document ids describe key positions; queries past them need their own ids
        if not (name.startswith("doc") and tq > tk)
    ],
)
def test_forward_matches_oracle(backend, h, hkv, tq, tk, mask_name):
    q, k, v = make_qkv(2, h, hkv, tq, tk)
    mask = mask_cases(2, tq, tk)[mask_name]
    dense = None if mask is None else mask.dense(tq, tk)
    out = attention(q, k, v, mask=mask, backend=backend)
    ref, _ = oracle(q, k, v, mask=dense)
    low, _ = naive(q, k, v, mask=dense)
    assert out.shape == (2, h, tq, 16)
    assert_within_budget(out, ref, low)


@pytest.mark.parametrize("backend", backends_for())
@pytest.mark.parametrize(("h", "hkv"), HEADS)
@pytest.mark.parametrize("mask_name", ["none", "causal", "window2", "pad&causal", "dense"])
def test_gradients_match_oracle(backend, h, hkv, mask_name):
    tq, tk = 13, 29
    q, k, v = make_qkv(2, h, hkv, tq, tk, grad=True)
    mask = mask_cases(2, tq, tk)[mask_name]
    dense = None if mask is None else mask.dense(tq, tk)
    g = torch.randn(2, h, tq, 16)
    out = attention(q, k, v, mask=mask, backend=backend)
    grads = torch.autograd.grad(out, (q, k, v), g)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = torch.autograd.grad(oracle(q64, k64, v64, mask=dense)[0], (q64, k64, v64), g.double())
    low = torch.autograd.grad(naive(q, k, v, mask=dense)[0], (q, k, v), g)
    for got, r, n in zip(grads, ref, low, strict=True):
        assert torch.isfinite(got).all()
        assert_within_budget(got, r, n, atol=1e-5)


@pytest.mark.parametrize("backend", backends_for())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_other_dtypes(backend, dtype):
    q, k, v = make_qkv(2, 4, 2, 33, 47, dtype=dtype)
    mask = M.Causal() & M.Padding([47, 20])
    out = attention(q, k, v, mask=mask, backend=backend)
    assert out.dtype == dtype
    dense = mask.dense(33, 47)
    ref, _ = oracle(q, k, v, mask=dense)
    low, _ = naive(q, k, v, mask=dense)
    assert_within_budget(out, ref, low, atol=1e-3 if dtype == torch.bfloat16 else 1e-12)


@pytest.mark.parametrize("backend", backends_for())
def test_causal_is_bottom_right_aligned(backend):
    # Decoding one token against a cache of 17 keys: it sees every key.
    q, k, v = make_qkv(1, 4, 4, 1, 17)
    causal = attention(q, k, v, causal=True, backend=backend)
    full = attention(q, k, v, backend=backend)
    torch.testing.assert_close(causal, full)
    # Tq=3, Tk=5: query 0 sees keys 0..2, query 2 sees all.
    dense = M.Causal().dense(3, 5)[0, 0]
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(dense, expected)


@pytest.mark.parametrize("backend", backends_for())
def test_fully_masked_rows_are_zero_with_zero_gradient(backend):
    # Tq > Tk with causal: the first Tq - Tk queries have no key at or before them.
    q, k, v = make_qkv(2, 4, 2, 9, 5, grad=True)
    mask = M.Causal() & M.Padding([5, 0])  # example 1 has no keys at all
    out = attention(q, k, v, mask=mask, backend=backend)
    assert torch.isfinite(out).all()
    assert (out[0, :, :4] == 0).all() and (out[1] == 0).all()
    assert (out[0, :, 4:] != 0).any()
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert (q.grad[0, :, :4] == 0).all() and (q.grad[1] == 0).all()
    assert (k.grad[1] == 0).all()


def test_fully_masked_rows_weights_and_float_bias():
    q, k, v = make_qkv(1, 2, 2, 4, 6)
    bias = torch.zeros(1, 1, 4, 6)
    bias[..., 1, :] = float("-inf")
    for backend in backends_for():
        out = attention(q, k, v, mask=bias, backend=backend)
        assert torch.isfinite(out).all() and (out[:, :, 1] == 0).all()
    out, w = attention(q, k, v, mask=bias, return_weights=True)
    assert (w[:, :, 1] == 0).all()
    torch.testing.assert_close(w.sum(-1)[:, :, [0, 2, 3]], torch.ones(1, 2, 3))


@pytest.mark.parametrize("backend", backends_for())
def test_float_bias_and_bool_tensor_masks(backend):
    q, k, v = make_qkv(2, 4, 4, 11, 13)
    bias = torch.randn(2, 1, 11, 13)
    keep = torch.rand(1, 4, 11, 13) > 0.5
    out = attention(q, k, v, mask=bias, causal=True, backend=backend)
    dense = M.Causal().dense(11, 13)
    assert_within_budget(
        out, oracle(q, k, v, mask=dense, bias=bias)[0], naive(q, k, v, mask=dense, bias=bias)[0]
    )
    out = attention(q, k, v, mask=keep, backend=backend)
    assert_within_budget(out, oracle(q, k, v, mask=keep)[0], naive(q, k, v, mask=keep)[0])


def test_return_weights_are_the_softmax():
    q, k, v = make_qkv(2, 4, 1, 7, 19)
    mask = M.Window(2, 2) & M.Padding([19, 10])
    out, w = attention(q, k, v, mask=mask, return_weights=True)
    ref_out, ref_w = oracle(q, k, v, mask=mask.dense(7, 19))
    assert w.shape == (2, 4, 7, 19)
    assert max_err(w, ref_w) < 1e-6 and max_err(out, ref_out) < 1e-5
    assert (w.masked_select(~mask.dense(7, 19).expand_as(w)) == 0).all()


@pytest.mark.parametrize("backend", backends_for())
def test_cosine_score(backend):
    q, k, v = make_qkv(2, 4, 2, 7, 9)
    out = attention(q, k, v, score="cosine", scale=10.0, backend=backend)
    qn, kn = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    ref, _ = oracle(qn, kn, v, scale=10.0)
    assert_within_budget(out, ref, naive(qn, kn, v, scale=10.0)[0])


def test_window_int_and_scale():
    q, k, v = make_qkv(1, 2, 2, 20, 20)
    a = attention(q, k, v, window=3, scale=0.5)
    b = attention(q, k, v, mask=M.Window(3, 3), scale=0.5)
    torch.testing.assert_close(a, b)
    ref, _ = oracle(q, k, v, mask=M.Window(3, 3).dense(20, 20), scale=0.5)
    assert max_err(a, ref) < 1e-5


def test_backends_agree_dense_fp32():
    q, k, v = make_qkv(2, 8, 2, 203, 203, d=64)
    outs = {name: attention(q, k, v, causal=True, backend=name) for name in BACKENDS}
    ref = outs.pop("math")
    for out in outs.values():
        assert max_err(out, ref) < 1e-5


def test_dropout_is_random_in_training_and_unbiased():
    q, k, v = make_qkv(1, 2, 2, 5, 6, dtype=torch.float64)
    plain = attention(q, k, v)
    for backend in backends_for():
        torch.manual_seed(1)
        a = attention(q, k, v, dropout_p=0.3, backend=backend)
        torch.manual_seed(1)
        b = attention(q, k, v, dropout_p=0.3, backend=backend)
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, plain)
    # 4000 independent draws in one batch: the mean approaches the dropout-free output.
    draws = attention(*(t.expand(4000, -1, -1, -1) for t in (q, k, v)), dropout_p=0.3)
    assert max_err(draws.mean(0, keepdim=True), plain) < 0.15


def test_explain_names_backends_and_reasons():
    q, k, v = make_qkv(1, 4, 4, 16, 16)
    e = explain(q, k, v, causal=True)
    assert e.backend in BACKENDS and e.backend != "math"
    assert "math" in str(e)
    e = explain(q, k, v, causal=True, return_weights=True)
    assert e.backend == "math"
    assert "sdpa" in e.refused and "weights" in e.refused["sdpa"]
    e = explain(q, k, v, backend="math")
    assert e.backend == "math"


def test_strict_refuses_quadratic_memory_paths():
    q, k, v = make_qkv(1, 4, 4, 16, 16)
    # A plain causal call has a fused path that needs no mask tensor.
    out = attention(q, k, v, causal=True, strict=True)
    assert out.shape == q.shape
    with pytest.raises(ValueError, match="strict"):
        attention(q, k, v, causal=True, strict=True, backend="math")
    with pytest.raises(ValueError, match="strict"):
        attention(q, k, v, causal=True, strict=True, return_weights=True)


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3),
    groups=st.sampled_from([(2, 2), (4, 2), (3, 1)]),
    tq=st.integers(1, 40),
    tk=st.integers(1, 40),
    d=st.sampled_from([1, 8, 24]),
    causal=st.booleans(),
    window=st.one_of(st.none(), st.tuples(st.integers(0, 9), st.integers(0, 9))),
    use_padding=st.booleans(),
    data=st.data(),
)
def test_hypothesis_random_shapes_and_masks(
    b, groups, tq, tk, d, causal, window, use_padding, data
):
    h, hkv = groups
    q, k, v = make_qkv(b, h, hkv, tq, tk, d=d)
    parts = []
    if use_padding:
        lengths = data.draw(st.lists(st.integers(0, tk), min_size=b, max_size=b))
        parts.append(M.Padding(lengths))
    mask = None
    if parts:
        mask = parts[0]
    full = M.from_args(mask, causal, window)[0]
    dense = None if full is None else full.dense(tq, tk)
    ref, ref_w = oracle(q, k, v, mask=dense)
    low, _ = naive(q, k, v, mask=dense)
    for backend in backends_for():
        out = attention(q, k, v, mask=mask, causal=causal, window=window, backend=backend)
        assert_within_budget(out, ref, low)
    out, w = attention(q, k, v, mask=mask, causal=causal, window=window, return_weights=True)
    assert max_err(w, ref_w) < 1e-5
