"""The blocksparse backend against the float64 oracle: band, tile and per-tile-SDPA
plans, forward and gradients, odd block boundaries, fully masked rows, and dispatch."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnlab.ops import attention, explain
from attnlab.ops import masks as M
from attnlab.ops.backends import BACKENDS
from attnlab.ops.backends.blocksparse import BlockSparseBackend, band_of
from attnlab.testing import assert_within_budget, naive, oracle

ODD = [1, 7, 113, 203]


def qkv(b, h, hkv, tq, tk, d=16, dtype=torch.float32):
    ts = [torch.randn(b, n, t, d, dtype=dtype) for n, t in ((h, tq), (hkv, tk), (hkv, tk))]
    return [t.requires_grad_() for t in ts]


def check(q, k, v, mask, *, backend="blocksparse", bias=None, atol=1e-5):
    """Forward and gradients of ``backend`` against the float64 oracle, within the budget
    of a naive same-dtype implementation."""
    tq, tk = q.shape[2], k.shape[2]
    dense = None if mask is None else mask.dense(tq, tk)
    arg = bias if bias is not None else mask
    out = attention(
        q, k, v, mask=arg, causal=bias is not None and mask is not None, backend=backend
    )
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), g)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = oracle(q64, k64, v64, mask=dense, bias=bias)[0]
    rgrads = torch.autograd.grad(ref, (q64, k64, v64), g.double())
    low = naive(q, k, v, mask=dense, bias=bias)[0]
    lgrads = torch.autograd.grad(low, (q, k, v), g)
    assert_within_budget(out, ref, low)
    for got, r, n in zip(grads, rgrads, lgrads, strict=True):
        assert torch.isfinite(got).all()
        assert_within_budget(got, r, n, atol=atol)


def masks_for(b, tq, tk, g):
    lengths = torch.randint(0, tk + 1, (b,), generator=g)
    ids = torch.sort(torch.randint(0, 4, (b, tk), generator=g), dim=1).values
    return {
        "causal": M.Causal(),
        "window": M.Window(5, 0),
        "window2": M.Window(3, 9),
        "window&causal": M.Window(40, 7) & M.Causal(),
        "padding": M.Padding(lengths),
        "pad&causal": M.Padding(lengths) & M.Causal(),
        "pad&window": M.Padding(lengths) & M.Window(6, 2),
        "leftpad&causal": M.Padding(lengths, side="left") & M.Causal(),
        "document": M.Document(ids) if tq <= tk else M.Causal(),
    }


@pytest.mark.parametrize("t", ODD)
@pytest.mark.parametrize(
    "name",
    [
        "causal",
        "window",
        "window2",
        "window&causal",
        "padding",
        "pad&causal",
        "pad&window",
        "leftpad&causal",
        "document",
    ],
)
def test_odd_lengths_match_oracle(t, name):
    g = torch.Generator().manual_seed(t)
    q, k, v = qkv(2, 4, 2, t, t)
    check(q, k, v, masks_for(2, t, t, g)[name])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tq=st.integers(1, 90),
    tk=st.integers(1, 90),
    heads=st.sampled_from([(4, 4), (4, 2), (4, 1)]),
    block=st.sampled_from([1, 7, 16, 64]),
    name=st.sampled_from(
        ["causal", "window", "window2", "window&causal", "padding", "pad&causal", "pad&window"]
    ),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_masks_and_blocks(tq, tk, heads, block, name, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mask = masks_for(2, tq, tk, g)[name]
    q, k, v = qkv(2, *heads, tq, tk)
    # a fresh backend with its own tile size exercises every tile boundary
    impl = BlockSparseBackend(block=block)
    call_out = attention(q, k, v, mask=mask, backend="blocksparse")
    from attnlab.ops.dispatch import prepare

    out = impl.run(prepare(q, k, v, mask=mask))
    ref = oracle(
        q.detach().double(), k.detach().double(), v.detach().double(), mask=mask.dense(tq, tk)
    )[0]
    low = naive(q.detach(), k.detach(), v.detach(), mask=mask.dense(tq, tk))[0]
    assert_within_budget(out, ref, low)
    assert_within_budget(call_out, ref, low)
    g_out = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), g_out)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    want = torch.autograd.grad(
        oracle(q64, k64, v64, mask=mask.dense(tq, tk))[0], (q64, k64, v64), g_out.double()
    )
    lows = torch.autograd.grad(naive(q, k, v, mask=mask.dense(tq, tk))[0], (q, k, v), g_out)
    for a, b, c in zip(got, want, lows, strict=True):
        assert_within_budget(a, b, c, atol=1e-5)


def test_fully_masked_rows_give_zero_output_and_gradient():
    q, k, v = qkv(2, 4, 2, 9, 5)
    mask = M.Window(1, 0) & M.Padding([5, 0])  # queries 0..3 precede every key; example 1 empty
    out = attention(q, k, v, mask=mask, backend="blocksparse")
    assert (out[0, :, :3] == 0).all() and (out[1] == 0).all() and (out[0, :, 4:] != 0).any()
    out.sum().backward()
    assert (q.grad[1] == 0).all() and (k.grad[1] == 0).all() and (v.grad[1] == 0).all()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_bias_dropout_and_dense_masks_take_the_general_path():
    q, k, v = qkv(2, 4, 4, 37, 41)
    bias = torch.randn(2, 1, 37, 41, requires_grad=True)
    check(q, k, v, M.Causal(), bias=bias)
    keep = torch.rand(2, 4, 37, 41) > 0.6
    keep[0, 0, 3] = False  # one fully masked row
    check(q, k, v, M.Custom(keep))
    ids = torch.tensor([[0, 1] * 20 + [0]] * 2)  # segments that are not contiguous
    check(q, k, v, M.Document(ids) | M.Window(2, 2))
    torch.manual_seed(3)
    a = attention(q, k, v, window=4, dropout_p=0.5, backend="blocksparse")
    torch.manual_seed(3)
    b = attention(q, k, v, window=4, dropout_p=0.5, backend="blocksparse")
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, attention(q, k, v, window=4, backend="blocksparse"))


def test_bfloat16_and_float64():
    for dtype, atol in ((torch.bfloat16, 2e-3), (torch.float64, 1e-12)):
        q, k, v = (t.detach() for t in qkv(2, 4, 2, 70, 70, dtype=dtype))
        for mask in (M.Window(9, 0), M.Causal() & M.Padding([70, 33])):
            out = attention(q, k, v, mask=mask, backend="blocksparse")
            assert out.dtype == dtype
            dense = mask.dense(70, 70)
            assert_within_budget(
                out, oracle(q, k, v, mask=dense)[0], naive(q, k, v, mask=dense)[0], atol=atol
            )


def test_band_detection():
    assert band_of(M.Window(4, 2)) == (4, 2)
    assert band_of(M.Window(4, 2) & M.Causal()) == (4, 0)
    assert band_of(M.Window(None, 3) & M.Causal()) is None
    assert band_of(M.Causal()) is None
    assert band_of(M.Window(4, 4) & M.Padding([3])) is None


def test_auto_prefers_blocksparse_only_where_it_saves_work():
    q = torch.randn(1, 8, 2048, 64)
    assert explain(q, q, q).backend == "sdpa"
    assert explain(q, q, q, causal=True).backend == "sdpa"  # SDPA's is_causal skips too
    e = explain(q, q, q, window=(256, 0))
    assert e.backend == "blocksparse" and "band" in e.plan
    assert "blocksparse" in str(e)
    qb = torch.randn(8, 8, 2048, 64)
    lengths = torch.tensor([512, 2048, 700, 1024, 600, 900, 1500, 520])
    e = explain(qb, qb, qb, mask=M.Padding(lengths))
    assert e.backend == "blocksparse" and e.costs["blocksparse"] < e.costs["sdpa"]
    small = torch.randn(1, 2, 16, 8)
    assert explain(small, small, small, window=(2, 0)).backend == "sdpa"


def test_strict_never_builds_the_dense_mask():
    q, k, v = (t.detach() for t in qkv(1, 4, 4, 64, 64))
    out = attention(q, k, v, window=(8, 0), strict=True)
    assert out.shape == q.shape
    assert explain(q, k, v, window=(8, 0), strict=True).backend == "blocksparse"
    with pytest.raises(ValueError, match=r"blocksparse: strict=True: .* no per-row key intervals"):
        attention(q, k, v, mask=M.Causal() | M.Window(2, 2), strict=True)


def test_registered():
    assert isinstance(BACKENDS["blocksparse"], BlockSparseBackend)


@pytest.mark.slow
def test_docs_examples_run():
    import doctest
    import importlib
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "backends.md"
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)):
        exec(compile(code, f"backends.md[{i}]", "exec"), {"__name__": f"doc_{i}"})
    for name in ("attnlab.ops.weights", "attnlab.ops.linear", "attnlab.bench.harness"):
        result = doctest.testmod(importlib.import_module(name), raise_on_error=False)
        assert result.attempted > 0 and result.failed == 0, name


def test_value_width_differs_from_key_width_and_empty_sequences():
    q, k = torch.randn(2, 4, 30, 8), torch.randn(2, 2, 30, 8)
    v = torch.randn(2, 2, 30, 5)
    for mask in (M.Window(4, 0), M.Causal() & M.Padding([30, 7]), None):
        out = attention(q, k, v, mask=mask, backend="blocksparse")
        dense = None if mask is None else mask.dense(30, 30)
        assert_within_budget(out, oracle(q, k, v, mask=dense)[0], naive(q, k, v, mask=dense)[0])
    for tq, tk in ((0, 5), (5, 0)):
        q, k = torch.randn(1, 2, tq, 8), torch.randn(1, 2, tk, 8)
        out = attention(q, k, k, window=(2, 0), backend="blocksparse")
        assert out.shape == (1, 2, tq, 8) and (out == 0).all()
