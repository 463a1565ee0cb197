"""The rank-aware bucket sampler: deterministic, sharded without overlap, resumable."""

from __future__ import annotations

import pickle
from functools import partial

import pytest
import torch

from attnlab.data.batching import BucketBatchSampler, EvalBatchSampler, collate_tokens


@pytest.fixture
def lengths():
    g = torch.Generator().manual_seed(0)
    return torch.randint(1, 30, (203,), generator=g).tolist()


def test_global_batches_are_sharded_without_overlap(lengths):
    one = BucketBatchSampler(lengths, 16, seed=5, drop_last=True)
    shards = [BucketBatchSampler(lengths, 8, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for epoch in (0, 3):
        for s in (one, *shards):
            s.set_epoch(epoch)
        glob = list(one)
        parts = [list(s) for s in shards]
        assert len(parts[0]) == len(parts[1]) == len(glob) == len(one) == 203 // 16
        for g, a, b in zip(glob, *parts, strict=True):
            assert a + b == g and not set(a) & set(b)


def test_order_depends_on_seed_and_epoch_only(lengths):
    a, b = BucketBatchSampler(lengths, 7, seed=1), BucketBatchSampler(lengths, 7, seed=1)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and list(a) == list(a)  # iterating does not advance the epoch
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(BucketBatchSampler(lengths, 7, seed=2)) != list(
        BucketBatchSampler(lengths, 7, seed=1)
    )
    every = sorted(i for batch in a for i in batch)
    assert every == list(range(203)) and len(a) == 29  # one process keeps the last batch


def test_batches_group_similar_lengths(lengths):
    s = BucketBatchSampler(lengths, 8, seed=0)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in s) / len(s)
    shuffled = BucketBatchSampler(len(lengths), 8, seed=0)  # no lengths: no bucketing
    spread_random = sum(
        max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in shuffled
    ) / len(shuffled)
    assert spread < spread_random / 3


def test_resume_skips_the_consumed_batches_once(lengths):
    s = BucketBatchSampler(lengths, 8, seed=0)
    s.set_epoch(1)
    full = list(s)
    s.resume(1, 5)
    assert list(s) == full[5:]
    assert list(s) == full  # the next pass of the same epoch is whole again


def test_eval_shards_cover_everything_once(lengths):
    parts = [list(EvalBatchSampler(lengths, 10, rank=r, world_size=3)) for r in range(3)]
    seen = sorted(i for p in parts for b in p for i in b)
    assert seen == list(range(203))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"batch_size": 4, "rank": 2, "world_size": 2}, r"rank 2 is not in 0..1"),
        ({"batch_size": 4, "world_size": 2, "drop_last": False}, "must be dropped"),
    ],
)
def test_bad_arguments(lengths, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BucketBatchSampler(lengths, **kwargs)


def test_collate_pads_and_pickles():
    collate = partial(collate_tokens, pad_id=0)
    batch = pickle.loads(pickle.dumps(collate))([([5, 6, 7], 1), ([8], 0)])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["labels"].tolist() == [1, 0]
