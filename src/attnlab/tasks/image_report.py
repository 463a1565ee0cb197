"""How an image-classification run's metrics read on the command line and in its report
(see :mod:`attnlab.tasks.sections`)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from attnlab.tasks import sections as S

if TYPE_CHECKING:
    from attnlab.data.images import ImageDataset
    from attnlab.tasks.image import ImageRun

__all__ = ["baseline_runs", "format_image_metrics", "image_report_sections", "report_methods"]


def format_image_metrics(m: dict[str, Any], classes: list[str]) -> str:
    """``evaluate``'s metrics as lines for ``attnlab eval``."""
    width = max(8, *(len(c) for c in classes))
    pc = m["per_class"]
    lines = [
        f"accuracy: {m['accuracy']:.2%} ({m['n']} images)",
        f"macro-F1: {m['macro_f1']:.2%}",
        "per class:",
        f"  {'class':<{width}}  accuracy  precision      F1  support",
    ]
    for i, name in enumerate(classes):
        lines.append(
            f"  {name:<{width}}  {pc['accuracy'][i]:>8.1%}  {pc['precision'][i]:>9.1%}  "
            f"{pc['f1'][i]:>6.1%}  {pc['support'][i]:>7}"
        )
    lines.append("confusion (rows: true, columns: predicted):")
    lines.append(" " * (width + 2) + " ".join(f"{c[:8]:>8}" for c in classes))
    for name, row in zip(classes, m["confusion"], strict=True):
        lines.append(f"  {name:<{width}}" + " ".join(f"{v:>8}" for v in row))
    return "\n".join(lines)


def report_methods(methods: list[str]) -> list[str]:
    """The explanation methods a report draws (the cheap, informative ones that apply)."""
    keep = ("rollout", "grad-rollout", "attention", "cbam", "gradient")
    return [m for m in keep if m in methods]


