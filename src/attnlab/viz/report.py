"""The run report: one self-contained ``report.html`` (nothing is loaded to view it).

The run's task says what goes in it, as sections (:mod:`attnlab.tasks.sections`): for text
classification the test metrics next to a TF-IDF + logistic-regression baseline trained on
the same split, per-class precision/recall/F1, training curves with the kept epoch marked,
the confusion matrix, about 20 test texts (right and wrong) shown as written with each token
shaded in place by its attention-pooling weight, a short guide to reading the shading with
its caveat, the commands that open the interactive views, and data checksums. This module
draws every kind of section the same way for every task, under a header with the attnlab
version, the date and the seed. The page reads on a phone-width screen; the curves and the
confusion matrix are also written as PNG and SVG beside it.

Example:
    >>> from attnlab.viz.report import write_run_report
    >>> write_run_report("runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnlab.viz.fonts import CSS_FONTS, quiet_glyph_warnings, use_fonts

__all__ = ["render_text", "render_tokens", "write_report", "write_run_report"]

CSS = f"""
*{{box-sizing:border-box}}
body{{font-family:{CSS_FONTS};margin:1.5rem auto;max-width:1000px;color:#222;
line-height:1.5;padding:0 1rem}}
h1{{font-size:1.45rem;overflow-wrap:anywhere}} h2{{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}}
.scroll{{overflow-x:auto;max-width:100%}}
table{{border-collapse:collapse;margin:.5rem 0}} td,th{{padding:.3rem .6rem;border:1px solid #ddd;
text-align:left;vertical-align:top}} th{{background:#f5f5f5}}
.num{{text-align:right;font-variant-numeric:tabular-nums}}
.ok{{color:#176d2b;font-weight:600}} .bad{{color:#b00020;font-weight:600}}
.tok{{border-radius:3px}} .special{{color:#999;font-size:.8em}} .cut{{color:#999}}
.ex{{border:1px solid #e2e2e2;border-radius:6px;padding:.5rem .7rem;margin:.5rem 0}}
.ex .head{{font-size:.9rem;color:#555;margin-bottom:.2rem}}
.ex .text{{font-size:1.05rem;overflow-wrap:anywhere}}
figure{{display:inline-block;margin:0 1rem 1rem 0;max-width:100%}}
img{{max-width:100%;height:auto}}
pre,code{{font-family:ui-monospace,"DejaVu Sans Mono",monospace}} code{{word-break:break-all}}
pre{{background:#f7f7f7;padding:.8rem;overflow-x:auto;font-size:.85rem;white-space:pre-wrap}}
.note{{color:#555;font-size:.92rem}} .meta{{color:#555;font-size:.88rem}}
p,li{{overflow-wrap:anywhere}}
"""


def _cjk(s: str) -> bool:
    return len(s) == 1 and "\u3000" <= s <= "\u9fff"


def _shade(w: float, top: float) -> str:
    alpha = 0.0 if top <= 0 else w / top
    return f"background:rgba(255,140,0,{alpha:.2f})"


def render_tokens(tokens: Sequence[str], weights: Sequence[float]) -> str:
    """HTML for one sentence from its tokens: each token in a span shaded by its weight
    (relative to the sentence's largest), with the exact weight in its title.

    Used when character offsets are not available; :func:`render_text` shows the
    original text instead."""
    top = max(weights) if weights else 1.0
    parts = []
    prev = ""
    for tok, w in zip(tokens, weights, strict=False):
        text, space = tok, bool(parts)
        if tok.startswith("##"):
            text, space = tok[2:], False
        elif tok.startswith("\u2581"):  # BPE word start (Metaspace)
            text = tok[1:]
        if _cjk(text) and (_cjk(prev) or not prev.isascii()):
            space = False
        prev = text
        cls = "tok special" if tok in ("[CLS]", "[SEP]") else "tok"
        parts.append(
            (" " if space else "") + f'<span class="{cls}" style="{_shade(w, top)}" '
            f'title="{w:.3f}">{html.escape(text)}</span>'
        )
    return "".join(parts)


def render_text(
    text: str,
    offsets: Sequence[tuple[int, int]],
    tokens: Sequence[str],
    weights: Sequence[float],
) -> str:
    """HTML for the original ``text`` with each token's characters shaded in place.

    Args:
        text: the text as written (case, spacing and punctuation kept).
        offsets: ``(start, end)`` character span of each token in ``text`` (from the
            tokenizer; a subword such as ``##ation`` covers the end of its word).
        tokens: the token strings (shown with the weight on hover).
        weights: one weight per token; shading is relative to the largest.

    Characters no token covers (spaces, and everything after the last token of a text
    cut at the length limit) are shown unshaded; a cut tail is greyed.

    Example:
        >>> render_text("Good film", [(0, 4), (5, 9)], ["good", "film"], [1.0, 0.5])[:52]
        '<span class="tok" style="background:rgba(255,140,0,1'
    """
    if not (len(offsets) == len(tokens) == len(weights)):
        raise ValueError(
            f"{len(offsets)} offsets, {len(tokens)} tokens and {len(weights)} weights differ"
        )
    top = max(weights) if len(weights) else 1.0
    owner = [-1] * len(text)  # token shown for each character (the heaviest that covers it)
    for i, (start, end) in enumerate(offsets):
        for c in range(max(0, start), min(end, len(text))):
            if owner[c] < 0 or weights[i] > weights[owner[c]]:
                owner[c] = i
    last = max((end for _, end in offsets), default=0)
    parts, c = [], 0
    while c < len(text):
        i, d = owner[c], c
        while d < len(text) and owner[d] == i:
            d += 1
        piece = html.escape(text[c:d])
        if i >= 0:
            tip = html.escape(f"{tokens[i]} {weights[i]:.3f}", quote=True)
            parts.append(
                f'<span class="tok" style="{_shade(weights[i], top)}" title="{tip}">{piece}</span>'
            )
        elif c >= last and text[c:d].strip():
            parts.append(
                f'<span class="cut" title="not read: past the length limit">{piece}</span>'
            )
        else:
            parts.append(piece)
        c = d
    return "".join(parts)


def _save(fig, out: Path, stem: str) -> str:
    """Save ``fig`` as PNG and SVG next to the report; return the PNG as a data URI."""
    use_fonts(fig)
    buf = io.BytesIO()
    with quiet_glyph_warnings():
        fig.savefig(out / f"{stem}.png", dpi=110, bbox_inches="tight")
        fig.savefig(out / f"{stem}.svg", bbox_inches="tight")
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _curves(
    history: list[dict[str, Any]],
    out: Path,
    kept: int | None,
    metric: str = "acc",
    label: str = "accuracy",
) -> str | None:
    """Loss and ``metric`` per epoch (one panel above the other), the kept epoch marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not history:
        return None
    epochs = [int(h["epoch"]) + 1 for h in history]
    fig = Figure(figsize=(6.0, 6.4), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    for ax, name in zip(axes, ("loss", metric), strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            ys = [h.get(f"{split}_{name}") for h in history]
            pts = [(e, y) for e, y in zip(epochs, ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=7, lw=2)
        if kept is not None:
            ax.axvline(kept, color="#b00020", ls="--", lw=1.5, label=f"kept: epoch {kept}")
        ax.set_ylabel("loss" if name == "loss" else label, fontsize=13)
        ax.tick_params(labelsize=12)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=11)
    axes[-1].set_xlabel("epoch", fontsize=13)
    span = range(min(epochs), max(epochs) + 1)
    if len(span) <= 20:  # whole epochs only: never a tick at 1.5
        axes[-1].set_xticks(list(span))
    else:
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    fig.suptitle("training and validation", fontsize=14)
    return _save(fig, out, "curves")


def _confusion(
    confusion: list[list[int]],
    labels: Sequence[str],
    out: Path,
    title: str = "confusion matrix (test)",
) -> str:
    from matplotlib.figure import Figure

    c = len(labels)
    size = 2.6 + 0.9 * c
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(confusion, cmap="Blues")
    top = max(max(r) for r in confusion) or 1
    for i in range(c):
        for j in range(c):
            v = confusion[i][j]
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=13,
                color="white" if v > top / 2 else "black",
            )
    ax.set_xticks(range(c), labels, rotation=45, ha="right", fontsize=12)
    ax.set_yticks(range(c), labels, fontsize=12)
    ax.set_xlabel("predicted", fontsize=13)
    ax.set_ylabel("true", fontsize=13)
    ax.set_title(title, fontsize=14)
    return _save(fig, out, "confusion")


def _inline(fig) -> str:
    """A figure as an inline PNG data URI (not written beside the report)."""
    use_fonts(fig)
    buf = io.BytesIO()
    with quiet_glyph_warnings():
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _header(pairs: Sequence[tuple[str, str]], ok: bool | None) -> str:
    esc = html.escape
    parts = (
        []
        if ok is None
        else [f'<span class="{"ok" if ok else "bad"}">{"right" if ok else "wrong"}</span>']
    )
    parts += [f"{esc(k)} <b>{esc(v)}</b>" for k, v in pairs]
    return " · ".join(parts)


def _render(section, ctx: dict[str, Any]) -> str:
    """HTML for one report section (see :mod:`attnlab.tasks.sections`)."""
    esc = html.escape
    kind = section.kind
    if kind == "table":
        head = "".join(f"<th>{esc(str(c))}</th>" for c in section.columns)
        body = "".join(
            "<tr>" + "".join(
                f'<td{" class=num" if j else ""}>{esc(str(v))}</td>' for j, v in enumerate(row)
            ) + "</tr>"
            for row in section.rows
        )  # fmt: skip
        note = f'<p class="note">{esc(section.note)}</p>' if section.note else ""
        return f"<h2>{esc(section.title)}</h2><div class=scroll><table><tr>{head}</tr>{body}</table></div>{note}"
    if kind == "curves":
        uri = _curves(ctx["history"], ctx["out"], ctx["kept"], section.metric, section.label)
        if uri is None:
            return ""
        return (
            f'<h2>{esc(section.title)}</h2><figure><img alt="loss and {esc(section.label)} per '
            f'epoch, the kept epoch marked" src="{uri}"></figure>'
        )
    if kind == "confusion":
        uri = _confusion(section.matrix, section.labels, ctx["out"], section.title)
        return f'<figure><img alt="{esc(section.title)}" src="{uri}"></figure>'
    if kind == "prose":
        paras = "".join(f"<p>{esc(p)}</p>" for p in section.paragraphs)
        if section.links:
            links = " · ".join(
                f'<a href="{esc(u, quote=True)}">{esc(n)}</a>' for n, u in section.links
            )
            paras += f'<p class="note">See {links}.</p>'
        return f"<h2>{esc(section.title)}</h2>{paras}"
    if kind == "text-examples":
        blocks = []
        for it in section.items:
            if it.offsets is not None and len(it.offsets) == len(it.weights):
                body = render_text(it.text, it.offsets, it.tokens, it.weights)
            else:
                body = render_tokens(it.tokens, it.weights)
            blocks.append(
                f'<div class="ex"><div class="head">{_header(it.header, it.ok)}</div>'
                f'<div class="text">{body}</div></div>'
            )
        note = f'<p class="note">{esc(section.note)}</p>' if section.note else ""
        return f"<h2>{esc(section.title)}</h2>{note}{''.join(blocks)}"
    if kind == "alignments":
        from attnlab.viz.plots import plot_alignment

        blocks = []
        for it in section.items:
            fig = plot_alignment(it.weights, it.source, it.target, title=None)
            blocks.append(
                f'<div class="ex"><div class="head">{_header(it.header, it.ok)}</div>'
                f'<img alt="alignment" src="{_inline(fig)}"></div>'
            )
        note = f'<p class="note">{esc(section.note)}</p>' if section.note else ""
        return f"<h2>{esc(section.title)}</h2>{note}{''.join(blocks)}"
    if kind == "image-examples":
        blocks = [
            f'<div class="ex"><div class="head">{_header(it.header, it.ok)}</div>'
            f'<img alt="image and attention" src="{_inline(_overlays(it))}"></div>'
            for it in section.items
        ]
        note = f'<p class="note">{esc(section.note)}</p>' if section.note else ""
        return f"<h2>{esc(section.title)}</h2>{note}{''.join(blocks)}"
    if kind == "commands":
        return f"<h2>{esc(section.title)}</h2><pre>{esc(chr(10).join(section.lines))}</pre>"
    raise ValueError(f"the report cannot draw a section of kind {kind!r}")


def _overlays(item):
    """The image, then the image with each map over it (bilinear to the image's size)."""
    import torch
    from matplotlib.figure import Figure
    from torch.nn import functional as F

    img = item.image.detach().float().cpu()
    if img.dim() == 3 and img.shape[0] in (1, 3):
        img = img.permute(1, 2, 0)  # (H, W, C)
    if img.max() > 1.5:
        img = img / 255.0
    img = img.squeeze(-1) if img.dim() == 3 and img.shape[-1] == 1 else img
    h, w = img.shape[:2]
    panels = [("input", None), *item.maps.items()]
    fig = Figure(figsize=(1.9 * len(panels), 2.1), layout="constrained")
    for ax, (name, m) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        ax.imshow(img.numpy(), cmap="gray" if img.dim() == 2 else None)
        if m is not None:
            m = torch.as_tensor(m).detach().float().cpu()
            m = F.interpolate(m[None, None], size=(h, w), mode="bilinear", align_corners=False)[
                0, 0
            ]
            ax.imshow(m.numpy(), cmap="inferno", alpha=0.55)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    return fig


def write_report(run: Any, *, path: str | Path | None = None, n_examples: int = 20) -> Path:
    """Write a run's ``report.html`` (plus ``curves.{png,svg}`` and ``confusion.{png,svg}``
    beside it): its task's sections (metrics next to a baseline, curves, examples with their
    attention, how to read them, commands to open the views) under a header with the
    attnlab version, the date and the seed. The file appears only complete.

    Args:
        run: a finished run (:func:`attnlab.runs.load_run`).
        path: output file (default ``run.run_dir / "report.html"``).
        n_examples: examples shown with their attention.

    Returns:
        The report path.
    """
    from attnlab import __version__
    from attnlab.runs import read_history
    from attnlab.runs.folder import METRICS

    path = Path(path) if path is not None else run.run_dir / "report.html"
    out = path.parent
    out.mkdir(parents=True, exist_ok=True)
    metrics = json.loads((run.run_dir / METRICS).read_text(encoding="utf-8"))
    cfg = run.config
    seed = cfg.train.seed
    split = run.task.load_splits(cfg.data, seed=seed).test
    sections = run.task.report_sections(run, split, metrics, n_examples=n_examples)
    kept = metrics.get("best_epoch")
    ctx = {
        "history": read_history(run.run_dir),
        "out": out,
        "kept": kept if isinstance(kept, int) else None,
    }
    body = "".join(_render(s, ctx) for s in sections)
    esc = html.escape
    title = f"{cfg.model} on {cfg.data.name}"
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = " · ".join([f"attnlab {esc(__version__)}", f"written {when}", f"seed {seed}"])
    monitor = metrics.get("monitor", run.task.monitor)
    kept_line = (
        f"The weights kept are those of epoch {kept} (best {esc(monitor)}) of "
        f"{metrics.get('epochs_run', '?')} run."
        if kept is not None
        else ""
    )
    test_n = metrics.get("split", {}).get("test", len(split))
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>attnlab report: {esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>attnlab report: {esc(title)}</h1>
<p class="meta">{meta}</p>
<p class="note">Task: {esc(run.task.name)}. Held-out test split: {test_n:,} examples.
Training took {metrics.get("train_seconds", 0):.0f} s on {metrics.get("world_size", 1)} process(es). {kept_line}
{metrics.get("parameters", 0) / 1e6:.2f} M parameters.</p>
{body}
<h2>Config</h2>
<pre>{esc(json.dumps(cfg.to_dict(), indent=2))}</pre>
</body></html>
"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)
    return path


def write_run_report(run_dir: str | Path, *, n_examples: int = 20) -> Path:
    """Load a finished run folder and write its ``report.html`` (what ``attnlab train
    --report`` and ``attnlab report RUN_DIR`` do).

    Raises:
        RunError: the folder is not a finished run.
    """
    from attnlab.runs import load_run

    return write_report(load_run(run_dir), n_examples=n_examples)
