"""Write one view of an :class:`~attnlab.viz.inspect.Analysis` to a file (``attnlab viz``).

The suffix of the output picks the kind: ``.html`` gives an interactive view, ``.png``,
``.svg`` and ``.pdf`` a static figure of the same thing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from attnlab.viz.aggregate import aggregate_heads, rollout
from attnlab.viz.plots import (
    FORMATS,
    plot_heads,
    plot_heatmap,
    plot_rollout,
    plot_text,
    save_figure,
)
from attnlab.viz.views import HeadView, MatrixView, ModelView

__all__ = ["VIEWS", "export"]

VIEWS = ("head", "model", "matrix", "rollout", "text")


def _layer(analysis, layer: int) -> tuple[int, torch.Tensor]:
    n = len(analysis.weights)
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} out of range: {n} layers captured")
    return layer % n, analysis.weights[layer % n]


def _head_index(analysis, layer: int, head: int) -> int:
    heads = analysis.heads[layer]
    if head not in heads:
        raise ValueError(
            f"head {head} out of range for {analysis.layer_names[layer]} (heads {heads})"
        )
    return heads.index(head)


def _layers_reduced(analysis, agg: str) -> torch.Tensor:
    """The self-attention layers with their heads combined, ``(L, 1, T, T)``; layers may
    hold different numbers of heads (a model with pruned heads)."""
    t = len(analysis.tokens)
    square = [w for w in analysis.weights if w.shape[1:] == (t, t)]
    if not square:
        return analysis.stacked()  # raises: only pooling attention was captured
    return torch.stack([aggregate_heads(w, agg)[None] for w in square])  # (L, 1, T, T)


def export(
    analysis,
    view: str,
    out: str | Path,
    *,
    layer: int = -1,
    head: int | None = None,
    agg: str = "mean",
    theme: str = "light",
) -> Path:
    """Draw ``view`` of ``analysis`` into ``out``.

    Args:
        view: ``"head"``, ``"model"``, ``"matrix"``, ``"rollout"`` or ``"text"`` (static
            only: tokens shaded by the pooling weights, or by the rollout of the first
            token when the model has no pooling layer).
        out: ``.html``, ``.png``, ``.svg`` or ``.pdf``.
        layer: layer shown first (HTML) or drawn (figures); negative counts from the end.
        head: head shown (default: the heads combined with ``agg``).
        agg: ``"mean"`` or ``"max"`` over heads.

    Returns:
        The path written.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if suffix not in (*FORMATS, ".html"):
        raise ValueError(f"cannot write {out.name!r}: use .html, {', '.join(FORMATS)}")
    li, w = _layer(analysis, layer)
    hi = None if head is None else _head_index(analysis, li, head)
    toks = analysis.tokens
    if suffix == ".html":
        if view == "text":
            raise ValueError("the text view is a static figure; write .png, .svg or .pdf")
        kw = {"layer": li, "theme": theme, "head": head}
        if view == "head":
            return HeadView.from_analysis(
                analysis, agg="heads" if head is not None else agg, **kw
            ).save(out)
        if view == "model":
            return ModelView.from_analysis(analysis, **kw).save(out)
        chosen = "rollout" if view == "rollout" else (f"h{head}" if head is not None else agg)
        include = (
            ("heads", "mean", "max", "rollout") if len(toks) <= 512 else ("mean", "max", "rollout")
        )
        return MatrixView.from_analysis(analysis, agg=chosen, include=include, **kw).save(out)
    qtoks = toks if w.shape[1] == len(toks) else [analysis.query_label or "query"] * w.shape[1]
    name = analysis.layer_names[li]
    if view in ("head", "matrix"):
        m = w[hi] if hi is not None else aggregate_heads(w, agg)
        label = f"head {head}" if head is not None else f"{agg} over heads"
        fig = plot_heatmap(m, qtoks, toks, title=f"{name} · {label}")
    elif view == "model":
        # the largest group of same-shaped layers (self-attention, leaving out a pooling tap)
        shapes = [tuple(x.shape) for x in analysis.weights]
        common = max(set(shapes), key=lambda s: (shapes.count(s), s[1]))
        idx = [i for i, s in enumerate(shapes) if s == common]
        fig = plot_heads(
            torch.stack([analysis.weights[i] for i in idx]),
            toks,
            layer_names=[analysis.layer_names[i] for i in idx],
            heads=analysis.heads[idx[0]],
        )
    elif view == "rollout":
        fig = plot_rollout(_layers_reduced(analysis, agg), toks)
    else:
        pooled = [x for x in analysis.weights if x.shape[1] == 1]
        if pooled:
            scores, title = pooled[-1].mean(0)[0], "attention pooling weights"
        else:
            scores, title = (
                rollout(_layers_reduced(analysis, agg))[0],
                f"rollout from {toks[0]}",
            )
        fig = plot_text(toks, scores, title=title)
    return save_figure(fig, out)
