"""Metric vs fraction of heads pruned, for an importance order and random orders (the
baseline of Michel et al. 2019, Fig. 3), with parameters and latency at each point.

Each point is a physically pruned copy of the model (:func:`~attnlab.heads.keep_heads`),
so its parameter count and latency are those a user would get.

Example:
    >>> curve = pruning_curve(model, order, metric, [0.1, 0.3, 0.5],      # doctest: +SKIP
    ...                       baselines=[random_order(model, fraction=0.5, seed=s)
    ...                                  for s in range(3)])
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from attnlab.heads.locate import count_parameters, keep_heads
from attnlab.heads.objective import Objective
from attnlab.heads.prune import PruningOrder

__all__ = ["pruned_copy", "pruning_curve", "time_forward"]


def pruned_copy(model: nn.Module, order: PruningOrder, n: int) -> nn.Module:
    """A physically pruned deep copy of ``model`` without the first ``n`` heads of ``order``."""
    pruned = copy.deepcopy(model)
    if n:
        keep_heads(pruned, order.kept(n))
    return pruned.eval()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


@torch.no_grad()
def time_forward(
    model: nn.Module, objective: Objective, *, repeats: int = 3, clock: str = "wall"
) -> float:
    """Median seconds of one no-grad pass of ``model`` over ``objective.batches``
    (after one warm-up pass).

    ``clock="cpu"`` measures the process's CPU time: with one torch thread it stays
    meaningful while other processes share the cores (it sums over threads otherwise).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {tuple(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    was_training = model.training
    model.eval()
    try:
        times = []
        for _ in range(repeats + 1):
            start = now()
            for batch in objective.batches:
                objective.forward(model, batch)
            times.append(now() - start)
    finally:
        model.train(was_training)
    return statistics.median(times[1:])


def pruning_curve(
    model: nn.Module,
    order: PruningOrder,
    evaluate: Callable[[nn.Module], float],
    fractions: Sequence[float],
    *,
    baselines: Sequence[PruningOrder] = (),
    latency: Callable[[nn.Module], float] | None = None,
    metric_name: str = "metric",
    log: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate ``model`` pruned along ``order`` (and each baseline order) at ``fractions``.

    Args:
        model: the unpruned model (not changed).
        order: the importance order; must reach the largest fraction.
        evaluate: ``evaluate(model) -> float`` (e.g. test accuracy).
        fractions: shares of heads to remove; 0 (the unpruned model) is always added.
        baselines: other orders (random ones) evaluated at the same points.
        latency: ``latency(model) -> seconds``, measured for the importance order (e.g.
            :func:`time_forward`).
        metric_name: label of the metric.
        log: receives one line per point.

    Returns:
        A JSON-ready dict: ``points`` (fraction, heads removed, metric, parameters,
        latency, kept heads) and, per baseline, its metrics; ``baseline_mean``.

    Raises:
        ValueError: an order too short for the largest fraction.
    """
    fracs = sorted({0.0, *(float(f) for f in fractions)})
    counts = [order.count(f) for f in fracs]
    for o in (order, *baselines):
        if counts[-1] > len(o.removed):
            raise ValueError(
                f"the {o.method} order removes {len(o.removed)} heads, fewer than the "
                f"{counts[-1]} of fraction {fracs[-1]}"
            )
    points = []
    base_latency = None
    for f, n in zip(fracs, counts, strict=True):
        pruned = pruned_copy(model, order, n)
        point = {
            "fraction": f,
            "removed": n,
            "pruned": n / order.total,
            metric_name: evaluate(pruned),
            "parameters": count_parameters(pruned),
            "kept": order.kept(n),
        }
        if latency is not None:
            point["latency_s"] = latency(pruned)
            base_latency = base_latency or point["latency_s"]
            point["latency_ratio"] = point["latency_s"] / base_latency
        for i, b in enumerate(baselines):
            point[f"baseline_{i}"] = evaluate(pruned_copy(model, b, n))
        if baselines:
            point["baseline_mean"] = statistics.fmean(
                point[f"baseline_{i}"] for i in range(len(baselines))
            )
        points.append(point)
        if log is not None:
            extra = f", baseline mean {point['baseline_mean']:.4f}" if baselines else ""
            lat = f", latency {point['latency_s']:.3f}s" if latency is not None else ""
            log(f"{n:3d}/{order.total} heads pruned: {metric_name} {point[metric_name]:.4f}"
                f"{extra}, {point['parameters']:,} parameters{lat}")  # fmt: skip
    return {
        "metric": metric_name,
        "total_heads": order.total,
        "order": order.to_dict(),
        "baselines": [b.to_dict() for b in baselines],
        "points": points,
    }
