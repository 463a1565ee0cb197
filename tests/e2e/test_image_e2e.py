"""A tiny end-to-end image run through the CLI: train -> eval -> predict -> viz -> explain
-> report, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from attnlab.cli.main import main
from attnlab.data.images import image_dataset_installed
from attnlab.runs import load_run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not image_dataset_installed("fashion-mnist"),
        reason="needs `apt-get install dataset-fashion-mnist`",
    ),
]

TINY = [
    "model.embed_dim=16", "model.depth=2", "model.num_heads=2", "model.stem_channels=0",
    "model.patch_size=7", "data.train_size=256", "data.val_size=64", "data.test_size=64",
    "train.batch_size=64", "train.threads=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny-vit"
    sets = [a for s in TINY for a in ("--set", s)]
    argv = ["train", "image", "--data", "fashion-mnist", "--model", "vit", "--epochs", "1"]
    assert main([*argv, *sets, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(d / "rgb.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(d / "grey.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_run_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"model.safetensors", "config.json", "image.json", "metrics.json"} <= names
    meta = json.loads((trained / "image.json").read_text())
    assert meta["classes"][0] == "T-shirt/top" and meta["flip"] is True
    run = load_run(trained)
    assert run.config.model == "vit" and run.config.train.epochs == 1
    m = json.loads((trained / "metrics.json").read_text())["test"]
    assert m["n"] == 64 and len(m["confusion"]) == 10


def test_eval_predict_viz_explain_report(trained, images, tmp_path, capsys):
    assert main(["eval", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "Ankle boot" in out and "confusion" in out
    files = [str(images / "rgb.png"), str(images / "grey.png")]
    assert main(["predict", str(trained), *files]) == 0
    got = capsys.readouterr()
    lines = got.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(files[0]) and len(lines[0].split("\t")) == 3
    assert "resized from 30x40" in got.err
    for suffix in ("png", "html"):
        target = tmp_path / f"map.{suffix}"
        assert (
            main(["viz", str(trained), files[0], "--method", "rollout", "--out", str(target)]) == 0
        )
        assert target.stat().st_size > 1000
    assert "rollout" in (tmp_path / "map.html").read_text()
    capsys.readouterr()
    argv = ["explain", str(trained), "--faithfulness", "--images", "8", "--method", "rollout"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| rollout |" in out and "| random |" in out
    saved = json.loads((trained / "faithfulness.json").read_text())
    assert saved["images"] == 8 and saved["rows"][0]["method"] == "rollout"
    assert main(["report", str(trained)]) == 0
    html = (trained / "report.html").read_text()
    assert (
        "Faithfulness" in html and "Worst confusions" in html and "Where the model looked" in html
    )


def test_bad_input_is_one_line(trained, images, capsys):
    assert main(["predict", str(trained), str(images / "notes.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an image" in err
    assert main(["viz", str(trained), str(images / "rgb.png"), "--method", "cbam",
                 "--out", "x.png"]) == 2  # fmt: skip
    assert "does not apply" in capsys.readouterr().err
    assert main(["explain", str(trained), "--faithfulness", "--method", "cbam"]) == 2
