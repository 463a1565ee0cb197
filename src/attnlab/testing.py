"""Numerical test helpers: an independent float64 oracle and the error-budget rule
(a kernel's error against float64 must be at most twice that of a naive implementation in
the same dtype, plus a small atol). Useful to anyone adding a backend."""

from __future__ import annotations

import torch

from attnlab.ops.reference import expand_kv, masked_softmax

__all__ = ["assert_within_budget", "max_err", "naive", "oracle"]


def oracle(q, k, v, mask=None, bias=None, scale=None, dtype=torch.float64):
    """Attention written from the definition, independent of the library's reference:
    explicit loops over heads, masking by -inf, rows with no allowed key set to zero
    (written so that their gradients are zero too)."""
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    h = q.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    g = h // k.shape[1]
    outs, ws = [], []
    for head in range(h):
        kh, vh = k[:, head // g], v[:, head // g]  # (B, Tk, D)
        s = q[:, head] @ kh.transpose(-1, -2) * scale  # (B, Tq, Tk)
        if bias is not None:
            s = s + bias.to(dtype).expand(q.shape[0], h, q.shape[2], k.shape[2])[:, head]
        if mask is not None:
            m = mask.expand(q.shape[0], h, q.shape[2], k.shape[2])[:, head]
            s = s.masked_fill(~m, float("-inf"))
        valid = torch.isfinite(s).any(-1, keepdim=True)  # (B, Tq, 1)
        w = torch.softmax(torch.where(valid, s, torch.zeros_like(s)), -1) * valid
        outs.append(w @ vh)
        ws.append(w)
    return torch.stack(outs, 1), torch.stack(ws, 1)


def naive(q, k, v, mask=None, bias=None, scale=None):
    """The same computation in the inputs' own dtype: the error budget for a kernel."""
    h = q.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q @ expand_kv(k, h).transpose(-1, -2) * scale
    if bias is not None:
        s = s + bias
    w = masked_softmax(s, mask)
    return w @ expand_kv(v, h), w


def max_err(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def assert_within_budget(got, ref64, naive_same_dtype, atol=1e-6):
    """|got - ref| <= 2 |naive - ref| + atol, the flash-attention test rule."""
    budget = 2 * max_err(naive_same_dtype, ref64) + atol
    err = max_err(got, ref64)
    assert err <= budget, f"error {err:.3g} exceeds budget {budget:.3g}"
