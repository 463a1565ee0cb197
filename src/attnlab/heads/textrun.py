"""Adapters between the head methods and today's text-classification run folders.

Everything run-folder specific lives here (loading a run and its splits, an
:class:`~attnlab.heads.Objective` from a text data set, the special token ids, writing
a pruned run folder), so the rest of :mod:`attnlab.heads` only sees an ``nn.Module``.

Example:
    >>> from attnlab.heads import gradient_importance
    >>> from attnlab.heads.textrun import load_text_run, run_split, text_objective
    >>> run = load_text_run("runs/mr-minilm")                  # doctest: +SKIP
    >>> val = text_objective(run, run_split(run, "val"))       # doctest: +SKIP
    >>> gradient_importance(run.model, val).ranking()[:3]      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.heads.objective import Objective, accuracy_metric

__all__ = [
    "SPLITS",
    "load_text_run",
    "run_split",
    "save_pruned_run",
    "special_tokens",
    "text_objective",
]

SPLITS = ("train", "val", "test")


def load_text_run(run_dir: str | Path):
    """The text run folder as a ``TextRun`` (``.model``, ``.config``, ``.tokenizer``,
    ``.labels``)."""
    from attnlab.runs import load_run

    return load_run(run_dir, task="text")


def run_split(run, split: str = "val", *, data: str | None = None, limit: int | None = None):
    """A split of the run's own data, or all of another data set/file (``data``).

    Args:
        run: a loaded run.
        split: ``"train"``, ``"val"`` or ``"test"`` of the run's data (same seed, so the
            same examples it was trained and evaluated on).
        data: another packaged data set or file instead (all of its rows).
        limit: keep only ``limit`` examples, evenly spaced (splits are in data-set
            order, which is often sorted by class).

    Returns:
        A ``TextDataset`` labelled with the run's label names.
    """
    from attnlab.data import load_data

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cfg = run.config
    if data is None or data == cfg.data.name:
        parts = run.task.load_splits(cfg.data, seed=cfg.train.seed)
        ds = {"train": parts.train, "val": parts.val, "test": parts.test}[split]
    else:
        d = cfg.data
        ds = load_data(data, text_column=d.text_column, label_column=d.label_column)
    ds = ds.relabel(run.labels)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if limit < len(ds):
            ds = ds.subset([i * len(ds) // limit for i in range(limit)])
    return ds


def text_objective(run, data, *, batch_size: int = 32) -> Objective:
    """Cross-entropy and accuracy of a text classifier on ``data``.

    The texts are tokenized once and batched by length (deterministic), so repeated
    scoring of many pruned variants costs only their forward passes.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = run.tokenizer.ids(data.texts)
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        inputs = run.tokenizer.pad([ids[i] for i in idx])
        labels = torch.tensor([data.labels[i] for i in idx], dtype=torch.long)
        batches.append((inputs, labels))

    def forward(model: nn.Module, batch: Any):
        device = next(model.parameters()).device
        return model(**{k: v.to(device) for k, v in batch[0].items()})

    def loss(logits, batch):
        return nn.functional.cross_entropy(
            logits.float(), batch[1].to(logits.device), reduction="none"
        )

    return Objective(
        batches=batches,
        forward=forward,
        loss=loss,
        metric=accuracy_metric(batches, forward, lambda b: b[1]),
        token_ids=lambda b: b[0]["input_ids"],
        metric_name="accuracy",
    )


def special_tokens(run) -> dict[str, int]:
    """The ids of ``[CLS]``, ``[SEP]`` and ``[PAD]`` in the run's tokenizer (those it has)."""
    tok = run.tokenizer.tokenizer
    out = {}
    for name in ("[CLS]", "[SEP]", "<s>", "</s>"):
        tid = tok.token_to_id(name)
        if tid is not None:
            out[name] = tid
    out["[PAD]"] = run.tokenizer.pad_id
    return out


def _compose(previous: Sequence[Sequence[int]] | None, kept: Sequence[Sequence[int]]):
    """Kept heads of the current model, in the numbering of the original unpruned one."""
    if previous is None:
        return [list(k) for k in kept]
    return [[prev[h] for h in k] for prev, k in zip(previous, kept, strict=True)]


def save_pruned_run(
    run,
    model: nn.Module,
    kept: Sequence[Sequence[int]],
    out_dir: str | Path,
    *,
    metrics: dict | None = None,
) -> Path:
    """Write ``model`` (pruned from ``run.model`` keeping ``kept``) as a run folder.

    The kept heads go into the model config (``kept_heads``), so loading the folder
    builds the preset, prunes it the same way and then loads the weights. The folder is
    written aside and renamed into place: it appears only complete.

    Args:
        run: the run the model was pruned from.
        model: the physically pruned model.
        kept: per attention layer, the heads kept (numbering of ``run.model``).
        out_dir: the new run folder; must not exist yet.
        metrics: written as ``metrics.json``.

    Raises:
        ValueError: ``out_dir`` exists, or the preset cannot record pruned heads.
    """
    from attnlab.runs import save_run

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ValueError(f"{out_dir} already exists; choose another --out or remove it")
    cfg = run.config
    fields = {f.name for f in dataclasses.fields(cfg.model_config)}
    if "kept_heads" not in fields:
        raise ValueError(
            f"model {cfg.model!r} has no kept_heads field in its config: its pruned "
            "heads cannot be saved"
        )
    previous = cfg.model_config.kept_heads
    model_config = dataclasses.replace(cfg.model_config, kept_heads=_compose(previous, kept))
    config = dataclasses.replace(cfg, model_config=model_config)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private
        if metrics is not None:
            text = json.dumps(metrics, indent=2) + "\n"
            (tmp / "metrics.json").write_text(text, encoding="utf-8")
        save_run(
            tmp, task=run.task, config=config, model=model, artifacts=run.artifacts, dims=run.dims
        )
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
