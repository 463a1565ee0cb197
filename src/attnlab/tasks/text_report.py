"""The report sections of a text-classification run (see :mod:`attnlab.tasks.sections`)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from attnlab.data.text import TextDataset
from attnlab.tasks import sections as S
from attnlab.tasks.sections import data_checksum

if TYPE_CHECKING:
    from attnlab.tasks.text import TextRun

__all__ = ["text_report_sections"]


def text_report_sections(
    run: TextRun, split: TextDataset, metrics: dict[str, Any], *, n_examples: int = 20
) -> list[S.Section]:
    """Accuracy and macro-F1 next to the TF-IDF baseline, per-class scores, curves, the
    confusion matrix, how to read attention pooling (with its caveat), about 20 test texts
    shaded in place, the commands that open the views, and data checksums."""
    test = split.relabel(run.labels)
    m, base = metrics["test"], metrics.get("baseline") or {}
    rows = [[run.config.model, f"{m['accuracy']:.2%}", f"{m['macro_f1']:.2%}"]]
    if base:
        rows.append(
            [
                f"{base['name']} (same split)",
                f"{base['accuracy']:.2%}",
                f"{base['macro_f1']:.2%}",
            ]
        )
    pc = m["per_class"]
    per_class = [
        [name, f"{pc['precision'][i]:.1%}", f"{pc['recall'][i]:.1%}", f"{pc['f1'][i]:.1%}",
         f"{pc['support'][i]:,}"]
        for i, name in enumerate(run.labels)
    ]  # fmt: skip
    preds = run.predict_proba(test.texts, batch_size=run.config.train.eval_batch_size).argmax(-1)
    idx = S.pick_examples(test.labels, preds.tolist(), n=n_examples, seed=run.config.train.seed)
    texts = [test.texts[i] for i in idx]
    encodings = run.tokenizer.tokenizer.encode_batch(texts)
    items = []
    for i, text, p, enc in zip(idx, texts, run.predict(texts), encodings, strict=True):
        truth = run.labels[test.labels[i]]
        offsets = [tuple(o) for o in enc.offsets] if len(enc.offsets) == len(p.weights) else None
        items.append(
            S.TextExample(
                text, p.tokens, p.weights, offsets, ok=p.label == truth,
                header=[("true", truth), ("predicted", f"{p.label} ({p.probability:.2f})")],
            )
        )  # fmt: skip
    example = min(texts, key=len) if texts and len(min(texts, key=len)) <= 100 else "a fine film"
    d, t = shlex.quote(str(run.run_dir)), shlex.quote(example)
    return [
        S.Table("Metrics", ["model", "test accuracy", "test macro-F1"], rows),
        S.Table("Per class (test)", ["class", "precision", "recall", "F1", "support"], per_class),
        S.Curves("acc", "accuracy"),
        S.Confusion(list(run.labels), m["confusion"]),
        S.Prose(
            "How to read the shading",
            [
                "The model turns the text into one vector per token and then attention "
                "pooling scores every token, turns the scores into weights that sum to 1 (a "
                "softmax) and classifies the weighted average of the token vectors. Below, "
                "each token of the original text is shaded by its pooling weight, relative "
                "to the text's heaviest token (hover for the value). Texts are read up to "
                f"{run.tokenizer.max_len} tokens; a greyed tail was not read.",
                "Caveat: the weights say where the pooling put its mass, not why the model "
                "chose its label. Other weightings can give the same prediction, and "
                "attention often disagrees with other measures of importance, so read the "
                "shading as a view of this model, not as an explanation of its decision.",
            ],
            links=[
                (
                    "Jain & Wallace 2019, Attention is not Explanation",
                    "https://aclanthology.org/N19-1357/",
                ),
                (
                    "Wiegreffe & Pinter 2019, Attention is not not Explanation",
                    "https://aclanthology.org/D19-1002/",
                ),
            ],
        ),
        S.TextExamples(
            "Where the model looked", items, f"{len(items)} test texts, right and wrong."
        ),
        S.Commands(
            "Open the interactive views",
            [
                "# one text: interactive head and model views (open the .html file)",
                f"attnlab viz {d} {t} --view head --out head.html",
                f"attnlab viz {d} {t} --view model --out model.html",
                "# type any text in the browser and see every view",
                f"attnlab explore {d}",
                "# the label and the most-weighted tokens; metrics with per-class scores",
                f"attnlab predict {d} {t}",
                f"attnlab eval {d}",
            ],
        ),
        S.Prose("Provenance", _checksums(run, test)),
    ]


def _checksums(run: TextRun, test: TextDataset) -> list[str]:
    def digest(ds: TextDataset) -> str:
        return data_checksum(
            [f"{ds.label_names[y]}\t{t}" for t, y in zip(ds.texts, ds.labels, strict=True)]
        )

    lines = [f"test split: {len(test):,} examples, sha256 {digest(test)}"]
    try:
        data = run.task.evaluation_data(run.config.data)
    except (OSError, ValueError) as e:  # a data file moved since training
        lines.insert(0, f"data {run.config.data.name}: not readable now ({e})")
    else:
        lines.insert(
            0,
            f"data {run.config.data.name}: {len(data):,} examples as loaded, sha256 {digest(data)}",
        )
    return lines
