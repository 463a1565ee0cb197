"""Per-class precision, recall and F1 of a classifier, for the report and ``attnlab eval``.

Computed with scikit-learn's ``precision_recall_fscore_support`` from true and predicted
class indices; a class never predicted (or never present) scores 0 rather than NaN.

Example:
    >>> rows = per_class([0, 0, 1, 1], [0, 1, 1, 1], ["neg", "pos"])
    >>> [(r.label, round(r.precision, 3), r.recall, r.support) for r in rows]
    [('neg', 1.0, 0.5, 2), ('pos', 0.667, 1.0, 2)]
    >>> print(format_per_class(rows))
    class  precision  recall      F1  support
    neg       100.0%   50.0%   66.7%        2
    pos        66.7%  100.0%   80.0%        2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ClassScores", "format_per_class", "per_class"]


@dataclass(frozen=True)
class ClassScores:
    """Scores of one class: ``support`` is its number of true examples."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


def per_class(
    labels: Sequence[int], preds: Sequence[int], names: Sequence[str]
) -> list[ClassScores]:
    """Precision, recall, F1 and support of each class, in the order of ``names``.

    Args:
        labels: true class index of each example.
        preds: predicted class index of each example.
        names: class names; index ``i`` names class ``i``.

    Raises:
        ValueError: ``labels`` and ``preds`` differ in length, or an index has no name.
    """
    from sklearn.metrics import precision_recall_fscore_support

    labels, preds = [int(x) for x in labels], [int(x) for x in preds]
    if len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels but {len(preds)} predictions")
    bad = sorted({x for x in (*labels, *preds) if not 0 <= x < len(names)})
    if bad:
        raise ValueError(f"class indices {bad} have no name among {len(names)} classes")
    p, r, f, n = precision_recall_fscore_support(
        labels, preds, labels=list(range(len(names))), zero_division=0
    )
    return [
        ClassScores(str(name), float(p[i]), float(r[i]), float(f[i]), int(n[i]))
        for i, name in enumerate(names)
    ]


def format_per_class(rows: Sequence[ClassScores]) -> str:
    """The scores as an aligned plain-text table (one line per class)."""
    width = max([len("class"), *(len(r.label) for r in rows)])
    lines = [f"{'class':<{width}}  precision  recall      F1  support"]
    for r in rows:
        lines.append(
            f"{r.label:<{width}}  {r.precision:>9.1%}  {r.recall:>6.1%}  {r.f1:>6.1%}  {r.support:>7}"
        )
    return "\n".join(lines)
