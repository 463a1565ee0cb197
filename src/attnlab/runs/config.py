"""Run configuration: frozen dataclasses for the engine (:class:`TrainConfig`) and the whole
run (:class:`RunConfig`: task, model preset and its config, the task's data settings),
preset and data-set defaults, and ``section.field=value`` overrides checked against the
field types.

Example:
    >>> cfg = make_config("text", "mr", "bilstm-attn", overrides=["train.lr=1e-3", "hidden_dim=64"])
    >>> cfg.train.lr, cfg.model_config.hidden_dim, cfg.data.name
    (0.001, 64, 'mr')
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
from attnlab.tasks import get_task

__all__ = [
    "PRECISIONS",
    "SCHEDULES",
    "STRATEGIES",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "make_config",
    "parse_value",
    "read_config_file",
]

PRECISIONS = ("32", "bf16-mixed")
SCHEDULES = ("linear", "cosine", "inverse-sqrt", "constant")
STRATEGIES = ("auto", "ddp", "ddp-spawn")


@dataclass(frozen=True)
class TrainConfig:
    """How the engine trains, whatever the task.

    Attributes:
        epochs: most passes over the training split (early stopping may end sooner).
        batch_size: examples per optimizer step *per process* (the global batch is
            ``batch_size * devices * num_nodes``).
        eval_batch_size: examples per validation/test batch.
        lr: peak AdamW learning rate.
        weight_decay: AdamW decoupled weight decay (matrices only: not biases or norms).
        warmup: fraction of the optimizer steps spent warming the learning rate up linearly.
        schedule: after warm-up: ``"linear"`` decay to 0, ``"cosine"`` to 0,
            ``"inverse-sqrt"`` (Vaswani et al. 2017, eq. 3) or ``"constant"``.
        grad_clip: clip the gradient norm to this (0 turns clipping off).
        label_smoothing: cross-entropy label smoothing (Szegedy et al. 2016).
        patience: stop after this many epochs without a better validation score
            (0: never stop early).
        seed: seeds the split, the initialisation, the batch order and dropout.
        precision: ``"32"`` or ``"bf16-mixed"`` (``"bf16"`` is accepted for the latter).
        devices: processes (CPU) or GPUs per machine; more than one trains with DDP.
        num_nodes: machines taking part (each runs ``devices`` processes).
        strategy: ``"auto"`` (DDP when more than one process), ``"ddp"`` (processes
            launched as scripts, or by torchrun/SLURM) or ``"ddp-spawn"``.
        threads: torch CPU threads per process (0 keeps torch's default).
    """

    epochs: int = 8
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    schedule: str = "linear"
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    patience: int = 2
    seed: int = 0
    precision: str = "32"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.precision == "bf16":
            object.__setattr__(self, "precision", "bf16-mixed")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)} (or bf16), got {self.precision!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        for name in ("epochs", "batch_size", "eval_batch_size", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.devices < 1:
            raise ValueError(f"devices must be >= 1, got {self.devices}")
        for name in ("patience", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:  # also refuses nan
            raise ValueError(f"lr must be a number > 0, got {self.lr}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def world_size(self) -> int:
        """Processes taking part in training."""
        return self.devices * self.num_nodes


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run (saved in the run folder's ``config.json``).

    Attributes:
        task: the task family (``"text"``, ...; see :func:`attnlab.tasks.list_tasks`).
        model: registered preset name (of that task).
        model_config: the preset's config dataclass.
        data: the task's data settings (a frozen dataclass whose ``name`` is a packaged
            data set or a file).
        train: engine settings.
    """

    task: str
    model: str
    model_config: Any
    data: Any
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "model_config": dataclasses.asdict(self.model_config),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """The config from :meth:`to_dict`'s output.

        Raises:
            ValueError: unknown task, preset or field; a preset of another task.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"a run config must be an object, got {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"run config has no field(s) {unknown}")
        for key in ("task", "model"):
            if not isinstance(d.get(key), str):
                raise ValueError(f"run config needs a string {key!r}, got {d.get(key)!r}")
        task = get_task(d["task"])
        spec = get_model(d["model"], task=task.name)
        return cls(
            task=task.name,
            model=spec.name,
            model_config=spec.config_from_dict(d.get("model_config", {})),
            data=build_dataclass(task.data_config, d.get("data", {}), "data"),
            train=build_dataclass(TrainConfig, d.get("train", {}), "train"),
        )


def build_dataclass(cls: type, values: Any, where: str) -> Any:
    """``cls(**values)`` with one-line errors for a non-object or unknown fields."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where} config must be an object, got {values!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where} config has no field(s) {unknown}; fields: {sorted(names)}")
    try:
        return cls(**values)
    except TypeError as e:  # a missing required field
        raise ValueError(f"{where} config: {e}") from None


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
    if typing.get_origin(hint) is tuple:  # tuple[int, ...]: "16,32,64" or "[16, 32, 64]"
        args = typing.get_args(hint)
        item = args[0] if args else str
        parts = [p.strip() for p in text.strip().strip("[]()").split(",") if p.strip()]
        return tuple(parse_value(p, item, key) for p in parts)
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

    Keys are ``train.<field>``, ``model.<field>`` or ``data.<field>``; a bare field name
    works when only one section has it.

    Raises:
        ValueError: malformed override or unknown/ambiguous key.
        TypeError: value of the wrong type for the field.
    """
    sections = {"train": config.train, "model": config.model_config, "data": config.data}
    types_ = {name: _field_types(type(obj)) for name, obj in sections.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        section, _, name = key.rpartition(".")
        if section == "model_config":
            section = "model"
        if not section:
            homes = [s for s, fields in types_.items() if name in fields]
            if not homes:
                listing = "; ".join(f"{s} fields: {sorted(f)}" for s, f in types_.items())
                raise ValueError(f"unknown setting {key!r}; {listing}")
            if len(homes) > 1:
                raise ValueError(
                    f"setting {key!r} is ambiguous; write {' or '.join(h + '.' + name for h in homes)}"
                )
            section = homes[0]
        if section not in types_:
            raise ValueError(f"unknown section {section!r} in {key!r}; use train., model. or data.")
        if name not in types_[section]:
            raise ValueError(
                f"{section} config has no field {name!r}; fields: {sorted(types_[section])}"
            )
        sections[section] = dataclasses.replace(
            sections[section], **{name: parse_value(value, types_[section][name], key)}
        )
    return dataclasses.replace(
        config, train=sections["train"], model_config=sections["model"], data=sections["data"]
    )


def make_config(
    task: str,
    data: str,
    model: str | None = None,
    *,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
) -> RunConfig:
    """The run config for ``model`` (default: the task's first preset) on ``data``.

    Defaults are layered: the engine's, the preset's ``train_defaults`` and
    ``data_defaults``, the task's defaults for this data set and preset (e.g. a character
    tokenizer for Chinese), then ``overrides``, then ``epochs``.

    Raises:
        ValueError: unknown task, model (or a model of another task) or setting.
        TypeError: an override of the wrong type.
    """
    t = get_task(task)
    spec = get_model(model or t.default_model, task=t.name)
    config = RunConfig(
        task=t.name,
        model=spec.name,
        model_config=spec.default_config(),
        data=t.data_config(name=data),
        train=TrainConfig(),
    )
    preset = [f"train.{k}={v}" for k, v in spec.train_defaults.items()]
    preset += [f"data.{k}={v}" for k, v in spec.data_defaults.items()]
    config = apply_overrides(config, [*preset, *t.default_overrides(data, spec.name)])
    config = apply_overrides(config, overrides)
    if epochs is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))
    return config


def read_config_file(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Read a TOML run-config file.

    Top-level ``task``, ``data`` and ``model`` strings name the run; ``[train]``,
    ``[data]`` and ``[model_config]`` (or ``[model]``) tables hold settings, returned as
    ``section.key=value`` overrides (checked later like ``--set`` ones). With a ``[data]``
    table, the data set is its ``name`` (TOML allows no top-level ``data`` beside it).

    Example file::

        model = "transformer"
        [data]
        name = "zh-reviews"
        max_len = 160
        [train]
        epochs = 5
        [model_config]
        num_layers = 2

    Returns:
        ``(run fields, overrides)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown keys or tables; invalid TOML (with the file name).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    run_keys = ("task", "data", "model")
    tables = {"train": "train", "data": "data", "model_config": "model", "model": "model"}
    run: dict[str, str] = {}
    overrides: list[str] = []
    for key, value in doc.items():
        if key in tables and isinstance(value, dict):
            for k, v in value.items():
                if key == "data" and k == "name" and isinstance(v, str):
                    run["data"] = v
                    continue
                text = str(v).lower() if isinstance(v, bool) else str(v)
                overrides.append(f"{tables[key]}.{k}={text}")
        elif key in run_keys and isinstance(value, str):
            run[key] = value
        else:
            raise ValueError(
                f"{path}: unknown key {key!r}; use {', '.join(run_keys)}, [train], [data] or "
                "[model_config]"
            )
    return run, overrides
