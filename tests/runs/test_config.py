"""Run configs: defaults per task, model and data, typed overrides, JSON round trip,
TOML files, and the engine's learning-rate schedules."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from attnlab.runs import RunConfig, make_config, read_config_file
from attnlab.train.optim import lr_factor


def test_defaults_per_model_and_data():
    cfg = make_config("text", "mr", "bilstm-attn")
    assert cfg.task == "text" and cfg.data.name == "mr" and cfg.train.lr == 2e-3
    assert make_config("text", "mr").model == "bilstm-attn"  # the task's default preset
    mini = make_config("text", "mr", "minilm")
    assert mini.train.lr == 1e-4 and mini.train.epochs == 4 and mini.train.batch_size == 32
    assert mini.data.tokenizer == "minilm"
    zh = make_config("text", "zh-reviews", "transformer")
    assert zh.data.max_len == 160 and zh.model_config.embeddings == "random"


def test_overrides_are_typed():
    cfg = make_config(
        "text",
        "mr",
        "transformer",
        overrides=[
            "train.lr=3e-4",
            "num_layers=3",
            "model.dropout=0.1",
            "precision=bf16",
            "data.max_len=32",
            "vocab_size=100",
        ],
        epochs=2,
    )
    assert cfg.train.lr == 3e-4 and cfg.train.epochs == 2 and cfg.train.precision == "bf16-mixed"
    assert cfg.model_config.num_layers == 3 and cfg.model_config.dropout == 0.1
    assert cfg.data.max_len == 32 and cfg.data.vocab_size == 100
    mini = make_config("text", "mr", "minilm", overrides=["pretrained=false"])
    assert mini.model_config.pretrained is False
    assert make_config("text", "mr", overrides=["test_file=none"]).data.test_file is None


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
        ("precision=fp8", ValueError, "precision must be one of 32, bf16-mixed"),
        ("embeddings=glove", ValueError, "embeddings must be one of"),
        ("lr=nan", ValueError, "lr must be a number > 0, got nan"),
        ("devices=0", ValueError, "devices must be >= 1, got 0"),
        ("schedule=step", ValueError, "schedule must be one of"),
        ("tokenizer=spacy", ValueError, "tokenizer must be one of"),
    ],
)
def test_bad_overrides(override, error, message):
    model = "minilm" if "pretrained" in override else "transformer"
    with pytest.raises(error, match=message):
        make_config("text", "mr", model, overrides=[override])


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; tasks: text"):
        make_config("nope", "mr")
    with pytest.raises(
        ValueError, match=r"unknown model 'nope' for task 'text'; presets: bilstm-attn"
    ):
        make_config("text", "mr", "nope")


def test_config_is_frozen_and_round_trips():
    cfg = make_config("text", "mr", "bilstm-attn", overrides=["hidden_dim=32"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg
    d = cfg.to_dict()
    d["train"]["bogus"] = 1
    with pytest.raises(ValueError, match="train config has no field"):
        RunConfig.from_dict(d)
    d = cfg.to_dict()
    d["data"] = "mr"
    with pytest.raises(ValueError, match="data config must be an object"):
        RunConfig.from_dict(d)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "inverse-sqrt", "constant"])
def test_warmup_then_schedule(schedule):
    values = [lr_factor(s, total=100, warmup=10, schedule=schedule) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(values[9:]))
    end = {"linear": 1 / 90, "cosine": 0.0, "inverse-sqrt": (10 / 100) ** 0.5, "constant": 1.0}
    assert values[-1] == pytest.approx(end[schedule], abs=1e-3)
    if schedule == "linear":
        assert values[55] == pytest.approx(0.5)


def test_toml_config_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'model = "transformer"\n[train]\nepochs = 3\nlr = 0.0005\n'
        '[data]\nname = "trec"\nmax_len = 48\n[model_config]\nnum_layers = 1\n',
        encoding="utf-8",
    )
    run, overrides = read_config_file(path)
    assert run == {"data": "trec", "model": "transformer"}
    cfg = make_config("text", run["data"], run["model"], overrides=overrides)
    assert (cfg.train.epochs, cfg.train.lr, cfg.model_config.num_layers) == (3, 5e-4, 1)
    assert cfg.data.max_len == 48
    path.write_text("[optim]\nlr = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown key 'optim'"):
        read_config_file(path)
    path.write_text("data = \n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        read_config_file(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_config_file(tmp_path / "none.toml")


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("configs/*.toml")))
def test_shipped_config_files_are_valid(path):
    run, overrides = read_config_file(path)
    make_config(run.get("task", "text"), run["data"], run["model"], overrides=overrides)
