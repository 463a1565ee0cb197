"""The LightningModule that trains any task's model: it builds the preset from the dims
the data gave, asks the task for each step's loss and metrics, and keeps what an exact
resume needs (the batch position and the random-number state) in every checkpoint.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from attnlab.models.registry import create_model
from attnlab.runs.config import RunConfig
from attnlab.tasks.base import Task
from attnlab.train.optim import build_optimizer

__all__ = ["TaskModule", "get_rng_state", "set_rng_state"]


def get_rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch CPU random states, in types a ``weights_only``
    checkpoint load accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])


class TaskModule(L.LightningModule):
    """Trains ``config.model`` on a task. The model is built in :meth:`configure_model`,
    once the data module knows the dims (on every process, after rank 0 built the
    artifacts).

    Args:
        task: the task family.
        config: the run config.
        log_fn: where status lines go (rank 0).
        fresh: initialise the model from the task's artifacts (False when resuming: the
            checkpoint's weights replace it).
    """

    def __init__(self, task: Task, config: RunConfig, *, log_fn=print, fresh: bool = True) -> None:
        super().__init__()
        self.task, self.config = task, config
        self.log_fn, self.fresh = log_fn, fresh
        self.model: nn.Module | None = None
        self._rng_at_batch: dict[str, Any] | None = None

    # -- model ------------------------------------------------------------------------------
    def configure_model(self) -> None:
        if self.model is not None:
            return
        dm = self.trainer.datamodule
        self.model = create_model(self.config.model, self.config.model_config, dims=dm.dims)
        n = sum(p.numel() for p in self.model.parameters())
        self.log_fn(f"model {self.config.model}: {n / 1e6:.2f} M parameters, {dm.dims}")
        # DDP copies rank 0's weights to every process when it wraps the model, so a
        # data-derived initialisation (pretrained vectors) runs on rank 0 only.
        if self.fresh and self.global_rank == 0:
            self.task.init_model(self.model, dm.artifacts, self.config.data, log=self.log_fn)
        self.train_metrics = nn.ModuleDict(self.task.metrics(dm.dims))
        self.val_metrics = nn.ModuleDict(self.task.metrics(dm.dims))

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    # -- steps ------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # Lightning sets the epoch of a loader's `sampler`, not of its batch sampler: the
        # bucket sampler's order depends on it (and the loader reads it at the first batch).
        sampler = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.current_epoch)
        self._rng_at_batch = get_rng_state()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # The random state the next batch starts from: an interruption during that batch
        # resumes from here and repeats it exactly.
        self._rng_at_batch = get_rng_state()

    def training_step(self, batch: dict, batch_idx: int):
        t = self.config.train
        batch = self.task.transform(batch, epoch=self.current_epoch, index=batch_idx, seed=t.seed)
        out = self.task.step(self.model, batch, label_smoothing=t.label_smoothing)
        self.log("train_loss", out.loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=out.size, sync_dist=True)  # fmt: skip
        if out.preds is not None:
            for name, metric in self.train_metrics.items():
                metric(out.preds, out.target)
                self.log(f"train_{name}", metric, on_step=False, on_epoch=True, batch_size=out.size)
        return out.loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self.task.step(self.model, batch, label_smoothing=0.0)
        self.log("val_loss", out.loss, on_epoch=True, batch_size=out.size, sync_dist=True)
        if out.preds is not None:
            for name, metric in self.val_metrics.items():
                metric.update(out.preds, out.target)
                self.log(f"val_{name}", metric, on_epoch=True, prog_bar=name == "acc",
                         batch_size=out.size)  # fmt: skip

    def configure_optimizers(self):
        return build_optimizer(
            self.model, self.config.train, self.trainer.estimated_stepping_batches
        )

    # -- checkpoints ------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        mid_epoch = done < self.trainer.num_training_batches and self._rng_at_batch is not None
        checkpoint["attnlab"] = {
            "epoch": self.current_epoch,
            "consumed": done if mid_epoch else None,
            "rng": self._rng_at_batch if mid_epoch else get_rng_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("attnlab")
        if state:
            set_rng_state(state["rng"])
