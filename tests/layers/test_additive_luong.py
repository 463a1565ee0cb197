"""Additive (Bahdanau) and Luong attention against float64 formulas; chunking is exact
and keeps memory bounded."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.overrides import TorchFunctionMode

from attnlab.layers import AdditiveAttention, LuongAttention
from attnlab.layers.additive import DEFAULT_BUDGET
from attnlab.ops import masks as M


def err(a, b):
    return (a.double() - b.double()).abs().max().item()


def ref_attend(scores, values, valid):
    """Softmax over valid keys in float64, zero rows where none is valid."""
    s = scores.double().masked_fill(~valid, float("-inf"))
    w = torch.softmax(s, -1).nan_to_num(0.0)
    return w @ values.double(), w


def ref_additive_scores(wq, wk, v, q, k):
    """e_ij = v^T tanh(W_q q_i + W_k k_j), one (i, j) pair at a time."""
    b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
    out = torch.zeros(b, tq, tk, dtype=torch.float64)
    for i in range(tq):
        for j in range(tk):
            out[:, i, j] = torch.tanh(q[:, i].double() @ wq.T + k[:, j].double() @ wk.T) @ v
    return out


def lengths_mask(lengths, tq, tk):
    return (torch.arange(tk)[None] < lengths[:, None])[:, None].expand(-1, tq, tk)


def test_additive_matches_bahdanau_formula():
    attn = AdditiveAttention(6, 5, hidden_dim=7)
    q, k, v = torch.randn(3, 4, 6), torch.randn(3, 9, 5), torch.randn(3, 9, 2)
    lengths = torch.tensor([9, 3, 0])
    ctx, w = attn(q, k, v, lengths=lengths)
    wq, wk, vv = (p.detach().double() for p in (attn.w_q.weight, attn.w_k.weight, attn.v))
    scores = ref_additive_scores(wq, wk, vv, q, k)
    ref_ctx, ref_w = ref_attend(scores, v, lengths_mask(lengths, 4, 9))
    assert err(ctx, ref_ctx) < 1e-5 and err(w, ref_w) < 1e-6
    assert ctx[2].abs().max() == 0 and w[2].abs().max() == 0  # no valid key: zeros


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_additive_chunked_equals_unchunked_with_gradients(chunk_size):
    whole = AdditiveAttention(8, 5, hidden_dim=6, chunk_size=10_000)
    chunked = AdditiveAttention(8, 5, hidden_dim=6, chunk_size=chunk_size)
    chunked.load_state_dict(whole.state_dict())
    q = torch.randn(2, 17, 8, requires_grad=True)
    k = torch.randn(2, 13, 5, requires_grad=True)
    mask = torch.rand(2, 17, 13) > 0.3
    outs, grads = [], []
    for m in (whole, chunked):
        ctx, w = m(q, k, mask=mask)
        outs += [ctx, w]
        grads.append(torch.autograd.grad((ctx.square().sum() + w.sum()), [q, k, *m.parameters()]))
    assert err(outs[0], outs[2]) < 1e-6 and err(outs[1], outs[3]) < 1e-6
    for a, b in zip(*grads, strict=True):
        assert err(a, b) < 1e-5


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 3),
    tq=st.integers(1, 9),
    tk=st.integers(1, 9),
    chunk=st.integers(1, 10),
    score=st.sampled_from(["additive", "concat"]),
    seed=st.integers(0, 2**16),
)
def test_random_chunking_and_masks(b, tq, tk, chunk, score, seed):
    g = torch.Generator().manual_seed(seed)
    if score == "additive":
        whole, chunked = AdditiveAttention(4, 3, 5), AdditiveAttention(4, 3, 5, chunk_size=chunk)
    else:
        whole = LuongAttention(4, 3, score="concat", hidden_dim=5)
        chunked = LuongAttention(4, 3, score="concat", hidden_dim=5, chunk_size=chunk)
    chunked.load_state_dict(whole.state_dict())
    q, k = torch.randn(b, tq, 4, generator=g), torch.randn(b, tk, 3, generator=g)
    mask = torch.rand(b, tq, tk, generator=g) > 0.4
    (c1, w1), (c2, w2) = whole(q, k, mask=mask), chunked(q, k, mask=mask)
    assert err(c1, c2) < 1e-6 and err(w1, w2) < 1e-6
    assert torch.equal(w1 > 0, mask)  # softmax is positive exactly where allowed
    assert torch.allclose(w1.sum(-1), mask.any(-1).float())


class _TanhSizes(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.tanh:
            self.largest = max(self.largest, args[0].numel())
        return func(*args, **(kwargs or {}))


def test_additive_memory_is_bounded_in_forward_and_backward():
    attn = AdditiveAttention(16, 16, hidden_dim=256)
    q = torch.randn(1, 64, 16, requires_grad=True)
    k = torch.randn(1, 512, 16)
    full = 64 * 512 * 256  # elements of the (B, Tq, Tk, A) tensor: twice the budget
    assert full > DEFAULT_BUDGET
    saved = []
    with (
        _TanhSizes() as seen,
        torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t.numel()) or t, lambda t: t
        ),
    ):
        ctx, _ = attn(q, k)
        ctx.sum().backward()
    assert 0 < seen.largest <= DEFAULT_BUDGET  # never built for all queries at once
    assert max(saved) <= DEFAULT_BUDGET  # nor kept for backward
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_luong_scores_match_formulas(score):
    dk = 6 if score == "dot" else 5
    attn = LuongAttention(6, dk, score=score, hidden_dim=4, chunk_size=2)
    q, k = torch.randn(2, 5, 6), torch.randn(2, 7, dk)
    lengths = torch.tensor([7, 2])
    ctx, w = attn(q, k, lengths=lengths)
    qd, kd = q.double(), k.double()
    if score == "dot":  # h_t^T h_s
        scores = qd @ kd.transpose(1, 2)
    elif score == "general":  # h_t^T W_a h_s
        scores = qd @ (kd @ attn.w_a.weight.detach().double().T).transpose(1, 2)
    else:  # v_a^T tanh(W_a [h_t; h_s])
        w_a = torch.cat([attn.w_q.weight, attn.w_k.weight], 1).detach().double()  # (A, Dq+Dk)
        cat = torch.cat(
            [qd[:, :, None].expand(-1, -1, 7, -1), kd[:, None].expand(-1, 5, -1, -1)], -1
        )  # (B, Tq, Tk, Dq+Dk)
        scores = torch.tanh(cat @ w_a.T) @ attn.v.detach().double()
    ref_ctx, ref_w = ref_attend(scores, k, lengths_mask(lengths, 5, 7))
    assert err(ctx, ref_ctx) < 1e-5 and err(w, ref_w) < 1e-6


@pytest.mark.parametrize("layer", ["additive", "luong"])
def test_masks_single_step_tap_and_fully_masked_rows(layer):
    attn = AdditiveAttention(8) if layer == "additive" else LuongAttention(8, score="general")
    taps = []
    attn.tap.register_forward_hook(lambda m, args, out: taps.append(out.shape))
    q = torch.randn(2, 4, 8, requires_grad=True)
    k = torch.randn(2, 6, 8, requires_grad=True)
    pad = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    by_len = attn(q, k, lengths=torch.tensor([6, 3]))
    by_bool = attn(q, k, mask=pad)
    by_typed = attn(q, k, mask=M.Padding(torch.tensor([6, 3])))
    for other in (by_bool, by_typed):
        assert torch.equal(by_len[0], other[0]) and torch.equal(by_len[1], other[1])
    assert taps[0] == (2, 1, 4, 6)
    # one decoder step: a 2-D query gives (B, Dv) and (B, Tk)
    ctx1, w1 = attn(q[:, 2], k, lengths=torch.tensor([6, 3]))
    assert ctx1.shape == (2, 8) and w1.shape == (2, 6)
    assert err(ctx1, by_len[0][:, 2]) < 1e-6
    # causal typed mask (bottom-right) and a fully masked first row
    causal = M.Causal() & M.Window(1, 0)
    ctx, w = attn(q, k, mask=causal)
    dense = causal.dense(4, 6)[0, 0]
    assert torch.equal(w > 0, dense.expand(2, 4, 6))
    rows = torch.ones(2, 4, 6, dtype=torch.bool)
    rows[:, 0] = False
    ctx, w = attn(q, k, mask=rows)
    assert ctx[:, 0].abs().max() == 0 and w[:, 0].abs().max() == 0
    (ctx.sum() + w.sum()).backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()
    assert q.grad[:, 0].abs().max() == 0


def test_errors_name_the_values():
    with pytest.raises(ValueError, match='score "dot" needs key_dim == query_dim, got key_dim 5'):
        LuongAttention(6, 5, score="dot")
    with pytest.raises(ValueError, match="unknown score 'cosine'"):
        LuongAttention(6, score="cosine")
    with pytest.raises(ValueError, match="hidden_dim must be a positive int, got 0"):
        AdditiveAttention(6, hidden_dim=0)
    with pytest.raises(ValueError, match="chunk_size must be a positive int or None, got 0"):
        AdditiveAttention(6, chunk_size=0)
    attn = AdditiveAttention(6, 4)
    with pytest.raises(ValueError, match="keys has 6 features, expected 4"):
        attn(torch.randn(2, 3, 6), torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"query must be \(B, D\) or \(B, T, D\) with 2 or 3 dims"):
        attn(torch.randn(6), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="keys have batch size 3, but query has 2"):
        attn(torch.randn(2, 3, 6), torch.randn(3, 5, 4))
    with pytest.raises(
        ValueError, match=r"values must be \(B, Tk, Dv\) = \(2, 5, Dv\), got \(2, 4, 3\)"
    ):
        attn(torch.randn(2, 3, 6), torch.randn(2, 5, 4), torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match=r"key padding mask must have shape \(B, Tk\) = \(2, 5\)"):
        attn(torch.randn(2, 3, 6), torch.randn(2, 5, 4), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="Padding length 9 exceeds the key length Tk=5"):
        attn(torch.randn(2, 3, 6), torch.randn(2, 5, 4), lengths=torch.tensor([9, 1]))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        attn(torch.randn(2, 3, 6), torch.randn(2, 5, 4), mask=torch.ones(2, 5))
