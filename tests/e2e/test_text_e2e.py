"""A tiny end-to-end run through the CLI: train -> run folder -> load_run -> predict/eval,
and the report (resuming: tests/train/test_engine.py)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from attnlab import __version__
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
    assert re.search(r"negative\s+\d+\.\d%\s+\d+\.\d%\s+\d+\.\d%\s+150", out)


def test_report_is_self_contained(trained):
    html = (trained / "report.html").read_text(encoding="utf-8")
    # nothing is loaded from anywhere; the only addresses are the two cited papers
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert not re.search(r'src="(?!data:)', html)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls == {"https://aclanthology.org/N19-1357/", "https://aclanthology.org/D19-1002/"}
    blocks = re.findall(r'<div class="ex">.*?</div></div>', html, re.S)
    assert len(blocks) == 20
    for block in blocks:  # each: verdict, labels and one sentence shaded in place
        assert re.search(r'class="(ok|bad)">(right|wrong)<', block) and 'class="tok"' in block
    assert "TF-IDF + logistic regression" in html
    assert html.count("data:image/png;base64,") == 2
    for stem in ("curves", "confusion"):
        assert (trained / f"{stem}.png").stat().st_size > 0
        assert (trained / f"{stem}.svg").stat().st_size > 0
    # per-class scores, the guide with its caveat, commands, provenance
    assert re.search(r"<td>negative</td><td class=num>\d+\.\d%</td>", html)
    assert "Jain &amp; Wallace 2019" in html and "Wiegreffe &amp; Pinter 2019" in html
    flat = " ".join(html.split())
    assert "attention pooling" in flat and "not as an explanation of its decision" in flat
    assert f"attnlab viz {trained}" in html and f"attnlab explore {trained}" in html
    assert f"attnlab {__version__}" in html and "seed 0" in html
    assert re.search(r"sha256 [0-9a-f]{64}", html)
    assert "kept: epoch 1" in (trained / "curves.svg").read_text(encoding="utf-8")
    assert "weights kept are those of epoch 1" in html


def test_report_shows_the_original_text(trained, tiny_csv):
    import csv

    html = (trained / "report.html").read_text(encoding="utf-8")
    with open(tiny_csv, encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    shown = [
        re.sub(r"<[^>]+>", "", b) for b in re.findall(r'<div class="text">(.*?)</div>', html, re.S)
    ]
    import html as html_lib

    shown = [html_lib.unescape(t) for t in shown]
    assert len(shown) == 20 and all(t in texts for t in shown)  # case and spacing kept
    assert any(any(c.isupper() for c in t) for t in shown)


@pytest.mark.browser
def test_report_fits_a_phone_screen(trained, browser):
    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.goto((trained / "report.html").as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    page.close()


def test_cli_errors_on_a_pooling_only_run(trained, tmp_path, capsys):
    # a BiLSTM has no self-attention: rollout is refused alike for every format
    messages = set()
    for ext in (".html", ".png"):
        out = tmp_path / f"r{ext}"
        assert (
            main(["viz", str(trained), "a fine film", "--view", "rollout", "--out", str(out)]) == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "needs self-attention layers" in err
        messages.add(err)
        assert not out.exists()
    assert len(messages) == 1
    assert main(["predict", str(trained), ""]) == 2
    assert capsys.readouterr().err == "attnlab predict: error: text is empty\n"
    assert main(["predict", str(trained), "fine", " "]) == 2
    assert capsys.readouterr().err == "attnlab predict: error: text 2 is empty\n"
    assert main(["predict", str(trained), "fine", "--max-tokens", "0"]) == 2
    assert "--max-tokens must be at least 1, got 0" in capsys.readouterr().err


def test_predict_says_when_it_cuts(trained, capsys):
    long = "a gorgeous witty film " * 30
    assert main(["predict", str(trained), long]) == 0
    captured = capsys.readouterr()
    m = re.search(r"note: the text has (\d+) tokens; only the first 64 are read", captured.err)
    assert m and int(m.group(1)) > 64 and captured.err.count("\n") == 1
    assert main(["predict", str(trained), long, "--max-tokens", "1000"]) == 0
    assert "note" not in capsys.readouterr().err


def test_eval_prints_per_class_scores(trained, capsys):
    assert main(["eval", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "per class:" in out
    assert re.search(r"^\s+negative\s+\d+\.\d%\s+\d+\.\d%\s+\d+\.\d%\s+\d+$", out, re.M)
    assert re.search(r"^\s+positive\s+\d+\.\d%", out, re.M)
