"""The general block-sparse path: one public ``scaled_dot_product_attention`` call per
query tile, over the key span the mask leaves non-empty, with the mask (and any float
bias) sliced to that span. Slower per entry than the log-sum-exp kernels of
:mod:`.tiles` and :mod:`.band`, but it runs everything they do not: float biases (with
their gradients), dropout, masks without per-row intervals, any device and dtype."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.ops.backends.base import AttentionCall
from attnlab.ops.backends.tiles import Plan, plan_intervals

__all__ = ["row_intervals", "run_tiled_sdpa"]


def row_intervals(call: AttentionCall) -> tuple[Tensor, Tensor, Tensor | None]:
    """Conservative ``(lo, hi)`` key range per row, ``(B|1, Tq)``, and the dense mask
    ``(B|1, H|1, Tq, Tk)`` when the mask has no exact intervals (else None)."""
    if call.mask is None:
        lo = torch.zeros(1, call.tq, dtype=torch.long)
        return lo, torch.full_like(lo, call.tk - 1), None
    iv = call.mask.intervals(call.tq, call.tk)
    if iv is not None:
        return iv[0].cpu(), iv[1].cpu(), None
    dense = call.mask.dense(call.tq, call.tk, device=call.q.device)  # (B|1, H|1, Tq, Tk)
    rows = dense.any(1).cpu()  # (B|1, Tq, Tk) union over heads
    cols = torch.arange(call.tk)
    lo = torch.where(rows, cols, call.tk).min(-1).values  # (B|1, Tq); tk where empty
    hi = torch.where(rows, cols, -1).max(-1).values
    return lo, hi, dense


def plan_for(call: AttentionCall, block: int) -> tuple[Plan, Tensor | None]:
    lo, hi, dense = row_intervals(call)
    return plan_intervals(lo, hi, call.batch, call.tk, block), dense


def run_tiled_sdpa(call: AttentionCall, plan: Plan, dense: Tensor | None) -> Tensor:
    """Attention of ``call`` tile by tile; ``dense`` is the mask tensor when the plan's
    intervals are only bounds (see :func:`row_intervals`)."""
    q, k, v = call.q, call.k, call.v
    out = q.new_zeros(*q.shape[:-1], v.shape[-1])  # (B, H, Tq, Dv)
    for t in plan.tiles:
        k0, k1 = min(p.k0 for p in t.parts), max(p.k1 for p in t.parts)
        bs, qs, ks = slice(t.b0, t.b1), slice(t.q0, t.q1), slice(k0, k1)
        allowed = None
        if dense is not None:
            allowed = dense[bs if dense.shape[0] > 1 else slice(None), :, qs, ks]
        elif call.mask is not None:
            cols = torch.arange(k0, k1)
            allowed = (cols >= t.lo[:, None]) & (cols <= t.hi[:, None])  # (n, w)
            allowed = allowed.to(q.device)[None, None]  # (1, 1, n, w)
        attn_mask = allowed
        if call.bias is not None:
            b = call.bias
            b = b[bs if b.shape[0] > 1 else slice(None)]
            b = b[:, :, qs if b.shape[2] > 1 else slice(None)]
            b = b[..., ks] if b.shape[3] > 1 else b  # (b|1, H|1, n|1, w|1)
            attn_mask = b if allowed is None else b.masked_fill(~allowed, float("-inf"))
        row_valid = None
        if attn_mask is not None:
            ok = attn_mask if attn_mask.dtype == torch.bool else attn_mask != float("-inf")
            row_valid = ok.any(-1, keepdim=True)  # (b|1, H|1, n|1, 1)
            if bool(row_valid.all()):
                row_valid = None
            elif attn_mask.dtype == torch.bool:  # open empty rows; zeroed below (no NaN)
                attn_mask = attn_mask | ~row_valid
            else:
                attn_mask = attn_mask.masked_fill(~row_valid, 0.0)
        o = F.scaled_dot_product_attention(
            q[bs, :, qs],
            k[bs, :, ks],
            v[bs, :, ks],
            attn_mask=attn_mask,
            dropout_p=call.dropout_p,
            scale=call.scale,
            enable_gqa=call.is_gqa,
        )  # (b, H, n, Dv)
        if row_valid is not None:
            o = o * row_valid
        out[bs, :, qs] = o
    return out
