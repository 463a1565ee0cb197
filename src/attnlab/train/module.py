"""The Lightning module that trains any attnlab text classifier.

AdamW with decoupled weight decay (not on biases, norms or embeddings' padding), a linear
warm-up then linear decay, cross-entropy, and torchmetrics accuracy / macro-F1.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from attnlab.train.config import TrainConfig

__all__ = ["BestWeights", "TextClassifierModule", "warmup_linear"]


def warmup_linear(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear from 0 to 1 over ``warmup`` steps, then to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


class TextClassifierModule(L.LightningModule):
    """Wraps a model ``(input_ids (B, T), lengths (B,)) -> logits (B, C)`` for training.

    Args:
        model: the classifier.
        num_classes: number of labels C.
        train: training settings (lr, weight decay, warm-up, label smoothing).
        total_steps: optimizer steps of the whole run (for the schedule).
    """

    def __init__(
        self, model: nn.Module, *, num_classes: int, train: TrainConfig, total_steps: int
    ) -> None:
        super().__init__()
        self.model = model
        self.cfg = train
        self.total_steps = max(1, total_steps)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        return self.model(input_ids, lengths)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch["input_ids"], batch["lengths"])
        loss = F.cross_entropy(
            logits.float(), batch["labels"], label_smoothing=self.cfg.label_smoothing
        )
        self.train_acc(logits, batch["labels"])
        n = len(batch["labels"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self(batch["input_ids"], batch["lengths"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
        self.val_acc(logits, batch["labels"])
        self.val_f1(logits, batch["labels"])
        n = len(batch["labels"])
        self.log("val_loss", loss, on_epoch=True, prog_bar=False, batch_size=n)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("val_f1", self.val_f1, on_epoch=True, prog_bar=False, batch_size=n)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            # Weight decay on matrices only: biases, norms and query vectors stay free.
            (decay if p.dim() >= 2 and "norm" not in name.lower() else no_decay).append(p)
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.cfg.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.cfg.lr,
        )
        warm = round(self.cfg.warmup * self.total_steps)
        total = self.total_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _Schedule(total, warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class _Schedule:
    """Picklable-free callable (its state is two ints) for LambdaLR."""

    def __init__(self, total: int, warmup: int) -> None:
        self.total, self.warmup = total, warmup

    def __call__(self, step: int) -> float:
        return warmup_linear(step, self.total, self.warmup)


class BestWeights(L.Callback):
    """Keeps a CPU copy of the weights with the best validation accuracy and restores it
    when training ends (early stopping then leaves the best model, not the last)."""

    def __init__(self, monitor: str = "val_acc") -> None:
        self.monitor = monitor
        self.best: float = float("-inf")
        self.best_epoch: int = -1
        self.state: dict[str, Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) > self.best:
            self.best = float(value)
            self.best_epoch = trainer.current_epoch
            self.state = {
                k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()
            }

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.state is not None:
            pl_module.model.load_state_dict(self.state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.state = state["state"]
