"""Attention weights on demand, computed in query chunks so only
``chunk x Tk`` scores exist at a time (plus the result)."""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab.ops import masks as M
from attnlab.ops.dispatch import prepare
from attnlab.ops.reference import expand_kv, masked_softmax

__all__ = ["attention_weights"]


def attention_weights(
    q: Tensor,
    k: Tensor,
    *,
    mask: M.Mask | Tensor | None = None,
    causal: bool = False,
    window: int | tuple[int | None, int | None] | None = None,
    scale: float | None = None,
    score: str = "dot",
    heads: list[int] | None = None,
    rows: Tensor | slice | None = None,
    chunk: int = 512,
) -> Tensor:
    """The softmax attention weights that :func:`attnlab.ops.attention` uses.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, Hkv, Tk, D)``.
        mask, causal, window, scale, score: as in :func:`attnlab.ops.attention`.
        heads: query heads to return (default all).
        rows: query rows to return (an index tensor or slice; default all).
        chunk: query rows computed at a time.

    Returns:
        ``(B, len(heads), len(rows), Tk)``; fully masked rows are zeros.
    """
    v = k[..., :1]  # weights do not depend on v; a (B, Hkv, Tk, 1) view passes validation
    call = prepare(q, k, v, mask=mask, causal=causal, window=window, scale=scale, score=score)
    q, k = call.q, call.k
    h = q.shape[1]
    head_idx = torch.arange(h) if heads is None else torch.as_tensor(heads, dtype=torch.long)
    if head_idx.numel() and (head_idx.min() < 0 or head_idx.max() >= h):
        raise ValueError(f"heads {head_idx.tolist()} out of range for {h} query heads")
    row_idx = torch.arange(call.tq)
    if rows is not None:
        row_idx = row_idx[rows]
    k = expand_kv(k, h)[:, head_idx]  # (B, h', Tk, D)
    q = q[:, head_idx]  # (B, h', Tq, D)
    dense = call.dense_mask()  # (B|1, H|1, Tq, Tk) or None
    bias = call.bias
    out = q.new_empty(q.shape[0], head_idx.numel(), row_idx.numel(), call.tk)
    for s in range(0, row_idx.numel(), chunk):
        r = row_idx[s : s + chunk].to(q.device)
        scores = (q[:, :, r] @ k.transpose(-2, -1)) * call.scale  # (B, h', c, Tk)
        if bias is not None:
            b = bias.expand(q.shape[0], h, call.tq, call.tk)[:, head_idx.to(bias.device)]
            scores = scores + b[:, :, r]
        m = None
        if dense is not None:
            hsel = head_idx.to(dense.device) if dense.shape[1] > 1 else slice(None)
            m = dense[:, hsel][:, :, r.to(dense.device)]
        out[:, :, s : s + r.numel()] = masked_softmax(scores, m)
    return out
