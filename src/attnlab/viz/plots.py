"""Static attention figures with matplotlib (no pyplot state; Agg/SVG/PDF canvases).

Every function takes weights as a tensor or array and returns a
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG, SVG or PDF.

Example:
    >>> import torch
    >>> from attnlab.viz import plot_heatmap, save_figure
    >>> w = torch.softmax(torch.randn(5, 5), -1)
    >>> fig = plot_heatmap(w, ["the", "cat", "sat", "on", "it"])
    >>> save_figure(fig, "head.png")  # doctest: +SKIP
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from attnlab.viz.aggregate import aggregate_heads, rollout
from attnlab.viz.fonts import quiet_glyph_warnings, use_fonts

__all__ = [
    "FORMATS",
    "plot_alignment",
    "plot_head_average",
    "plot_heads",
    "plot_heatmap",
    "plot_lines",
    "plot_rollout",
    "plot_text",
    "save_figure",
]

FORMATS = (".png", ".svg", ".pdf")
_MAX_LABELS = 80  # above this many tokens, axis labels are thinned out
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
)  # fmt: skip; the HTML head view's colours


def _np(w, dims: int, what: str) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        w = w.detach().float().cpu().numpy()
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != dims:
        raise ValueError(f"{what} must have {dims} dims, got shape {w.shape}")
    return w


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _done(fig):
    """Fallback fonts for text the default font cannot draw (CJK); returns ``fig``."""
    use_fonts(fig)
    return fig


def _labels(ax, tokens_x, tokens_y, *, fontsize: float = 8) -> None:
    for axis, toks, set_ticks, set_labels in (
        ("x", tokens_x, ax.set_xticks, ax.set_xticklabels),
        ("y", tokens_y, ax.set_yticks, ax.set_yticklabels),
    ):
        if toks is None:
            continue
        step = max(1, -(-len(toks) // _MAX_LABELS))
        idx = list(range(0, len(toks), step))
        set_ticks(idx)
        set_labels(
            [str(toks[i]) for i in idx], fontsize=fontsize, rotation=90 if axis == "x" else 0
        )


def _check_tokens(tokens, n: int, what: str):
    if tokens is not None and len(tokens) != n:
        raise ValueError(f"{len(tokens)} {what} tokens given for an axis of length {n}")
    return tokens


def plot_heatmap(
    weights,
    tokens: Sequence[str] | None = None,
    tokens_k: Sequence[str] | None = None,
    *,
    title: str | None = None,
    cmap: str = "viridis",
    ax=None,
):
    """Heatmap of one attention map with token labels.

    Args:
        weights: ``(Tq, Tk)``.
        tokens: query tokens (also the key tokens when ``tokens_k`` is None and the map
            is square).
        tokens_k: key tokens, for cross attention.
        title: figure title.
        ax: draw into this axes instead of a new figure.

    Returns:
        The figure.
    """
    w = _np(weights, 2, "weights")
    tq, tk = w.shape
    if tokens_k is None and tokens is not None and tq == tk:
        tokens_k = tokens
    _check_tokens(tokens, tq, "query")
    _check_tokens(tokens_k, tk, "key")
    if ax is None:
        size = min(12.0, 2.5 + 0.22 * max(tq, tk))
        fig = _figure(size + 1.0, size * tq / max(tk, 1) + 0.8)
        ax = fig.add_subplot()
    fig = ax.figure
    im = ax.imshow(w, cmap=cmap, vmin=0.0, aspect="auto", interpolation="nearest")
    _labels(ax, tokens_k, tokens)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        ax.set_title(title)
    return _done(fig)


def plot_heads(
    weights,
    tokens: Sequence[str] | None = None,
    *,
    layer_names: Sequence[str] | None = None,
    heads: Sequence[int] | Sequence[Sequence[int]] | None = None,
    cmap: str = "viridis",
    title: str | None = None,
):
    """Grid of every layer x head; a pooling layer (one query) is drawn as a row.

    Args:
        weights: ``(L, H, Tq, Tk)``, or a list of per-layer ``(H, Tq, Tk)`` that may
            differ (e.g. self-attention blocks followed by a ``(1, 1, T)`` pooling layer).
        tokens: the ``Tk`` tokens; with at most 32 of them they label the query axis of
            the first column and the key axis of the bottom row.
        layer_names: row labels (default ``layer 0..L-1``).
        heads: column labels: head indices shared by all layers, or one list per layer
            (default ``0..H-1``).
        title: figure title.
    """
    if isinstance(weights, (list, tuple)):
        layers = [_np(w, 3, f"layer {i}") for i, w in enumerate(weights)]
    else:
        layers = list(_np(weights, 4, "weights"))
    if not layers:
        raise ValueError("no layers to draw")
    n_l = len(layers)
    if heads is None:
        per_layer = [list(range(w.shape[0])) for w in layers]
    elif heads and isinstance(heads[0], (list, tuple)):
        per_layer = [list(h) for h in heads]
    else:
        per_layer = [list(heads)] * n_l
    for i, (w, h) in enumerate(zip(layers, per_layer, strict=True)):
        if len(h) != w.shape[0]:
            raise ValueError(f"layer {i} has {w.shape[0]} heads but {len(h)} head labels")
    n_h = max(w.shape[0] for w in layers)
    tk = max(w.shape[2] for w in layers)
    labelled = tokens is not None and tk <= 32
    cell = max(1.5, 0.095 * tk + 0.4) if labelled else 1.3
    rows = [0.3 if w.shape[1] == 1 else cell for w in layers]  # a pooling row stays a row
    longest = max((len(str(t)) for t in tokens), default=0) if labelled else 0
    pad_l = 1.2 + (0.07 * min(longest, 16) if labelled else 0)
    pad_b = 0.3 + (0.075 * min(longest, 20) if labelled else 0)
    lines = 0 if not title else title.count("\n") + 1
    fig = _figure(pad_l + cell * n_h, 0.35 + pad_b + sum(rows) + 0.3 * lines + 0.1 * n_l)
    grid = fig.add_gridspec(n_l, n_h, height_ratios=rows)
    label_size = 7 if tk <= 20 else 6
    for i, w in enumerate(layers):
        h, tq, tki = w.shape
        for j in range(n_h):
            ax = fig.add_subplot(grid[i, j])
            if j >= h:
                ax.set_axis_off()
                continue
            ax.imshow(w[j], cmap=cmap, vmin=0.0, aspect="auto", interpolation="nearest")
            if tq == 1:
                ax.set_box_aspect(rows[i] / cell)  # stays a thin row in any figure height
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or per_layer[i] != per_layer[i - 1]:
                ax.set_title(f"head {per_layer[i][j]}", fontsize=9)
            if j == 0:
                ax.set_ylabel(
                    layer_names[i] if layer_names else f"layer {i}",
                    fontsize=9,
                    rotation=0 if tq == 1 else 90,
                    ha="right" if tq == 1 else "center",
                    va="center",
                )
                if labelled and tq == len(tokens) and tq > 1:
                    ax.set_yticks(range(tq))
                    ax.set_yticklabels([str(t) for t in tokens], fontsize=label_size)
            if labelled and i == n_l - 1 and tki == len(tokens):
                ax.set_xticks(range(tki))
                ax.set_xticklabels([str(t) for t in tokens], fontsize=label_size, rotation=90)
    if title:
        fig.suptitle(title, fontsize=10)
    return _done(fig)


def plot_head_average(
    weights, tokens: Sequence[str] | None = None, *, how: str = "mean", title=None
):
    """Heatmap of the heads of one layer combined (``how`` = ``"mean"`` or ``"max"``).

    Args:
        weights: ``(H, Tq, Tk)``.
    """
    w = torch.as_tensor(_np(weights, 3, "weights"))
    return plot_heatmap(aggregate_heads(w, how), tokens, title=title or f"{how} over heads")


def plot_text(
    tokens: Sequence[str],
    scores,
    *,
    title: str | None = None,
    cmap: str = "Reds",
    width: int = 80,
):
    """Text with each token shaded by its score (e.g. attention from one query).

    Args:
        tokens: ``T`` tokens.
        scores: ``(T,)`` non-negative values; shading is relative to the maximum.
        width: characters per line before wrapping.
    """
    from matplotlib import colormaps

    s = _np(scores, 1, "scores")
    _check_tokens(tokens, s.shape[0], "text")
    top = float(s.max()) if s.size and s.max() > 0 else 1.0
    colours = colormaps[cmap]
    lines: list[list[tuple[int, int]]] = [[]]
    col = 0
    for i, tok in enumerate(tokens):
        n = _columns(str(tok)) + 1
        if col + n > width and lines[-1]:
            lines.append([])
            col = 0
        lines[-1].append((i, col))
        col += n
    fig = _figure(max(4.0, 0.105 * width), 0.4 + 0.32 * len(lines) + (0.3 if title else 0))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(len(lines), 0)
    for row, items in enumerate(lines):
        for i, c in items:
            v = float(s[i]) / top
            ax.text(
                c,
                row + 0.5,
                str(tokens[i]),
                family="monospace",
                fontsize=10,
                va="center",
                color="white" if v > 0.6 else "black",
                bbox={"boxstyle": "square,pad=0.15", "fc": colours(v), "ec": "none"},
            )
    if title:
        ax.set_title(title)
    return _done(fig)


def _columns(text: str) -> int:
    """Monospace columns of ``text``: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def plot_lines(
    weights,
    tokens: Sequence[str],
    tokens_k: Sequence[str] | None = None,
    *,
    heads: Sequence[int] | None = None,
    title: str | None = None,
    threshold: float = 0.01,
):
    """The head view as a figure: query tokens on the left, key tokens on the right,
    joined by lines whose width and opacity grow with the attention weight (relative to
    the largest weight drawn).

    Args:
        weights: ``(Tq, Tk)`` (one map, drawn in blue) or ``(H, Tq, Tk)`` (one colour
            per head, as in the HTML head view).
        tokens: the ``Tq`` query tokens (also the keys when ``tokens_k`` is None).
        tokens_k: the ``Tk`` key tokens (cross attention, or a pooling layer's keys).
        heads: head index of each map, for the colours and the legend.
        threshold: weights below this draw no line.
    """
    arr = weights.detach().float().cpu().numpy() if isinstance(weights, torch.Tensor) else weights
    arr = np.asarray(arr, dtype=np.float32)
    w = _np(arr[None] if arr.ndim == 2 else arr, 3, "weights")  # (H, Tq, Tk)
    h, tq, tk = w.shape
    tokens_k = tokens if tokens_k is None else tokens_k
    _check_tokens(tokens, tq, "query")
    _check_tokens(tokens_k, tk, "key")
    heads = list(range(h)) if heads is None else list(heads)
    if len(heads) != h:
        raise ValueError(f"{len(heads)} head labels for {h} maps")
    n = max(tq, tk)
    fig = _figure(6.0, 0.6 + 0.24 * n + (0.3 if title else 0))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(n - 0.5, -0.5)
    yq = np.arange(tq) + (n - tq) / 2
    yk = np.arange(tk) + (n - tk) / 2
    for i, t in enumerate(tokens):
        ax.text(0.3, yq[i], str(t), ha="right", va="center", fontsize=9)
    for j, t in enumerate(tokens_k):
        ax.text(0.7, yk[j], str(t), ha="left", va="center", fontsize=9)
    top = float(w.max()) or 1.0
    for k in range(h):
        colour = _PALETTE[heads[k] % len(_PALETTE)] if h > 1 else "#2563eb"
        for i, j in zip(*np.nonzero(w[k] >= threshold), strict=True):
            v = float(w[k, i, j]) / top  # relative to the largest weight, so rows of many
            ax.plot(  # small weights (pooling over a long text) still show
                [0.32, 0.68], [yq[i], yk[j]], color=colour, lw=0.5 + 2.5 * v,
                alpha=min(1.0, 0.15 + 0.85 * v), solid_capstyle="butt",
            )  # fmt: skip
    if h > 1:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=_PALETTE[x % len(_PALETTE)], lw=2) for x in heads]
        ax.legend(handles, [f"head {x}" for x in heads], loc="upper right", fontsize=7,
                  bbox_to_anchor=(1.0, 1.0), frameon=False)  # fmt: skip
    if title:
        ax.set_title(title)
    return _done(fig)


