"""Iterative head pruning (Michel et al. 2019, Sec. 4.2): remove the least important heads
a few percent at a time, re-scoring the remaining ones in between.

The search runs on gates (removed heads gated to 0), which is exactly what the physically
pruned model computes; :func:`~attnlab.heads.keep_heads` then shrinks the projections.
Every layer keeps at least one head: asking for more than that is refused.

Example:
    >>> order = random_order([4, 4], fraction=0.5, seed=0)
    >>> len(order.removed), order.kept(len(order.removed))
    (4, [[0, 3], [1, 2]])
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from attnlab.heads.importance import ablation_importance, gradient_importance
from attnlab.heads.locate import head_layers, kept_from_removed
from attnlab.heads.objective import Objective

__all__ = ["METHODS", "PruningOrder", "heads_to_remove", "importance_order", "random_order"]

METHODS = ("gradient", "ablation")


@dataclass
class PruningOrder:
    """The order in which heads leave a model.

    Attributes:
        names: attention layer names.
        num_heads: heads per layer before pruning.
        removed: ``(layer, head)`` pairs in removal order (head indices of the unpruned
            model).
        method: ``"gradient"``, ``"ablation"`` or ``"random"``.
        steps: number of heads removed after each re-scoring step.
    """

    names: list[str]
    num_heads: list[int]
    removed: list[tuple[int, int]]
    method: str
    steps: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Heads of the unpruned model."""
        return sum(self.num_heads)

    def count(self, fraction: float) -> int:
        """Heads to remove for ``fraction`` (see :func:`heads_to_remove`)."""
        return heads_to_remove(self.num_heads, fraction)

    def kept(self, n: int | None = None) -> list[list[int]]:
        """Per layer, the heads kept after the first ``n`` removals (default all)."""
        n = len(self.removed) if n is None else n
        if not 0 <= n <= len(self.removed):
            raise ValueError(f"this order removes {len(self.removed)} heads, not {n}")
        return kept_from_removed(self.num_heads, self.removed[:n])

    def mask(self, n: int | None = None) -> list[Tensor]:
        """Gate values after the first ``n`` removals: per layer ``(H_l,)`` of 0/1."""
        masks = [torch.zeros(h) for h in self.num_heads]
        for m, heads in zip(masks, self.kept(n), strict=True):
            m[heads] = 1.0
        return masks

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "method": self.method,
            "names": self.names,
            "num_heads": self.num_heads,
            "removed": [list(p) for p in self.removed],
            "steps": self.steps,
        }


def heads_to_remove(num_heads: Sequence[int], fraction: float) -> int:
    """Heads to remove so that at least ``fraction`` of them are gone.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1)``, or more heads than can go while every
            layer keeps one.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise TypeError(f"fraction must be a number, got {fraction!r}")
    total, layers = sum(num_heads), len(num_heads)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    n = math.ceil(fraction * total - 1e-9)
    most = total - layers
    if n > most:
        raise ValueError(
            f"cannot prune {n} of {total} heads (fraction {fraction}): each of the {layers} "
            f"attention layers keeps at least one head, so at most {most} "
            f"({most / total:.0%}) can go"
        )
    return n


def _pick(
    scores: Sequence[Tensor], mask: list[Tensor], k: int, rng: random.Random | None
) -> list[tuple[int, int]]:
    """The ``k`` lowest-scoring kept heads (random ones if ``rng``), never a layer's last."""
    left = [int(m.sum()) for m in mask]
    cands = [(i, h) for i, m in enumerate(mask) for h in range(m.numel()) if m[h] > 0]
    if rng is not None:
        rng.shuffle(cands)
    else:
        cands.sort(key=lambda p: (float(scores[p[0]][p[1]]), p))
    out = []
    for i, h in cands:
        if len(out) == k:
            break
        if left[i] > 1:
            out.append((i, h))
            left[i] -= 1
    return out


def importance_order(
    model: nn.Module,
    objective: Objective,
    *,
    fraction: float,
    step: float = 0.05,
    method: str = "gradient",
    log: Callable[[str], None] | None = None,
) -> PruningOrder:
    """Remove heads by importance until ``fraction`` of them are gone (the model itself is
    not changed: removals are simulated with gates).

    Each step scores the remaining heads (with the removed ones gated off) and removes
    the ``step`` fraction of all heads (at least one) that scores lowest.

    Args:
        model: a model with attention layers.
        objective: the data to score on (e.g. the validation split).
        fraction: share of heads to remove, in ``[0, 1)``.
        step: share of heads removed between two scorings (Michel et al. use a few %).
        method: ``"gradient"`` (Michel et al.) or ``"ablation"`` (slow: one metric
            evaluation per remaining head and step).
        log: receives one line per step.

    Raises:
        ValueError: no attention layer, a bad fraction/step/method.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1], got {step!r}")
    layers = head_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no attention layer whose heads can be pruned")
    num_heads = [layer.num_heads for layer in layers]
    target = heads_to_remove(num_heads, fraction)
    per_step = max(1, round(step * sum(num_heads)))
    order = PruningOrder([layer.name for layer in layers], num_heads, [], method)
    score = gradient_importance if method == "gradient" else ablation_importance
    while len(order.removed) < target:
        mask = order.mask()
        scores = score(model, objective, mask=mask).values
        picked = _pick(scores, mask, min(per_step, target - len(order.removed)), None)
        order.removed.extend(picked)
        order.steps.append(len(order.removed))
        if log is not None:
            names = ", ".join(f"L{i}H{h}" for i, h in picked)
            log(f"{method}: removed {len(order.removed)}/{order.total} heads ({names})")
    return order


def random_order(
    model_or_heads: nn.Module | Sequence[int], *, fraction: float, seed: int = 0
) -> PruningOrder:
    """A random removal order (the baseline of Michel et al.), never emptying a layer.

    Args:
        model_or_heads: a model, or the number of heads of each layer.
        fraction: share of heads to remove.
        seed: seeds the order.
    """
    if isinstance(model_or_heads, nn.Module):
        layers = head_layers(model_or_heads)
        if not layers:
            raise ValueError(
                f"{type(model_or_heads).__name__} has no attention layer whose heads can be pruned"
            )
        names, num_heads = [x.name for x in layers], [x.num_heads for x in layers]
    else:
        num_heads = [int(h) for h in model_or_heads]
        names = [f"layer {i}" for i in range(len(num_heads))]
    target = heads_to_remove(num_heads, fraction)
    order = PruningOrder(names, num_heads, [], f"random (seed {seed})")
    rng = random.Random(seed)
    while len(order.removed) < target:
        order.removed.extend(_pick([], order.mask(), 1, rng))
    order.steps = list(range(1, target + 1))
    return order
