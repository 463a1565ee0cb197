"""The "blocksparse" backend: visit only the key blocks a typed mask leaves non-empty.

Two plans, both on PyTorch's fused CPU kernel (which returns the log-sum-exp):

- **band**: a sliding window (``Window``, alone or ``& Causal``) runs as *one* kernel call
  over overlapping key windows taken as a strided view (see :mod:`.band`);
- **tiles**: any mask with per-row key intervals (``Causal``, ``Padding``, contiguous
  ``Document`` and their ``&``) is cut into query blocks, each seeing one to three key
  ranges (unmasked, causal triangle, small mask); partials merge by log-sum-exp
  (see :mod:`.tiles`). Examples with different intervals (``Padding(lengths)``) are
  planned apart, so the work grows with the real tokens, not the padded length.

Backward recomputes per block from the saved output and log-sum-exp; nothing of size
``Tq x Tk`` is ever allocated. Calls these kernels cannot take (float bias, dropout, masks
without intervals, other devices) run one ``scaled_dot_product_attention`` per query tile
(see :mod:`.tiled_sdpa`).
"""

from __future__ import annotations

from torch import Tensor

from attnlab.ops import masks as M
from attnlab.ops.backends.band import band_attention, band_block
from attnlab.ops.backends.base import AttentionCall, Backend
from attnlab.ops.backends.tiled_sdpa import plan_for, run_tiled_sdpa
from attnlab.ops.backends.tiles import Plan, run_plan
from attnlab.ops.reference import expand_kv

__all__ = ["BlockSparseBackend", "band_of"]

# Cost model, in units where dense fused SDPA over all Tq x Tk scores is ~1.0. Measured
# on a 2-core x86 CPU (fp32, D=64): the fused kernel takes ~1.6 ns per score entry and
# head and ~30 us per call; a masked part costs ~5% more per entry, and the narrow
# queries of the band plan ~25% more; merging partials ~8 passes over each output row;
# per-tile calls ~10% more than the kernel's own causal loop at equal work (so plain
# ``Causal()`` stays with SDPA's ``is_causal``).
NS_PER_ENTRY = 1.6
US_PER_CALL = 30.0
MASKED = 1.05
BAND = 1.25
MERGE = 8.0
TILE = 1.1
_KERNEL_DTYPES = ("torch.float32", "torch.float64", "torch.bfloat16", "torch.float16")


def band_of(mask: M.Mask | None) -> tuple[int, int] | None:
    """``(left, right)`` when ``mask`` is a bounded sliding window (``Window`` and
    ``Causal`` combined with ``&``), else None."""
    if mask is None:
        return None
    parts = mask.parts if isinstance(mask, M.And) else [mask]
    left = right = None
    seen = False
    for p in parts:
        if type(p) is M.Window:
            seen = True
            if p.left is not None:
                left = p.left if left is None else min(left, p.left)
            if p.right is not None:
                right = p.right if right is None else min(right, p.right)
        elif type(p) is M.Causal:
            right = 0 if right is None else min(right, 0)
        else:
            return None
    if not seen or left is None or right is None:
        return None
    return left, right


def _static(mask: M.Mask | None) -> bool:
    """True for masks made only of Causal and Window (no tensors): cacheable by repr."""
    if mask is None:
        return True
    parts = mask.parts if isinstance(mask, M.And) else [mask]  # (Or needs a dense mask)
    return all(type(p) in (M.Causal, M.Window) for p in parts)


def _has_intervals(call: AttentionCall) -> bool:
    return call.mask.intervals(call.tq, call.tk) is not None