def plot_alignment(
    weights,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    title: str | None = "alignment",
    cmap: str = "Greys",
):
    """Source x target alignment matrix (cross attention of a translation model).

    Args:
        weights: ``(T_target, T_source)``: row ``i`` is the attention of target token
            ``i`` over the source. The most attended source token of each row is marked.
    """
    w = _np(weights, 2, "weights")
    _check_tokens(target_tokens, w.shape[0], "target")
    _check_tokens(source_tokens, w.shape[1], "source")
    fig = plot_heatmap(w, target_tokens, source_tokens, title=title, cmap=cmap)
    ax = fig.axes[0]
    ax.scatter(w.argmax(1), np.arange(w.shape[0]), s=12, c="tab:red", marker="o")
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    ax.xaxis.tick_top()
    return _done(fig)


def plot_rollout(
    weights,
    tokens: Sequence[str] | None = None,
    *,
    query: int | None = 0,
    head_reduce: str = "mean",
):
    """Attention rollout across layers (Abnar & Zuidema 2020), with the residual term.

    Args:
        weights: ``(L, H, T, T)`` self-attention of consecutive layers.
        tokens: token labels.
        query: also shade the text by the rollout row of this position (``0`` is
            ``[CLS]`` in BERT); None draws only the matrix.
    """
    w = torch.as_tensor(_np(weights, 4, "weights"))
    r = rollout(w, head_reduce=head_reduce).numpy()  # (T, T)
    fig = plot_heatmap(r, tokens, title=f"attention rollout over {w.shape[0]} layers")
    if query is not None and tokens is not None:
        if not -r.shape[0] <= query < r.shape[0]:
            raise ValueError(f"query {query} out of range for {r.shape[0]} tokens")
        ax = fig.axes[0]
        ax.axhline(query % r.shape[0], color="tab:red", lw=0.8)
        top = fig.get_size_inches()
        fig.set_size_inches(top[0], top[1] + 0.6)
        text = " ".join(
            f"{t}" for t, _ in sorted(zip(tokens, r[query], strict=True), key=lambda p: -p[1])[:5]
        )
        fig.suptitle(f"most attended from {tokens[query]!s}: {text}", fontsize=9)
    return _done(fig)


def save_figure(fig, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path``; the suffix picks the format (.png, .svg or .pdf).

    Raises:
        ValueError: another suffix.
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot save a figure as {path.name!r}; use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    use_fonts(fig)  # texts added after the plot function ran (titles) get fonts too
    with quiet_glyph_warnings():
        fig.savefig(path, dpi=dpi)
    return path
