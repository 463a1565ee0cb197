"""Run configs: defaults per model/data, typed overrides, JSON round trip, schedule."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from attnlab.train import RunConfig, make_config
from attnlab.train.module import warmup_linear


def test_defaults_per_model_and_data():
    assert make_config("mr", "bilstm-attn").train.lr == 2e-3
    mini = make_config("mr", "minilm")
    assert mini.train.lr == 1e-4 and mini.train.epochs == 4 and mini.train.batch_size == 32
    zh = make_config("zh-reviews", "transformer")
    assert zh.train.max_len == 160 and zh.model_config.embeddings == "random"


def test_overrides_are_typed():
    cfg = make_config(
        "mr",
        "transformer",
        overrides=["train.lr=3e-4", "num_layers=3", "model.dropout=0.1", "precision=bf16"],
        epochs=2,
    )
    assert cfg.train.lr == 3e-4 and cfg.train.epochs == 2 and cfg.train.precision == "bf16"
    assert cfg.model_config.num_layers == 3 and cfg.model_config.dropout == 0.1
    assert (
        make_config("mr", "minilm", overrides=["pretrained=false"]).model_config.pretrained is False
    )
    assert make_config("mr", "bilstm-attn", overrides=["test_data=none"]).test_data is None


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("lr=fast", TypeError, "cannot set lr='fast': expected a value of type float"),
        ("epochs=2.5", TypeError, "expected a value of type int"),
        ("model.pretrained=maybe", TypeError, "type bool"),
        ("nope=1", ValueError, "unknown setting 'nope'"),
        ("model.nope=1", ValueError, "model config has no field 'nope'"),
        ("foo.lr=1", ValueError, "unknown section 'foo'"),
        ("lr", ValueError, "must look like key=value"),
        ("precision=fp8", ValueError, "precision must be '32' or 'bf16'"),
        ("embeddings=glove", ValueError, "embeddings must be one of"),
    ],
)
def test_bad_overrides(override, error, message):
    model = "minilm" if "pretrained" in override else "bilstm-attn"
    with pytest.raises(error, match=message):
        make_config("mr", model, overrides=[override])


def test_config_is_frozen_and_round_trips():
    cfg = make_config("mr", "bilstm-attn", overrides=["hidden_dim=32"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg
    d = cfg.to_dict()
    d["train"]["bogus"] = 1
    with pytest.raises(ValueError, match="train config has no field"):
        RunConfig.from_dict(d)


def test_warmup_then_linear_decay():
    values = [warmup_linear(s, 100, 10) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[55] == pytest.approx(0.5)
    assert all(a >= b for a, b in itertools.pairwise(values[9:]))


def test_toml_config_file(tmp_path):
    from attnlab.train import read_config_file

    path = tmp_path / "run.toml"
    path.write_text(
        'data = "trec"\nmodel = "transformer"\n[train]\nepochs = 3\nlr = 0.0005\n'
        "[model_config]\nnum_layers = 1\n",
        encoding="utf-8",
    )
    run, overrides = read_config_file(path)
    assert run == {"data": "trec", "model": "transformer"}
    cfg = make_config(run["data"], run["model"], overrides=overrides)
    assert (cfg.train.epochs, cfg.train.lr, cfg.model_config.num_layers) == (3, 5e-4, 1)
    path.write_text("[optim]\nlr = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown key 'optim'"):
        read_config_file(path)
    path.write_text("data = \n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        read_config_file(path)


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("configs/*.toml")))
def test_shipped_config_files_are_valid(path):
    from attnlab.train import read_config_file

    run, overrides = read_config_file(path)
    make_config(run["data"], run["model"], overrides=overrides)
