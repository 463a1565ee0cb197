"""The run report: one self-contained ``report.html`` (no network needed to view it).

It holds the metrics next to a TF-IDF + logistic-regression baseline trained on the same
split, training/validation curves, the confusion matrix, about 20 test sentences (right and
wrong) with every token shaded by its attention-pooling weight, and the run's config.
The curves and confusion matrix are also written as PNG and SVG beside it.

Example:
    >>> from attnlab.viz.report import write_report
    >>> write_report(run, test_split, probs=probs, metrics=metrics, history=history)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["pick_examples", "render_tokens", "write_report", "write_run_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.5rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0} td,th{padding:.3rem .6rem;border:1px solid #ddd;
text-align:left;vertical-align:top} th{background:#f5f5f5}
.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176d2b;font-weight:600} .bad{color:#b00020;font-weight:600}
.tok{border-radius:3px;padding:0 1px} .special{color:#999;font-size:.8em}
.ex{max-width:700px} figure{display:inline-block;margin:0 1rem 1rem 0} img{max-width:520px}
pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.85rem}
.note{color:#666;font-size:.9rem}
"""


def _cjk(s: str) -> bool:
    return len(s) == 1 and "\u3000" <= s <= "\u9fff"


def render_tokens(tokens: Sequence[str], weights: Sequence[float]) -> str:
    """HTML for one sentence: each token in a span shaded by its weight (relative to the
    sentence's largest), with the exact weight in its title."""
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
        alpha = 0.0 if top <= 0 else w / top
        cls = "tok special" if tok in ("[CLS]", "[SEP]") else "tok"
        parts.append(
            (" " if space else "")
            + f'<span class="{cls}" style="background:rgba(255,140,0,{alpha:.2f})" '
            f'title="{w:.3f}">{html.escape(text)}</span>'
        )
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


def _save(fig, out: Path, stem: str) -> str:
    """Save ``fig`` as PNG and SVG next to the report; return the PNG as a data URI."""
    fig.savefig(out / f"{stem}.png", dpi=110, bbox_inches="tight")
    fig.savefig(out / f"{stem}.svg", bbox_inches="tight")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _curves(history: list[dict[str, Any]], out: Path) -> str | None:
    import matplotlib.pyplot as plt

    if not history:
        return None
    epochs = [h["epoch"] + 1 for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("loss", "acc"), strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            ys = [h.get(f"{split}_{metric}") for h in history]
            pts = [(e, y) for e, y in zip(epochs, ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=split, markersize=4)
        ax.set_xlabel("epoch")
        ax.set_title("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    uri = _save(fig, out, "curves")
    plt.close(fig)
    return uri


def _confusion(confusion: list[list[int]], labels: Sequence[str], out: Path) -> str:
    import matplotlib.pyplot as plt

    c = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * c, 1.0 + 0.7 * c))
    ax.imshow(confusion, cmap="Blues")
    top = max(max(r) for r in confusion) or 1
    for i in range(c):
        for j in range(c):
            v = confusion[i][j]
            ax.text(
                j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black"
            )
    ax.set_xticks(range(c), labels, rotation=45, ha="right")
    ax.set_yticks(range(c), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (test)")
    fig.tight_layout()
    uri = _save(fig, out, "confusion")
    plt.close(fig)
    return uri


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
        metrics: the run's metrics (``test_acc``, ``test_f1``, ``confusion``, ``baseline``...).
        history: per-epoch logged metrics (``train_loss``, ``val_acc``...).
        n_examples: test sentences shown with attention shading.
        path: output file (default ``run.run_dir / "report.html"``).

    Returns:
        The report path.
    """
    import matplotlib

    matplotlib.use("Agg")
    path = Path(path) if path is not None else run.run_dir / "report.html"
    out = path.parent
    out.mkdir(parents=True, exist_ok=True)
    labels = run.labels
    preds = probs.argmax(-1).tolist()
    idx = pick_examples(test.labels, preds, n=n_examples, seed=run.config.train.seed)
    predictions = run.predict([test.texts[i] for i in idx])

    curves = _curves(history, out)
    confusion = _confusion(metrics["confusion"], labels, out)
    base = metrics.get("baseline", {})
    esc = html.escape
    title = f"{run.config.model} on {run.config.data.name}"

    rows = []
    for i, p in zip(idx, predictions, strict=True):
        truth = labels[test.labels[i]]
        ok = p.label == truth
        rows.append(
            f'<tr><td class="{"ok" if ok else "bad"}">{"right" if ok else "wrong"}</td>'
            f"<td>{esc(truth)}</td><td>{esc(p.label)}</td>"
            f'<td class="num">{p.probability:.2f}</td>'
            f'<td class="ex">{render_tokens(p.tokens, p.weights)}</td></tr>'
        )
    config_json = json.dumps(run.config.to_dict(), indent=2)
    m = metrics
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>attnlab report: {esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>attnlab report: {esc(title)}</h1>
<p class="note">Held-out test split: {m.get("test_n", len(test))} examples.
Training took {m.get("train_seconds", 0):.0f} s; best validation accuracy at epoch
{m.get("best_epoch", "?")} of {m.get("epochs_run", "?")}. {m.get("parameters", 0) / 1e6:.2f} M parameters.</p>
<h2>Metrics</h2>
<table><tr><th>model</th><th>test accuracy</th><th>test macro-F1</th></tr>
<tr><td>{esc(run.config.model)}</td><td class="num">{m["test_acc"]:.2%}</td>
<td class="num">{m["test_f1"]:.2%}</td></tr>
<tr><td>{esc(base.get("name", "baseline"))} (same split)</td>
<td class="num">{base.get("accuracy", float("nan")):.2%}</td>
<td class="num">{base.get("macro_f1", float("nan")):.2%}</td></tr></table>
<h2>Training</h2>
{f'<figure><img alt="training and validation curves" src="{curves}"></figure>' if curves else ""}
<figure><img alt="confusion matrix" src="{confusion}"></figure>
<h2>Where the model looked</h2>
<p class="note">{len(rows)} test sentences, right and wrong. Each token is shaded by its
attention-pooling weight (darker = more weight, relative to the sentence's largest;
hover for the value).</p>
<table><tr><th></th><th>true</th><th>predicted</th><th>p</th><th>sentence</th></tr>
{"".join(rows)}
</table>
<h2>Config</h2>
<pre>{esc(config_json)}</pre>
</body></html>
"""
    path.write_text(doc, encoding="utf-8")
    return path


def write_run_report(run_dir: str | Path, *, n_examples: int = 20) -> Path:
    """Write ``report.html`` into a finished run folder (what ``attnlab train --report`` and
    ``attnlab report RUN_DIR`` do).

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
