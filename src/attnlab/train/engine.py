"""The generic training engine: any task, one or several processes, on Lightning.

``fit(config, out)`` trains in ``<out>.partial`` (marked unfinished), keeps the best
epoch's weights, evaluates on the test split on rank 0, and only then replaces ``out`` with
the finished run. A failure or an interruption leaves an existing ``out`` untouched; an
interrupted training continues exactly with ``resume=True``.

Example:
    >>> from attnlab.runs import make_config
    >>> from attnlab.train import fit
    >>> result = fit(make_config("text", "mr", "bilstm-attn"), "runs/demo")  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnlab.runs.config import RunConfig
from attnlab.runs.folder import (
    CONFIG,
    LOG_FILE,
    METRICS,
    partial_dir,
    publish,
    read_history,
    read_meta,
    save_run,
    write_json,
)
from attnlab.tasks import get_task
from attnlab.tasks.base import split_sizes
from attnlab.train.distributed import check_devices, describe_failure, env_rank, make_strategy

__all__ = ["CHECKPOINT", "TrainResult", "fit", "read_history"]

CHECKPOINT = "checkpoints/last.ckpt"


@dataclass
class TrainResult:
    """What :func:`fit` produced (on rank 0).

    Attributes:
        run_dir: the finished run folder.
        metrics: what ``metrics.json`` holds (test metrics, baseline, best epoch, timing).
        history: one dict of logged values per epoch.
        seconds: wall time of the whole call.
    """

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _merge_logs(log_file: Path, earlier: str) -> None:
    """Put back the epochs logged before a resume (the CSV logger starts a new file)."""
    if not log_file.is_file():  # resumed after the last epoch: nothing new was logged
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(earlier, encoding="utf-8")
        return
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


def _resume_position(ckpt: Path) -> tuple[int, int] | None:
    state = torch.load(ckpt, map_location="cpu", weights_only=True).get("attnlab") or {}
    return (state["epoch"], state["consumed"]) if state.get("consumed") is not None else None


def _set_threads(train) -> None:
    threads = train.threads
    if not threads and train.devices > 1 and not torch.cuda.is_available():
        threads = max(1, (os.cpu_count() or 1) // train.devices)
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # keeps Lightning from resetting it


def _build_trainer(config: RunConfig, staging: Path, *, monitor: str, mode: str, progress, extra):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from attnlab.train.callbacks import BestWeights, InterruptCheckpoint

    t = config.train
    best = BestWeights(monitor, mode)
    callbacks = [best]
    if t.patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=t.patience))
    callbacks += [
        # Overwritten after every epoch: what --resume continues from.
        ModelCheckpoint(
            dirpath=staging / "checkpoints",
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
        ),
        InterruptCheckpoint(staging / CHECKPOINT),
        *(extra or []),
    ]
    trainer = L.Trainer(
        max_epochs=t.epochs,
        accelerator="auto",
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=make_strategy(t),
        precision="bf16-mixed" if t.precision == "bf16-mixed" else "32-true",
        gradient_clip_val=t.grad_clip or None,
        callbacks=callbacks,
        logger=CSVLogger(save_dir=staging, name="logs", version=""),
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=1,
    )
    return trainer, best


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # The message naming a process that died must reach the user.
    observer = logging.getLogger("lightning.fabric.strategies.launchers.subprocess_script")
    observer.setLevel(logging.INFO)
    if not observer.handlers:
        observer.addHandler(logging.StreamHandler())
    for pattern in (
        ".*does not have many workers.*",
        ".*Checkpoint directory.*exists and is not empty.*",
        ".*LeafSpec.*",
        ".*litlogger.*",
        ".*dataloader is not resumable.*",
        ".*Experiment logs directory.*exists and is not empty.*",
    ):
        warnings.filterwarnings("ignore", pattern)


def fit(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log=print,
    callbacks: list | None = None,
) -> TrainResult | None:
    """Train ``config`` and publish the finished run as ``out``.

    Args:
        config: the run config (see :func:`attnlab.runs.make_config`).
        out: the run folder to create or replace.
        resume: continue the interrupted training of ``out`` (its saved config wins).
        progress: show Lightning's progress bar.
        log: where status lines go (rank 0 only).
        callbacks: extra Lightning callbacks.

    Returns:
        The :class:`TrainResult` on rank 0; None on the other processes.

    Raises:
        FileNotFoundError: ``resume`` with nothing to resume.
        ValueError: bad settings or data (e.g. more devices than the machine has).
        RuntimeError: training failed (the loss stopped being finite, a process died);
            an existing run in ``out`` is untouched.
        KeyboardInterrupt: interrupted; continue with ``resume=True``.
    """
    import lightning as L

    from attnlab.train.data import TaskDataModule
    from attnlab.train.module import TaskModule

    start = time.perf_counter()
    out = Path(out)
    staging = partial_dir(out)
    rank = env_rank()
    say = log if rank == 0 else (lambda *a, **k: None)
    ckpt = staging / CHECKPOINT
    resume_at = None
    if resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"nothing to resume for {out}: {ckpt} is missing")
        saved = RunConfig.from_dict(read_meta(staging, finished=False)["config"])
        if saved != config:
            say(f"resuming with the saved config of {staging}")
        config = saved
        resume_at = _resume_position(ckpt)
    elif rank == 0:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    task = get_task(config.task)
    t = config.train
    check_devices(t)
    os.environ["ATTNLAB_DEVICES"] = str(t.devices)
    _set_threads(t)
    _quiet_lightning()
    L.seed_everything(t.seed, verbose=False)

    dm = TaskDataModule(task, config, staging, log_fn=say, resume_at=resume_at)
    module = TaskModule(task, config, log_fn=say, fresh=not resume)
    trainer, best = _build_trainer(
        config, staging, monitor=f"{task.monitor}", mode=task.monitor_mode, progress=progress,
        extra=callbacks,
    )  # fmt: skip
    log_file = staging / LOG_FILE
    earlier = log_file.read_text(encoding="utf-8") if resume and log_file.is_file() else None
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt if resume else None, weights_only=True)
    except SystemExit:
        if not trainer.interrupted:  # Lightning turns Ctrl+C into sys.exit(1)
            raise
    except Exception as e:
        if t.world_size > 1:
            raise RuntimeError(describe_failure(trainer, e)) from e
        raise
    finally:
        _restore_sigint()
    if trainer.global_rank != 0:
        return None
    if earlier is not None:
        _merge_logs(log_file, earlier)
    if trainer.interrupted:
        say(f"interrupted: continue with `attnlab train {task.name} --out {out} --resume`")
        raise KeyboardInterrupt
    return _finish(task, config, module, dm, best, trainer, staging, out, start, say)


def _finish(task, config, module, dm, best, trainer, staging: Path, out: Path, start, say):
    model = module.model.cpu().eval()
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad or best.best is None:
        raise RuntimeError(
            f"training failed: the weights stopped being finite ({', '.join(bad[:3]) or 'no valid epoch'}); "
            f"{'the run in ' + str(out) + ' is unchanged' if out.exists() else 'no run was written'}"
        )
    run = task.run_class(
        task=task, config=config, model=model, artifacts=dm.artifacts, dims=dm.dims,
        run_dir=staging,
    )  # fmt: skip
    say("evaluating on the test split...")
    test = task.evaluate(run, dm.splits.test)
    baseline = task.baseline(config.data, dm.splits, seed=config.train.seed)
    n_params = sum(p.numel() for p in model.parameters())
    metrics = {
        "task": task.name,
        "data": config.data.name,
        "model": config.model,
        "test": test,
        "baseline": baseline,
        "monitor": task.monitor,
        "best_val": best.best,
        "best_epoch": best.best_epoch + 1,
        "epochs_run": trainer.current_epoch,
        "parameters": n_params,
        "split": split_sizes(dm.splits),
        "world_size": config.train.world_size,
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    write_json(staging / METRICS, metrics)
    save_run(staging, task=task, config=config, model=model, artifacts=dm.artifacts, dims=dm.dims)
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)  # finished: nothing to resume
    run_dir = publish(staging, out)
    assert (run_dir / CONFIG).is_file()
    return TrainResult(run_dir, metrics, read_history(run_dir), time.perf_counter() - start)


def _restore_sigint() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
