"""Run configuration: frozen dataclasses, defaults per model and data set, and
``key=value`` overrides checked against the field types.

Example:
    >>> cfg = make_config("mr", "bilstm-attn", overrides=["train.lr=1e-3", "model.hidden_dim=64"])
    >>> cfg.train.lr, cfg.model_config.hidden_dim
    (0.001, 64)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab.models.registry import get_model

__all__ = [
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "make_config",
    "parse_value",
    "read_config_file",
]


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        epochs: most passes over the training split (early stopping may end sooner).
        batch_size: examples per optimizer step.
        lr: peak AdamW learning rate.
        weight_decay: AdamW decoupled weight decay (not applied to biases and norms).
        warmup: fraction of the steps spent warming the learning rate up linearly;
            it then decays linearly to zero.
        grad_clip: clip the gradient norm to this (0 turns clipping off).
        patience: stop after this many epochs without a better validation accuracy.
        seed: seeds the split, the initialisation and the batch order.
        precision: ``"32"`` or ``"bf16"`` (bf16 mixed precision).
        max_len: tokens kept per text.
        tokenizer: ``"wordpiece"``, ``"bpe"``, ``"char"``, ``"auto"`` (by language), or a
            packaged pretrained model's (``"minilm"``).
        vocab_size: vocabulary of a trained tokenizer.
        label_smoothing: cross-entropy label smoothing.
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for the test.
        threads: torch CPU threads (0 keeps torch's default).
    """

    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    grad_clip: float = 1.0
    patience: int = 2
    seed: int = 0
    precision: str = "32"
    max_len: int = 64
    tokenizer: str = "auto"
    vocab_size: int = 8000
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    threads: int = 0

    def __post_init__(self) -> None:
        if self.precision not in ("32", "bf16"):
            raise ValueError(f"precision must be '32' or 'bf16', got {self.precision!r}")
        for name in ("epochs", "batch_size", "max_len", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (saved as ``config.json`` in the run folder).

    Attributes:
        data: packaged data set name or a .csv/.tsv/.jsonl path.
        model: registered preset name.
        model_config: the preset's config dataclass.
        train: training settings.
        test_data: optional separate test file (otherwise the test split of ``data``).
        text_column: text column of user files.
        label_column: label column of user files.
        task: ``"text"``.
    """

    data: str
    model: str
    model_config: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    test_data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    task: str = "text"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model_config"] = dataclasses.asdict(self.model_config)
        d["train"] = dataclasses.asdict(self.train)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        d = dict(d)
        spec = get_model(d["model"])
        d["model_config"] = spec.config_from_dict(d.get("model_config", {}))
        d["train"] = _build(TrainConfig, d.get("train", {}), "train")
        return _build(cls, d, "run")


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where} config has no field(s) {unknown}; fields: {sorted(names)}")
    return cls(**values)


def parse_value(text: str, annotation: Any, key: str) -> Any:
    """Convert ``text`` to the type ``annotation`` of field ``key``.

    Raises:
        TypeError: the text is not a value of that type (the message names both).
    """
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        hint = args[0] if len(args) == 1 else str
    try:
        if hint is bool:
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is str or hint is Any:
            return text
    except ValueError:
        pass
    else:
        raise TypeError(f"cannot set {key}: unsupported field type {hint!r}")
    name = getattr(hint, "__name__", str(hint))
    raise TypeError(f"cannot set {key}={text!r}: expected a value of type {name}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def apply_overrides(config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """Apply ``key=value`` overrides to a run config.

    Keys are ``train.<field>``, ``model.<field>`` or a run field (``data``,
    ``text_column``...). A bare training or model field name works when unambiguous.

    Raises:
        ValueError: malformed override or unknown/ambiguous key.
        TypeError: value of the wrong type for the field.
    """
    train, model_cfg, top = config.train, config.model_config, {}
    train_types, model_types = _field_types(TrainConfig), _field_types(type(model_cfg))
    top_types = {
        k: v
        for k, v in _field_types(RunConfig).items()
        if k in ("data", "test_data", "text_column", "label_column")
    }
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        section, _, name = key.rpartition(".")
        if not section:
            homes = [
                s
                for s, t in (("train", train_types), ("model", model_types), ("run", top_types))
                if name in t
            ]
            if not homes:
                raise ValueError(
                    f"unknown setting {key!r}; train fields: {sorted(train_types)}; "
                    f"model fields: {sorted(model_types)}; run fields: {sorted(top_types)}"
                )
            if len(homes) > 1:
                raise ValueError(
                    f"setting {key!r} is ambiguous; write {' or '.join(h + '.' + name for h in homes)}"
                )
            section = homes[0]
        if section == "train" and name in train_types:
            train = dataclasses.replace(train, **{name: parse_value(value, train_types[name], key)})
        elif section == "model" and name in model_types:
            model_cfg = dataclasses.replace(
                model_cfg, **{name: parse_value(value, model_types[name], key)}
            )
        elif section == "run" and name in top_types:
            top[name] = parse_value(value, top_types[name], key)
        else:
            fields = {"train": train_types, "model": model_types, "run": top_types}.get(section)
            if fields is None:
                raise ValueError(
                    f"unknown section {section!r} in {key!r}; use train., model. or run."
                )
            raise ValueError(f"{section} config has no field {name!r}; fields: {sorted(fields)}")
    return dataclasses.replace(config, train=train, model_config=model_cfg, **top)


def make_config(
    data: str,
    model: str,
    *,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    test_data: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> RunConfig:
    """The run config for ``model`` on ``data``: the model's training defaults, the data
    set's (Chinese gets a character tokenizer), then ``overrides``, then ``epochs``."""
    spec = get_model(model)
    train = dataclasses.replace(
        TrainConfig(), **dict(spec.train_defaults), **dict(spec.data_defaults)
    )
    model_config = spec.default_config()
    if data == "zh-reviews" and model != "minilm":
        train = dataclasses.replace(train, max_len=160, vocab_size=6000)
        if hasattr(model_config, "embeddings"):
            # MiniLM was trained on English: its vectors carry little for Chinese characters.
            model_config = dataclasses.replace(model_config, embeddings="random")
    config = RunConfig(
        data=data,
        model=model,
        model_config=model_config,
        train=train,
        test_data=test_data,
        text_column=text_column,
        label_column=label_column,
    )
    config = apply_overrides(config, overrides)
    if epochs is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))
    return config


def read_config_file(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Read a TOML run-config file.

    Top-level ``data``, ``model``, ``test_data``, ``text_column`` and ``label_column`` keys
    name the run; ``[train]`` and ``[model_config]`` tables hold settings, returned as
    ``section.key=value`` overrides (checked later like ``--set`` ones).

    Example file::

        data = "zh-reviews"
        model = "transformer"
        [train]
        epochs = 5
        [model_config]
        num_layers = 2

    Returns:
        ``(run fields, overrides)``.

    Raises:
        ValueError: unknown keys or tables; invalid TOML (with the file name).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    run_keys = ("data", "model", "test_data", "text_column", "label_column")
    run: dict[str, str] = {}
    overrides: list[str] = []
    for key, value in doc.items():
        if key in ("train", "model_config") and isinstance(value, dict):
            section = "train" if key == "train" else "model"
            for k, v in value.items():
                text = str(v).lower() if isinstance(v, bool) else str(v)
                overrides.append(f"{section}.{k}={text}")
        elif key in run_keys and isinstance(value, str):
            run[key] = value
        else:
            raise ValueError(
                f"{path}: unknown key {key!r}; use {', '.join(run_keys)}, [train] or [model_config]"
            )
    return run, overrides
