"""The engine on one process: the same seed gives the same run, an interrupted run resumes
exactly, and a failed or interrupted re-train never touches the run it would replace."""

from __future__ import annotations

import hashlib
import json

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from attnlab.runs import RunError, load_run, make_config, partial_dir, read_meta
from attnlab.train import fit

pytestmark = pytest.mark.slow

QUIET = {"progress": False, "log": lambda s: None}


def _config(tiny_csv, tiny_text, *extra, epochs=2):
    return make_config(
        "text", str(tiny_csv), "bilstm-attn", overrides=[*tiny_text, *extra], epochs=epochs
    )


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _val(history):
    return [{k: v for k, v in h.items() if k.startswith("val_")} for h in history]


class _Interrupt(L.Callback):
    """Raises at the start of ``batch`` of ``epoch`` (as Ctrl+C would)."""

    def __init__(self, epoch: int, batch: int, error: type[BaseException] = KeyboardInterrupt):
        self.epoch, self.batch, self.error = epoch, batch, error

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise self.error("stopped by the test")


def test_same_seed_same_run(tiny_csv, tiny_text, tmp_path):
    config = _config(tiny_csv, tiny_text)
    a = fit(config, tmp_path / "a", **QUIET)
    b = fit(config, tmp_path / "b", **QUIET)
    for name in ("tokenizer.json", "labels.json", "model.safetensors"):
        assert (a.run_dir / name).read_bytes() == (b.run_dir / name).read_bytes(), name
    assert a.metrics["test"] == b.metrics["test"]
    assert _val(a.history) == _val(b.history)
    # Another seed gives another run.
    c = fit(_config(tiny_csv, tiny_text, "train.seed=1"), tmp_path / "c", **QUIET)
    assert (c.run_dir / "model.safetensors").read_bytes() != (
        a.run_dir / "model.safetensors"
    ).read_bytes()


def test_interrupted_run_resumes_exactly(tiny_csv, tiny_text, tmp_path):
    # Dropout stays on: the random state must be restored as well as the batch position.
    config = _config(tiny_csv, tiny_text, "train.patience=0", epochs=3)
    full = fit(config, tmp_path / "full", **QUIET)

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fit(config, out, callbacks=[_Interrupt(epoch=1, batch=3)], **QUIET)
    staging = partial_dir(out)
    assert read_meta(staging, finished=False)["status"] == "unfinished"
    with pytest.raises(RunError, match=r"did not finish: resume it with `attnlab train text --out"):
        load_run(out)
    with pytest.raises(RunError, match="unfinished run"):
        load_run(staging)

    resumed = fit(config, out, resume=True, **QUIET)
    assert not staging.exists() and not (out / "checkpoints").exists()
    a, b = load_file(full.run_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["test"] == full.metrics["test"]
    assert resumed.metrics["best_epoch"] == full.metrics["best_epoch"]
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert _val(resumed.history) == _val(full.history)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(config, out, resume=True, **QUIET)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_failed_retrain_leaves_the_run_untouched(tiny_csv, tiny_text, tmp_path, error):
    out = tmp_path / "run"
    fit(_config(tiny_csv, tiny_text, epochs=1), out, **QUIET)
    before = _digests(out)
    probs = load_run(out).predict_proba(["a gorgeous film"])
    with pytest.raises(error):
        fit(
            _config(tiny_csv, tiny_text, "train.seed=3"),
            out,
            callbacks=[_Interrupt(0, 2, error)],
            **QUIET,
        )
    assert _digests(out) == before
    assert torch.equal(load_run(out).predict_proba(["a gorgeous film"]), probs)


class _Diverge(L.Callback):
    """Makes the weights NaN during the first epoch, as an exploding loss would."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with torch.no_grad():
            next(pl_module.model.parameters()).fill_(float("nan"))


def test_diverged_training_is_an_error_and_writes_nothing(tiny_csv, tiny_text, tmp_path):
    out = tmp_path / "run"
    fit(_config(tiny_csv, tiny_text, epochs=1), out, **QUIET)
    before = _digests(out)
    with pytest.raises(RuntimeError, match=r"stopped being finite.*is unchanged"):
        fit(_config(tiny_csv, tiny_text, epochs=1), out, callbacks=[_Diverge()], **QUIET)
    assert _digests(out) == before


def test_metrics_and_config_of_a_finished_run(tiny_csv, tiny_text, tmp_path):
    result = fit(_config(tiny_csv, tiny_text, epochs=1), tmp_path / "run", **QUIET)
    meta = json.loads((result.run_dir / "config.json").read_text())
    assert meta["status"] == "finished" and meta["task"] == "text" and meta["format"] == 2
    assert set(meta["files"]) == {"model.safetensors", "tokenizer.json", "labels.json"}
    assert meta["dims"] == {"vocab_size": meta["dims"]["vocab_size"], "num_classes": 2}
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["split"] == {"train": 240, "val": 30, "test": 30}
    assert 0 <= m["test"]["accuracy"] <= 1 and m["baseline"]["name"].startswith("TF-IDF")
    assert len(m["test"]["per_class"]["f1"]) == 2 and sum(map(sum, m["test"]["confusion"])) == 30


def test_small_data(tmp_path, tiny_text):
    import csv

    rows = [("a good film", "pos"), ("a bad film", "neg"), ("great", "pos")]
    path = tmp_path / "three.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    config = make_config("text", str(path), "bilstm-attn", overrides=tiny_text, epochs=1)
    with pytest.raises(ValueError, match="3 examples: too few for the splits"):
        fit(config, tmp_path / "run", **QUIET)
