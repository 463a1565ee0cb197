"""Engine callbacks: keep the best epoch's weights, and checkpoint an interrupted epoch."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch import Tensor

__all__ = ["BestWeights", "InterruptCheckpoint"]


class BestWeights(L.Callback):
    """Keeps a CPU copy of the weights of the best validation epoch and restores it when
    training ends, so early stopping leaves the best model, not the last.

    Args:
        monitor: logged metric to watch.
        mode: ``"max"`` or ``"min"``.
    """

    def __init__(self, monitor: str = "val_acc", mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.best_epoch: int = -1
        self.state: dict[str, Tensor] | None = None

    def _better(self, value: float) -> bool:
        if self.best is None:
            return value == value  # not nan
        return value > self.best if self.mode == "max" else value < self.best

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and self._better(float(value)):
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


class InterruptCheckpoint(L.Callback):
    """On Ctrl+C in a one-process training, write ``path`` mid-epoch: the batch position
    and random state saved with it let ``--resume`` continue exactly where it stopped.
    (With several processes the last end-of-epoch checkpoint is resumed instead.)"""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.world_size == 1:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            trainer.save_checkpoint(self.path, weights_only=False)
