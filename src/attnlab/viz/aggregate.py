"""Aggregate attention over heads and layers.

``rollout`` follows Abnar & Zuidema (2020), "Quantifying Attention Flow in
Transformers": each layer's head-averaged attention gets the residual connection added
as an identity term, ``A' = 0.5 * A + 0.5 * I`` with rows renormalised, and the layers
are multiplied, ``R_l = A'_l @ R_{l-1}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["aggregate_heads", "rollout"]

AGGREGATES = ("mean", "max")


def aggregate_heads(weights: Tensor, how: str = "mean") -> Tensor:
    """Reduce the head dimension of ``(..., H, Tq, Tk)`` weights.

    Args:
        weights: ``(..., H, Tq, Tk)``.
        how: ``"mean"`` or ``"max"``.

    Returns:
        ``(..., Tq, Tk)``.
    """
    if how == "mean":
        return weights.mean(-3)
    if how == "max":
        return weights.amax(-3)
    raise ValueError(f"unknown head aggregation {how!r}; expected one of {', '.join(AGGREGATES)}")


def rollout(
    weights: Tensor | Sequence[Tensor],
    *,
    head_reduce: str = "mean",
    residual: bool = True,
    all_layers: bool = False,
) -> Tensor:
    """Attention rollout across layers (Abnar & Zuidema 2020).

    Args:
        weights: ``(L, H, T, T)`` (or a list of ``(H, T, T)``), first layer first; extra
            leading batch dims are allowed: ``(..., L, H, T, T)``.
        head_reduce: how heads are combined in each layer, ``"mean"`` or ``"max"``.
        residual: add the identity term for the residual connection (the paper's choice).
        all_layers: return the rollout after every layer instead of only the last.

    Returns:
        ``(..., T, T)``, or ``(..., L, T, T)`` with ``all_layers``; row ``i`` is how much
        input token ``j`` flows into position ``i`` at the top.

    Example:
        >>> w = torch.softmax(torch.randn(6, 12, 9, 9), -1)
        >>> rollout(w).shape
        torch.Size([9, 9])
    """
    if not isinstance(weights, Tensor):
        weights = torch.stack(list(weights), -4)  # (..., L, H, T, T)
    if weights.dim() < 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(
            f"rollout needs (..., L, H, T, T) self-attention weights, got {tuple(weights.shape)}"
        )
    a = aggregate_heads(weights.float(), head_reduce)  # (..., L, T, T)
    t = a.shape[-1]
    if residual:
        eye = torch.eye(t, dtype=a.dtype, device=a.device)
        a = 0.5 * a + 0.5 * eye
    a = a / a.sum(-1, keepdim=True).clamp_min(1e-12)
    out = []
    r = a[..., 0, :, :]
    out.append(r)
    for layer in range(1, a.shape[-3]):
        r = a[..., layer, :, :] @ r  # (..., T, T)
        out.append(r)
    return torch.stack(out, -3) if all_layers else r
