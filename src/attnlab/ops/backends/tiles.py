"""Tile plans for block-sparse attention and the kernel that runs them.

A *plan* cuts the query axis into blocks and, for each block, lists the key ranges
("parts") that the mask leaves non-empty. Each part is one call of the fused kernel:
unmasked where every row sees the whole range, ``is_causal`` where the range is the
top-left triangle of a square, and with a small additive mask otherwise. Partial results
are merged with their log-sum-exp (online softmax, Milakov & Gimelshein 2018; Dao et al.
2022), so memory grows with ``Tq x block``, never ``Tq x Tk``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Part", "Plan", "Tile", "plan_intervals", "run_plan"]

NEG_INF = float("-inf")


@dataclass
class Part:
    """Keys ``[k0, k1)`` seen by one query block."""

    k0: int
    k1: int
    kind: str  # "full" (no mask), "causal" (top-left triangle of a square), "mask"
    masks: dict = field(default_factory=dict, compare=False, repr=False)  # built masks

    @property
    def width(self) -> int:
        return self.k1 - self.k0


@dataclass
class Tile:
    """Query rows ``[q0, q1)`` of examples ``[b0, b1)`` (which share their intervals)."""

    b0: int
    b1: int
    q0: int
    q1: int
    parts: list[Part]
    lo: Tensor  # (q1 - q0,) first allowed key per row
    hi: Tensor  # (q1 - q0,) last allowed key per row (lo > hi: nothing allowed)


@dataclass
class Plan:
    """All tiles of one call; rows not covered by any tile are fully masked (zeros)."""

    batch: int
    tq: int
    tk: int
    tiles: list[Tile] = field(default_factory=list)

    def work(self) -> tuple[int, int, int]:
        """(kernel calls, score entries computed without mask, with mask), per head."""
        calls = plain = masked = 0
        for t in self.tiles:
            n = (t.q1 - t.q0) * (t.b1 - t.b0)
            for p in t.parts:
                calls += 1
                if p.kind == "mask":
                    masked += n * p.width
                else:
                    plain += n * p.width
        return calls, plain, masked


def _groups(lo: Tensor, hi: Tensor, batch: int) -> list[tuple[int, int, Tensor, Tensor]]:
    """Runs of consecutive examples with identical intervals: (b0, b1, lo, hi)."""
    if lo.shape[0] == 1:
        return [(0, batch, lo[0], hi[0])]
    out: list[tuple[int, int, Tensor, Tensor]] = []
    for b in range(lo.shape[0]):
        if out and torch.equal(out[-1][2], lo[b]) and torch.equal(out[-1][3], hi[b]):
            out[-1] = (out[-1][0], b + 1, out[-1][2], out[-1][3])
        else:
            out.append((b, b + 1, lo[b], hi[b]))
    return out


def plan_intervals(lo: Tensor, hi: Tensor, batch: int, tk: int, block: int) -> Plan:
    """Plan the tiles for per-row key intervals.

    Args:
        lo, hi: inclusive allowed key range per row, ``(B|1, Tq)`` int64.
        batch: the batch size B of the call.
        tk: number of keys.
        block: query rows per tile.
    """
    tq = lo.shape[-1]
    plan = Plan(batch, tq, tk)
    nb = -(-tq // block)
    pad = nb * block - tq
    for b0, b1, glo, ghi in _groups(lo.cpu(), hi.cpu(), batch):
        glo, ghi = glo.clamp(min=0), ghi.clamp(max=tk - 1)
        valid = glo <= ghi  # (Tq,)
        big, small = tk + 1, -1
        # per-block statistics, vectorised: (nB,) each
        vlo = F.pad(torch.where(valid, glo, big), (0, pad), value=big).view(nb, block)
        vhi = F.pad(torch.where(valid, ghi, small), (0, pad), value=small).view(nb, block)
        alo = F.pad(glo, (0, pad), value=small).view(nb, block)
        ahi = F.pad(ghi, (0, pad), value=big).view(nb, block)
        stair = F.pad(ghi - torch.arange(tq), (0, pad), value=0).view(nb, block)
        last = torch.full((nb, block), True)
        if pad:
            last[-1, block - pad :] = False
        stats = zip(
            vlo.min(1).values.tolist(),
            vhi.max(1).values.tolist(),
            alo.max(1).values.tolist(),
            ahi.min(1).values.tolist(),
            F.pad(valid, (0, pad), value=True).view(nb, block).all(1).tolist(),
            (
                stair.masked_fill(~last, 2**62).min(1).values
                == stair.masked_fill(~last, -(2**62)).max(1).values
            ).tolist(),
            strict=True,
        )
        prev: Tile | None = None
        for i, (klo, khi, flo, fhi, all_valid, is_stair) in enumerate(stats):
            if klo > khi:
                continue  # nothing to attend to: rows stay zeros
            q0, q1 = i * block, min(i * block + block, tq)
            parts = _split(klo, khi, flo, fhi, all_valid, is_stair, q1 - q0)
            if (
                prev is not None
                and prev.q1 == q0
                and prev.b0 == b0
                and len(parts) == 1
                and parts[0].kind == "full"
                and prev.parts == parts
            ):
                prev.q1 = q1  # same keys, no mask: one bigger tile
                prev.lo, prev.hi = glo[prev.q0 : q1], ghi[prev.q0 : q1]
                continue
            prev = Tile(b0, b1, q0, q1, parts, glo[q0:q1], ghi[q0:q1])
            plan.tiles.append(prev)
    return plan


def _split(
    klo: int, khi: int, flo: int, fhi: int, all_valid: bool, is_stair: bool, n: int
) -> list[Part]:
    """Cut one query block's key span ``[klo, khi]`` into full / causal / masked parts.

    ``[flo, fhi]`` is the range every row sees; ``is_stair`` says ``hi`` grows by one per row.
    """
    if not all_valid or flo > fhi:  # no key is seen by every row
        return [Part(klo, khi + 1, "mask")]
    parts: list[Part] = []
    if klo < flo:
        parts.append(Part(klo, flo, "mask"))
    if is_stair and khi == fhi + n - 1:
        # row i sees keys fhi .. fhi + i: the top-left causal triangle of an n x n square
        if flo < fhi:
            parts.append(Part(flo, fhi, "full"))
        parts.append(Part(fhi, khi + 1, "causal"))
    else:
        parts.append(Part(flo, fhi + 1, "full"))
        if fhi < khi:
            parts.append(Part(fhi + 1, khi + 1, "mask"))
    return parts


def part_mask(tile: Tile, part: Part, dtype: torch.dtype, device) -> tuple[Tensor, Tensor | None]:
    """Additive mask ``(n, width)`` for a masked part, and the rows it leaves empty
    (built once per dtype and device; plans of repeated masks are cached)."""
    key = (dtype, str(device), tile.q0, tile.q1)
    if key not in part.masks:
        part.masks[key] = _part_mask(tile, part, dtype, device)
    return part.masks[key]


def _part_mask(tile: Tile, part: Part, dtype: torch.dtype, device) -> tuple[Tensor, Tensor | None]:
    cols = torch.arange(part.k0, part.k1)
    allowed = (cols >= tile.lo[:, None]) & (cols <= tile.hi[:, None])  # (n, width)
    empty = ~allowed.any(-1)  # (n,)
    add = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, NEG_INF)
    return add.to(device), (empty.to(device) if bool(empty.any()) else None)


def run_plan(q: Tensor, k: Tensor, v: Tensor, plan: Plan, scale: float) -> Tensor:
    """Block-sparse attention following ``plan``; differentiable in q, k, v.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, H, Tk, D)``; v: ``(B, H, Tk, Dv)`` (kv heads
            already expanded).
    """
    return _TiledAttention.apply(q, k, v, plan, scale)


def _flash(q, k, v, causal, mask, scale):
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, causal, attn_mask=mask, scale=scale
    )


def _flash_bwd(do, q, k, v, o, lse, causal, mask, scale):
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        do, q, k, v, o, lse, 0.0, causal, attn_mask=mask, scale=scale
    )


class _TiledAttention(torch.autograd.Function):
    """Forward per tile with the fused CPU kernel; backward recomputes per part from the
    saved output and log-sum-exp (nothing ``Tq x Tk`` is kept)."""

    @staticmethod
    def forward(ctx, q, k, v, plan: Plan, scale: float):
        out = q.new_empty(*q.shape[:-1], v.shape[-1])  # (B, H, Tq, Dv)
        covered = torch.zeros(q.shape[0], q.shape[2], dtype=torch.bool)  # (B, Tq)
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        lse = q.new_full(q.shape[:-1], float("inf"), dtype=acc)  # (B, H, Tq)
        masks: list[list[tuple[Tensor | None, Tensor | None]]] = []
        for t in plan.tiles:
            qt = q[t.b0 : t.b1, :, t.q0 : t.q1]  # (b, H, n, D)
            outs, lses, tm = [], [], []
            for p in t.parts:
                mask, empty = (None, None)
                if p.kind == "mask":
                    mask, empty = part_mask(t, p, q.dtype, q.device)
                tm.append((mask, empty))
                o, ls_ = _flash(
                    qt,
                    k[t.b0 : t.b1, :, p.k0 : p.k1],
                    v[t.b0 : t.b1, :, p.k0 : p.k1],
                    p.kind == "causal",
                    mask,
                    scale,
                )
                if empty is not None:  # the kernel reports lse 0 for rows it saw nothing in
                    ls_ = ls_.masked_fill(empty, NEG_INF)
                outs.append(o)
                lses.append(ls_)
            masks.append(tm)
            if len(outs) == 1:
                o, lt = outs[0], lses[0]
            else:
                ls = torch.stack(lses)  # (P, b, H, n)
                lt = torch.logsumexp(ls, 0)  # (b, H, n)
                w = torch.exp(ls - lt.masked_fill(lt == NEG_INF, 0.0))  # (P, b, H, n)
                o = sum(wi[..., None].to(oi.dtype) * oi for wi, oi in zip(w, outs, strict=True))
            out[t.b0 : t.b1, :, t.q0 : t.q1] = o
            covered[t.b0 : t.b1, t.q0 : t.q1] = True
            lse[t.b0 : t.b1, :, t.q0 : t.q1] = lt.masked_fill(lt == NEG_INF, float("inf"))
        if not bool(covered.all()):  # rows no tile visits see no key: zeros
            out.masked_fill_(~covered.to(out.device)[:, None, :, None], 0.0)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.plan, ctx.scale, ctx.masks = plan, scale, masks
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        dout = dout.contiguous()
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for t, tm in zip(ctx.plan.tiles, ctx.masks, strict=True):
            bs, qs = slice(t.b0, t.b1), slice(t.q0, t.q1)
            qt, ot, dot, lt = q[bs, :, qs], out[bs, :, qs], dout[bs, :, qs], lse[bs, :, qs]
            for p, (mask, _) in zip(t.parts, tm, strict=True):
                ks = slice(p.k0, p.k1)
                gq, gk, gv = _flash_bwd(
                    dot, qt, k[bs, :, ks], v[bs, :, ks], ot, lt, p.kind == "causal", mask, ctx.scale
                )
                dq[bs, :, qs] += gq
                dk[bs, :, ks] += gk
                dv[bs, :, ks] += gv
        return dq, dk, dv, None, None
