"""attention_weights and attention_stats against the float64 oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.ops import attention, attention_stats, attention_weights
from attnlab.ops import masks as M
from attnlab.testing import max_err, oracle


def _masks(b, tq, tk):
    lengths = torch.randint(0, tk + 1, (b,))
    return {
        "none": None,
        "causal": M.Causal(),
        "window": M.Window(3, 1),
        "pad&causal": M.Padding(lengths) & M.Causal(),
        "or": M.Causal() | M.Window(2, 2),
        "dense": torch.rand(b, 1, tq, tk) > 0.5,
        "bias": torch.randn(b, 4, tq, tk),
    }


def _ref(q, k, mask):
    v = torch.zeros_like(k)
    if isinstance(mask, torch.Tensor) and mask.dtype != torch.bool:
        return oracle(q, k, v, bias=mask)[1]
    dense = mask.dense(q.shape[2], k.shape[2]) if isinstance(mask, M.Mask) else mask
    return oracle(q, k, v, mask=dense)[1]


@settings(max_examples=30, deadline=None)
@given(
    tq=st.integers(1, 40),
    tk=st.integers(1, 40),
    name=st.sampled_from(["none", "causal", "window", "pad&causal", "or", "dense", "bias"]),
    chunk=st.sampled_from([1, 7, 512]),
    hkv=st.sampled_from([4, 2, 1]),
)
def test_weights_match_oracle(tq, tk, name, chunk, hkv):
    q = torch.randn(2, 4, tq, 8, dtype=torch.float64)
    k = torch.randn(2, hkv, tk, 8, dtype=torch.float64)
    mask = _masks(2, tq, tk)[name]
    ref = _ref(q, k, mask)
    w = attention_weights(q, k, mask=mask, chunk=chunk)
    assert w.shape == ref.shape and max_err(w, ref) < 1e-12
    rows = torch.tensor([tq - 1, 0])
    part = attention_weights(q, k, mask=mask, heads=[3, 0], rows=rows, chunk=chunk)
    assert max_err(part, ref[:, [3, 0]][:, :, rows]) < 1e-12
    s = attention_stats(q, k, mask=mask, topk=3, chunk=chunk)
    assert max_err(s.received, ref.sum(2)) < 1e-10
    ent = -(ref * torch.log(torch.where(ref > 0, ref, 1.0))).sum(-1)
    assert max_err(s.entropy, ent) < 1e-10
    m = min(3, tk)
    assert max_err(s.top_values[..., :m], ref.topk(m, -1).values) < 1e-12
    picked = ref.gather(-1, s.top_indices.clamp(min=0))
    assert max_err(picked.where(s.top_indices >= 0, 0.0), s.top_values) < 1e-12


def test_weights_equal_what_attention_returns_and_fully_masked_rows_are_zero():
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    mask = M.Causal() & M.Padding([5, 0])
    k, v = k[:, :, :5], v[:, :, :5]
    _, w_ref = attention(q, k, v, mask=mask, return_weights=True)
    w = attention_weights(q, k, mask=mask)
    torch.testing.assert_close(w, w_ref)
    assert (w[1] == 0).all() and (w[0, :, :4] == 0).all()
    s = attention_stats(q, k, mask=mask)
    assert (s.entropy[1] == 0).all() and (s.top_indices[1] == -1).all()
    assert torch.isneginf(s.lse[1]).all() and torch.isfinite(s.lse[0, :, 4:]).all()


def test_errors_name_the_values():
    q = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match=r"heads \[4\] out of range for 4"):
        attention_weights(q, q, heads=[4])
    with pytest.raises(ValueError, match="chunk must be a positive int or None, got 0"):
        attention_weights(q, q, chunk=0)
    with pytest.raises(ValueError, match="topk must be a non-negative int, got -1"):
        attention_stats(q, q, topk=-1)
