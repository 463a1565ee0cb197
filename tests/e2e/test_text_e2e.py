"""A tiny end-to-end run through the CLI: train -> run folder -> load_run -> predict/eval,
the report, and resuming an interrupted run."""

from __future__ import annotations

import json
import re

import pytest
import torch

from attnlab.cli.main import main
from attnlab.runs import load_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(tiny_csv, tiny_text, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    argv = ["train", "text", "--data", str(tiny_csv), "--model", "bilstm-attn", "--epochs", "1"]
    sets = [a for s in tiny_text for a in ("--set", s)]
    rc = main([*argv, *sets, "--out", str(out), "--report", "--no-progress"])
    assert rc == 0
    return out


def test_run_folder_holds_no_pickles(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "labels.json"} <= names
    assert {"metrics.json", "report.html"} <= names
    assert not list(trained.rglob("*.ckpt")) and not list(trained.rglob("*.pt"))
    assert json.loads((trained / "labels.json").read_text())["labels"] == ["negative", "positive"]
    meta = json.loads((trained / "config.json").read_text())
    assert meta["config"]["model_config"]["hidden_dim"] == 16


def test_load_run_interface(trained):
    run = load_run(trained)
    texts = ["a gorgeous, witty delight", "dull and tedious"]
    assert not run.model.training
    batch = run.encode(texts)
    logits = run.model(**batch)
    assert logits.shape == (2, 2)
    tokens = run.tokens(texts)
    assert [len(t) for t in tokens] == batch["lengths"].tolist()
    probs = run.predict_proba(texts)
    assert torch.allclose(probs, torch.softmax(logits, -1), atol=1e-6)
    assert run.labels == ["negative", "positive"]
    assert run.config.model == "bilstm-attn" and run.config.train.epochs == 1
    preds = run.predict(texts)
    assert preds[0].label in run.labels
    assert abs(sum(preds[0].weights) - 1) < 1e-5


def test_predict_and_eval_commands(trained, tiny_csv, tmp_path, capsys):
    texts = ["a gorgeous film", "a dull film"]
    assert main(["predict", str(trained), *texts]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, tokens in zip(lines, load_run(trained).tokens(texts), strict=True):
        label, prob, tops = line.split("\t")
        assert label in ("negative", "positive") and 0.5 <= float(prob) <= 1
        top = re.findall(r"(\S+) \((0\.\d\d|1\.00)\)", tops)
        assert len(top) == 3 and {t for t, _ in top} <= set(tokens)
        weights = [float(w) for _, w in top]
        assert weights == sorted(weights, reverse=True)
    assert main(["eval", str(trained)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"accuracy: \d+\.\d\d%", out) and "test split" in out
    other = tmp_path / "other.csv"
    other.write_text(tiny_csv.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["eval", str(trained), "--data", str(other)]) == 0
    out = capsys.readouterr().out
    assert "all 300 examples" in out
    assert re.search(r"negative\s+\d+\.\d\d%\s+\d+\.\d\d%\s+\d+\.\d\d%\s+150", out)
    assert main(["predict", str(trained), "fine", ""]) == 2
    assert "text 1 is empty" in capsys.readouterr().err


def test_report_is_self_contained(trained):
    html = (trained / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I)
    assert "<script" not in html and "<link" not in html
    rows = re.findall(r"<tr><td class=\"(?:ok|bad)\">.*?</tr>", html, re.S)
    assert len(rows) == 20
    for row in rows:  # one highlighted sentence per row
        assert row.count('<td class="ex">') == 1 and 'class="tok' in row
    assert "TF-IDF + logistic regression" in html
    assert html.count("data:image/png;base64,") == 2
    for stem in ("curves", "confusion"):
        assert (trained / f"{stem}.png").stat().st_size > 0
        assert (trained / f"{stem}.svg").stat().st_size > 0
