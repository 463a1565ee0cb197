"""Labelled text data: the in-memory data set, user files (CSV/TSV/JSONL) and splits.

Every user-facing problem with a file raises :class:`DataError` (a ``ValueError``) whose
message starts with ``path:line:`` so the offending row can be found at once.

Example:
    >>> ds = read_file("reviews.csv", text_column="text", label_column="label")  # doctest: +SKIP
    >>> splits = ds.split(seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DataError", "Splits", "TextDataset", "from_rows", "read_file"]


class DataError(ValueError):
    """Bad input data; the message names the file and line.

    Attributes:
        path: the file (or data set name) holding the problem.
        line: 1-based line number, or None when the problem is the whole file.
    """

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TextDataset:
    """Texts with integer labels into ``label_names``.

    Attributes:
        name: data set name or file path.
        texts: one string per example.
        labels: class index per example, into ``label_names``.
        label_names: class names, sorted.
        lines: source line of each example (for error messages), or empty.
    """

    name: str
    texts: list[str]
    labels: list[int]
    label_names: list[str]
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self) -> dict[str, int]:
        """Number of examples of each class."""
        c = Counter(self.labels)
        return {n: c.get(i, 0) for i, n in enumerate(self.label_names)}

    def subset(self, indices: Sequence[int], name: str | None = None) -> TextDataset:
        """The examples at ``indices`` (same label names)."""
        return TextDataset(
            name=name or self.name,
            texts=[self.texts[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            label_names=self.label_names,
            lines=[self.lines[i] for i in indices] if self.lines else [],
        )

    def relabel(self, label_names: Sequence[str]) -> TextDataset:
        """Re-index labels into ``label_names`` (e.g. the training set's).

        Raises:
            DataError: a label of this data set is not in ``label_names``.
        """
        index = {n: i for i, n in enumerate(label_names)}
        labels = []
        for k, y in enumerate(self.labels):
            name = self.label_names[y]
            if name not in index:
                line = self.lines[k] if self.lines else None
                raise DataError(
                    self.name,
                    line,
                    f"label {name!r} never appears in the training data "
                    f"(training labels: {', '.join(label_names)})",
                )
            labels.append(index[name])
        return TextDataset(self.name, list(self.texts), labels, list(label_names), self.lines)

    def split(self, *, seed: int = 0, val: float = 0.1, test: float = 0.1) -> Splits:
        """Deterministic stratified train/validation/test split.

        Each class is shuffled with ``seed`` and cut by the fractions, so every split holds
        every class in the same proportion. The same data and seed always give the same split.

        Raises:
            ValueError: fractions outside [0, 1) or summing to 1 or more.
        """
        if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
            raise ValueError(
                f"split fractions val={val}, test={test} must be in [0, 1) and sum < 1"
            )
        by_class: dict[int, list[int]] = defaultdict(list)
        for i, y in enumerate(self.labels):
            by_class[y].append(i)
        rng = random.Random(seed)
        parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        for y in sorted(by_class):
            idx = by_class[y]
            rng.shuffle(idx)
            n_test = round(len(idx) * test)
            n_val = round(len(idx) * val)
            parts["test"] += idx[:n_test]
            parts["val"] += idx[n_test : n_test + n_val]
            parts["train"] += idx[n_test + n_val :]
        for key in parts:
            parts[key].sort()
        return Splits(
            train=self.subset(parts["train"], f"{self.name}[train]"),
            val=self.subset(parts["val"], f"{self.name}[val]"),
            test=self.subset(parts["test"], f"{self.name}[test]"),
        )


@dataclass(frozen=True)
class Splits:
    """Train, validation and test parts of one data set."""

    train: TextDataset
    val: TextDataset
    test: TextDataset


def from_rows(
    name: str, rows: Iterable[tuple[int, str, str]], *, min_classes: int = 2
) -> TextDataset:
    """Build a deduplicated data set from ``(line, text, label)`` rows.

    Exact duplicates (same text, same label) keep their first occurrence; a text that
    appears with different labels is dropped entirely, since it cannot be learned.

    Raises:
        DataError: empty text, no rows, or fewer than ``min_classes`` classes.
    """
    first: dict[str, tuple[int, str]] = {}
    conflicting: set[str] = set()
    n = 0
    for line, text, label in rows:
        n += 1
        text = text.strip()
        if not text:
            raise DataError(name, line, "empty text")
        if text in first:
            if first[text][1] != label:
                conflicting.add(text)
            continue
        first[text] = (line, label)
    if n == 0:
        raise DataError(name, None, "no examples (the file is empty or has only a header)")
    kept = [(line, text, label) for text, (line, label) in first.items() if text not in conflicting]
    label_names = sorted({label for _, _, label in kept})
    if len(label_names) < min_classes:
        only = f" (only {label_names[0]!r})" if label_names else ""
        raise DataError(
            name,
            None,
            f"needs at least {min_classes} classes to classify, found {len(label_names)}{only}",
        )
    index = {n: i for i, n in enumerate(label_names)}
    return TextDataset(
        name=name,
        texts=[t for _, t, _ in kept],
        labels=[index[y] for _, _, y in kept],
        label_names=label_names,
        lines=[line for line, _, _ in kept],
    )


def _decode_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(path, None, "the file is empty")
    lines = raw.split(b"\n")
    out = []
    for i, b in enumerate(lines, 1):
        try:
            out.append(b.decode("utf-8-sig" if i == 1 else "utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise DataError(
                path,
                i,
                f"bytes that are not UTF-8 at column {e.start + 1}: {b[e.start : e.start + 4]!r}",
            ) from None
    return out


def _read_delimited(path: Path, lines: list[str], delimiter: str, text_col: str, label_col: str):
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(path, None, "the file is empty") from None
    header = [h.strip() for h in header]
    for col in (text_col, label_col):
        if col not in header:
            raise DataError(path, 1, f"missing column {col!r}; the header has {header}")
    ti, li = header.index(text_col), header.index(label_col)
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(ti, li):
            raise DataError(path, line, f"row has {len(row)} fields, the header has {len(header)}")
        label = row[li].strip()
        if not label:
            raise DataError(path, line, f"empty label in column {label_col!r}")
        yield line, row[ti], label


def _read_jsonl(path: Path, lines: list[str], text_col: str, label_col: str):
    for line, s in enumerate(lines, 1):
        if not s.strip():
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise DataError(path, line, f"not valid JSON: {e.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(path, line, f"expected a JSON object, got {type(obj).__name__}")
        for col in (text_col, label_col):
            if col not in obj:
                raise DataError(path, line, f"missing column {col!r}; the object has {sorted(obj)}")
        text = obj[text_col]
        if not isinstance(text, str):
            raise DataError(path, line, f"{text_col!r} must be a string, got {text!r}")
        yield line, text, str(obj[label_col]).strip()


def read_file(
    path: str | Path, *, text_column: str = "text", label_column: str = "label"
) -> TextDataset:
    """Read a labelled text file: ``.csv``, ``.tsv`` or ``.jsonl``.

    CSV/TSV files need a header naming the columns; JSONL has one object per line.

    Args:
        path: the file.
        text_column: column (or JSON key) holding the text.
        label_column: column (or JSON key) holding the class name.

    Returns:
        The deduplicated data set (see :func:`from_rows`).

    Raises:
        FileNotFoundError: no such file.
        DataError: empty file, missing column, empty text, bytes that are not UTF-8,
            fewer than two classes; the message gives file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl", ".json"):
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv or .jsonl")
    lines = _decode_lines(path)
    if suffix in (".jsonl", ".json"):
        rows = _read_jsonl(path, lines, text_column, label_column)
    else:
        rows = _read_delimited(
            path, lines, "\t" if suffix == ".tsv" else ",", text_column, label_column
        )
    return from_rows(str(path), rows)
