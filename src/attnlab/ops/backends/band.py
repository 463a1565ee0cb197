"""Sliding-window attention as batched fused-kernel calls over overlapping key windows.

Query block ``t`` (``n`` rows) sees the ``span = left + right + n`` keys starting at
``t * n + (Tk - Tq) - left``. Those windows overlap, so they are taken as a strided
*view* of the keys — no copy — and all interior blocks run as **one** kernel call with a
single ``(n, span)`` band mask shared by every block. The few blocks at the ends, whose
windows stick out of ``[0, Tk)``, run as a second small call in which they all share one
window of keys (again a view). Nothing is copied. Work and memory grow with ``Tq x span``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["band_attention", "band_block"]

_MASKS: dict[tuple, Tensor] = {}  # a few recent masks: repeated calls share geometry


def band_block(left: int, right: int) -> int:
    """Query rows per window: small enough that ``span`` wastes little, large enough for
    the kernel to run near its peak (32 for a window of 256; measured 16-64 within 10%)."""
    width = left + right + 1
    return int(min(128, max(16, 2 ** round(math.log2(max(width, 1) / 8)))))


def _cached(key: tuple, make) -> Tensor:
    if key not in _MASKS:
        if len(_MASKS) >= 16:
            _MASKS.pop(next(iter(_MASKS)))
        _MASKS[key] = make()
    return _MASKS[key]


class _Segment:
    """Query blocks ``[t0, t1)`` of one kernel call.

    ``start`` is the key position where block ``t0``'s window begins. An *interior*
    segment's windows all lie inside ``[0, Tk)``: they are overlapping views of the keys.
    An edge segment's blocks all share one window ``[c0, c1)`` (a view with stride 0
    across blocks), clipped to the keys; the mask leaves each block its own band.
    """

    def __init__(self, g: _Band, t0: int, t1: int, interior: bool) -> None:
        self.g, self.t0, self.t1, self.interior = g, t0, t1, interior
        self.nq = t1 - t0
        self.r0, self.r1 = t0 * g.n, min(t1 * g.n, g.tq)  # query rows
        self.start = t0 * g.n + g.off - g.left
        if interior:
            self.c0, self.width = self.start, g.span
        else:
            self.c0 = max(0, self.start)
            c1 = min(g.tk, self.start + (self.nq - 1) * g.n + g.span)
            self.width = max(0, c1 - self.c0)

    def queries(self, q: Tensor) -> Tensor:
        """``(B, H, Tq, D)`` -> ``(B*H, nq, n, D)`` (a view unless the last block is partial)."""
        b, h, _, d = q.shape
        rows = q[:, :, self.r0 : self.r1]
        pad = self.nq * self.g.n - (self.r1 - self.r0)
        if pad:
            rows = F.pad(rows, (0, 0, 0, pad))
        return rows.reshape(b * h, self.nq, self.g.n, d)

    def windows(self, x: Tensor) -> Tensor:
        """``(B, H, Tk, D)`` contiguous -> ``(B*H, nq, width, D)`` key windows (a view)."""
        b, h, tk, d = x.shape
        step = self.g.n * d if self.interior else 0
        return x.as_strided(
            (b * h, self.nq, self.width, d),
            (tk * d, step, d, 1),
            storage_offset=x.storage_offset() + self.c0 * d,
        )

    def fold(self, grad: Tensor, acc: Tensor) -> None:
        """Add window gradients ``(B*H, nq, width, D)`` onto ``acc (B*H, Tk + span + n, D)``."""
        n, d = self.g.n, grad.shape[-1]
        bh = grad.shape[0]
        if not self.interior:
            acc[:, self.c0 : self.c0 + self.width] += grad.sum(1)
            return
        for j in range(0, self.width, n):
            w = min(n, self.width - j)
            dst = acc[:, self.c0 + j : self.c0 + j + self.nq * n].view(bh, self.nq, n, d)
            dst[:, :, :w] += grad[:, :, j : j + w]

    def mask(self, dtype: torch.dtype, device) -> Tensor:
        """Additive mask: one ``(1, 1, n, span)`` band shared by interior blocks; edge
        blocks get theirs, ``(1, nq, n, width)``."""
        g = self.g
        if self.interior:
            key = ("band", g.n, g.left, g.right, dtype, str(device))

            def band() -> Tensor:
                i = torch.arange(g.n)[:, None]
                j = torch.arange(g.span)[None]
                ok = (j >= i) & (j <= i + g.left + g.right)  # (n, span)
                return _additive(ok, dtype)[None, None].to(device)

            return _cached(key, band)

        def edge() -> Tensor:
            pos = (self.t0 * g.n + torch.arange(self.nq * g.n) + g.off).view(self.nq, g.n, 1)
            kpos = self.c0 + torch.arange(self.width)  # (width,) key positions
            ok = (kpos >= pos - g.left) & (kpos <= pos + g.right)  # (nq, n, width)
            return _additive(ok, dtype)[None].to(device)

        key = ("edge", g.tq, g.tk, g.left, g.right, g.n, self.t0, self.t1, dtype, str(device))
        return _cached(key, edge)


def _additive(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, float("-inf"))


class _Band:
    """Geometry of a band call and its segments (interior blocks first)."""

    def __init__(self, tq: int, tk: int, left: int, right: int, n: int) -> None:
        self.tq, self.tk, self.left, self.right, self.n = tq, tk, left, right, n
        self.off = tk - tq  # query i sits at key position i + off (bottom-right)
        self.span = left + right + n
        nq = -(-tq // n)
        # block t's window [t n + off - left, + span) lies inside [0, Tk) for t in [ta, tb)
        ta = max(0, -(-(left - self.off) // n))
        tb = min(tq // n, (tk - self.span - self.off + left) // n + 1)
        self.segments: list[_Segment] = []
        if ta < tb:
            self.segments.append(_Segment(self, ta, tb, interior=True))
            edges = [(0, ta), (tb, nq)]
        else:
            edges = [(0, nq)]
        self.segments += [_Segment(self, a, b, interior=False) for a, b in edges if a < b]


class _BandAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, band: _Band, scale: float):
        b, h, tq, _ = q.shape
        k, v = k.contiguous(), v.contiguous()
        out = q.new_empty(b, h, tq, v.shape[-1])  # (B, H, Tq, Dv)
        saved = []
        for s in band.segments:
            if s.width == 0:  # these rows see no key at all
                out[:, :, s.r0 : s.r1] = 0.0
                continue
            qw, mask = s.queries(q), s.mask(q.dtype, q.device)
            o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                qw, s.windows(k), s.windows(v), 0.0, False, attn_mask=mask, scale=scale
            )
            rows = s.r1 - s.r0
            out[:, :, s.r0 : s.r1] = o.reshape(b, h, s.nq * band.n, -1)[:, :, :rows]
            saved += [qw, o, lse, mask]
        ctx.save_for_backward(k, v, *saved)
        ctx.band, ctx.scale, ctx.shape = band, scale, q.shape
        return out

    @staticmethod
    def backward(ctx, dout):
        k, v, *saved = ctx.saved_tensors
        band = ctx.band
        b, h, tq, d = ctx.shape
        bh, tk = b * h, k.shape[2]
        dq = dout.new_empty(b, h, tq, d)
        extra = band.span + band.n  # room for the last window piece of the fold
        dk = k.new_zeros(bh, tk + extra, d)
        dv = v.new_zeros(bh, tk + extra, v.shape[-1])
        i = -1
        for s in band.segments:
            if s.width == 0:  # rows that see no key: no gradient
                dq[:, :, s.r0 : s.r1] = 0.0
                continue
            i += 1
            qw, o, lse, mask = saved[4 * i : 4 * i + 4]
            dow = s.queries(dout)  # (B*H, nq, n, Dv)
            gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
                dow, qw, s.windows(k), s.windows(v), o, lse, 0.0, False,
                attn_mask=mask, scale=ctx.scale,
            )  # fmt: skip
            rows = s.r1 - s.r0
            dq[:, :, s.r0 : s.r1] = gq.reshape(b, h, s.nq * band.n, d)[:, :, :rows]
            s.fold(gk, dk)
            s.fold(gv, dv)
        return dq, dk[:, :tk].view(b, h, tk, d), dv[:, :tk].view(b, h, tk, -1), None, None


def band_attention(
    q: Tensor, k: Tensor, v: Tensor, left: int, right: int, scale: float, block: int | None = None
) -> Tensor:
    """Attention where query ``i`` sees keys ``i' - left .. i' + right`` (``i' = i + Tk - Tq``).

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, H, Tk, D)``; v: ``(B, H, Tk, Dv)`` (heads expanded).
        left, right: window extent (non-negative ints).
        scale: score scale.
        block: query rows per window (default :func:`band_block`).

    Returns:
        ``(B, H, Tq, Dv)``; rows with no key in range are zeros.
    """
    n = block or band_block(left, right)
    return _BandAttention.apply(q, k, v, _Band(q.shape[2], k.shape[2], left, right, n), scale)
