"""Head importance: Michel et al. 2019's gradient score and the ablation score.

*Gradient importance* (Michel et al. 2019, "Are Sixteen Heads Really Better than One?",
eq. 3): with a gate ``xi_h`` on every head's output, ``I_h = E_x |d L(x) / d xi_h|``
over a data set, then normalised per layer by the l2 norm (their Sec. 4.2) so scores
compare across layers. One backward pass per batch gives the per-example gradients,
because every example gets its own gate.

*Ablation importance*: drop one head (gate 0) and measure how much the metric falls.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from attnlab.layers import MultiHeadAttention
    >>> from attnlab.heads.objective import Objective
    >>> mha = MultiHeadAttention(16, 4)
    >>> x = torch.randn(8, 5, 16)
    >>> obj = Objective(batches=[x], forward=lambda m, b: m(b), loss=lambda y, b: y.pow(2).mean((1, 2)))
    >>> gradient_importance(mha, obj).values[0].shape
    torch.Size([4])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlab.heads.gates import HeadGates, full_mask
from attnlab.heads.locate import head_layers
from attnlab.heads.objective import Objective

__all__ = ["HeadScores", "ablation_importance", "gradient_importance", "normalize_by_layer"]


@dataclass
class HeadScores:
    """One value per head of every attention layer.

    Attributes:
        names: attention layer names.
        values: per layer, a ``(H_l,)`` float tensor.
        method: what the values are (``"gradient"``, ``"ablation"``, ``"entropy"``, ...).
        baseline: for ablation, the metric with every (remaining) head on.
    """

    names: list[str]
    values: list[Tensor]
    method: str
    baseline: float | None = None

    def ranking(self, mask: Sequence[Tensor] | None = None) -> list[tuple[int, int, float]]:
        """``(layer, head, value)`` of every head (kept heads only, given ``mask``),
        highest value first."""
        rows = [
            (i, h, float(v[h]))
            for i, v in enumerate(self.values)
            for h in range(v.numel())
            if mask is None or mask[i][h] > 0
        ]
        return sorted(rows, key=lambda r: -r[2])

    def matrix(self) -> Tensor:
        """``(L, H_max)`` with NaN where a layer has fewer heads."""
        width = max(v.numel() for v in self.values)
        out = torch.full((len(self.values), width), float("nan"))
        for i, v in enumerate(self.values):
            out[i, : v.numel()] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> HeadScores:
        """The inverse of :meth:`to_dict` (e.g. to redraw a saved ``heads.json``)."""
        return cls(
            names=[x["name"] for x in d["layers"]],
            values=[torch.tensor(x["values"], dtype=torch.float32) for x in d["layers"]],
            method=d["method"],
            baseline=d.get("baseline"),
        )

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "method": self.method,
            "baseline": self.baseline,
            "layers": [
                {"name": n, "values": [round(float(x), 6) for x in v]}
                for n, v in zip(self.names, self.values, strict=True)
            ],
        }


def normalize_by_layer(values: Sequence[Tensor], exponent: float = 2.0) -> list[Tensor]:
    """Divide each layer's scores by their ``exponent``-norm (Michel et al. 2019, Sec. 4.2)."""
    out = []
    for v in values:
        norm = v.norm(p=exponent)
        out.append(v / norm if norm > 0 else v.clone())
    return out


def _mask(model: nn.Module, mask: Sequence[Tensor] | None) -> list[Tensor]:
    layers = head_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no attention layer whose heads can be scored "
            "(attnlab MultiHeadAttention or a known transformers layout)"
        )
    return full_mask(layers) if mask is None else [m.detach().float().cpu() for m in mask]


def gradient_importance(
    model: nn.Module,
    objective: Objective,
    *,
    mask: Sequence[Tensor] | None = None,
    normalize: bool = True,
) -> HeadScores:
    """Michel et al.'s importance ``E_x |d L(x) / d xi_h|`` of every head.

    The model runs in eval mode (no dropout) on ``objective.batches``; its parameters
    get no gradients.

    Args:
        model: a model with attention layers (see :func:`~attnlab.heads.head_layers`).
        objective: data and per-example loss.
        mask: per layer, current gate values ``(H_l,)`` (0 = already removed): scores
            are then those of the pruned model; removed heads score 0.
        normalize: divide each layer's scores by their l2 norm.

    Returns:
        :class:`HeadScores` with ``method="gradient"``.
    """
    values = _mask(model, mask)
    was_training = model.training
    model.eval()
    total = [torch.zeros(v.numel(), dtype=torch.float64) for v in values]
    n = 0
    try:
        with torch.enable_grad(), HeadGates(model, values, track=True) as gates:
            for batch in objective.batches:
                loss = objective.losses(model, batch)
                grads = gates.gate_grads(loss.sum())
                n += max(g.shape[0] for g in grads)
                for acc, g in zip(total, grads, strict=True):
                    acc += g.detach().abs().sum(0).double().cpu()  # (H,)
    finally:
        model.train(was_training)
    scores = [(acc / max(n, 1)).float() * (v > 0) for acc, v in zip(total, values, strict=True)]
    if normalize:
        scores = normalize_by_layer(scores)
    names = [layer.name for layer in head_layers(model)]
    return HeadScores(names, scores, "gradient")


def ablation_importance(
    model: nn.Module, objective: Objective, *, mask: Sequence[Tensor] | None = None
) -> HeadScores:
    """How much ``objective.metric`` falls when each head alone is switched off.

    Args:
        model: a model with attention layers.
        objective: data and a metric (higher is better).
        mask: per layer, current gate values (0 = already removed; those score 0).

    Returns:
        :class:`HeadScores` with ``method="ablation"``; ``baseline`` is the metric with
        every remaining head on. A positive value: the head helps.
    """
    values = _mask(model, mask)
    was_training = model.training
    model.eval()
    try:
        with HeadGates(model, values):
            base = objective.score(model)
        scores = []
        for i, v in enumerate(values):
            row = torch.zeros(v.numel())
            for h in range(v.numel()):
                if v[h] <= 0:
                    continue
                trial = [x.clone() for x in values]
                trial[i][h] = 0.0
                with HeadGates(model, trial):
                    row[h] = base - objective.score(model)
            scores.append(row)
    finally:
        model.train(was_training)
    names = [layer.name for layer in head_layers(model)]
    return HeadScores(names, scores, "ablation", baseline=base)