class BlockSparseBackend(Backend):
    name = "blocksparse"
    summary = "fused kernel on the key blocks the typed mask leaves non-empty"

    def __init__(self, block: int = 256) -> None:
        self.block = block
        self._cache: tuple[object, tuple, Plan, Tensor | None] | None = None
        self._static_plans: dict[tuple, tuple[Plan, Tensor | None]] = {}

    def refuse(self, call: AttentionCall) -> str | None:
        if call.return_weights:
            return "it does not return attention weights (use attnlab.ops.attention_weights)"
        if call.strict and self._needs_dense(call):
            return (
                f"strict=True: {call.mask!r} has no per-row key intervals, planning its "
                f"blocks would build the dense ({call.tq} x {call.tk}) mask"
            )
        return None

    @staticmethod
    def _needs_dense(call: AttentionCall) -> bool:
        m = call.mask
        return m is not None and not m.is_dense_tensor and not _has_intervals(call)

    # -- planning ---------------------------------------------------------------------
    def _mode(self, call: AttentionCall) -> str:
        """ "band", "tiles" (log-sum-exp kernel) or "sdpa" (general per-tile path)."""
        fast = (
            call.bias is None
            and not call.dropout_p
            and call.q.device.type == "cpu"
            and str(call.q.dtype) in _KERNEL_DTYPES
            and call.q.shape[-1] == call.v.shape[-1]  # the fused CPU kernel needs D == Dv
            and min(call.tq, call.tk) > 0
        )
        band = band_of(call.mask)
        # (a window as wide as the keys is no band: its edge masks would be Tq x Tk)
        if (
            fast
            and band is not None
            and call.mask.batch_size is None
            and sum(band) + band_block(*band) < call.tk
        ):
            return "band"
        if fast and (call.mask is None or _has_intervals(call)):
            return "tiles"
        return "sdpa"

    def _tile_block(self, call: AttentionCall) -> int:
        return min(self.block, max(16, call.tq))

    def _plan(self, call: AttentionCall) -> tuple[Plan, Tensor | None]:
        key = (call.batch, call.tq, call.tk, self._tile_block(call))
        if _static(call.mask):  # Causal/Window only: the plan depends on sizes alone
            skey = (repr(call.mask), *key)
            if skey not in self._static_plans:
                if len(self._static_plans) >= 32:
                    self._static_plans.pop(next(iter(self._static_plans)))
                self._static_plans[skey] = plan_for(call, self._tile_block(call))
            return self._static_plans[skey]
        c = self._cache
        if c is not None and c[0] is call.mask and c[1] == key:
            return c[2], c[3]
        plan, dense = plan_for(call, self._tile_block(call))
        self._cache = (call.mask, key, plan, dense)
        return plan, dense

    def _work(self, call: AttentionCall) -> tuple[str, int, float]:
        """(mode, kernel calls, score entries weighted by their cost), per head."""
        mode = self._mode(call)
        if mode == "band":
            n = band_block(*band_of(call.mask))
            span = sum(band_of(call.mask)) + n
            # one kernel call plus padding the keys and building the mask (~2 calls)
            return mode, 3, BAND * (-(-call.tq // n) * n) * span * call.batch
        if call.mask is None:  # nothing to skip: the dense work plus the tile overhead
            return mode, 2, TILE * call.batch * call.tq * call.tk
        if mode == "sdpa" and self._needs_dense(call):
            # planning would build the dense mask: assume no gain (SDPA needs it anyway)
            return mode, 1, 1.5 * call.batch * call.tq * call.tk
        plan, _ = self._plan(call)
        calls, plain, masked = plan.work()
        if mode == "sdpa":
            spans = sum(
                (t.q1 - t.q0) * (t.b1 - t.b0) * (max(p.k1 for p in t.parts) - t.parts[0].k0)
                for t in plan.tiles
            )
            return mode, len(plan.tiles) + 1, TILE * MASKED * spans
        merged = sum((t.q1 - t.q0) * (t.b1 - t.b0) for t in plan.tiles if len(t.parts) > 1)
        merge = MERGE * merged * call.v.shape[-1] / (call.q.shape[-1] + call.v.shape[-1])
        return mode, calls + 1, TILE * (plain + MASKED * masked) + merge  # +1: planning

    def cost(self, call: AttentionCall) -> float:
        d = (call.q.shape[-1] + call.v.shape[-1]) / 128
        per_entry = NS_PER_ENTRY * 1e-3 * d * call.heads  # us per (row, key) over heads
        dense = US_PER_CALL + per_entry * call.batch * call.tq * call.tk
        _, calls, entries = self._work(call)
        return (US_PER_CALL * calls + per_entry * entries) / dense

    def plan(self, call: AttentionCall) -> str:
        mode, calls, entries = self._work(call)
        frac = entries / max(1, call.batch * call.tq * call.tk)
        if mode == "band":
            left, right = band_of(call.mask)
            what = f"band plan: window ({left}, {right}) in one call over overlapping key windows"
        elif mode == "tiles":
            what = f"tile plan: {calls} kernel calls, partials merged by log-sum-exp"
        else:
            what = f"{calls} scaled_dot_product_attention calls, one per query tile"
        return f"{self.summary}; {what}, ~{frac:.0%} of the dense score work"

    # -- running ----------------------------------------------------------------------
    def run(self, call: AttentionCall) -> Tensor:
        mode = self._mode(call)
        if mode == "sdpa":
            return run_tiled_sdpa(call, *self._plan(call))
        k, v = expand_kv(call.k, call.heads), expand_kv(call.v, call.heads)  # (B, H, Tk, D)
        if mode == "band":
            left, right = band_of(call.mask)
            return band_attention(call.q, k, v, left, right, call.scale)
        return run_plan(call.q, k, v, self._plan(call)[0], call.scale)
