"""Faithfulness of explanation maps: deletion and insertion curves (Petsiuk et al. 2018,
"RISE", Sec. 4.1).

Deletion removes pixels in the order a map ranks them, most important first, a fraction
at a time (replacing them with a baseline value, black by default), and records the
model's probability of the class it predicted on the intact image; a faithful map makes
it fall fast, so the area under the curve (AUC) is low. Insertion starts from the
baseline image and reveals pixels in the same order; a faithful map makes the
probability rise fast (high AUC). Every method is compared with a random order and with
plain input-gradient saliency on the same images.

Example:
    >>> import torch
    >>> from attnlab.models import create_model
    >>> from attnlab.models.vision import ImageDims
    >>> model = create_model("vit", dims=ImageDims(1, 28, 28, 10)).eval()
    >>> table = faithfulness(model, torch.rand(4, 1, 28, 28), methods=["rollout"])
    >>> [row.method for row in table.rows]
    ['rollout', 'gradient', 'random']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from attnlab.viz.explanation import _is_hf_vit, _logits, applicable_methods, explain

__all__ = ["Curves", "FaithfulnessRow", "FaithfulnessTable", "curves", "faithfulness"]


def _probs(model: nn.Module, x: Tensor, batch: int) -> Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            xb = x[i : i + batch]
            logits = _logits(model(pixel_values=xb) if _is_hf_vit(model) else model(xb))
            out.append(torch.softmax(logits.float(), -1))
    return torch.cat(out)


@dataclass
class Curves:
    """Deletion and insertion curves of one ranking on a batch.

    Attributes:
        fractions: ``(S,)`` fraction of pixels removed (deletion) / revealed (insertion).
        deletion: ``(B, S)`` probability of the predicted class.
        insertion: ``(B, S)``.
    """

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor

    @property
    def deletion_auc(self) -> Tensor:
        """``(B,)`` area under each deletion curve (trapezoid rule over [0, 1])."""
        return torch.trapezoid(self.deletion, self.fractions, dim=-1)

    @property
    def insertion_auc(self) -> Tensor:
        """``(B,)`` area under each insertion curve."""
        return torch.trapezoid(self.insertion, self.fractions, dim=-1)


def curves(
    model: nn.Module,
    images: Tensor,
    maps: Tensor,
    *,
    target: Tensor | None = None,
    steps: int = 10,
    baseline: float | Tensor = 0.0,
    batch: int = 256,
) -> Curves:
    """Deletion and insertion curves of ``maps`` for ``images``.

    Args:
        model: classifier in eval mode.
        images: ``(B, C, H, W)``.
        maps: ``(B, H, W)``: larger = removed / revealed first (ties in row-major order).
        target: ``(B,)`` class whose probability is recorded; default the class predicted
            on the intact images.
        steps: the curve has ``steps + 1`` points, ``1 / steps`` of the pixels apart
            (10 steps: 10 % at a time).
        baseline: value of a removed pixel (a number, or a ``(C, H, W)`` / ``(B, C, H, W)``
            image such as a blurred copy).

    Returns:
        The :class:`Curves`.
    """
    b, _, h, w = images.shape
    if maps.shape != (b, h, w):
        raise ValueError(f"maps must be (B, H, W) = {(b, h, w)}, got {tuple(maps.shape)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    n = h * w
    if target is None:
        target = _probs(model, images, batch).argmax(-1)
    flat = maps.reshape(b, n).float()
    order = torch.sort(flat, stable=True, dim=-1, descending=True).indices  # (B, N)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n).expand(b, n))  # rank of each pixel
    base = torch.as_tensor(baseline, dtype=images.dtype).expand_as(images)
    counts = [round(n * k / steps) for k in range(steps + 1)]
    deletion, insertion = [], []
    pick = target.view(b, 1)
    for k in counts:
        top = (rank < k).view(b, 1, h, w)  # (B, 1, H, W): the k highest-ranked pixels
        deletion.append(_probs(model, torch.where(top, base, images), batch).gather(1, pick))
        insertion.append(_probs(model, torch.where(top, images, base), batch).gather(1, pick))
    return Curves(
        torch.tensor([k / n for k in counts]), torch.cat(deletion, 1), torch.cat(insertion, 1)
    )


@dataclass
class FaithfulnessRow:
    """Mean AUCs of one method; ratios are against the random order and against
    input-gradient saliency on the same images."""

    method: str
    deletion_auc: float
    insertion_auc: float
    deletion_vs_random: float
    insertion_vs_random: float
    deletion_vs_gradient: float
    insertion_vs_gradient: float


@dataclass
class FaithfulnessTable:
    """Deletion / insertion AUCs of every method (lower deletion and higher insertion
    are better).

    Attributes:
        rows: one per method, then ``gradient`` and ``random``.
        curves: the :class:`Curves` of each method.
        images: how many images were measured.
    """

    rows: list[FaithfulnessRow]
    curves: dict[str, Curves] = field(repr=False)
    images: int = 0

    def row(self, method: str) -> FaithfulnessRow:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"no method {method!r}; rows: {[r.method for r in self.rows]}")

    def markdown(self) -> str:
        """The table as Markdown."""
        lines = [
            f"Faithfulness on {self.images} images (deletion: lower is better; "
            "insertion: higher is better)",
            "",
            "| method | deletion AUC | insertion AUC | del / random | ins / random "
            "| del / gradient | ins / gradient |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.method} | {r.deletion_auc:.3f} | {r.insertion_auc:.3f} | "
                f"{r.deletion_vs_random:.2f} | {r.insertion_vs_random:.2f} | "
                f"{r.deletion_vs_gradient:.2f} | {r.insertion_vs_gradient:.2f} |"
            )
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"images": self.images, "rows": [vars(r) for r in self.rows]}


def faithfulness(
    model: nn.Module,
    images: Tensor,
    *,
    methods: Sequence[str] | None = None,
    steps: int = 10,
    baseline: float | Tensor = 0.0,
    seed: int = 0,
    batch: int = 256,
) -> FaithfulnessTable:
    """Deletion and insertion AUCs of each explanation method on ``images``, beside a
    random order (seeded) and input-gradient saliency.

    Args:
        model: classifier in eval mode.
        images: ``(B, C, H, W)``.
        methods: methods of :func:`~attnlab.viz.explanation.explain` (default every method
            that applies to the model).
        steps: 10: pixels are removed / revealed 10 % at a time.
        baseline: value of a removed pixel.
        seed: seed of the random order.

    Returns:
        The :class:`FaithfulnessTable`.
    """
    model.eval()
    names = [m for m in (methods or applicable_methods(model)) if m not in ("gradient", "random")]
    names += ["gradient", "random"]
    target = _probs(model, images, batch).argmax(-1)
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = images.shape
    result: dict[str, Curves] = {}
    for name in names:
        if name == "random":
            maps = torch.rand(b, h, w, generator=g)
        else:
            maps = explain(model, images, name, target=target)
        result[name] = curves(
            model, images, maps, target=target, steps=steps, baseline=baseline, batch=batch
        )
    dels = {k: float(v.deletion_auc.mean()) for k, v in result.items()}
    ins = {k: float(v.insertion_auc.mean()) for k, v in result.items()}

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("inf")

    rows = [
        FaithfulnessRow(
            k,
            dels[k],
            ins[k],
            ratio(dels[k], dels["random"]),
            ratio(ins[k], ins["random"]),
            ratio(dels[k], dels["gradient"]),
            ratio(ins[k], ins["gradient"]),
        )
        for k in names
    ]
    return FaithfulnessTable(rows, result, b)
