"""Sliding-window attention as one fused-kernel call over overlapping key windows.

Query block ``t`` (``n`` rows) sees the ``span = left + right + n`` keys starting at
``t * n - left`` (in key coordinates). Those windows overlap, so they are taken as a
strided *view* of the (padded) keys — no copy — and all blocks run as one batched call
with a ``(nQ, n, span)`` additive mask. Work and memory grow with ``Tq x span``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["band_attention", "band_block"]


def band_block(left: int, right: int) -> int:
    """Query rows per window: small enough that ``span`` wastes little, large enough for
    the kernel to run near its peak (32 for a window of 256; measured 16-64 within 10%)."""
    width = left + right + 1
    return int(min(128, max(16, 2 ** round(math.log2(max(width, 1) / 8)))))


_MASKS: dict[tuple, Tensor] = {}  # a few recent masks: repeated calls share geometry


class _Geometry:
    def __init__(self, tq: int, tk: int, left: int, right: int, n: int) -> None:
        self.tq, self.tk, self.left, self.right, self.n = tq, tk, left, right, n
        self.off = tk - tq  # query i sits at key position i + off (bottom-right)
        self.span = left + right + n
        self.nq = -(-tq // n)
        self.front = max(0, left - self.off)  # zero keys padded before key 0
        self.base = self.off - left + self.front  # window of block 0 starts here (>= 0)
        pieces = -(-self.span // n)
        self.length = self.base + (self.nq + pieces) * n  # padded key length

    def windows(self, x: Tensor) -> Tensor:
        """``(B, H, Tk, D)`` -> overlapping ``(B*H, nQ, span, D)`` view of padded keys."""
        b, h, _, d = x.shape
        xp = x.new_empty(b * h, self.length, d)  # (B*H, L, D); only the pads are zeroed
        xp[:, : self.front].zero_()
        xp[:, self.front + self.tk :].zero_()
        xp[:, self.front : self.front + self.tk].view(b, h, self.tk, d).copy_(x)
        return xp.as_strided(
            (b * h, self.nq, self.span, d),
            (self.length * d, self.n * d, d, 1),
            storage_offset=self.base * d,
        )

    def fold(self, g: Tensor, b: int, h: int) -> Tensor:
        """Sum window gradients ``(B*H, nQ, span, D)`` back onto ``(B, H, Tk, D)``."""
        d = g.shape[-1]
        n, nq = self.n, self.nq
        acc = g.new_zeros(b * h, self.length, d)  # (B*H, L, D)
        for j in range(0, self.span, n):
            w = min(n, self.span - j)
            dst = acc[:, self.base + j : self.base + j + nq * n].view(b * h, nq, n, d)
            dst[:, :, :w] += g[:, :, j : j + w]
        return acc[:, self.front : self.front + self.tk].reshape(b, h, self.tk, d)

    def mask(self, dtype: torch.dtype, device) -> Tensor:
        """Additive ``(1, nQ, n, span)`` mask: the band plus keys outside ``[0, Tk)``."""
        key = (self.tq, self.tk, self.left, self.right, self.n, dtype, str(device))
        if key not in _MASKS:
            if len(_MASKS) >= 8:
                _MASKS.pop(next(iter(_MASKS)))
            _MASKS[key] = self._mask(dtype, device)
        return _MASKS[key]

    def _mask(self, dtype: torch.dtype, device) -> Tensor:
        i = torch.arange(self.n)[:, None]
        j = torch.arange(self.span)[None]
        band = (j >= i) & (j <= i + self.left + self.right)  # (n, span)
        t = torch.arange(self.nq)[:, None, None]
        kpos = self.base - self.front + t * self.n + j[None]  # (nQ, 1, span) key positions
        ok = band[None] & (kpos >= 0) & (kpos < self.tk)  # (nQ, n, span)
        return torch.zeros(ok.shape, dtype=dtype).masked_fill_(~ok, float("-inf"))[None].to(device)


class _BandAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, geo: _Geometry, scale: float):
        b, h, tq, d = q.shape
        pad = geo.nq * geo.n - tq
        qw = F.pad(q, (0, 0, 0, pad)).reshape(b * h, geo.nq, geo.n, d)  # (B*H, nQ, n, D)
        mask = geo.mask(q.dtype, q.device)
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            qw, geo.windows(k), geo.windows(v), 0.0, False, attn_mask=mask, scale=scale
        )
        ctx.save_for_backward(qw, k, v, o, lse, mask)
        ctx.geo, ctx.scale, ctx.shape = geo, scale, q.shape
        out = o.reshape(b, h, geo.nq * geo.n, v.shape[-1])  # (B, H, Tq_pad, Dv)
        return out[:, :, :tq]

    @staticmethod
    def backward(ctx, dout):
        qw, k, v, o, lse, mask = ctx.saved_tensors
        geo = ctx.geo
        b, h, tq, d = ctx.shape
        pad = geo.nq * geo.n - tq
        dow = F.pad(dout, (0, 0, 0, pad)).reshape(o.shape)  # (B*H, nQ, n, Dv)
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            dow,
            qw,
            geo.windows(k),
            geo.windows(v),
            o,
            lse,
            0.0,
            False,
            attn_mask=mask,
            scale=ctx.scale,
        )
        dq = gq.reshape(b, h, geo.nq * geo.n, d)[:, :, :tq]
        return dq, geo.fold(gk, b, h), geo.fold(gv, b, h), None, None


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
    geo = _Geometry(q.shape[2], k.shape[2], left, right, n)
    return _BandAttention.apply(q, k, v, geo, scale)
