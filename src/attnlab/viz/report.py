"""The run report: one self-contained ``report.html`` (nothing is loaded to view it).

It holds the test metrics next to a TF-IDF + logistic-regression baseline trained on the
same split, per-class precision/recall/F1, training curves with the kept epoch marked,
the confusion matrix, about 20 test sentences (right and wrong) shown as their original
text with each token shaded in place by its attention-pooling weight (placed with the
tokenizer's character offsets), a short guide to reading the shading with its caveat, the
commands that open the interactive views, and the version, date, seed and data checksums.
The page reads on a phone-width screen. The curves and confusion matrix are also written
as PNG and SVG beside it.

Example:
    >>> from attnlab.viz.report import write_report
    >>> write_report(run, test_split, probs=probs, metrics=metrics, history=history)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import io
import json
import random
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnlab.viz.fonts import CSS_FONTS, quiet_glyph_warnings, use_fonts
from attnlab.viz.scores import per_class

__all__ = [
    "data_checksum",
    "pick_examples",
    "render_text",
    "render_tokens",
    "write_report",
    "write_run_report",
]

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
"""

LITERATURE = (
    (
        "Jain & Wallace 2019, Attention is not Explanation",
        "https://aclanthology.org/N19-1357/",
    ),
    (
        "Wiegreffe & Pinter 2019, Attention is not not Explanation",
        "https://aclanthology.org/D19-1002/",
    ),
)


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


