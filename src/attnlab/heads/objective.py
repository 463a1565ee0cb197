"""What head scoring needs to know about a model's task: data, a loss and a metric.

The head methods work on any ``nn.Module``; an :class:`Objective` says how to run it on
a batch, what its per-example loss is (gradient importance), how good it is
(ablation importance, pruning curves) and, optionally, which token ids a batch holds
(attention statistics). :mod:`attnlab.heads.textrun` builds one from a text run folder.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3))
    >>> batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
    >>> obj = Objective(
    ...     batches=batches,
    ...     forward=lambda m, b: m(b[0]),
    ...     loss=lambda out, b: nn.functional.cross_entropy(out, b[1], reduction="none"),
    ... )
    >>> obj.losses(model, batches[0]).shape
    torch.Size([8])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Objective", "accuracy_metric"]


@dataclass(frozen=True)
class Objective:
    """A model's task, as head scoring sees it.

    Attributes:
        batches: the data (e.g. the validation split), in batches of any form.
        forward: ``forward(model, batch) -> output`` (e.g. logits ``(B, C)``).
        loss: ``loss(output, batch) -> (B,)`` per-example losses (a scalar also works;
            gradient importance then uses the batch-mean gradient).
        metric: ``metric(model) -> float``, higher is better (e.g. accuracy on the
            same data); needed by ablation importance.
        token_ids: ``token_ids(batch) -> (B, T)`` input ids, for attention statistics.
        metric_name: what ``metric`` measures, for tables and figures.
    """

    batches: Sequence[Any]
    forward: Callable[[nn.Module, Any], Any]
    loss: Callable[[Any, Any], Tensor]
    metric: Callable[[nn.Module], float] | None = None
    token_ids: Callable[[Any], Tensor] | None = None
    metric_name: str = "metric"

    def __post_init__(self) -> None:
        if len(self.batches) == 0:
            raise ValueError("the objective has no batches: give it some data")

    def losses(self, model: nn.Module, batch: Any) -> Tensor:
        """Per-example losses ``(B,)`` (or a scalar) of ``model`` on ``batch``."""
        return self.loss(self.forward(model, batch), batch)

    def score(self, model: nn.Module) -> float:
        """``metric(model)``.

        Raises:
            ValueError: the objective has no metric.
        """
        if self.metric is None:
            raise ValueError("this objective has no metric (needed for ablation and curves)")
        with torch.no_grad():
            return float(self.metric(model))


def accuracy_metric(
    batches: Sequence[Any],
    forward: Callable[[nn.Module, Any], Tensor],
    labels: Callable[[Any], Tensor],
) -> Callable[[nn.Module], float]:
    """``metric(model)``: accuracy of ``forward``'s argmax against ``labels(batch)``."""

    @torch.no_grad()
    def metric(model: nn.Module) -> float:
        right = total = 0
        for batch in batches:
            y = labels(batch)
            right += int((forward(model, batch).argmax(-1) == y).sum())
            total += y.numel()
        return right / max(total, 1)

    return metric
