"""User data files (CSV, TSV, JSONL) and every bad-data error, with file and line."""

from __future__ import annotations

import json

import pytest

from attnlab.data import DataError, TextDataset, from_rows, read_file


def write(tmp_path, name, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_csv_tsv_jsonl_read_the_same(tmp_path):
    rows = [("good film", "pos"), ("bad, dull film", "neg"), ("good film", "pos"), ("meh", "neg")]
    csv_ = write(tmp_path, "a.csv", "text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows))
    tsv = write(tmp_path, "a.tsv", "label\ttext\n" + "".join(f"{y}\t{t}\n" for t, y in rows))
    jsonl = write(
        tmp_path, "a.jsonl", "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows)
    )
    sets = [read_file(p) for p in (csv_, tsv, jsonl)]
    for ds in sets:
        assert ds.texts == ["good film", "bad, dull film", "meh"]  # duplicate dropped
        assert ds.label_names == ["neg", "pos"] and ds.labels == [1, 0, 0]
    assert sets[0].lines == [2, 3, 5]


def test_custom_column_names(tmp_path):
    p = write(tmp_path, "r.csv", "review,stars\nnice,5\nawful,1\n")
    ds = read_file(p, text_column="review", label_column="stars")
    assert ds.label_names == ["1", "5"]


def test_conflicting_labels_are_dropped():
    ds = from_rows("x", [(1, "a", "p"), (2, "b", "n"), (3, "a", "n"), (4, "c", "p")])
    assert ds.texts == ["b", "c"]


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("empty.csv", "", None, "the file is empty"),
        ("header.csv", "text,label\n", None, "no examples"),
        ("col.csv", "text,target\nhi,1\n", 1, "missing column 'label'"),
        ("blank.csv", "text,label\nfine,a\n  ,b\n", 3, "empty text"),
        ("bytes.csv", b"text,label\nfine,a\ncaf\xe9,b\n", 3, "not UTF-8"),
        ("one.csv", "text,label\nx,a\ny,a\n", None, "at least 2 classes"),
        ("short.csv", "text,label\nx,a\ny\n", 3, "1 fields"),
        ("nolabel.csv", "text,label\nx,a\ny,\n", 3, "empty label"),
        ("bad.jsonl", '{"text": "x", "label": "a"}\n{oops\n', 2, "not valid JSON"),
        ("key.jsonl", '{"text": "x", "label": "a"}\n{"text": "y"}\n', 2, "missing column 'label'"),
        ("type.jsonl", '{"text": 3, "label": "a"}\n', 1, "must be a string"),
    ],
)
def test_bad_data_names_file_and_line(tmp_path, name, content, line, message):
    path = write(tmp_path, name, content)
    with pytest.raises(DataError, match=message) as info:
        read_file(path)
    err = info.value
    assert err.path == str(path) and err.line == line
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert str(err).startswith(where)
    assert isinstance(err, ValueError)


def test_test_label_never_seen_in_training(tmp_path):
    train = read_file(write(tmp_path, "train.csv", "text,label\na,x\nb,y\n"))
    test = read_file(write(tmp_path, "test.csv", "text,label\nc,x\nd,z\n"))
    with pytest.raises(DataError, match="label 'z' never appears in the training data") as info:
        test.relabel(train.label_names)
    assert info.value.line == 3 and info.value.path.endswith("test.csv")


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_file(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        read_file(write(tmp_path, "a.txt", "x"))


def test_split_fractions_checked():
    ds = TextDataset("x", ["a", "b"], [0, 1], ["n", "p"])
    with pytest.raises(ValueError, match=r"val=0\.6, test=0\.5"):
        ds.split(val=0.6, test=0.5)
