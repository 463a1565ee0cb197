"""Batching: a deterministic, rank-aware bucket sampler and padding collate functions.

Sorting examples of similar length into the same batch wastes little compute on padding
(which matters on CPU). Under multi-process training every process draws from the same
*global* batches (``batch_size * world_size`` examples, the same for every world size with
the same global batch) and takes its own contiguous slice, so 2 processes with batch 8 see
exactly the examples that 1 process with batch 16 sees, step by step.

Example:
    >>> s = BucketBatchSampler([3, 1, 2, 5, 4, 2, 2, 1], 2, seed=0, rank=1, world_size=2)
    >>> len(s), [len(b) for b in s]
    (2, [2, 2])
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

__all__ = ["BucketBatchSampler", "EvalBatchSampler", "collate_tokens"]


def collate_tokens(items: Sequence[tuple[list[int], int]], pad_id: int = 0) -> dict[str, Tensor]:
    """``{"input_ids": (B, T), "lengths": (B,), "labels": (B,)}`` padded with ``pad_id``.

    A module-level function (bind ``pad_id`` with ``functools.partial``), so data loaders
    and spawned processes can pickle it.
    """
    lengths = torch.tensor([len(x) for x, _ in items], dtype=torch.long)
    input_ids = torch.full((len(items), int(lengths.max())), pad_id, dtype=torch.long)
    for i, (x, _) in enumerate(items):
        input_ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
    labels = torch.tensor([y for _, y in items], dtype=torch.long)
    return {"input_ids": input_ids, "lengths": lengths, "labels": labels}


def _check_shard(batch_size: int, rank: int, world_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")


class BucketBatchSampler(Sampler[list[int]]):
    """Training batches of indices, bucketed by length, in a seeded order; one shard per rank.

    Epoch ``e`` shuffles with ``seed + e`` (call :meth:`set_epoch`; Lightning does), so the
    order depends only on the seed, the epoch and the global batch size.

    Args:
        lengths: length of each example, or just the number of examples (no bucketing).
        batch_size: examples per batch of this process.
        shuffle: shuffle (training); False keeps a fixed length-sorted order.
        seed: base seed.
        rank: this process's rank.
        world_size: processes taking part.
        drop_last: drop the last, incomplete global batch. Default: only with several
            processes, where it keeps every process at the same number of steps.
        pool: global batches sorted together (larger: less padding, less randomness).
    """

    def __init__(
        self,
        lengths: Sequence[int] | int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool | None = None,
        pool: int = 50,
    ) -> None:
        _check_shard(batch_size, rank, world_size)
        self.lengths = [1] * lengths if isinstance(lengths, int) else list(lengths)
        self.bucketed = not isinstance(lengths, int)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.shuffle, self.seed, self.pool = shuffle, seed, pool
        self.drop_last = world_size > 1 if drop_last is None else bool(drop_last)
        if world_size > 1 and not self.drop_last:
            raise ValueError(
                "with several processes the last incomplete global batch must be dropped "
                "(drop_last=True), or the processes would run different numbers of steps"
            )
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, batches already consumed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, consumed: int) -> None:
        """Start epoch ``epoch`` after its first ``consumed`` batches (an interrupted run)."""
        self._skip = (epoch, consumed)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        n, g = len(self.lengths), self.global_batch
        return n // g if self.drop_last else -(-n // g)

    def global_batches(self, epoch: int) -> list[list[int]]:
        """Every global batch of epoch ``epoch``, in order (the same for every rank)."""
        g = self.global_batch
        idx = list(range(len(self.lengths)))
        if not self.shuffle:
            idx.sort(key=lambda i: self.lengths[i])
            batches = [idx[i : i + g] for i in range(0, len(idx), g)]
        else:
            rng = random.Random(self.seed + epoch)
            rng.shuffle(idx)
            chunk = g * self.pool
            batches = []
            for start in range(0, len(idx), chunk):
                part = idx[start : start + chunk]
                if self.bucketed:
                    part = sorted(part, key=lambda i: self.lengths[i])
                batches += [part[i : i + g] for i in range(0, len(part), g)]
            rng.shuffle(batches)
        if self.drop_last:
            batches = [b for b in batches if len(b) == g]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches(self.epoch)
        if self._skip is not None and self._skip[0] == self.epoch:
            batches = batches[self._skip[1] :]
            self._skip = None
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for b in batches:
            yield b[lo:hi] if self.world_size > 1 else b


class EvalBatchSampler(Sampler[list[int]]):
    """Evaluation batches sorted by length; rank ``r`` of ``world_size`` takes every
    ``world_size``-th example, so every process gets a share (metrics are gathered at the
    end, not per step). With fewer examples than processes, the last ones repeat."""

    def __init__(
        self, lengths: Sequence[int] | int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> None:
        _check_shard(batch_size, rank, world_size)
        n = lengths if isinstance(lengths, int) else len(lengths)
        idx = list(range(n))
        if not isinstance(lengths, int):
            idx.sort(key=lambda i: lengths[i])
        if n and n < world_size:
            idx += idx[-1:] * (world_size - n)
        mine = idx[rank::world_size]
        self.batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches
