"""The task protocol: what one task family supplies so that the generic engine can train
it, the run folder can save and load it, and ``eval``/``predict``/views can use it.

The engine (``attnlab.train``) knows no task by name. It asks the task, in this order:

1. ``load_splits(data, seed)``: the train/validation/test data, deterministic from the seed;
2. ``build_artifacts`` (once, on rank 0): what is derived from the training data
   (tokenizers, label names), written to the run folder with ``save_artifacts`` and read
   back on every process with ``load_artifacts``;
3. ``dims(artifacts)``: the typed sizes the model preset is built with;
4. ``dataset``/``collate``/``lengths``: batches (the engine batches and shards them);
5. ``init_model``, ``metrics``, ``step``: training and validation;
6. ``evaluate`` (on the test split) and ``run_class``: the trained model as users see it.

Example:
    >>> from attnlab.tasks import get_task
    >>> task = get_task("text")
    >>> task.monitor, task.monitor_mode
    ('val_acc', 'max')
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor, nn

__all__ = ["Run", "Splits", "StepOutput", "Task", "split_sizes"]


@dataclass(frozen=True)
class Splits:
    """Train, validation and test parts of a data set (any sized sequences)."""

    train: Any
    val: Any
    test: Any


def split_sizes(splits: Any) -> dict[str, int]:
    """``{"train": n, "val": n, "test": n}`` of any object with those three parts."""
    return {k: len(getattr(splits, k)) for k in ("train", "val", "test")}


@dataclass
class StepOutput:
    """What one training or validation step produced.

    Attributes:
        loss: the scalar loss (mean over the batch).
        preds: what the task's metrics take as predictions (e.g. logits ``(B, C)``).
        target: what they take as targets (e.g. labels ``(B,)``).
        size: examples in the batch (weights the logged loss).
    """

    loss: Tensor
    preds: Tensor | None
    target: Tensor | None
    size: int


class Run:
    """A trained model of one task, loaded from its run folder.

    Tasks subclass it with what their users call (``predict``, ``translate``...).

    Attributes:
        task: the :class:`Task`.
        config: the run's :class:`~attnlab.runs.RunConfig`.
        model: the ``nn.Module`` in eval mode.
        artifacts: what the task derived from the training data (tokenizer, labels...).
        dims: the sizes the model was built with.
        run_dir: the folder.
        meta: the rest of ``config.json`` (version, checksums, ...).
    """

    def __init__(
        self,
        *,
        task: Task,
        config: Any,
        model: nn.Module,
        artifacts: Any,
        dims: Any,
        run_dir: str | Path,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.task = task
        self.config = config
        self.model = model.eval()
        self.artifacts = artifacts
        self.dims = dims
        self.run_dir = Path(run_dir)
        self.meta = dict(meta or {})

    @property
    def device(self):
        return next(self.model.parameters()).device

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.run_dir}, task={self.task.name}, model={self.config.model})"


class Task(abc.ABC):
    """One task family. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: the task's name (``"text"``).
        data_config: frozen dataclass of the task's data settings; its ``name`` field is
            the packaged data set or file.
        default_model: preset used when none is named.
        monitor: the logged validation metric that picks the best epoch and stops early.
        monitor_mode: ``"max"`` or ``"min"``.
        run_class: the :class:`Run` subclass loading returns.
    """

    name: ClassVar[str]
    data_config: ClassVar[type]
    default_model: ClassVar[str]
    monitor: ClassVar[str] = "val_acc"
    monitor_mode: ClassVar[str] = "max"
    run_class: ClassVar[type[Run]] = Run

    def default_overrides(self, data: str, model: str) -> list[str]:
        """Settings that suit data set ``data`` with preset ``model`` (applied before the
        user's overrides), as ``section.field=value`` strings."""
        return []

    # -- data -----------------------------------------------------------------------------
    @abc.abstractmethod
    def load_splits(self, data: Any, *, seed: int) -> Splits:
        """Load and split the data (the same data and seed always give the same splits).

        Raises:
            ValueError: bad data, or too little for the splits (the message says which).
        """

    @abc.abstractmethod
    def build_artifacts(self, data: Any, splits: Splits, *, seed: int, log: Callable) -> Any:
        """Derive what the model needs from the training split (run once, on rank 0)."""

    @abc.abstractmethod
    def save_artifacts(self, artifacts: Any, folder: Path) -> list[str]:
        """Write the artifacts into ``folder``; return the file names written."""

    @abc.abstractmethod
    def load_artifacts(self, data: Any, folder: Path) -> Any:
        """Read what :meth:`save_artifacts` wrote.

        Raises:
            ValueError: a file is malformed (the message names it).
        """

    @abc.abstractmethod
    def dims(self, artifacts: Any) -> Any:
        """The typed dims the task's model presets are built with."""

    @abc.abstractmethod
    def dataset(self, split: Any, artifacts: Any, data: Any) -> Sequence:
        """A map-style data set of encoded examples for ``collate``."""

    @abc.abstractmethod
    def collate(self, artifacts: Any) -> Callable[[list], dict[str, Tensor]]:
        """A picklable function turning a list of examples into a batch dict."""

    def lengths(self, dataset: Sequence) -> list[int] | None:
        """Length of each example, so batches group similar lengths (None: no bucketing)."""
        return None

    # -- training -------------------------------------------------------------------------
    def init_model(self, model: nn.Module, artifacts: Any, data: Any, *, log: Callable) -> None:
        """Initialise a freshly built model from the artifacts (e.g. pretrained vectors);
        by default the preset's own initialisation stays."""
        return None

    @abc.abstractmethod
    def metrics(self, dims: Any) -> dict[str, Any]:
        """Fresh torchmetrics metrics for validation, logged as ``val_<name>``."""

    @abc.abstractmethod
    def step(
        self, model: nn.Module, batch: dict[str, Tensor], *, label_smoothing: float
    ) -> StepOutput:
        """The loss (and what the metrics need) of one batch."""

    @abc.abstractmethod
    def example_batch(self, dims: Any, *, size: int = 3, seed: int = 0) -> dict[str, Tensor]:
        """A small random batch a model built with ``dims`` accepts (padding included where
        the task pads): what the preset sweep and benchmarks feed to :meth:`step`."""

    def transform(self, batch: dict[str, Tensor], *, epoch: int, index: int, seed: int):
        """Training-time augmentation of a batch, deterministic from ``(seed, epoch, index)``."""
        return batch

    # -- after training -------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, run: Run, split: Any) -> dict[str, Any]:
        """Test metrics of a trained run on ``split`` (JSON-ready values)."""

    @abc.abstractmethod
    def evaluation_data(self, data: Any) -> Any:
        """All of data set or file ``data.name``, to evaluate a run on (``attnlab eval --data``)."""

    def format_metrics(self, metrics: dict[str, Any], run: Run) -> str:
        """:meth:`evaluate`'s metrics as lines for the command line."""
        return "\n".join(f"{k}: {v:.4g}" for k, v in metrics.items() if isinstance(v, float))

    def baseline(self, data: Any, splits: Splits, *, seed: int) -> dict[str, Any] | None:
        """A simple reference model's test metrics on the same split (or None)."""
        return None

    def report_sections(
        self, run: Run, split: Any, metrics: dict[str, Any], *, n_examples: int = 20
    ) -> list:
        """What the run's report shows, as :mod:`attnlab.tasks.sections` data: metrics next
        to the baseline, curves, examples with their attention, how to read them, commands.

        Args:
            run: the trained run.
            split: the test split.
            metrics: the run's saved ``metrics.json``.
            n_examples: examples to show.
        """
        from attnlab.tasks.sections import Curves, Table

        test = metrics.get("test", {})
        rows = [[k, f"{v:.4g}"] for k, v in test.items() if isinstance(v, float)]
        return [Table("Metrics", ["metric", "test"], rows), Curves()]

    def summary(self, metrics: dict[str, Any]) -> str:
        """One line for the command line."""
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
