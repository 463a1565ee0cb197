"""Tables, figures and an offline HTML view of head scores and pruning curves.

Example:
    >>> import torch
    >>> from attnlab.heads.importance import HeadScores
    >>> s = HeadScores(["l0", "l1"], [torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5])], "gradient")
    >>> print(format_table({"gradient": s}))
    layer  head   gradient
        0     0     0.9000
        0     1     0.1000
        1     0     0.5000
        1     1     0.5000
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from attnlab.heads.importance import HeadScores

__all__ = ["format_table", "plot_curve", "plot_head_scores", "save_html"]


def _check(scores: Mapping[str, HeadScores]) -> list[str]:
    if not scores:
        raise ValueError("no head scores to show")
    kinds = list(scores)
    shapes = {tuple(v.numel() for v in s.values) for s in scores.values()}
    if len(shapes) != 1:
        raise ValueError(f"score sets disagree on the heads per layer: {sorted(shapes)}")
    return kinds


def format_table(scores: Mapping[str, HeadScores], *, sort_by: str | None = None) -> str:
    """One row per head, one column per score kind (optionally sorted, highest first)."""
    kinds = _check(scores)
    first = scores[kinds[0]]
    rows = [(i, h) for i, v in enumerate(first.values) for h in range(v.numel())]
    if sort_by is not None:
        if sort_by not in scores:
            raise ValueError(f"cannot sort by {sort_by!r}; columns: {kinds}")
        rows.sort(key=lambda r: -float(scores[sort_by].values[r[0]][r[1]]))
    widths = [max(9, len(k)) for k in kinds]
    lines = ["layer  head  " + "  ".join(f"{k:>{w}}" for k, w in zip(kinds, widths, strict=True))]
    for i, h in rows:
        cells = "  ".join(
            f"{float(scores[k].values[i][h]):>{w}.4f}" for k, w in zip(kinds, widths, strict=True)
        )
        lines.append(f"{i:>5}  {h:>4}  {cells}")
    return "\n".join(lines)


def plot_head_scores(scores: Mapping[str, HeadScores], *, title: str | None = None):
    """Layer x head heatmaps, one panel per score kind, each head's value written in.

    Returns:
        A :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    kinds = _check(scores)
    mats = [scores[k].matrix().numpy() for k in kinds]
    n_l, n_h = mats[0].shape
    cols = min(len(kinds), 2)
    rows = math.ceil(len(kinds) / cols)
    fig = Figure(
        figsize=(cols * (1.4 + 0.55 * n_h), rows * (1.0 + 0.45 * n_l)), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, kind, m in zip(axes, kinds, mats, strict=False):
        im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", aspect="auto")
        ax.set_xticks(range(n_h))
        ax.set_yticks(range(n_l))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(kind, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85)
        finite = m[np.isfinite(m)]
        mid = (finite.max() + finite.min()) / 2 if finite.size else 0.0
        fmt = _cell_format(m)
        if n_h * n_l <= 400:
            for (i, h), v in np.ndenumerate(m):
                if np.isfinite(v):
                    ax.text(h, i, format(v, fmt), ha="center", va="center", fontsize=6,
                            color="black" if v > mid else "white")  # fmt: skip
    for ax in axes[len(kinds) :]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def _cell_format(m: np.ndarray) -> str:
    """Enough decimals to tell the values of one panel apart (ablation scores are small)."""
    finite = np.abs(m[np.isfinite(m)])
    top = float(finite.max()) if finite.size else 1.0
    return ".3f" if top < 0.1 else ".2f"


def _colour(v: float, lo: float, hi: float) -> str:
    """A viridis-like colour for ``v`` on ``[lo, hi]`` (no matplotlib needed)."""
    t = 0.0 if hi <= lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    x = t * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    a, b = stops[i], stops[i + 1]
    f = x - i
    r, g, bl = (round(a[j] + (b[j] - a[j]) * f) for j in range(3))
    return f"rgb({r},{g},{bl})"


def save_html(
    scores: Mapping[str, HeadScores], path: str | Path, *, title: str = "attention heads"
) -> Path:
    """Write a small offline HTML page: one coloured layer x head table per score kind
    (exact values on hover). No script, no network (same page policy as the views)."""
    from attnlab.viz.views import render_document

    kinds = _check(scores)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for kind in kinds:
        m = scores[kind].matrix().numpy()
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        fmt = _cell_format(m)
        head = "".join(f"<th>h{h}</th>" for h in range(m.shape[1]))
        body = []
        for i, row in enumerate(m):
            cells = []
            for h, v in enumerate(row):
                if not np.isfinite(v):
                    cells.append('<td class="gone"></td>')
                    continue
                colour = _colour(float(v), lo, hi)
                ink = "#000" if (float(v) - lo) > (hi - lo) / 2 else "#fff"
                cells.append(
                    f'<td style="background:{colour};color:{ink}" '
                    f'title="layer {i} head {h}: {float(v):.6g}">{format(float(v), fmt)}</td>'
                )
            name = html.escape(scores[kind].names[i])
            body.append(f'<tr><th title="{name}">L{i}</th>{"".join(cells)}</tr>')
        parts.append(
            f"<h2>{html.escape(kind)}</h2><table><tr><th></th>{head}</tr>{''.join(body)}</table>"
        )
    style = (
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{padding:3px 6px;text-align:center;font-size:12px}"
        "td{min-width:2.6em;font-variant-numeric:tabular-nums}td.gone{background:#eee}</style>"
    )
    doc = render_document(None, title=title, body=style + "\n".join(parts))
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the heads view is saved as .html, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def plot_curve(curve: dict, *, title: str | None = None):
    """Metric vs heads pruned (importance order, each baseline and their mean), and the
    parameter count and latency relative to the unpruned model.

    Args:
        curve: what :func:`~attnlab.heads.pruning_curve` returned.
    """
    from matplotlib.figure import Figure

    pts = curve["points"]
    name = curve["metric"]
    x = [100 * p["pruned"] for p in pts]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    ax.plot(x, [p[name] for p in pts], "o-", label=f"{curve['order']['method']} order")
    nb = len(curve.get("baselines", []))
    for i in range(nb):
        ax.plot(x, [p[f"baseline_{i}"] for p in pts], color="grey", lw=0.8, alpha=0.6,
                label="random orders" if i == 0 else None)  # fmt: skip
    if nb:
        ax.plot(x, [p["baseline_mean"] for p in pts], "s--", color="tab:red", label="random mean")
    ax.set_xlabel("heads pruned (%)")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend()
    params0 = pts[0]["parameters"]
    ax2.plot(x, [p["parameters"] / params0 for p in pts], "o-", label="parameters")
    if "latency_ratio" in pts[0]:
        clock = curve.get("latency", {}).get("clock")
        label = f"latency ({clock} time)" if clock else "latency"
        ax2.plot(x, [p["latency_ratio"] for p in pts], "s-", label=label)
    ax2.set_xlabel("heads pruned (%)")
    ax2.set_ylabel("relative to unpruned")
    ax2.grid(alpha=0.3)
    ax2.legend()
    if title:
        fig.suptitle(title)
    return fig
