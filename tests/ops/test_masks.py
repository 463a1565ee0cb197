"""Typed masks: dense form from the definition, intervals and block summaries agree."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.ops import masks as M


def brute(tq, tk, pred):
    """Dense mask (Tq, Tk) from a predicate on (query position in key coords, key)."""
    off = tk - tq
    return torch.tensor([[pred(i + off, j) for j in range(tk)] for i in range(tq)])


@pytest.mark.parametrize(("tq", "tk"), [(1, 1), (5, 5), (1, 17), (4, 9), (9, 4)])
def test_dense_matches_definition(tq, tk):
    assert torch.equal(M.Causal().dense(tq, tk)[0, 0], brute(tq, tk, lambda i, j: j <= i))
    w = M.Window(2, 1).dense(tq, tk)[0, 0]
    assert torch.equal(w, brute(tq, tk, lambda i, j: i - 2 <= j <= i + 1))
    w = M.Window(None, 0).dense(tq, tk)[0, 0]
    assert torch.equal(w, M.Causal().dense(tq, tk)[0, 0])
    w = M.Window(1, None).dense(tq, tk)[0, 0]
    assert torch.equal(w, brute(tq, tk, lambda i, j: j >= i - 1))
    c = M.Custom(lambda i, j: (i - j) % 2 == 0).dense(tq, tk)[0, 0]
    assert torch.equal(c, brute(tq, tk, lambda i, j: (i - j) % 2 == 0))


def test_padding_and_document():
    p = M.Padding(torch.tensor([2, 4])).dense(3, 4)
    assert p.shape == (2, 1, 3, 4)
    assert p[0, 0].sum(-1).tolist() == [2, 2, 2] and p[1].all()
    left = M.Padding(torch.tensor([2, 4]), side="left")
    assert left.dense(3, 4)[0, 0, 0].tolist() == [False, False, True, True]
    assert left.dense(3, 4)[1].all() and "side='left'" in repr(left)
    with pytest.raises(ValueError, match="side must be 'right' or 'left', got 'top'"):
        M.Padding([1], side="top")
    ids = torch.tensor([[0, 0, 1, 1, 1], [5, 5, 5, 5, 7]])
    d = M.Document(ids).dense(5, 5)
    assert torch.equal(d[0, 0], ids[0][:, None] == ids[0][None, :])
    # Tq < Tk: queries are the last positions
    d = M.Document(ids).dense(2, 5)
    assert torch.equal(d[1, 0], ids[1][3:, None] == ids[1][None, :])
    # non-contiguous ids still work (no interval form)
    ids = torch.tensor([[0, 1, 0, 1]])
    doc = M.Document(ids)
    assert doc.intervals(4, 4) is None
    assert torch.equal(doc.dense(4, 4)[0, 0], ids[0][:, None] == ids[0][None, :])
    qd = M.Document(ids, q_ids=torch.tensor([[1, 0]])).dense(2, 4)[0, 0]
    assert qd.tolist() == [[False, True, False, True], [True, False, True, False]]


def test_combinators():
    a, b = M.Causal(), M.Window(1, 1)
    assert torch.equal((a & b).dense(6, 6), a.dense(6, 6) & b.dense(6, 6))
    assert torch.equal((a | b).dense(6, 6), a.dense(6, 6) | b.dense(6, 6))
    nested = (a & b) & M.Padding([3])
    assert isinstance(nested, M.And) and len(nested.parts) == 3
    assert "Causal()" in repr(nested)
    with pytest.raises(ValueError, match="batch sizes"):
        M.Padding([1, 2]) & M.Padding([1, 2, 3])


def _random_mask(draw_tk, b, data):
    kind = data.draw(st.sampled_from(["causal", "window", "padding", "document", "custom"]))
    if kind == "causal":
        return M.Causal()
    if kind == "window":
        return M.Window(data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6)))
    if kind == "padding":
        lengths = data.draw(st.lists(st.integers(0, draw_tk), min_size=b, max_size=b))
        return M.Padding(lengths, side=data.draw(st.sampled_from(["right", "left"])))
    if kind == "document":
        ids = (
            torch.tensor(data.draw(st.lists(st.integers(0, 2), min_size=draw_tk, max_size=draw_tk)))
            .sort()
            .values
        )
        return M.Document(ids.expand(b, draw_tk).clone())
    return M.Custom(torch.rand(b, 1, 1, draw_tk) > 0.5)


@settings(max_examples=60, deadline=None)
@given(
    tq=st.integers(1, 30),
    tk=st.integers(1, 30),
    bq=st.integers(1, 8),
    bk=st.integers(1, 8),
    n=st.integers(1, 3),
    data=st.data(),
)
def test_intervals_and_blocks_agree_with_dense(tq, tk, bq, bk, n, data):
    tq = min(tq, tk)  # documents without q_ids need Tq <= Tk
    b = 2
    parts = [_random_mask(tk, b, data) for _ in range(n)]
    mask = parts[0]
    for p in parts[1:]:
        mask = mask & p if data.draw(st.booleans()) else mask | p
    dense = mask.dense(tq, tk).expand(b, 1, tq, tk)
    iv = mask.intervals(tq, tk)
    if iv is not None:
        lo, hi = iv
        j = torch.arange(tk)
        from_iv = (j >= lo[..., None]) & (j <= hi[..., None])
        assert torch.equal(from_iv.expand(b, tq, tk), dense[:, 0])
    any_, full = mask.blocks(tq, tk, bq, bk)
    nq, nk = -(-tq // bq), -(-tk // bk)
    for r in range(nq):
        for c in range(nk):
            tile = dense[:, 0, r * bq : (r + 1) * bq, c * bk : (c + 1) * bk]
            assert torch.equal(any_[:, 0, r, c].expand(b), tile.flatten(1).any(1))
            assert torch.equal(full[:, 0, r, c].expand(b), tile.flatten(1).all(1))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: M.Window(-1, 0), ValueError, "left"),
        (lambda: M.Window(1, 2.5), ValueError, "right"),
        (lambda: M.Padding([[1, 2]]), ValueError, "1-D"),
        (lambda: M.Padding([1.0, 2.0]), TypeError, "integers"),
        (lambda: M.Padding([-1]), ValueError, ">= 0"),
        (lambda: M.Document(torch.zeros(2, 3, 4, dtype=torch.long)), ValueError, "B, T"),
        (lambda: M.Document(torch.zeros(2, 3)), TypeError, "integers"),
        (lambda: M.Custom(torch.zeros(3, 3)), TypeError, "bool"),
        (lambda: M.Custom(42), TypeError, "callable"),
    ],
)
def test_bad_masks_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()
