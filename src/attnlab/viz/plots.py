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

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from attnlab.viz.aggregate import aggregate_heads, rollout

__all__ = [
    "FORMATS",
    "plot_alignment",
    "plot_head_average",
    "plot_heads",
    "plot_heatmap",
    "plot_rollout",
    "plot_text",
    "save_figure",
]

FORMATS = (".png", ".svg", ".pdf")
_MAX_LABELS = 80  # above this many tokens, axis labels are thinned out


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
    return fig


def plot_heads(
    weights,
    tokens: Sequence[str] | None = None,
    *,
    layer_names: Sequence[str] | None = None,
    heads: Sequence[int] | None = None,
    cmap: str = "viridis",
):
    """Grid of every layer x head.

    Args:
        weights: ``(L, H, Tq, Tk)``.
        tokens: token labels, drawn on the outer axes when there are few enough.
        layer_names: row labels (default ``layer 0..L-1``).
        heads: column labels (head indices, default ``0..H-1``).
    """
    w = _np(weights, 4, "weights")
    n_l, n_h, tq, _ = w.shape
    cell = 1.6 if tq <= 32 else 1.3
    fig = _figure(1.0 + cell * n_h, 0.6 + cell * n_l)
    axes = fig.subplots(n_l, n_h, squeeze=False)
    labelled = tokens is not None and tq <= 24
    for i in range(n_l):
        for j in range(n_h):
            ax = axes[i][j]
            ax.imshow(w[i, j], cmap=cmap, vmin=0.0, aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {heads[j] if heads else j}", fontsize=8)
            if j == 0:
                ax.set_ylabel(layer_names[i] if layer_names else f"layer {i}", fontsize=8)
            if labelled and j == 0 and tq == len(tokens):
                ax.set_yticks(range(tq))
                ax.set_yticklabels(tokens, fontsize=4)
    return fig


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
        n = len(str(tok)) + 1
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
    return fig


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
    return fig


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
    return fig


def save_figure(fig, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path``; the suffix picks the format (.png, .svg or .pdf).

    Raises:
        ValueError: another suffix.
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot save a figure as {path.name!r}; use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
