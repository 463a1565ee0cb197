"""AttentionPooling: matches a hand-written float64 reference and ignores padding."""

from __future__ import annotations

import pytest
import torch

from attnlab.layers import AttentionPooling


def err(a, b):
    return (a.double() - b.double()).abs().max().item()


def reference_pool(pool, x, lengths):
    """Per-example loop in float64 over the real positions only."""
    outs, ws = [], []
    for xb, n in zip(x.double(), lengths.tolist(), strict=True):
        real = xb[:n]  # (n, E)
        if pool.proj is None:
            s = real @ pool.query.double() / xb.shape[-1] ** 0.5
        else:
            w, b = pool.proj.weight.double(), pool.proj.bias.double()
            s = torch.tanh(real @ w.T + b) @ pool.query.double()
        a = torch.softmax(s, 0) if n else s.new_zeros(0)
        outs.append(a @ real if n else xb.new_zeros(xb.shape[-1]))
        ws.append(torch.cat([a, xb.new_zeros(xb.shape[0] - n)]))
    return torch.stack(outs), torch.stack(ws)


@pytest.mark.parametrize("hidden_dim", [None, 12])
def test_matches_reference_and_ignores_padding(hidden_dim):
    pool = AttentionPooling(10, hidden_dim)
    x = torch.randn(4, 17, 10)
    lengths = torch.tensor([17, 7, 1, 0])
    pooled, w = pool(x, lengths)
    ref_pooled, ref_w = reference_pool(pool, x, lengths)
    assert err(pooled, ref_pooled) < 1e-5 and err(w, ref_w) < 1e-6
    assert torch.allclose(w.sum(1), torch.tensor([1.0, 1.0, 1.0, 0.0]))
    # changing padded values changes nothing
    x2 = x.clone()
    pad = torch.arange(17)[None] >= lengths[:, None]
    x2[pad] = torch.randn(int(pad.sum()), 10) * 100
    pooled2, w2 = pool(x2, lengths)
    assert torch.equal(pooled, pooled2) and torch.equal(w, w2)
    # the same through a bool mask, passed either way
    valid = ~pad
    assert torch.equal(pool(x, mask=valid)[0], pooled)
    assert torch.equal(pool(x, valid)[0], pooled)
    # without a mask every position counts
    assert err(pool(x)[0][0], pooled[0]) < 1e-6 and err(pool(x)[0][1], pooled[1]) > 1e-4


def test_empty_sequence_gives_zeros_and_finite_gradients():
    pool = AttentionPooling(6, 4)
    x = torch.randn(2, 5, 6, requires_grad=True)
    pooled, w = pool(x, torch.tensor([0, 3]))
    assert pooled[0].abs().max() == 0 and w[0].abs().max() == 0
    pooled.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in [x, *pool.parameters()])
    assert x.grad[1, 3:].abs().max() == 0  # no gradient into padding


def test_weights_go_through_the_tap():
    pool = AttentionPooling(6)
    seen = []
    pool.tap.register_forward_hook(lambda m, args, out: seen.append(out))
    _, w = pool(torch.randn(3, 5, 6), torch.tensor([5, 2, 4]))
    assert seen[0].shape == (3, 1, 1, 5)
    assert torch.equal(seen[0].view(3, 5), w)


def test_errors_name_the_values():
    pool = AttentionPooling(6)
    with pytest.raises(ValueError, match=r"x must be \(B, T, E\) with 3 dims, got \(5, 6\)"):
        pool(torch.randn(5, 6))
    with pytest.raises(ValueError, match="x has 4 features, expected input_dim 6"):
        pool(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 5\], got \[6, 1\]"):
        pool(torch.randn(2, 5, 6), torch.tensor([6, 1]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\), got \(3,\)"):
        pool(torch.randn(2, 5, 6), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 5\), got \(2, 4\)"):
        pool(torch.randn(2, 5, 6), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="lengths must be an integer tensor"):
        pool(torch.randn(2, 5, 6), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="input_dim must be a positive int, got 0"):
        AttentionPooling(0)
