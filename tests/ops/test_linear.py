"""Linear attention against a float64 quadratic-form reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.ops import attention, linear_attention
from attnlab.testing import max_err


def quadratic(q, k, v, causal, lengths=None, fmap=lambda x: F.elu(x) + 1):
    """The same function written as an explicit (Tq x Tk) kernel matrix."""
    h = q.shape[1]
    k, v = k.repeat_interleave(h // k.shape[1], 1), v.repeat_interleave(h // v.shape[1], 1)
    a = fmap(q) @ fmap(k).transpose(-1, -2)  # (B, H, Tq, Tk)
    tq, tk = q.shape[2], k.shape[2]
    if causal:
        a = a * (torch.arange(tk) <= torch.arange(tq)[:, None] + tk - tq)
    if lengths is not None:
        a = a * (torch.arange(tk) < torch.as_tensor(lengths)[:, None, None, None])
    den = a.sum(-1, keepdim=True)
    return (a @ v) / (den + 1e-6) * (den > 0)


@settings(max_examples=25, deadline=None)
@given(
    tq=st.integers(1, 50),
    extra=st.integers(0, 20),
    causal=st.booleans(),
    hkv=st.sampled_from([4, 2, 1]),
    chunk=st.sampled_from([1, 7, 64]),
    fmap=st.sampled_from(["elu", "relu"]),
)
def test_matches_quadratic_form(tq, extra, causal, hkv, chunk, fmap):
    tk = tq + extra
    q = torch.randn(2, 4, tq, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, hkv, tk, 8, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, hkv, tk, 5, dtype=torch.float64, requires_grad=True)
    lengths = [tk, tk // 2]
    fn = (lambda x: F.elu(x) + 1) if fmap == "elu" else F.relu
    out = linear_attention(q, k, v, causal=causal, lengths=lengths, chunk=chunk, feature_map=fmap)
    ref = quadratic(q, k, v, causal, lengths, fn)
    assert max_err(out, ref) < 1e-10
    g = torch.randn_like(out)
    for a, b in zip(
        torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g), strict=True
    ):
        assert max_err(a, b) < 1e-9


def test_rows_without_keys_are_zero_and_it_differs_from_softmax():
    q, k, v = (torch.randn(2, 2, 6, 4) for _ in range(3))
    out = linear_attention(q, k, v, lengths=[6, 0])
    assert (out[1] == 0).all() and torch.isfinite(out).all()
    assert max_err(out[0], attention(q, k, v)[0]) > 1e-3  # a different function


def test_errors():
    q = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="unknown feature_map 'tanh'"):
        linear_attention(q, q, q, feature_map="tanh")
    with pytest.raises(ValueError, match="3 heads"):
        linear_attention(q, q[:, :3], q[:, :3])
    with pytest.raises(ValueError, match="Tq <= Tk, got Tq=8, Tk=4"):
        linear_attention(q, q[:, :, :4], q[:, :, :4], causal=True)
    with pytest.raises(ValueError, match=r"lengths must have shape \(1,\)"):
        linear_attention(q, q, q, lengths=[1, 2])
