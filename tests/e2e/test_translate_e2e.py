"""A tiny end-to-end translate run through the command line: train -> run folder -> load_run
-> translate (arguments, standard input, empty and over-long lines) / eval / viz / report,
and broken run files refused in one line."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest

from attnlab.cli.main import main
from attnlab.data import PAIR_DATASETS
from attnlab.runs import RunError, load_run, sha256

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not PAIR_DATASETS["zh-en"].installed(), reason="pip install --no-deps hsk-sentences-audio"
    ),
]

TINY = [
    "data.limit=300",
    "data.test_size=12",
    "data.val_size=12",
    "data.vocab_size=200",
    "data.max_len=24",
    "data.beam=2",
    "train.batch_size=32",
    "train.threads=1",
    "model.embed_dim=16",
    "model.hidden_dim=16",
    "model.attn_dim=16",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny-translate"
    argv = ["train", "translate", "--data", "zh-en", "--model", "gru-bahdanau", "--epochs", "1"]
    sets = [a for s in TINY for a in ("--set", s)]
    assert main([*argv, *sets, "--out", str(out), "--report", "--no-progress"]) == 0
    return out


def test_run_folder_round_trip(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"model.safetensors", "config.json", "translate.json", "source.json",
            "target.json", "metrics.json", "report.html"} <= names  # fmt: skip
    meta = json.loads((trained / "config.json").read_text())
    assert meta["task"] == "translate" and meta["dims"]["shared_vocab"] is False
    run = load_run(trained)
    assert run.task.name == "translate" and run.artifacts.source_lang == "zh"
    first = run.translate(["我们是同学。"], beam=2)[0]
    assert load_run(trained).translate(["我们是同学。"], beam=2)[0].text == first.text
    assert len(first.source_tokens) == 7 and first.source_tokens[:3] == ["我", "们", "是"]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test"]["n"] == 12 and metrics["monitor"] == "val_loss"
    assert metrics["baseline"]["name"] == "copy the source"
    with pytest.raises(RunError, match="is a 'translate' run, not a 'text' run"):
        load_run(trained, task="text")


def test_translate_command(trained, tmp_path, capsys, monkeypatch):
    out = tmp_path / "align.png"
    long = "我" * 40
    argv = [
        "translate",
        str(trained),
        "我们是同学。",
        "",
        long,
        "--beam",
        "2",
        "--alignment",
        str(out),
    ]
    assert main(argv) == 0
    cap = capsys.readouterr()
    lines = cap.out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""  # one line per input; empty in, empty out
    assert "warning: input 3 has more than 24 tokens; it was cut to that length" in cap.err
    assert out.stat().st_size > 5000
    monkeypatch.setattr("sys.stdin", io.StringIO("我们是同学。\n\n你好。\n"))
    assert main(["translate", str(trained)]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""
    assert main(["translate", str(trained), "x", "--beam", "0"]) == 2
    assert "--beam must be at least 1, got 0" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "nope"), "x"]) == 2
    assert "nope" in capsys.readouterr().err


def test_eval_prints_bleu_chrf_and_signature(trained, capsys):
    assert main(["eval", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "gru-bahdanau on zh-en (test split, seed 0)" in out
    assert re.search(
        r"^BLEU \d+\.\d\d \(greedy \d+\.\d\d\)  nrefs:1\|case:mixed.*tok:13a", out, re.M
    )
    assert re.search(r"^chrF \d+\.\d\d \(greedy \d+\.\d\d\)  nrefs:1.*nc:6", out, re.M)


@pytest.mark.parametrize("suffix", [".html", ".svg"])
def test_viz_draws_the_alignment(trained, tmp_path, suffix, capsys):
    out = tmp_path / f"align{suffix}"
    assert main(["viz", str(trained), "我们是同学。", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "translation: " in printed and f"wrote {out}" in printed
    text = out.read_bytes()
    assert len(text) > 3000
    if suffix == ".html":
        assert "我".encode() in text and b"default-src 'none'" in text


def test_report_shows_bleu_and_alignments(trained):
    html = (trained / "report.html").read_text(encoding="utf-8")
    for part in ("Metrics", "BLEU (beam 2)", "copy the source", "Test sentences and their alignments",
                 "attnlab translate "):  # fmt: skip
        assert part in html, part


def test_broken_artifacts_are_one_line_errors(trained, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    (copy / "translate.json").write_text('{"max_len": 0}')
    assert main(["translate", str(copy), "x"]) == 2
    assert "translate.json does not match the checksum" in capsys.readouterr().err
    meta = json.loads((copy / "config.json").read_text())
    meta["files"]["translate.json"] = sha256(copy / "translate.json")
    (copy / "config.json").write_text(json.dumps(meta))
    assert main(["eval", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.endswith("translate.json: not a translation file written by attnlab")
        and "\n" not in err
    )
