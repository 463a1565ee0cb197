"""What a task puts in its run's report, as plain data.

A task's :meth:`~attnlab.tasks.base.Task.report_sections` returns a list of these; the
report writer (``attnlab.viz.report``) draws each kind the same way for every task: a table,
a confusion matrix, prose, text examples shaded by attention, source × target alignments,
images with attention overlays, commands. A new task family reuses the kinds; nothing in
``viz`` changes for it.

Example:
    >>> t = Table("Metrics", ["model", "accuracy"], [["cnn", "93.1 %"]])
    >>> t.kind
    'table'
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

__all__ = [
    "Alignment",
    "Alignments",
    "Commands",
    "Confusion",
    "Curves",
    "ImageExample",
    "ImageExamples",
    "Prose",
    "Section",
    "Table",
    "TextExample",
    "TextExamples",
    "data_checksum",
    "pick_examples",
]


class Section:
    """Base of the report's section kinds (``kind`` names the drawing)."""

    kind: ClassVar[str] = ""


@dataclass
class Table(Section):
    """A table of already formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    kind: ClassVar[str] = "table"


@dataclass
class Curves(Section):
    """The training and validation curves of the run (drawn from its log), the kept epoch
    marked: loss and the named metric (``"acc"`` reads ``train_acc`` and ``val_acc``)."""

    metric: str = "acc"
    label: str = "accuracy"
    title: str = "Training"
    kind: ClassVar[str] = "curves"


@dataclass
class Confusion(Section):
    """A confusion matrix (rows: true, columns: predicted), drawn as a figure."""

    labels: list[str]
    matrix: list[list[int]]
    title: str = "confusion matrix (test)"
    kind: ClassVar[str] = "confusion"


@dataclass
class Prose(Section):
    """Paragraphs of plain text, and links shown after them."""

    title: str
    paragraphs: list[str]
    links: list[tuple[str, str]] = field(default_factory=list)
    kind: ClassVar[str] = "prose"


@dataclass
class TextExample:
    """One text with a weight per token.

    Attributes:
        text: the text as written.
        tokens: the tokens the model read.
        weights: one weight per token.
        offsets: ``(start, end)`` characters of each token in ``text`` (None: show tokens).
        ok: whether the prediction was right (None: not a prediction).
        header: ``(name, value)`` pairs shown above the text.
    """

    text: str
    tokens: list[str]
    weights: list[float]
    offsets: list[tuple[int, int]] | None = None
    ok: bool | None = None
    header: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class TextExamples(Section):
    """Texts shaded by attention."""

    title: str
    items: list[TextExample]
    note: str = ""
    kind: ClassVar[str] = "text-examples"


@dataclass
class Alignment:
    """Source × target attention of one example.

    Attributes:
        source: source tokens ``S``.
        target: target tokens ``T``.
        weights: ``(T, S)`` attention of each target token over the source.
        ok: whether the output was right (None: no verdict).
        header: ``(name, value)`` pairs shown with it (source, reference, hypothesis...).
    """

    source: list[str]
    target: list[str]
    weights: Tensor
    ok: bool | None = None
    header: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Alignments(Section):
    """Alignment heatmaps."""

    title: str
    items: list[Alignment]
    note: str = ""
    kind: ClassVar[str] = "alignments"


@dataclass
class ImageExample:
    """An image and attention maps over it.

    Attributes:
        image: ``(C, H, W)`` or ``(H, W)`` float in [0, 1] or uint8.
        maps: name -> ``(h, w)`` map, overlaid on the image (resized to it).
        ok: whether the prediction was right (None: no verdict).
        header: ``(name, value)`` pairs shown with it.
    """

    image: Tensor
    maps: dict[str, Tensor] = field(default_factory=dict)
    ok: bool | None = None
    header: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ImageExamples(Section):
    """Images with their attention overlays (one row per image, one panel per map)."""

    title: str
    items: list[ImageExample]
    note: str = ""
    kind: ClassVar[str] = "image-examples"


@dataclass
class Commands(Section):
    """Shell commands (with ``#`` comment lines) that open the interactive views."""

    title: str
    lines: list[str]
    kind: ClassVar[str] = "commands"


def pick_examples(
    labels: Sequence[Any], preds: Sequence[Any], *, n: int = 20, seed: int = 0
) -> list[int]:
    """Indices of about ``n`` examples, half right and half wrong (when there are enough
    wrong ones), chosen with ``seed``, in order."""
    right = [i for i, (y, p) in enumerate(zip(labels, preds, strict=True)) if y == p]
    wrong = [i for i, (y, p) in enumerate(zip(labels, preds, strict=True)) if y != p]
    rng = random.Random(seed)
    n_wrong = min(len(wrong), n // 2)
    chosen = rng.sample(wrong, n_wrong) + rng.sample(right, min(len(right), n - n_wrong))
    return sorted(chosen)


def data_checksum(lines: Sequence[str]) -> str:
    """SHA-256 (hex) of data written as lines, in order (e.g. ``label<TAB>text``)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(f"{line}\n".encode())
    return h.hexdigest()
