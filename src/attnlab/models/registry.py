"""Registry of named model presets, so ``attnlab ls`` lists them and one test sweeps them all.

A preset is a small function registered with :func:`register`: it takes the preset's
frozen config dataclass plus the sizes that depend on the data (vocabulary, classes) and
returns the ``nn.Module``.

Example:
    >>> from attnlab.models import create_model
    >>> model = create_model("bilstm-attn", vocab_size=100, num_classes=2)
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["MODELS", "ModelSpec", "create_model", "get_model", "list_models", "register"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered preset.

    Attributes:
        name: the name used on the command line (``bilstm-attn``).
        task: what it does (``"text"`` classification).
        config_cls: its frozen config dataclass (defaults = the preset).
        build: ``build(config, *, vocab_size, num_classes) -> nn.Module``.
        description: one line for ``attnlab ls``.
        tokenizer: ``"trained"`` (a tokenizer trained on the data) or a pretrained name.
        train_defaults: training settings that suit this model (``lr``, ``epochs``, ...).
    """

    name: str
    task: str
    config_cls: type
    build: Callable[..., nn.Module]
    description: str
    tokenizer: str = "trained"
    train_defaults: Mapping[str, Any] = field(default_factory=dict)

    def default_config(self) -> Any:
        return self.config_cls()

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        """The config dataclass from a JSON dict (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"{self.name} config has no field(s) {unknown}; fields: {sorted(names)}"
            )
        return self.config_cls(**values)


MODELS: dict[str, ModelSpec] = {}


def register(
    name: str,
    *,
    task: str,
    config: type,
    description: str,
    tokenizer: str = "trained",
    train_defaults: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a preset builder under ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model preset {name!r} is already registered")
        MODELS[name] = ModelSpec(
            name, task, config, fn, description, tokenizer, dict(train_defaults or {})
        )
        return fn

    return deco


def _ensure_loaded() -> None:
    # Importing the family modules runs their @register decorators (in listing order).
    for family in ("text", "minilm"):
        importlib.import_module(f"attnlab.models.{family}")


def list_models(task: str | None = None) -> list[ModelSpec]:
    """All registered presets (optionally only those of one task)."""
    _ensure_loaded()
    return [m for m in MODELS.values() if task is None or m.task == task]


def get_model(name: str) -> ModelSpec:
    """The preset called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    _ensure_loaded()
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; presets: {', '.join(MODELS)}")
    return MODELS[name]


def create_model(name: str, config: Any = None, *, vocab_size: int, num_classes: int) -> nn.Module:
    """Build preset ``name`` (with its default config unless ``config`` is given)."""
    spec = get_model(name)
    if config is None:
        config = spec.default_config()
    elif not isinstance(config, spec.config_cls):
        raise TypeError(
            f"model {name!r} takes a {spec.config_cls.__name__}, got {type(config).__name__}"
        )
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return spec.build(config, vocab_size=vocab_size, num_classes=num_classes)
