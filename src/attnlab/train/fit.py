"""Train and evaluate a text classifier end to end: data -> tokenizer -> model -> Lightning
-> run folder (-> report).

Example:
    >>> from attnlab.train import make_config, train_text
    >>> result = train_text(make_config("mr", "bilstm-attn"), "runs/demo")  # doctest: +SKIP
    >>> result.metrics["test_acc"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from attnlab.data.batching import BucketBatchSampler, EncodedDataset, collate
from attnlab.data.datasets import DATASETS, load_data
from attnlab.data.text import Splits, TextDataset
from attnlab.data.tokenizers import TextTokenizer, train_tokenizer
from attnlab.models.pretrained import PRETRAINED, pretrained_dir
from attnlab.models.registry import create_model
from attnlab.models.text import TextDims
from attnlab.train.config import RunConfig
from attnlab.train.run import CONFIG, Run, load_run, save_run

__all__ = ["TrainResult", "evaluate", "load_splits", "train_text"]

RESUME = "checkpoints/last.ckpt"


@dataclass
class TrainResult:
    """What :func:`train_text` produced."""

    run_dir: Path
    metrics: dict[str, Any]
    report: Path | None = None
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def language_of(config: RunConfig, data: TextDataset) -> str:
    """``"zh"`` for Chinese data (packaged, or mostly CJK characters), else ``"en"``."""
    if config.data in DATASETS:
        return DATASETS[config.data].language
    sample = "".join(data.texts[:200])
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in sample)
    return "zh" if sample and cjk / len(sample) > 0.3 else "en"


def load_splits(config: RunConfig) -> Splits:
    """The run's train/val/test split (deterministic from the config's seed)."""
    t = config.train
    data = load_data(config.data, text_column=config.text_column, label_column=config.label_column)
    if config.test_data is None:
        return data.split(seed=t.seed, val=t.val_fraction, test=t.test_fraction)
    parts = data.split(seed=t.seed, val=t.val_fraction, test=0.0)
    test = load_data(
        config.test_data, text_column=config.text_column, label_column=config.label_column
    )
    return Splits(parts.train, parts.val, test.relabel(data.label_names))


def make_tokenizer(config: RunConfig, train: TextDataset, language: str) -> TextTokenizer:
    t = config.train
    if t.tokenizer in PRETRAINED:
        return TextTokenizer.load(pretrained_dir(t.tokenizer), max_len=t.max_len)
    kind = t.tokenizer if t.tokenizer != "auto" else ("char" if language == "zh" else "wordpiece")
    return train_tokenizer(train.texts, kind=kind, vocab_size=t.vocab_size, max_len=t.max_len)


def _loader(tok: TextTokenizer, data: TextDataset, batch: int, *, shuffle: bool, seed: int):
    ids = tok.ids(data.texts)
    sampler = BucketBatchSampler([len(x) for x in ids], batch, shuffle=shuffle, seed=seed)
    return DataLoader(
        EncodedDataset(ids, data.labels),
        batch_sampler=sampler,
        collate_fn=lambda items: collate(items, tok.pad_id),
    )


@torch.no_grad()
def evaluate(run: Run, data: TextDataset, *, batch_size: int = 128) -> dict[str, Any]:
    """Accuracy, macro-F1 and confusion matrix (rows: true, columns: predicted).

    ``data`` must use the run's label names (see :meth:`TextDataset.relabel`).
    """
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
    )

    c = len(run.labels)
    probs = run.predict_proba(data.texts, batch_size=batch_size)
    y = torch.tensor(data.labels, dtype=torch.long)
    pred = probs.argmax(-1)
    return {
        "n": len(data),
        "accuracy": float(multiclass_accuracy(pred, y, c, average="micro")),
        "macro_f1": float(multiclass_f1_score(pred, y, c, average="macro")),
        "confusion": multiclass_confusion_matrix(pred, y, c).tolist(),
        "probs": probs,
    }


def _read_history(run_dir: Path) -> list[dict[str, Any]]:
    import csv

    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return []
    by_epoch: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            epoch = int(row["epoch"])
            entry = by_epoch.setdefault(epoch, {"epoch": epoch})
            for k, v in row.items():
                if v not in ("", None) and k not in ("epoch", "step"):
                    entry[k] = float(v)
    return [by_epoch[k] for k in sorted(by_epoch)]


def _merge_logs(log_file: Path, earlier: str) -> None:
    """Put back the epochs logged before a resume (CSVLogger starts a new file)."""
    import csv
    import io

    old = list(csv.DictReader(io.StringIO(earlier)))
    new = list(csv.DictReader(io.StringIO(log_file.read_text(encoding="utf-8"))))
    if not new:
        return
    first = min(int(r["epoch"]) for r in new)
    rows = [r for r in old if int(r["epoch"]) < first] + new
    fields = list(dict.fromkeys([*(old[0].keys() if old else []), *new[0].keys()]))
    with open(log_file, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _restore_sigint() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def train_text(
    config: RunConfig,
    run_dir: str | Path,
    *,
    report: bool = False,
    resume: bool = False,
    progress: bool = True,
    log=print,
    callbacks: list | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data``, save the run, evaluate on the test split.

    Args:
        config: the run config (see :func:`make_config`).
        run_dir: output folder (weights, config, tokenizer, logs, metrics, report).
        report: also write ``report.html`` with figures.
        resume: continue the interrupted run in ``run_dir`` (its saved config wins).
        progress: show Lightning's progress bar.
        log: where status lines go.
        callbacks: extra Lightning callbacks.

    An existing run folder is overwritten unless ``resume`` is set.

    Raises:
        FileNotFoundError: ``resume`` with no interrupted run in ``run_dir``.
        KeyboardInterrupt: training was interrupted (resume it with ``resume=True``).
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from attnlab.train.module import BestWeights, TextClassifierModule

    start = time.perf_counter()
    run_dir = Path(run_dir)
    ckpt = run_dir / RESUME
    if resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"nothing to resume in {run_dir}: {RESUME} is missing")
        meta = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
        epochs = config.train.epochs
        config = RunConfig.from_dict(meta["config"])
        if epochs != config.train.epochs:
            log(f"resuming with the saved config of {run_dir} (epochs={config.train.epochs})")
    else:
        for stale in ("checkpoints", "logs"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    L.seed_everything(t.seed, verbose=False)

    splits = load_splits(config)
    language = language_of(config, splits.train)
    log(
        f"data {config.data}: {len(splits.train)} train / {len(splits.val)} val / "
        f"{len(splits.test)} test, classes {', '.join(splits.train.label_names)}"
    )
    tokenizer = (
        TextTokenizer.load(run_dir, max_len=t.max_len)
        if resume
        else make_tokenizer(config, splits.train, language)
    )
    labels = splits.train.label_names
    model = create_model(
        config.model,
        config.model_config,
        dims=TextDims(vocab_size=tokenizer.vocab_size, num_classes=len(labels)),
    )
    source = getattr(config.model_config, "embeddings", "random")
    if source != "random" and not resume:
        from attnlab.models.pretrained import token_embeddings
        from attnlab.models.text import load_embeddings

        log(f"token embeddings from the pretrained {source} encoder...")
        load_embeddings(model.embed, token_embeddings(tokenizer.vocab(), source))
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"model {config.model}: {n_params / 1e6:.2f} M parameters, vocabulary {tokenizer.vocab_size}"
    )
    # The config and tokenizer are written first so that an interrupted run can resume.
    save_run(
        run_dir,
        model=model,
        config=config,
        tokenizer=tokenizer,
        labels=labels,
        vocab_size=tokenizer.vocab_size,
    )

    train_dl = _loader(tokenizer, splits.train, t.batch_size, shuffle=True, seed=t.seed)
    val_dl = _loader(tokenizer, splits.val, 256, shuffle=False, seed=t.seed)
    module = TextClassifierModule(
        model, num_classes=len(labels), train=t, total_steps=len(train_dl) * t.epochs
    )
    best = BestWeights("val_acc")
    trainer = L.Trainer(
        max_epochs=t.epochs,
        accelerator="auto",
        devices=1,
        precision="bf16-mixed" if t.precision == "bf16" else "32-true",
        gradient_clip_val=t.grad_clip or None,
        callbacks=[
            EarlyStopping(monitor="val_acc", mode="max", patience=t.patience),
            best,
            # Overwrites checkpoints/last.ckpt after every epoch, for --resume.
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="last",
                monitor=None,
                save_top_k=1,
                enable_version_counter=False,
            ),
            *(callbacks or []),
        ],
        logger=CSVLogger(save_dir=run_dir, name="logs", version=""),
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, len(train_dl))),
    )
    log_file = run_dir / "logs" / "metrics.csv"
    earlier = log_file.read_text(encoding="utf-8") if resume and log_file.is_file() else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Checkpoint directory.*exists and is not empty.*")
        try:
            trainer.fit(
                module, train_dl, val_dl, ckpt_path=ckpt if resume else None, weights_only=True
            )
        except SystemExit:
            # Lightning turns Ctrl+C into a graceful shutdown then sys.exit(1).
            if not trainer.interrupted:
                raise
        finally:
            _restore_sigint()
    if earlier is not None:
        _merge_logs(log_file, earlier)
    if trainer.interrupted:
        log(f"interrupted: continue with --resume (the checkpoint is {ckpt})")
        raise KeyboardInterrupt
    model = module.model.cpu().eval()
    save_run(
        run_dir,
        model=model,
        config=config,
        tokenizer=tokenizer,
        labels=labels,
        vocab_size=tokenizer.vocab_size,
    )
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # training finished

    run = load_run(run_dir)
    test = evaluate(run, splits.test)
    log("TF-IDF + logistic regression baseline on the same split...")
    from attnlab.train.baseline import tfidf_baseline

    baseline = tfidf_baseline(
        splits.train.texts,
        splits.train.labels,
        splits.test.texts,
        splits.test.labels,
        language=language,
        seed=t.seed,
    )
    seconds = time.perf_counter() - start
    history = _read_history(run_dir)
    metrics = {
        "data": config.data,
        "model": config.model,
        "test_acc": test["accuracy"],
        "test_f1": test["macro_f1"],
        "test_n": test["n"],
        "confusion": test["confusion"],
        "best_val_acc": best.best,
        "best_epoch": best.best_epoch + 1,
        "epochs_run": trainer.current_epoch,
        "baseline": {"name": "TF-IDF + logistic regression", **baseline},
        "train_seconds": round(seconds, 1),
        "parameters": n_params,
        "split": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    result = TrainResult(run_dir, metrics, seconds=seconds, history=history)
    if report:
        from attnlab.viz.report import write_report

        result.report = write_report(
            run, splits.test, probs=test["probs"], metrics=metrics, history=history
        )
    return result
