"""Write one view of an :class:`~attnlab.viz.inspect.Analysis` to a file (``attnlab viz``).

The suffix of the output picks the kind: ``.html`` gives an interactive view, ``.png``,
``.svg`` and ``.pdf`` a static figure of the same thing. Whether a view fits the model
(rollout needs self-attention layers) is decided once, before the format, so a view the
model cannot give is refused with the same message in every format.
"""

from __future__ import annotations

from pathlib import Path

import torch

from attnlab.viz.aggregate import aggregate_heads, rollout
from attnlab.viz.plots import (
    FORMATS,
    plot_heads,
    plot_heatmap,
    plot_lines,
    plot_rollout,
    plot_text,
    save_figure,
)
from attnlab.viz.views import HeadView, MatrixView, ModelView

__all__ = ["VIEWS", "check_view", "export"]

VIEWS = ("head", "model", "matrix", "rollout", "text")
STATIC_ONLY = ("text",)


def _layers(analysis) -> str:
    return ", ".join(
        f"{n} ({r})" for n, r in zip(analysis.layer_names, analysis.roles, strict=True)
    )


def check_view(analysis, view: str, suffix: str | None = None) -> None:
    """Raise ``ValueError`` when ``analysis`` cannot give ``view`` (in ``suffix`` format).

    Rollout multiplies self-attention layers, so a model without any (a BiLSTM with
    attention pooling) cannot give it, whatever the format; the text view is a figure.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if suffix is not None and suffix not in (*FORMATS, ".html"):
        raise ValueError(f"cannot write a {suffix!r} file: use .html, {', '.join(FORMATS)}")
    if view == "rollout" and not analysis.layers_with("self"):
        raise ValueError(
            "the rollout view needs self-attention layers, and this model has only "
            f"{_layers(analysis)}; use --view head, matrix, model or text"
        )
    if view == "text" and not (analysis.layers_with("pool") or analysis.layers_with("self")):
        raise ValueError(
            f"the text view needs attention pooling or self-attention; this model has {_layers(analysis)}"
        )
    if suffix == ".html" and view in STATIC_ONLY:
        raise ValueError(f"the {view} view is a static figure; write .png, .svg or .pdf")


def _layer(analysis, layer: int) -> int:
    n = len(analysis.weights)
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} out of range: {n} layers captured")
    return layer % n


def _head_index(analysis, layer: int, head: int) -> int:
    heads = analysis.heads[layer]
    if head not in heads:
        raise ValueError(
            f"head {head} out of range for {analysis.layer_names[layer]} (heads {heads})"
        )
    return heads.index(head)


def _pick(analysis, li: int, head: int | None, agg: str) -> tuple[torch.Tensor, str]:
    """The one map a static head or matrix figure draws, and its label."""
    w = analysis.weights[li]  # (H, Tq, Tk)
    if head is not None:
        return w[_head_index(analysis, li, head)], f"head {head}"
    if w.shape[0] == 1:  # a mean over one head would only repeat it
        role = analysis.roles[li]
        return w[0], "pooling weights" if role == "pool" else f"head {analysis.heads[li][0]}"
    return aggregate_heads(w, agg), f"{agg} over {w.shape[0]} heads"


def _layers_reduced(analysis, agg: str) -> torch.Tensor:
    """The self-attention layers with their heads combined, ``(L, 1, T, T)``; layers may
    hold different numbers of heads (a model with pruned heads)."""
    selfs = analysis.layers_with("self")
    if not selfs:
        return analysis.stacked()  # raises: says which kinds of attention were captured
    return torch.stack([aggregate_heads(analysis.weights[i], agg)[None] for i in selfs])


def _suffix_title(analysis, title: str) -> str:
    best = analysis.best
    return title if best is None else f"{title}\nprediction: {best[0]} ({best[1]:.3f})"


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

    Raises:
        ValueError: an unknown view or format, a view the model cannot give, a layer or
            head out of range.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (*FORMATS, ".html"):
        raise ValueError(f"cannot write {out.name!r}: use .html, {', '.join(FORMATS)}")
    check_view(analysis, view, suffix)
    li = _layer(analysis, layer)
    if head is not None:
        _head_index(analysis, li, head)
    toks = analysis.tokens
    if view == "rollout":
        selfs = analysis.layers_with("self")
        li = max([i for i in selfs if i <= li] or selfs)  # rollout up to a self-attention layer
    if suffix == ".html":
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
    w = analysis.weights[li]
    name = analysis.layer_names[li]
    qtoks = toks if w.shape[1] == len(toks) else [analysis.query_label or "query"] * w.shape[1]
    if view in ("head", "matrix"):
        m, label = _pick(analysis, li, head, agg)
        title = _suffix_title(analysis, f"{name} · {label}")
        if view == "head":
            fig = plot_lines(m, qtoks, toks, title=title)
        else:
            fig = plot_heatmap(m, qtoks, toks, title=title)
    elif view == "model":
        fig = plot_heads(
            analysis.weights,
            toks,
            layer_names=analysis.layer_names,
            heads=analysis.heads,
            title=_suffix_title(analysis, analysis.title),
        )
    elif view == "rollout":
        # heads reduced per layer first, so layers may hold different numbers of heads
        stacked = torch.stack(
            [
                aggregate_heads(analysis.weights[i], agg)[None]
                for i in analysis.layers_with("self")
                if i <= li
            ]
        )  # (L, 1, T, T)
        fig = plot_rollout(stacked, toks)
    else:
        pooled = analysis.layers_with("pool")
        if pooled:
            scores, title = analysis.weights[pooled[-1]].mean(0)[0], "attention pooling weights"
        else:
            scores, title = (
                rollout(_layers_reduced(analysis, agg))[0],
                f"rollout from {toks[0]}",
            )
        fig = plot_text(toks, scores, title=_suffix_title(analysis, title))
    return save_figure(fig, out)