def pick_examples(
    labels: Sequence[int], preds: Sequence[int], *, n: int = 20, seed: int = 0
) -> list[int]:
    """Indices of about ``n`` test examples, half right and half wrong (when there are
    enough wrong ones), chosen with ``seed``."""
    right = [i for i, (y, p) in enumerate(zip(labels, preds, strict=True)) if y == p]
    wrong = [i for i, (y, p) in enumerate(zip(labels, preds, strict=True)) if y != p]
    rng = random.Random(seed)
    n_wrong = min(len(wrong), n // 2)
    chosen = rng.sample(wrong, n_wrong) + rng.sample(right, min(len(right), n - n_wrong))
    return sorted(chosen)


def data_checksum(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 (hex) of the examples in order, one ``label<TAB>text`` line each."""
    h = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        h.update(f"{label}\t{text}\n".encode())
    return h.hexdigest()


def _save(fig, out: Path, stem: str) -> str:
    """Save ``fig`` as PNG and SVG next to the report; return the PNG as a data URI."""
    use_fonts(fig)
    buf = io.BytesIO()
    with quiet_glyph_warnings():
        fig.savefig(out / f"{stem}.png", dpi=110, bbox_inches="tight")
        fig.savefig(out / f"{stem}.svg", bbox_inches="tight")
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _curves(history: list[dict[str, Any]], out: Path, kept: int | None) -> str | None:
    """Loss and accuracy per epoch (one panel above the other), the kept epoch marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not history:
        return None
    epochs = [int(h["epoch"]) + 1 for h in history]
    fig = Figure(figsize=(6.0, 6.4), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    for ax, metric in zip(axes, ("loss", "acc"), strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            ys = [h.get(f"{split}_{metric}") for h in history]
            pts = [(e, y) for e, y in zip(epochs, ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=7, lw=2)
        if kept is not None:
            ax.axvline(kept, color="#b00020", ls="--", lw=1.5, label=f"kept: epoch {kept}")
        ax.set_ylabel("loss" if metric == "loss" else "accuracy", fontsize=13)
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


def _confusion(confusion: list[list[int]], labels: Sequence[str], out: Path) -> str:
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
    ax.set_title("confusion matrix (test)", fontsize=14)
    return _save(fig, out, "confusion")


def _examples(run: Any, test: Any, idx: list[int]) -> list[str]:
    """One block per chosen test sentence: verdict, labels and the shaded original text."""
    texts = [test.texts[i] for i in idx]
    predictions = run.predict(texts)
    tok = getattr(getattr(run, "tokenizer", None), "tokenizer", None)
    encodings = tok.encode_batch(texts) if tok is not None else [None] * len(texts)
    blocks = []
    for i, text, p, enc in zip(idx, texts, predictions, encodings, strict=True):
        truth = run.labels[test.labels[i]]
        ok = p.label == truth
        if enc is not None and len(enc.offsets) == len(p.weights):
            body = render_text(text, enc.offsets, p.tokens, p.weights)
        else:
            body = render_tokens(p.tokens, p.weights)
        esc = html.escape
        blocks.append(
            f'<div class="ex"><div class="head"><span class="{"ok" if ok else "bad"}">'
            f"{'right' if ok else 'wrong'}</span> · true <b>{esc(truth)}</b> · predicted "
            f"<b>{esc(p.label)}</b> ({p.probability:.2f})</div>"
            f'<div class="text">{body}</div></div>'
        )
    return blocks


def _checksums(run: Any, test: Any) -> list[str]:
    names = run.labels
    lines = [
        f"test split: {len(test):,} examples, sha256 "
        f"<code>{data_checksum(test.texts, [names[y] for y in test.labels])}</code>"
    ]
    cfg = run.config
    try:
        from attnlab.data import load_data

        d = cfg.data
        data = load_data(d.name, text_column=d.text_column, label_column=d.label_column)
    except (OSError, ValueError) as e:  # a data file moved since training
        lines.insert(
            0, f"data {html.escape(str(cfg.data.name))}: not readable now ({html.escape(str(e))})"
        )
    else:
        digest = data_checksum(data.texts, [data.label_names[y] for y in data.labels])
        lines.insert(
            0,
            f"data {html.escape(str(cfg.data.name))}: {len(data):,} examples as loaded, sha256 "
            f"<code>{digest}</code>",
        )
    return lines


def _commands(run_dir: Path, text: str) -> str:
    d, t = shlex.quote(str(run_dir)), shlex.quote(text)
    return "\n".join(
        [
            "# one sentence: interactive head and model views (open the .html file)",
            f"attnlab viz {d} {t} --view head --out head.html",
            f"attnlab viz {d} {t} --view model --out model.html",
            "# type any text in the browser and see every view",
            f"attnlab explore {d}",
            "# the label and the most-weighted tokens; metrics with per-class scores",
            f"attnlab predict {d} {t}",
            f"attnlab eval {d}",
        ]
    )


def write_report(
    run: Any,
    test: Any,
    *,
    probs: Any,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    n_examples: int = 20,
    path: str | Path | None = None,
) -> Path:
    """Write ``report.html`` (plus ``curves.{png,svg}`` and ``confusion.{png,svg}``).

    Args:
        run: the loaded :class:`attnlab.train.Run`.
        test: the test :class:`attnlab.data.TextDataset` (run's label names).
        probs: ``(N, C)`` test probabilities from the run.
        metrics: the run's metrics (``test_acc``, ``test_f1``, ``confusion``,
            ``best_epoch``, ``baseline``...).
        history: per-epoch logged metrics (``train_loss``, ``val_acc``...).
        n_examples: test sentences shown with attention shading.
        path: output file (default ``run.run_dir / "report.html"``).

    Returns:
        The report path.
    """
    from attnlab import __version__

    path = Path(path) if path is not None else run.run_dir / "report.html"
    out = path.parent
    out.mkdir(parents=True, exist_ok=True)
    labels = run.labels
    preds = probs.argmax(-1).tolist()
    seed = run.config.train.seed
    idx = pick_examples(test.labels, preds, n=n_examples, seed=seed)
    m = metrics
    kept = m.get("best_epoch")
    curves = _curves(history, out, kept if isinstance(kept, int) else None)
    confusion = _confusion(m["confusion"], labels, out)
    base = m.get("baseline", {})
    esc = html.escape
    title = f"{run.config.model} on {run.config.data.name}"
    blocks = _examples(run, test, idx)
    scores = per_class(test.labels, preds, labels)
    class_rows = "".join(
        f"<tr><td>{esc(s.label)}</td><td class='num'>{s.precision:.1%}</td>"
        f"<td class='num'>{s.recall:.1%}</td><td class='num'>{s.f1:.1%}</td>"
        f"<td class='num'>{s.support:,}</td></tr>"
        for s in scores
    )
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = [f"attnlab {esc(__version__)}", f"written {when}", f"seed {seed}"]
    sums = "".join(f"<li>{line}</li>" for line in _checksums(run, test))
    shown = sorted((test.texts[i] for i in idx), key=len)
    example = shown[0] if shown and len(shown[0]) <= 100 else "a gorgeous, witty film"
    max_len = run.config.data.max_len
    lit = " and ".join(f'<a href="{u}">{esc(n)}</a>' for n, u in LITERATURE)
    config_json = json.dumps(run.config.to_dict(), indent=2)
    kept_line = (
        f"The weights kept are those of epoch {kept} (best validation accuracy) of "
        f"{m.get('epochs_run', '?')} run."
        if kept is not None
        else ""
    )
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>attnlab report: {esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>attnlab report: {esc(title)}</h1>
<p class="meta">{" · ".join(meta)}</p>
<p class="note">Held-out test split: {m.get("test_n", len(test)):,} examples.
Training took {m.get("train_seconds", 0):.0f} s. {kept_line}
{m.get("parameters", 0) / 1e6:.2f} M parameters.</p>
<h2>Metrics</h2>
<div class="scroll"><table><tr><th>model</th><th>test accuracy</th><th>test macro-F1</th></tr>
<tr><td>{esc(run.config.model)}</td><td class="num">{m["test_acc"]:.2%}</td>
<td class="num">{m["test_f1"]:.2%}</td></tr>
<tr><td>{esc(base.get("name", "baseline"))} (same split)</td>
<td class="num">{base.get("accuracy", float("nan")):.2%}</td>
<td class="num">{base.get("macro_f1", float("nan")):.2%}</td></tr></table></div>
<h3>Per class (test)</h3>
<div class="scroll"><table class="per-class"><tr><th>class</th><th>precision</th><th>recall</th>
<th>F1</th><th>support</th></tr>{class_rows}</table></div>
<h2>Training</h2>
{f'<figure><img alt="loss and accuracy per epoch, the kept epoch marked" src="{curves}"></figure>' if curves else ""}
<figure><img alt="confusion matrix" src="{confusion}"></figure>
<h2>How to read the shading</h2>
<p>The model turns the text into one vector per token and then <b>attention pooling</b>
scores every token, turns the scores into weights that sum to 1 (a softmax) and
classifies the weighted average of the token vectors. Below, each token of the original
text is shaded by its pooling weight, relative to the sentence's heaviest token (hover for
the value). Texts are read up to {max_len} tokens; a greyed tail was not read.</p>
<p><b>Caveat:</b> the weights say where the pooling put its mass, not why the model chose
its label. Other weightings can give the same prediction, and attention often disagrees
with other measures of importance, so read the shading as a view of this model, not as an
explanation of its decision; see {lit}.</p>
<h2>Where the model looked</h2>
<p class="note">{len(blocks)} test sentences, right and wrong.</p>
{"".join(blocks)}
<h2>Open the interactive views</h2>
<pre>{esc(_commands(run.run_dir, example))}</pre>
<h2>Provenance</h2>
<ul class="meta"><li>{" · ".join(meta)}</li>{sums}</ul>
<h2>Config</h2>
<pre>{esc(config_json)}</pre>
</body></html>
"""
    path.write_text(doc, encoding="utf-8")
    return path


def write_run_report(run_dir: str | Path, *, n_examples: int = 20) -> Path:
    """Write ``report.html`` into a finished run folder (what ``attnlab train --report`` and
    ``attnlab report RUN_DIR`` do); the file appears only complete.

    Raises:
        RunError: the folder is not a finished run.
        ValueError: the run's task has no report yet.
    """
    from attnlab.runs import load_run, read_history
    from attnlab.runs.folder import METRICS

    run = load_run(run_dir)
    if run.task.name != "text":
        raise ValueError(f"no report for {run.task.name!r} runs yet")
    saved = json.loads((run.run_dir / METRICS).read_text(encoding="utf-8"))
    test = run.task.load_splits(run.config.data, seed=run.config.train.seed).test
    test = test.relabel(run.labels)
    probs = run.predict_proba(test.texts)
    flat = {
        "test_acc": saved["test"]["accuracy"],
        "test_f1": saved["test"]["macro_f1"],
        "test_n": saved["test"]["n"],
        "confusion": saved["test"]["confusion"],
        "baseline": saved.get("baseline") or {},
        **{k: saved.get(k) for k in ("train_seconds", "best_epoch", "epochs_run", "parameters")},
    }
    tmp = run.run_dir / ".report.html.tmp"
    write_report(
        run, test, probs=probs, metrics=flat, history=read_history(run.run_dir),
        n_examples=n_examples, path=tmp,
    )  # fmt: skip
    final = run.run_dir / "report.html"
    tmp.replace(final)
    return final