def baseline_runs(run: ImageRun) -> list[tuple[str, dict[str, Any]]]:
    """``(folder, test metrics)`` of finished ``cnn`` runs on the same data beside this run
    (the no-attention baseline; read from their ``config.json`` and ``metrics.json``)."""
    found = []
    if run.config.model == "cnn":
        return found
    for folder in sorted(run.run_dir.resolve().parent.iterdir()):
        try:
            meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            cfg = meta.get("config", meta)
            if (
                meta.get("status") == "finished"
                and cfg.get("task") == "image"
                and cfg.get("model") == "cnn"
                and cfg.get("data", {}).get("name") == run.config.data.name
            ):
                m = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
                found.append((folder.name, m["test"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def _examples(run: ImageRun, split: ImageDataset, idx: list[int], probs, methods, ok=True):
    x = split.images[idx].float().div(255)  # (K, C, H, W)
    maps = {m: run.explain(x, m) for m in methods}
    items = []
    for k, i in enumerate(idx):
        y, p = int(split.labels[i]), int(probs[i].argmax())
        items.append(
            S.ImageExample(
                x[k], {m: v[k] for m, v in maps.items()}, ok=y == p,
                header=[("true", run.classes[y]),
                        ("predicted", f"{run.classes[p]} ({float(probs[i, p]):.2f})")],
            )
        )  # fmt: skip
    return items


def _worst_confusions(run, split, probs, confusion, methods, *, pairs: int = 5, per: int = 2):
    c = len(run.classes)
    off = [(confusion[t][p], t, p) for t in range(c) for p in range(c) if t != p]
    off = sorted((x for x in off if x[0] > 0), reverse=True)[:pairs]
    pred = probs.argmax(-1)
    idx: list[int] = []
    for _, t, p in off:
        hits = torch.nonzero((split.labels == t) & (pred == p)).flatten()
        conf = probs[hits, p]
        idx += hits[conf.argsort(descending=True)[:per]].tolist()
    rows = [[run.classes[t], run.classes[p], f"{n:,}"] for n, t, p in off]
    return rows, (_examples(run, split, idx, probs, methods) if idx else [])


def image_report_sections(
    run: ImageRun, split: ImageDataset, metrics: dict[str, Any], *, n_examples: int = 20
) -> list[S.Section]:
    """Accuracy next to the ``cnn`` baseline, per-class accuracy, curves, the confusion
    matrix, the worst confusions as images, overlays for ``n_examples`` test images (right
    and wrong), the faithfulness table when measured, and the commands that open views."""
    from attnlab.tasks.image import FAITHFULNESS

    m = metrics["test"]
    rows = [[run.config.model, f"{m['accuracy']:.2%}", f"{m['macro_f1']:.2%}", "this run"]]
    for folder, b in baseline_runs(run):
        rows.append(["cnn (no attention)", f"{b['accuracy']:.2%}", f"{b['macro_f1']:.2%}", folder])
    note = f"{m['n']:,} test images."
    if len(rows) == 1 and run.config.model != "cnn":
        note += (" Train the no-attention baseline beside this run to compare: attnlab train "
                 f"image --data {run.config.data.name} --model cnn.")  # fmt: skip
    pc = m["per_class"]
    per_class = [
        [name, f"{pc['accuracy'][i]:.1%}", f"{pc['precision'][i]:.1%}", f"{pc['f1'][i]:.1%}",
         f"{pc['support'][i]:,}"]
        for i, name in enumerate(run.classes)
    ]  # fmt: skip
    probs = run.predict_proba(split.images, batch_size=run.config.train.eval_batch_size)
    methods = report_methods(run.methods)
    pairs, worst = _worst_confusions(run, split, probs, m["confusion"], methods)
    idx = S.pick_examples(
        split.labels.tolist(), probs.argmax(-1).tolist(), n=n_examples, seed=run.config.train.seed
    )
    items = _examples(run, split, idx, probs, methods)
    d = shlex.quote(str(run.run_dir))
    sections: list[S.Section] = [
        S.Table("Metrics", ["model", "test accuracy", "test macro-F1", "run"], rows, note=note),
        S.Table("Per class (test)", ["class", "accuracy", "precision", "F1", "support"],
                per_class),
        S.Curves("acc", "accuracy"),
        S.Confusion(list(run.classes), m["confusion"]),
        S.Table("Worst confusions", ["true", "predicted as", "test images"], pairs),
        S.ImageExamples("Worst confusions, most confident first", worst,
                        "Up to two test images of each of the most frequent confusions."),
        S.Prose(
            "How to read the maps",
            [
                "Each map is drawn over the image, bright where it is high. 'gradient' is "
                "plain input-gradient saliency (how much each pixel changes the predicted "
                "class's score); 'cbam' averages the CBAM spatial attention of every stage; "
                "for a ViT, 'attention' is the [CLS] token's last-layer attention, 'rollout' "
                "multiplies every layer's attention with the residual connection (Abnar & "
                "Zuidema 2020) and 'grad-rollout' weights it by its gradient (Chefer et al. "
                "2021).",
                "A map shows where the model's attention or gradient went, not necessarily "
                "why it decided: the faithfulness test below (deletion and insertion curves) "
                "measures whether removing the pixels a map ranks first really changes the "
                "prediction more than removing random pixels.",
            ],
            links=[
                ("Abnar & Zuidema 2020, Quantifying Attention Flow in Transformers",
                 "https://arxiv.org/abs/2005.00928"),
                ("Chefer et al. 2021, Generic Attention-model Explainability",
                 "https://arxiv.org/abs/2103.15679"),
                ("Petsiuk et al. 2018, RISE (deletion and insertion)",
                 "https://arxiv.org/abs/1806.07421"),
            ],
        ),
        S.ImageExamples("Where the model looked", items,
                        f"{len(items)} test images, right and wrong."),
    ]  # fmt: skip
    faith = Path(run.run_dir) / FAITHFULNESS
    if faith.is_file():
        try:
            f = json.loads(faith.read_text(encoding="utf-8"))
            frows = [
                [r["method"], f"{r['deletion_auc']:.3f}", f"{r['insertion_auc']:.3f}",
                 f"{r['deletion_vs_random']:.2f}", f"{r['insertion_vs_random']:.2f}"]
                for r in f["rows"]
            ]  # fmt: skip
            sections.append(
                S.Table("Faithfulness (deletion: lower is better, insertion: higher)",
                        ["method", "deletion AUC", "insertion AUC", "del / random",
                         "ins / random"], frows,
                        note=f"{f['images']} test images, pixels removed or revealed "
                        f"{100 // int(f.get('steps', 10))} % at a time.")
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            pass
    sections.append(
        S.Commands(
            "Open the views",
            [
                "# label and probability of your own images (converted to the run's shape)",
                f"attnlab predict {d} image.png",
                f"# an overlay of one method ({', '.join(run.methods)}), or every method in HTML",
                f"attnlab viz {d} image.png --method {methods[0]} --out map.png",
                f"attnlab viz {d} image.png --out map.html",
                "# deletion / insertion faithfulness of every method on test images",
                f"attnlab explain {d} --faithfulness",
                f"attnlab eval {d}",
            ],
        )
    )
    return sections
