"""Optimizer groups and learning-rate schedules of the engine.

AdamW (Loshchilov & Hutter 2019) with decoupled weight decay on weight matrices only
(biases, norms and single query vectors stay free), and a linear warm-up followed by one
of: linear decay to 0, cosine decay to 0, inverse square root (Vaswani et al. 2017, eq. 3)
or a constant rate.

Example:
    >>> [round(lr_factor(s, total=10, warmup=2, schedule="linear"), 2) for s in range(4)]
    [0.5, 1.0, 1.0, 0.88]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnlab.runs.config import SCHEDULES, TrainConfig

__all__ = ["LRSchedule", "build_optimizer", "lr_factor", "parameter_groups"]


def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based) of ``total``.

    Linear warm-up from ``1/warmup`` to 1 over ``warmup`` steps, then ``schedule``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "inverse-sqrt":
        return math.sqrt(max(1, warmup) / (step + 1))
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


class LRSchedule:
    """A picklable ``LambdaLR`` factor (its state is plain numbers)."""

    def __init__(self, total: int, warmup: int, schedule: str) -> None:
        self.total, self.warmup, self.schedule = total, warmup, schedule

    def __call__(self, step: int) -> float:
        return lr_factor(step, total=self.total, warmup=self.warmup, schedule=self.schedule)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weight matrices (decayed) and everything else (not decayed)."""
    decay, free = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_matrix = p.dim() >= 2 and "norm" not in name.lower()
        (decay if is_matrix else free).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": free, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, train: TrainConfig, total_steps: int) -> dict:
    """AdamW and its per-step schedule, in the form Lightning's
    ``configure_optimizers`` returns."""
    total = max(1, int(total_steps))
    opt = torch.optim.AdamW(parameter_groups(model, train.weight_decay), lr=train.lr)
    warm = round(train.warmup * total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LRSchedule(total, warm, train.schedule))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
