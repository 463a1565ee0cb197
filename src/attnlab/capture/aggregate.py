"""Aggregate attention over heads and layers.

``rollout`` follows Abnar & Zuidema (2020), "Quantifying Attention Flow in
Transformers": each layer's head-averaged attention gets the residual connection added
as an identity term, ``A' = 0.5 * A + 0.5 * I`` with rows renormalised, and the layers
are multiplied, ``R_l = A'_l @ R_{l-1}``.

``grad_rollout`` is the gradient-weighted variant of Chefer, Gur & Wolf (2021), "Generic
Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder
Transformers": each head's map is weighted by the gradient of the explained output,
negatives are clipped, heads are averaged, and relevance accumulates through the
residual, ``R_l = R_{l-1} + Abar_l @ R_{l-1}`` with ``R_0 = I`` (their eqs. 5-6).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["aggregate_heads", "grad_rollout", "rollout"]

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


def _stack(weights: Tensor | Sequence[Tensor], what: str) -> Tensor:
    if not isinstance(weights, Tensor):
        weights = torch.stack(list(weights), -4)  # (..., L, H, T, T)
    if weights.dim() < 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(
            f"{what} needs (..., L, H, T, T) self-attention weights, got {tuple(weights.shape)}"
        )
    return weights


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
    weights = _stack(weights, "rollout")
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


def grad_rollout(
    weights: Tensor | Sequence[Tensor],
    grads: Tensor | Sequence[Tensor],
    *,
    all_layers: bool = False,
) -> Tensor:
    """Gradient-weighted attention rollout (Chefer et al. 2021, eqs. 5-6).

    ``Abar_l = mean_h(max(0, dY/dA_l * A_l))`` and ``R_l = R_{l-1} + Abar_l @ R_{l-1}``,
    starting from the identity (the residual path). Row ``i`` of the result is the
    relevance of each input token to position ``i`` at the top; for a classifier read the
    row of its [CLS] token.

    Args:
        weights: ``(..., L, H, T, T)`` attention (or a list of ``(..., H, T, T)``).
        grads: the gradient of the explained output (e.g. the target class logit) with
            respect to ``weights``, same shape.
        all_layers: return the relevance after every layer.

    Returns:
        ``(..., T, T)``, or ``(..., L, T, T)`` with ``all_layers``.

    Example:
        >>> w = torch.softmax(torch.randn(4, 3, 5, 5), -1)
        >>> grad_rollout(w, torch.randn(4, 3, 5, 5)).shape
        torch.Size([5, 5])
    """
    weights = _stack(weights, "grad_rollout").float()
    grads = _stack(grads, "grad_rollout").float()
    if grads.shape != weights.shape:
        raise ValueError(
            f"grads of shape {tuple(grads.shape)} do not match weights {tuple(weights.shape)}"
        )
    a = (grads * weights).clamp_min(0).mean(-3)  # (..., L, T, T)
    t = a.shape[-1]
    r = torch.eye(t, dtype=a.dtype, device=a.device).expand_as(a[..., 0, :, :])
    out = []
    for layer in range(a.shape[-3]):
        r = r + a[..., layer, :, :] @ r  # (..., T, T)
        out.append(r)
    return torch.stack(out, -3) if all_layers else r
