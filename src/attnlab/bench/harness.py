"""Timing, peak-memory and FLOP helpers shared by the benchmark suites and tests."""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["PeakMemory", "attention_flops", "matmul_peak", "measure"]


class PeakMemory(TorchDispatchMode):
    """Track the tensor storage that aten ops allocate while the mode is active.

    Every op output with a new storage is counted until that storage is freed, so
    ``peak`` is the most bytes live at once and ``largest`` the biggest single
    allocation (with its ``largest_shape``). Views and in-place results are not new
    allocations; tensors created before entering are not counted; scratch buffers a
    fused kernel allocates internally are invisible (they do not leave the kernel).

    Example:
        >>> with PeakMemory() as mem:
        ...     y = torch.randn(256, 256) @ torch.randn(256, 256)
        >>> mem.largest
        262144
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.largest = 0
        self.largest_shape: tuple[int, ...] = ()
        self._ids: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        flat, _ = tree_flatten(out)
        for i, t in enumerate(flat):
            if not isinstance(t, torch.Tensor):
                continue
            if i < len(returns) and returns[i].alias_info is not None:
                continue  # a view or an in-place result: no new storage
            self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = id(st)
        if key in self._ids:
            return
        n = st.nbytes()
        self._ids.add(key)
        self.live += n
        self.peak = max(self.peak, self.live)
        if n > self.largest:
            self.largest, self.largest_shape = n, tuple(t.shape)
        weakref.finalize(st, self._free, key, n)

    def _free(self, key: int, n: int) -> None:
        self._ids.discard(key)
        self.live -= n


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def measure(
    fn: Callable[[], object], *, repeats: int = 7, budget_s: float = 3.0, clock: str = "wall"
) -> float:
    """Median time of ``fn()`` in seconds, after one warm-up call; stops early (at least 3
    runs, or 1 when the warm-up alone exceeded ``budget_s``) once ``budget_s`` is spent.

    ``clock="cpu"`` measures the process's CPU time instead of wall time: with one torch
    thread it is what the work costs even while other processes share the cores.
    """
    tick = CLOCKS[clock]
    t0 = tick()
    fn()
    if tick() - t0 > budget_s:
        repeats = 1  # a slow baseline (eager at long lengths): one timed run is enough
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats:
        t0 = tick()
        fn()
        times.append(tick() - t0)
        if len(times) >= 3 and time.perf_counter() - start > budget_s:
            break
    return statistics.median(times)


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 2048, clock: str = "wall") -> float:
    """Measured matmul throughput in GFLOP/s for ``n x n`` matrices of ``dtype``."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    t = measure(lambda: a @ b, repeats=5, clock=clock)
    return 2 * n**3 / t / 1e9


def attention_flops(pairs: float, heads: int, d: int, dv: int, backward: bool = False) -> float:
    """Useful FLOPs of attention over ``pairs`` allowed (query, key) pairs per head:
    ``2 d`` for the score and ``2 dv`` for the value product (x3.5 with the backward,
    the FlashAttention convention)."""
    f = pairs * heads * (2 * d + 2 * dv)
    return f * 3.5 if backward else f
