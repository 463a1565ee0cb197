"""Text classification: a text in, one of C labels out.

Data: packaged data sets (``mr``, ``sms-spam``, ``trec``, ``zh-reviews``) or a user's
CSV/TSV/JSONL file, split with a seeded stratified split; a tokenizer trained on the
training split (or a pretrained model's); presets take ``input_ids (B, T)`` and
``lengths (B,)`` and return logits ``(B, C)``.

Example:
    >>> from attnlab.runs import load_run
    >>> run = load_run("runs/demo")  # doctest: +SKIP
    >>> run.predict(["a gorgeous, witty film"])[0].label  # doctest: +SKIP
    'positive'
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attnlab.data.batching import collate_tokens
from attnlab.data.datasets import DATASETS, load_data
from attnlab.data.text import Splits as TextSplits
from attnlab.data.text import TextDataset
from attnlab.data.tokenizers import KINDS, TextTokenizer, train_tokenizer
from attnlab.layers.core import WeightsTap
from attnlab.models.pretrained import PRETRAINED, pretrained_dir
from attnlab.models.text import TextDims
from attnlab.tasks.base import Run, Splits, StepOutput, Task

__all__ = ["TASK", "Prediction", "TextArtifacts", "TextClassification", "TextData", "TextRun"]

LABELS = "labels.json"


@dataclass(frozen=True)
class TextData:
    """Data settings of a text-classification run.

    Attributes:
        name: packaged data set (``attnlab data list``) or a .csv/.tsv/.jsonl file.
        test_file: separate test file (otherwise the test split of ``name``).
        text_column: text column (or JSON key) of data files.
        label_column: label column of data files.
        max_len: tokens kept per text (longer texts are truncated, and said so).
        tokenizer: ``"wordpiece"``, ``"bpe"``, ``"char"``, ``"auto"`` (BPE; characters for
            Chinese) or a packaged pretrained model's (``"minilm"``).
        vocab_size: vocabulary of a trained tokenizer.
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for the test.
    """

    name: str = "mr"
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    max_len: int = 64
    tokenizer: str = "auto"
    vocab_size: int = 8000
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        for field_name in ("max_len", "vocab_size"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be >= 1, got {getattr(self, field_name)}")
        choices = ("auto", *KINDS, *PRETRAINED)
        if self.tokenizer not in choices:
            raise ValueError(
                f"tokenizer must be one of {', '.join(choices)}, got {self.tokenizer!r}"
            )


@dataclass
class TextArtifacts:
    """What a text run derives from its training data: the tokenizer and the label names."""

    tokenizer: TextTokenizer
    labels: list[str]
    language: str = "en"


@dataclass
class Prediction:
    """One text's prediction: label, its probability, and the pooling weight per token."""

    text: str
    label: str
    probability: float
    probs: list[float]
    tokens: list[str]
    weights: list[float]
    truncated: bool = False

    def top_tokens(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most-attended tokens with their weights, highest first."""
        order = sorted(range(len(self.tokens)), key=lambda i: -self.weights[i])[:k]
        return [(self.tokens[i], self.weights[i]) for i in order]


def language_of(data: TextData, texts: Sequence[str]) -> str:
    """``"zh"`` for Chinese data (packaged, or mostly CJK characters), else ``"en"``."""
    if data.name in DATASETS:
        return DATASETS[data.name].language
    sample = "".join(texts[:200])
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in sample)
    return "zh" if sample and cjk / len(sample) > 0.3 else "en"


class TextRun(Run):
    """A trained text classifier (see :class:`~attnlab.tasks.base.Run`).

    Attributes:
        tokenizer: its :class:`TextTokenizer`.
        labels: class names, in logit order.
    """

    @property
    def tokenizer(self) -> TextTokenizer:
        return self.artifacts.tokenizer

    @tokenizer.setter
    def tokenizer(self, value: TextTokenizer) -> None:
        """Read texts with another tokenizer of the same vocabulary (e.g. another length)."""
        if value.vocab_size != self.artifacts.tokenizer.vocab_size:
            raise ValueError(
                f"a tokenizer of {value.vocab_size} tokens cannot replace the run's "
                f"{self.artifacts.tokenizer.vocab_size}"
            )
        self.artifacts = dataclasses.replace(self.artifacts, tokenizer=value)

    @property
    def labels(self) -> list[str]:
        return self.artifacts.labels

    def encode(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """``{"input_ids": (B, T), "lengths": (B,)}``: what ``model`` takes."""
        return {k: v.to(self.device) for k, v in self.tokenizer.encode(texts).items()}

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The token strings each row of :meth:`encode` holds, padding stripped."""
        return self.tokenizer.tokens(texts)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 128) -> Tensor:
        """Class probabilities ``(B, C)``."""
        _check_texts(texts)
        out = [
            torch.softmax(self.model(**self.encode(texts[i : i + batch_size])).float(), -1).cpu()
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, len(self.labels))

    @torch.no_grad()
    def predict(self, texts: Sequence[str], *, batch_size: int = 128) -> list[Prediction]:
        """Label, probability and per-token attention-pooling weights for each text.

        Raises:
            ValueError: an empty (or blank) text.
        """
        _check_texts(texts)
        result = []
        for i in range(0, len(texts), batch_size):
            chunk = list(texts[i : i + batch_size])
            inputs = self.encode(chunk)
            logits, weights = pooling_weights(self.model, inputs)
            probs = torch.softmax(logits.float(), -1).cpu()
            cut = self.tokenizer.truncated(chunk)
            for text, toks, p, w, n, over in zip(
                chunk, self.tokens(chunk), probs, weights.cpu(), inputs["lengths"].tolist(), cut,
                strict=True,
            ):  # fmt: skip
                k = int(p.argmax())
                result.append(
                    Prediction(
                        text, self.labels[k], float(p[k]), p.tolist(), toks, w[:n].tolist(), over
                    )
                )
        return result


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise ValueError(f"text {i} is empty")


