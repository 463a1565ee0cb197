"""Sentence pairs for translation: the in-memory data set, source-disjoint splits and user
files (TSV/CSV with a header, or JSONL, with a source and a target column).

Every problem with a file raises :class:`~attnlab.data.text.DataError` naming file and
line. The packaged corpora (``de-en``, ``zh-en``) live in :mod:`attnlab.data.pair_corpora`.

Example:
    >>> ds = read_pairs("pairs.tsv", source_column="de", target_column="en")  # doctest: +SKIP
    >>> splits = ds.split(seed=0, test=0.1, val=0.1)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnlab.data.text import DataError, _decode_lines

__all__ = ["SUFFIXES", "PairDataset", "PairSplits", "pairs_from_rows", "read_pairs"]

Rows = Iterator[tuple[int, str, str]]

#: File types :func:`read_pairs` reads.
SUFFIXES = (".tsv", ".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class PairDataset:
    """Aligned source/target sentences.

    Attributes:
        name: data set name or file path.
        sources: source sentences.
        targets: target sentences (``targets[i]`` translates ``sources[i]``).
        source_lang: language code of the sources (``"de"``, ``"zh"``, ...).
        target_lang: language code of the targets.
        lines: source line of each pair (for error messages), or empty.
    """

    name: str
    sources: list[str]
    targets: list[str]
    source_lang: str = "src"
    target_lang: str = "tgt"
    lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ValueError(f"{len(self.sources)} sources but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int], name: str | None = None) -> PairDataset:
        """The pairs at ``indices``."""
        return PairDataset(
            name=name or self.name,
            sources=[self.sources[i] for i in indices],
            targets=[self.targets[i] for i in indices],
            source_lang=self.source_lang,
            target_lang=self.target_lang,
            lines=[self.lines[i] for i in indices] if self.lines else [],
        )

    def __add__(self, other: PairDataset) -> PairDataset:
        if not isinstance(other, PairDataset):
            return NotImplemented
        return PairDataset(
            name=f"{self.name}+{other.name}",
            sources=self.sources + other.sources,
            targets=self.targets + other.targets,
            source_lang=self.source_lang,
            target_lang=self.target_lang,
            lines=self.lines + other.lines if self.lines and other.lines else [],
        )

    def without_sources(self, sources: Iterable[str], name: str | None = None) -> PairDataset:
        """The pairs whose source is not in ``sources`` (e.g. keep test sentences out)."""
        drop = set(sources)
        return self.subset([i for i, s in enumerate(self.sources) if s not in drop], name)

    def split(
        self, *, seed: int = 0, test: int | float = 0.1, val: int | float = 0.1
    ) -> PairSplits:
        """Deterministic train/validation/test split by unique source sentence.

        All pairs sharing a source sentence land in the same split, so no test source is
        ever seen in training. Unique sources are shuffled with ``seed`` and taken in
        order until a split holds its size.

        Args:
            seed: shuffle seed; the same data and seed always give the same split.
            test: test size, a number of pairs (int) or a fraction of all pairs (float).
            val: validation size, likewise.

        Raises:
            ValueError: sizes that are negative or leave no training pairs.
        """
        n = len(self)
        sizes = {}
        for key, size in (("test", test), ("val", val)):
            if isinstance(size, bool) or not isinstance(size, (int, float)) or size < 0:
                raise ValueError(f"{key} size must be a count or a fraction >= 0, got {size!r}")
            if isinstance(size, float):
                if size >= 1:
                    raise ValueError(f"{key} fraction must be < 1, got {size}")
                size = round(n * size)
            sizes[key] = size
        if sizes["test"] + sizes["val"] >= n:
            raise ValueError(
                f"test {sizes['test']} + val {sizes['val']} pairs leave no training pairs "
                f"out of {n}"
            )
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(self.sources):
            groups.setdefault(s, []).append(i)
        order = list(groups)
        random.Random(seed).shuffle(order)
        parts: dict[str, list[int]] = {"test": [], "val": [], "train": []}
        for source in order:
            idx = groups[source]
            for key in ("test", "val"):
                if len(parts[key]) + len(idx) <= sizes[key]:
                    parts[key] += idx
                    break
            else:
                parts["train"] += idx
        for key in parts:
            parts[key].sort()
        return PairSplits(
            train=self.subset(parts["train"], f"{self.name}[train]"),
            val=self.subset(parts["val"], f"{self.name}[val]"),
            test=self.subset(parts["test"], f"{self.name}[test]"),
        )


@dataclass(frozen=True)
class PairSplits:
    """Train, validation and test parts of one pair data set (disjoint sources)."""

    train: PairDataset
    val: PairDataset
    test: PairDataset


def pairs_from_rows(
    name: str, rows: Iterable[tuple[int, str, str]], *, source_lang: str, target_lang: str
) -> PairDataset:
    """Build a deduplicated pair data set from ``(line, source, target)`` rows.

    Exact duplicate pairs keep their first occurrence; a source with several different
    translations keeps them all (they are all correct references).

    Raises:
        DataError: an empty side, or no rows at all.
    """
    seen: set[tuple[str, str]] = set()
    sources, targets, lines = [], [], []
    n = 0
    for line, src, tgt in rows:
        n += 1
        src, tgt = src.strip(), tgt.strip()
        if not src:
            raise DataError(name, line, "empty source sentence")
        if not tgt:
            raise DataError(name, line, "empty target sentence")
        if (src, tgt) in seen:
            continue
        seen.add((src, tgt))
        sources.append(src)
        targets.append(tgt)
        lines.append(line)
    if n == 0:
        raise DataError(name, None, "no pairs (the file is empty or has only a header)")
    return PairDataset(name, sources, targets, source_lang, target_lang, lines)


def _delimited_rows(
    path: Path, lines: list[str], delimiter: str, src_col: str, tgt_col: str
) -> Rows:
    name = "tab" if delimiter == "\t" else "comma"
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(path, None, "the file is empty") from None
    for col in (src_col, tgt_col):
        if col not in header:
            raise DataError(path, 1, f"missing column {col!r}; the header has {header}")
    si, ti = header.index(src_col), header.index(tgt_col)
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) == 1:
            raise DataError(path, line, f"line has no {name} separating source and target")
        if len(row) <= max(si, ti):
            raise DataError(path, line, f"row has {len(row)} fields, the header has {len(header)}")
        yield line, row[si], row[ti]


def _jsonl_rows(path: Path, lines: list[str], src_col: str, tgt_col: str) -> Rows:
    for line, s in enumerate(lines, 1):
        if not s.strip():
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise DataError(path, line, f"not valid JSON: {e.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(path, line, f"expected a JSON object, got {type(obj).__name__}")
        for col in (src_col, tgt_col):
            if col not in obj:
                raise DataError(path, line, f"missing column {col!r}; the object has {sorted(obj)}")
            if not isinstance(obj[col], str):
                raise DataError(path, line, f"{col!r} must be a string, got {obj[col]!r}")
        yield line, obj[src_col], obj[tgt_col]


def read_pairs(
    path: str | Path,
    *,
    source_column: str = "source",
    target_column: str = "target",
    source_lang: str = "src",
    target_lang: str = "tgt",
) -> PairDataset:
    """Read a sentence-pair file: ``.tsv`` or ``.csv`` with a header, or ``.jsonl``.

    Args:
        path: the file.
        source_column: column (or JSON key) holding the source sentence.
        target_column: column (or JSON key) holding the target sentence.
        source_lang: language code of the sources (``"zh"`` selects Chinese handling).
        target_lang: language code of the targets.

    Raises:
        FileNotFoundError: no such file.
        DataError: empty file, missing column, a line without a separator, an empty
            side, bytes that are not UTF-8; the message gives file and line.

    Example:
        >>> ds = read_pairs("pairs.tsv", source_column="de", target_column="en")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .tsv, .csv or .jsonl")
    lines = _decode_lines(path)
    if suffix in (".jsonl", ".json"):
        rows = _jsonl_rows(path, lines, source_column, target_column)
    else:
        delimiter = "\t" if suffix == ".tsv" else ","
        rows = _delimited_rows(path, lines, delimiter, source_column, target_column)
    return pairs_from_rows(str(path), rows, source_lang=source_lang, target_lang=target_lang)
