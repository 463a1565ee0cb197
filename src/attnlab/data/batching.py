"""Batching for variable-length token sequences: length bucketing and padding.

Sorting examples of similar length into the same batch wastes little compute on padding
(which matters on CPU); the buckets themselves are shuffled with a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["BucketBatchSampler", "EncodedDataset", "collate"]


class EncodedDataset(Dataset):
    """Token id lists with integer labels."""

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int]) -> None:
        if len(ids) != len(labels):
            raise ValueError(f"{len(ids)} token sequences but {len(labels)} labels")
        self.ids = [list(x) for x in ids]
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


def collate(items: Sequence[tuple[list[int], int]], pad_id: int = 0) -> dict[str, Tensor]:
    """``{"input_ids": (B, T), "lengths": (B,), "labels": (B,)}`` padded with ``pad_id``."""
    lengths = torch.tensor([len(x) for x, _ in items], dtype=torch.long)
    input_ids = torch.full((len(items), int(lengths.max())), pad_id, dtype=torch.long)
    for i, (x, _) in enumerate(items):
        input_ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
    labels = torch.tensor([y for _, y in items], dtype=torch.long)
    return {"input_ids": input_ids, "lengths": lengths, "labels": labels}


class BucketBatchSampler:
    """Batches of indices of similar length, in a seeded random order.

    Args:
        lengths: sequence length of each example.
        batch_size: examples per batch.
        shuffle: shuffle (training) or keep a fixed length-sorted order (evaluation).
        seed: base seed; epoch ``k`` uses ``seed + k``.
        pool: batches sorted together (larger: less padding, less randomness).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool: int = 50,
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        idx = list(range(len(self.lengths)))
        if not self.shuffle:
            idx.sort(key=lambda i: self.lengths[i])
            yield from (idx[i : i + self.batch_size] for i in range(0, len(idx), self.batch_size))
            return
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        rng.shuffle(idx)
        chunk = self.batch_size * self.pool
        batches = []
        for start in range(0, len(idx), chunk):
            part = sorted(idx[start : start + chunk], key=lambda i: self.lengths[i])
            batches += [part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        rng.shuffle(batches)
        yield from batches
