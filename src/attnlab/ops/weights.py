"""Attention weights and their statistics on demand, streamed in query chunks.

Nothing here holds the ``Tq x Tk`` score matrix: each chunk of query rows computes its
scores over the keys its mask can reach (a typed mask with per-row intervals tells which),
normalises them with the row log-sum-exp and is reduced or written out before the next
chunk. :func:`attention_weights` returns the weights asked for (one head, some rows);
:func:`attention_stats` returns per-key received attention, row entropy and top-k keys
without ever building the full matrix.

Example:
    >>> import torch
    >>> from attnlab.ops import attention_stats, attention_weights
    >>> q = k = torch.randn(1, 8, 1024, 64)
    >>> w = attention_weights(q, k, causal=True, heads=[3], rows=slice(0, 16))
    >>> w.shape
    torch.Size([1, 1, 16, 1024])
    >>> s = attention_stats(q, k, causal=True, topk=4)
    >>> s.received.shape, s.entropy.shape, s.top_indices.shape
    (torch.Size([1, 8, 1024]), torch.Size([1, 8, 1024]), torch.Size([1, 8, 1024, 4]))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from attnlab.ops import masks as M
from attnlab.ops.backends.base import AttentionCall
from attnlab.ops.dispatch import prepare

__all__ = ["AttentionStats", "attention_stats", "attention_weights"]


@dataclass
class _Chunk:
    rows: Tensor  # (c,) query rows of this chunk
    k0: int  # first key column scored
    logits: Tensor  # (B, h', c, k1 - k0) masked scores (-inf where masked)
    allowed: Tensor | None  # the bool mask applied, broadcastable to logits
    maybe_empty: bool  # a mask or bias may leave rows with no key

    def lse(self) -> Tensor:
        """Row log-sum-exp ``(B, h', c, 1)``; +inf for rows that see nothing."""
        lse = torch.logsumexp(self.logits, -1, keepdim=True)
        return lse.masked_fill_(lse == float("-inf"), float("inf"))

    def weights(self) -> Tensor:
        """Softmax of the logits; rows that see nothing are zeros."""
        w = torch.softmax(self.logits, -1)
        if self.maybe_empty:
            empty = ~(self.logits > float("-inf")).any(-1, keepdim=True)  # (B, h', c, 1)
            if bool(empty.any()):
                w.masked_fill_(empty, 0.0)
        return w


class _Source:
    """Scores of selected heads and rows, chunk by chunk, from a prepared call."""

    def __init__(self, call: AttentionCall, heads, rows, chunk: int | None) -> None:
        if chunk is not None and (
            isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1
        ):
            raise ValueError(f"chunk must be a positive int or None, got {chunk!r}")
        h = call.heads
        head_idx = torch.arange(h) if heads is None else torch.as_tensor(heads, dtype=torch.long)
        if head_idx.dim() != 1:
            raise ValueError(f"heads must be a list of ints, got {heads!r}")
        if head_idx.numel() and (head_idx.min() < 0 or head_idx.max() >= h):
            raise ValueError(f"heads {head_idx.tolist()} out of range for {h} query heads")
        row_idx = torch.arange(call.tq)
        if rows is not None:
            row_idx = row_idx[rows]
            if row_idx.dim() == 0:
                row_idx = row_idx[None]
        if chunk is None:
            # ~1M scores per chunk: a few MB, so the passes over a chunk hit the cache
            chunk = max(1, 2**20 // max(1, call.tk * head_idx.numel() * call.batch))
        self.call, self.heads, self.rows, self.chunk = call, head_idx, row_idx, chunk
        groups = h // call.kv_heads
        dev = call.q.device
        self.q = call.q[:, head_idx.to(dev)]  # (B, h', Tq, D)
        k = call.k[:, (head_idx // groups).to(dev)]  # (B, h', Tk, D) kv head of each
        self.kt = k.transpose(-2, -1).contiguous()  # (B, h', D, Tk), transposed once
        self.iv = call.mask.intervals(call.tq, call.tk) if call.mask is not None else None
        self.dense = None
        if call.mask is not None and self.iv is None:
            # No per-row intervals (Or, Custom, scattered Document): the mask's own dense
            # form is the only description there is.
            self.dense = call.mask.dense(call.tq, call.tk, device=dev)  # (B|1, H|1, Tq, Tk)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.q.shape[0], self.heads.numel(), self.rows.numel(), self.call.tk)

    def chunks(self) -> Iterator[_Chunk]:
        call, dev = self.call, self.call.q.device
        for s in range(0, self.rows.numel(), self.chunk):
            r = self.rows[s : s + self.chunk]
            k0, k1 = 0, call.tk
            allowed = None
            if self.iv is not None:
                lo, hi = self.iv[0][:, r], self.iv[1][:, r]  # (B|1, c)
                if bool((lo <= hi).any()):
                    k0 = int(lo[lo <= hi].min())
                    k1 = int(hi[lo <= hi].max()) + 1
                else:
                    k1 = k0 + 1  # nothing seen: one column, fully masked
                cols = torch.arange(k0, k1, device=lo.device)
                allowed = (cols >= lo[..., None]) & (cols <= hi[..., None])  # (B|1, c, w)
                allowed = allowed[:, None].to(dev)  # (B|1, 1, c, w)
            elif self.dense is not None:
                hsel = self.heads.to(dev) if self.dense.shape[1] > 1 else slice(None)
                allowed = self.dense[:, hsel][:, :, r.to(dev)]  # (B|1, h'|1, c, Tk)
            rd = r.to(dev)
            qs = self.q[:, :, rd] * call.scale  # (B, h', c, D)
            logits = qs @ self.kt[..., k0:k1]  # (B, h', c, w)
            if call.bias is not None:
                b = call.bias
                hsel = self.heads.to(b.device) if b.shape[1] > 1 else slice(None)
                rsel = rd if b.shape[2] > 1 else slice(None)
                logits += (
                    b[:, hsel][:, :, rsel][..., k0:k1] if b.shape[3] > 1 else b[:, hsel][:, :, rsel]
                )
            if allowed is not None:
                logits.masked_fill_(~allowed, float("-inf"))
            yield _Chunk(r, k0, logits, allowed, allowed is not None or call.bias is not None)


def _source(q, k, mask, causal, window, scale, score, heads, rows, chunk) -> _Source:
    v = k[..., :1]  # weights do not depend on v; a (B, Hkv, Tk, 1) view passes validation
    call = prepare(q, k, v, mask=mask, causal=causal, window=window, scale=scale, score=score)
    return _Source(call, heads, rows, chunk)


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
    chunk: int | None = None,
) -> Tensor:
    """The softmax attention weights that :func:`attnlab.ops.attention` uses.

    Only the returned weights and one ``chunk x Tk`` block of scores exist at a time, so
    asking for one head (or a few rows) of a long sequence costs that much memory, not
    ``B x H x Tq x Tk``.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, Hkv, Tk, D)``.
        mask, causal, window, scale, score: as in :func:`attnlab.ops.attention`.
        heads: query heads to return (default all).
        rows: query rows to return (an index tensor or slice; default all).
        chunk: query rows computed at a time (default: about a million scores).

    Returns:
        ``(B, len(heads), len(rows), Tk)``; fully masked rows are zeros.

    Raises:
        ValueError: heads out of range, bad chunk, or anything :func:`attention` rejects.
    """
    src = _source(q, k, mask, causal, window, scale, score, heads, rows, chunk)
    out = src.q.new_empty(src.shape)  # (B, h', R, Tk); every entry is written once below
    s = 0
    for c in src.chunks():
        n, w = c.rows.numel(), c.logits.shape[-1]
        rows = out[:, :, s : s + n]  # (B, h', c, Tk)
        rows[..., c.k0 : c.k0 + w] = c.weights()
        rows[..., : c.k0] = 0.0  # keys the chunk's mask cannot reach
        rows[..., c.k0 + w :] = 0.0
        s += n
    return out


@dataclass
class AttentionStats:
    """Streamed reductions of the attention weights of selected heads and rows.

    Attributes:
        received: ``(B, h, Tk)`` total weight each key receives (column sums).
        entropy: ``(B, h, R)`` entropy of each row's weights, in nats (0 if fully masked).
        top_values: ``(B, h, R, k)`` the k largest weights of each row.
        top_indices: ``(B, h, R, k)`` their key positions (-1 where a row has fewer keys).
        lse: ``(B, h, R)`` log-sum-exp of each row's scores (-inf if fully masked).
        rows: ``(R,)`` the query rows these statistics describe.
    """

    received: Tensor
    entropy: Tensor
    top_values: Tensor
    top_indices: Tensor
    lse: Tensor
    rows: Tensor


def attention_stats(
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
    topk: int = 5,
    chunk: int | None = None,
) -> AttentionStats:
    """Per-key received attention, row entropy and top-k keys, never holding ``Tq x Tk``.

    Args:
        q, k, mask, causal, window, scale, score, heads, rows, chunk: as in
            :func:`attention_weights`.
        topk: how many of the largest weights to keep per row.

    Returns:
        An :class:`AttentionStats`; memory is ``O(chunk x Tk)`` plus the results.

    Raises:
        ValueError: ``topk`` is not a non-negative int, or as :func:`attention_weights`.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 0:
        raise ValueError(f"topk must be a non-negative int, got {topk!r}")
    src = _source(q, k, mask, causal, window, scale, score, heads, rows, chunk)
    b, h, r, tk = src.shape
    kk = min(topk, tk)
    dt = src.q.dtype
    received = src.q.new_zeros(b, h, tk)
    entropy = src.q.new_zeros(b, h, r)
    top_v = src.q.new_zeros(b, h, r, kk)
    top_i = torch.full((b, h, r, kk), -1, dtype=torch.long, device=src.q.device)
    lse = src.q.new_full((b, h, r), float("-inf"), dtype=dt)
    s = 0
    for c in src.chunks():
        n, w = c.rows.numel(), c.logits.shape[-1]
        c_lse = c.lse()  # (B, h', c, 1)
        logp = c.logits - c_lse  # (B, h', c, w) log weights; -inf where masked
        p = logp.exp()
        received[:, :, c.k0 : c.k0 + w] += p.sum(2)
        # -p log p, with 0 log 0 = 0
        entropy[:, :, s : s + n] = -(p * logp.masked_fill(p == 0, 0.0)).sum(-1)
        m = min(kk, w)
        if m:
            val, idx = p.topk(m, dim=-1)  # (B, h', c, m)
            top_v[:, :, s : s + n, :m] = val
            top_i[:, :, s : s + n, :m] = torch.where(val > 0, idx + c.k0, -1)
        lse[:, :, s : s + n] = c_lse[..., 0].masked_fill(
            c_lse[..., 0] == float("inf"), float("-inf")
        )
        s += n
    return AttentionStats(received, entropy, top_v, top_i, lse, src.rows)
