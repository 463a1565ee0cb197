"""Readable attention, exact in float64: the oracle for tests and the "math" backend.

Everything here materialises the full ``(B, H, Tq, Tk)`` score matrix, on purpose:
it is the definition the fast backends are checked against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["expand_kv", "masked_softmax", "reference_attention"]


def expand_kv(x: Tensor, num_heads: int) -> Tensor:
    """Repeat key/value heads for grouped-query attention.

    Query head ``h`` uses key/value head ``h // (H // Hkv)`` (the convention of
    ``scaled_dot_product_attention(enable_gqa=True)``).

    Args:
        x: ``(B, Hkv, T, D)``.
        num_heads: number of query heads H, a multiple of Hkv.

    Returns:
        ``(B, H, T, D)``.
    """
    b, hkv, t, d = x.shape
    if hkv == num_heads:
        return x
    groups = num_heads // hkv
    return x[:, :, None].expand(b, hkv, groups, t, d).reshape(b, num_heads, t, d)  # (B, H, T, D)


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that gives all-zero rows (and zero gradients) where every
    entry is masked, instead of NaN.

    Args:
        scores: float tensor; ``-inf`` entries count as masked.
        mask: optional bool tensor broadcastable to ``scores``, True = attend.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    valid = (scores != float("-inf")).any(dim, keepdim=True)
    # A row with nothing to attend to is set to 0 before the softmax (no NaN) and its
    # result multiplied by 0 afterwards, which also zeroes its gradient.
    scores = scores.masked_fill(~valid, 0.0)
    return torch.softmax(scores, dim=dim) * valid


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None = None,
    bias: Tensor | None = None,
    scale: float | None = None,
    dropout_p: float = 0.0,
    upcast: bool = False,
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention written out.

    Args:
        q: ``(B, H, Tq, D)``.
        k: ``(B, Hkv, Tk, D)`` with ``H % Hkv == 0``.
        v: ``(B, Hkv, Tk, Dv)``.
        mask: bool, broadcastable to ``(B, H, Tq, Tk)``, True = attend.
        bias: float, broadcastable to ``(B, H, Tq, Tk)``, added to the scores.
        scale: multiplies ``q @ k^T``; default ``1 / sqrt(D)``.
        dropout_p: dropout on the weights (output only; returned weights are pre-dropout).
        upcast: compute in float64 and cast the results back (the oracle mode).

    Returns:
        ``(out (B, H, Tq, Dv), weights (B, H, Tq, Tk))``.
    """
    dtype = q.dtype
    if upcast:
        q, k, v = q.double(), k.double(), v.double()
        bias = bias.double() if bias is not None else None
    h = q.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    k, v = expand_kv(k, h), expand_kv(v, h)  # (B, H, Tk, D)
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, Tq, Tk)
    if bias is not None:
        scores = scores + bias
    weights = masked_softmax(scores, mask)
    dropped = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    out = dropped @ v  # (B, H, Tq, Dv)
    return out.to(dtype), weights.to(dtype)