def pooling_weights(model: nn.Module, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Run ``model(**inputs)`` and record its attention-pooling weights on the way.

    Returns:
        ``(logits (B, C), weights (B, T))``.

    Raises:
        ValueError: the model has no attention pooling.
    """
    pool = getattr(model, "pool", None)
    taps = [m for m in pool.modules() if isinstance(m, WeightsTap)] if pool is not None else []
    if not taps:
        raise ValueError(f"{type(model).__name__} has no attention pooling (model.pool) to read")
    seen: list[Tensor] = []
    handle = taps[0].register_forward_hook(lambda mod, args, out: seen.append(out.detach()))
    try:
        logits = model(**inputs)
    finally:
        handle.remove()
    b, t = inputs["input_ids"].shape
    return logits, seen[-1].reshape(b, t)  # the pooling tap gives (B, 1, 1, T)


class _Encoded(Sequence):
    """Token ids with labels (a map-style data set)."""

    def __init__(self, ids: list[list[int]], labels: list[int]) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


class TextClassification(Task):
    """The text-classification task (accuracy picks the best epoch)."""

    name = "text"
    data_config = TextData
    default_model = "bilstm-attn"
    monitor = "val_acc"
    monitor_mode = "max"
    run_class = TextRun

    def default_overrides(self, data: str, model: str) -> list[str]:
        if data == "zh-reviews" and model != "minilm":
            # Characters, and MiniLM's English vectors carry little for Chinese characters.
            return ["data.max_len=160", "data.vocab_size=6000", "model.embeddings=random"]
        return []

    # -- data -----------------------------------------------------------------------------
    def load_splits(self, data: TextData, *, seed: int) -> TextSplits:
        kw = {"text_column": data.text_column, "label_column": data.label_column}
        full = load_data(data.name, **kw)
        if data.test_file is None:
            splits = full.split(seed=seed, val=data.val_fraction, test=data.test_fraction)
        else:
            parts = full.split(seed=seed, val=data.val_fraction, test=0.0)
            test = load_data(data.test_file, **kw).relabel(full.label_names)
            splits = TextSplits(parts.train, parts.val, test)
        sizes = {k: len(getattr(splits, k)) for k in ("train", "val", "test")}
        empty = [k for k, n in sizes.items() if n == 0]
        if empty:
            raise ValueError(
                f"{data.name} has {len(full)} examples: too few for the splits "
                f"({', '.join(f'{k} {n}' for k, n in sizes.items())}); each split needs at least "
                "one example per class, so add data or raise data.val_fraction/test_fraction"
            )
        return splits

    def build_artifacts(self, data: TextData, splits: Splits, *, seed: int, log: Callable):
        train: TextDataset = splits.train
        language = language_of(data, train.texts)
        if data.tokenizer in PRETRAINED:
            tok = TextTokenizer.load(pretrained_dir(data.tokenizer), max_len=data.max_len)
        else:
            kind = (
                data.tokenizer
                if data.tokenizer != "auto"
                else ("char" if language == "zh" else "bpe")
            )
            tok = train_tokenizer(
                train.texts, kind=kind, vocab_size=data.vocab_size, max_len=data.max_len
            )
        return TextArtifacts(tok, list(train.label_names), language)

    def save_artifacts(self, artifacts: TextArtifacts, folder: Path) -> list[str]:
        artifacts.tokenizer.save(folder)
        meta = {"labels": artifacts.labels, "language": artifacts.language}
        (folder / LABELS).write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
        return ["tokenizer.json", LABELS]

    def load_artifacts(self, data: TextData, folder: Path) -> TextArtifacts:
        path = folder / LABELS
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            labels, language = meta["labels"], meta.get("language", "en")
            if not (isinstance(labels, list) and len(labels) >= 2):
                raise ValueError
            labels = [str(x) for x in labels]
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: not a label file written by attnlab") from None
        tok = TextTokenizer.load(folder, max_len=data.max_len)
        return TextArtifacts(tok, labels, str(language))

    def dims(self, artifacts: TextArtifacts) -> TextDims:
        return TextDims(
            vocab_size=artifacts.tokenizer.vocab_size, num_classes=len(artifacts.labels)
        )

    def dataset(self, split: TextDataset, artifacts: TextArtifacts, data: TextData) -> _Encoded:
        return _Encoded(artifacts.tokenizer.ids(split.texts), list(split.labels))

    def collate(self, artifacts: TextArtifacts):
        return partial(collate_tokens, pad_id=artifacts.tokenizer.pad_id)

    def lengths(self, dataset: _Encoded) -> list[int]:
        return [len(x) for x in dataset.ids]

    # -- training -------------------------------------------------------------------------
    def init_model(self, model: nn.Module, artifacts: TextArtifacts, data, *, log) -> None:
        source = getattr(getattr(model, "config", None), "embeddings", "random")
        if source == "random" or not hasattr(model, "embed"):
            return
        from attnlab.models.pretrained import token_embeddings
        from attnlab.models.text import load_embeddings

        log(f"token embeddings from the pretrained {source} encoder...")
        note = load_embeddings(model.embed, token_embeddings(artifacts.tokenizer.vocab(), source))
        if note:
            log(note)

    def metrics(self, dims: TextDims) -> dict[str, Any]:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        return {
            "acc": MulticlassAccuracy(dims.num_classes, average="micro"),
            "f1": MulticlassF1Score(dims.num_classes, average="macro"),
        }

    def step(self, model: nn.Module, batch: dict[str, Tensor], *, label_smoothing: float):
        logits = model(batch["input_ids"], batch["lengths"])  # (B, C)
        loss = F.cross_entropy(logits.float(), batch["labels"], label_smoothing=label_smoothing)
        return StepOutput(loss, logits.detach(), batch["labels"], len(batch["labels"]))

    def example_batch(self, dims: TextDims, *, size: int = 3, seed: int = 0) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        t = 9
        lengths = torch.tensor([max(1, t - 3 * i) for i in range(size)])  # (B,)
        ids = torch.randint(1, dims.vocab_size, (size, t), generator=g)  # (B, T)
        ids[torch.arange(t)[None] >= lengths[:, None]] = 0
        labels = torch.randint(0, dims.num_classes, (size,), generator=g)
        return {"input_ids": ids, "lengths": lengths, "labels": labels}

    # -- after training -------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, run: TextRun, split: TextDataset) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix
        (rows: true, columns: predicted) of ``run`` on ``split`` (relabelled to the run's
        label names)."""
        from torchmetrics.functional.classification import (
            multiclass_accuracy,
            multiclass_confusion_matrix,
            multiclass_f1_score,
            multiclass_precision,
            multiclass_recall,
        )

        split = split.relabel(run.labels)
        c = len(run.labels)
        probs = run.predict_proba(split.texts, batch_size=run.config.train.eval_batch_size)
        y = torch.tensor(split.labels, dtype=torch.long)
        pred = probs.argmax(-1)
        per_class = {
            "precision": multiclass_precision(pred, y, c, average=None).tolist(),
            "recall": multiclass_recall(pred, y, c, average=None).tolist(),
            "f1": multiclass_f1_score(pred, y, c, average=None).tolist(),
            "support": torch.bincount(y, minlength=c).tolist(),
        }
        return {
            "n": len(split),
            "accuracy": float(multiclass_accuracy(pred, y, c, average="micro")),
            "macro_f1": float(multiclass_f1_score(pred, y, c, average="macro")),
            "per_class": per_class,
            "confusion": multiclass_confusion_matrix(pred, y, c).tolist(),
        }

    def evaluation_data(self, data: TextData) -> TextDataset:
        return load_data(data.name, text_column=data.text_column, label_column=data.label_column)

    def format_metrics(self, metrics: dict[str, Any], run: TextRun) -> str:
        labels = run.labels
        width = max(8, *(len(x) for x in labels))
        lines = [f"accuracy: {metrics['accuracy']:.2%}", f"macro-F1: {metrics['macro_f1']:.2%}"]
        pc = metrics["per_class"]
        lines.append("per class:")
        lines.append(f"  {'class':<{width}}  precision  recall      F1  support")
        for i, name in enumerate(labels):
            lines.append(
                f"  {name:<{width}}  {pc['precision'][i]:>9.1%}  {pc['recall'][i]:>6.1%}  "
                f"{pc['f1'][i]:>6.1%}  {pc['support'][i]:>7}"
            )
        lines.append("confusion (rows: true, columns: predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{x[:8]:>8}" for x in labels))
        for name, row in zip(labels, metrics["confusion"], strict=True):
            lines.append(f"  {name:<{width}}" + " ".join(f"{v:>8}" for v in row))
        return "\n".join(lines)

    def baseline(self, data: TextData, splits: TextSplits, *, seed: int) -> dict[str, Any]:
        """TF-IDF (word 1-2 grams; character 1-3 grams for Chinese) + logistic regression."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score

        test = splits.test.relabel(splits.train.label_names)
        if language_of(data, splits.train.texts) == "zh":
            vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
        else:
            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        clf = LogisticRegression(C=4.0, max_iter=2000, random_state=seed)
        clf.fit(vec.fit_transform(splits.train.texts), list(splits.train.labels))
        pred = clf.predict(vec.transform(test.texts))
        return {
            "name": "TF-IDF + logistic regression",
            "accuracy": float(accuracy_score(test.labels, pred)),
            "macro_f1": float(f1_score(test.labels, pred, average="macro")),
        }

    def report_sections(
        self, run: TextRun, split: TextDataset, metrics: dict[str, Any], *, n_examples: int = 20
    ) -> list:
        """Accuracy and macro-F1 next to the TF-IDF baseline, per-class scores, curves, the
        confusion matrix, how to read attention pooling (with its caveat), about 20 test
        texts shaded in place, the commands that open the views, and data checksums."""
        from attnlab.tasks.text_report import text_report_sections

        return text_report_sections(run, split, metrics, n_examples=n_examples)

    def summary(self, metrics: dict[str, Any]) -> str:
        line = f"test accuracy: {metrics['accuracy']:.2%}  (macro-F1 {metrics['macro_f1']:.2%}, "
        line += f"{metrics['n']} examples"
        base = metrics.get("baseline")
        if base:
            line += f"; {base['name'].replace(' + logistic regression', ' + LR')} baseline {base['accuracy']:.2%}"
        return line + ")"


TASK = TextClassification()
