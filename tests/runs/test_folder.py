"""Run folders: a round trip, and one one-line error for every broken artifact."""

from __future__ import annotations

import json
import shutil

import pytest

from attnlab.cli.main import main
from attnlab.runs import RunError, load_run, make_config, publish, sha256
from attnlab.runs.folder import CONFIG
from attnlab.train import fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tiny_csv, tiny_text, tmp_path_factory):
    config = make_config("text", str(tiny_csv), "bilstm-attn", overrides=tiny_text, epochs=1)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    fit(config, out, progress=False, log=lambda s: None)
    return out


@pytest.fixture
def copy(run_dir, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    return target


def _rechecksum(folder, name):
    meta = json.loads((folder / CONFIG).read_text())
    meta["files"][name] = sha256(folder / name)
    (folder / CONFIG).write_text(json.dumps(meta))


def test_round_trip(run_dir):
    run = load_run(run_dir)
    assert run.task.name == "text" and run.config.model == "bilstm-attn"
    assert not run.model.training and not list(run_dir.rglob("*.ckpt"))
    probs = run.predict_proba(["a gorgeous, witty film", "dull"])
    assert probs.shape == (2, 2)
    again = load_run(run_dir).predict_proba(["a gorgeous, witty film", "dull"])
    assert probs.equal(again)
    with pytest.raises(RunError, match="is a 'text' run, not a 'translate' run"):
        load_run(run_dir, task="translate")


def _truncate(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def _flip(folder):
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))


def _garbage_weights(folder):
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    _rechecksum(folder, "model.safetensors")


def _garbage_tokenizer(folder):
    (folder / "tokenizer.json").write_text("{not json")
    _rechecksum(folder, "tokenizer.json")


def _garbage_labels(folder):
    (folder / "labels.json").write_text('{"labels": 3}')
    _rechecksum(folder, "labels.json")


def _config_not_json(folder):
    (folder / CONFIG).write_text("{")


def _config_wrong_shape(folder):
    (folder / CONFIG).write_text("[1, 2, 3]")


def _newer(folder):
    meta = json.loads((folder / CONFIG).read_text())
    meta["format"] = 99
    (folder / CONFIG).write_text(json.dumps(meta))


def _unknown_task(folder):
    meta = json.loads((folder / CONFIG).read_text())
    meta["config"]["task"] = "nope"
    (folder / CONFIG).write_text(json.dumps(meta))


def _bad_dims(folder):
    meta = json.loads((folder / CONFIG).read_text())
    meta["dims"] = {"vocab_size": 3}
    (folder / CONFIG).write_text(json.dumps(meta))


def _missing_tokenizer(folder):
    (folder / "tokenizer.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, r"model.safetensors does not match the checksum"),
        (_flip, r"model.safetensors does not match the checksum"),
        (_garbage_weights, r"model.safetensors: cannot load the weights"),
        (_garbage_tokenizer, r"tokenizer.json: not a tokenizer file"),
        (_garbage_labels, r"labels.json: not a label file"),
        (_config_not_json, r"config.json: not valid JSON"),
        (_config_wrong_shape, r"config.json: not a run config written by attnlab"),
        (_newer, r"written by a newer attnlab \(run format 99"),
        (_unknown_task, r"bad run config: unknown task 'nope'"),
        (_bad_dims, r"dims config"),
        (_missing_tokenizer, r"tokenizer.json is missing"),
    ],
)
def test_broken_artifacts_give_one_line_errors(copy, damage, message, capsys):
    damage(copy)
    with pytest.raises(RunError, match=message):
        load_run(copy)
    assert main(["predict", str(copy), "a fine film"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(copy) in err


def test_publish_replaces_only_when_complete(tmp_path):
    old, new = tmp_path / "run", tmp_path / "run.partial"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    publish(new, old)
    assert (old / "a").read_text() == "new" and not new.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
