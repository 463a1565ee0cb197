"""The LightningDataModule of any task: rank 0 builds the data-derived artifacts once and
writes them into the run folder; every process then reads them back, so all processes
train the same model on distinct, deterministic shards of the same batches.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from attnlab.data.batching import BucketBatchSampler, EvalBatchSampler
from attnlab.runs.config import RunConfig
from attnlab.runs.folder import CONFIG, mark_unfinished
from attnlab.tasks.base import Task, split_sizes

__all__ = ["TaskDataModule"]


class TaskDataModule(L.LightningDataModule):
    """Data of one run.

    Args:
        task: the task family.
        config: the run config.
        folder: the staging run folder (artifacts are written and read there).
        log_fn: where status lines go.
        resume_at: ``(epoch, batches consumed)`` of an interrupted epoch to continue.
    """

    def __init__(
        self,
        task: Task,
        config: RunConfig,
        folder: str | Path,
        *,
        log_fn=print,
        resume_at: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        # Artifacts are built once for the whole job (the run folder must be on a
        # filesystem every machine sees).
        self.prepare_data_per_node = False
        self.task, self.config, self.folder = task, config, Path(folder)
        self.log_fn, self.resume_at = log_fn, resume_at
        self._prepared = None
        self.splits = self.artifacts = self.dims = None

    def prepare_data(self) -> None:
        """Rank 0 only: split the data and build the artifacts (unless resuming)."""
        data, seed = self.config.data, self.config.train.seed
        splits = self.task.load_splits(data, seed=seed)
        sizes = " / ".join(f"{n} {k}" for k, n in split_sizes(splits).items())
        self.log_fn(f"data {data.name}: {sizes}")
        if (self.folder / CONFIG).is_file():  # resuming: the artifacts are there already
            self._prepared = (splits,)
            return
        artifacts = self.task.build_artifacts(data, splits, seed=seed, log=self.log_fn)
        self.task.save_artifacts(artifacts, self.folder)
        mark_unfinished(
            self.folder, task=self.task, config=self.config, dims=self.task.dims(artifacts)
        )
        self._prepared = (splits,)

    def setup(self, stage: str) -> None:
        if self.splits is not None:
            return
        data = self.config.data
        splits = self._prepared[0] if self._prepared else None
        self.splits = splits or self.task.load_splits(data, seed=self.config.train.seed)
        # Every process reads the saved artifacts, so all hold byte-identical ones.
        self.artifacts = self.task.load_artifacts(data, self.folder)
        self.dims = self.task.dims(self.artifacts)
        self.train_set = self.task.dataset(self.splits.train, self.artifacts, data)
        self.val_set = self.task.dataset(self.splits.val, self.artifacts, data)

    def _shard(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        t = self.config.train
        rank, world = self._shard()
        lengths = self.task.lengths(self.train_set) or len(self.train_set)
        sampler = BucketBatchSampler(
            lengths, t.batch_size, shuffle=True, seed=t.seed, rank=rank, world_size=world
        )
        if len(sampler) == 0:
            raise ValueError(
                f"the training split has {len(self.train_set)} examples, fewer than one global "
                f"batch of {sampler.global_batch}; lower train.batch_size"
            )
        if self.resume_at is not None:
            # Lightning re-enters an interrupted epoch without starting it again.
            sampler.set_epoch(self.resume_at[0])
            sampler.resume(*self.resume_at)
            self.resume_at = None
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._shard()
        lengths = self.task.lengths(self.val_set) or len(self.val_set)
        sampler = EvalBatchSampler(
            lengths, self.config.train.eval_batch_size, rank=rank, world_size=world
        )
        return self._loader(self.val_set, sampler)

    def _loader(self, dataset, sampler) -> DataLoader:
        # A private generator: creating loader iterators never touches the global random
        # state that dropout draws from (resumed runs repeat the same masks).
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.task.collate(self.artifacts),
            generator=torch.Generator().manual_seed(self.config.train.seed),
        )
