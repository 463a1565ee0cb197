"""Registry of named model presets, so ``attnlab ls`` lists them and one test sweeps them all.

A preset is a small function registered with :func:`register`. It belongs to one task
(``"text"``, ``"translate"``, ``"image"``, ``"caption"``) and is built from its frozen config
dataclass and the task's typed *dims*: the sizes that depend on the data (vocabulary,
classes, image shape), e.g. :class:`~attnlab.models.text.TextDims`.

Example:
    >>> from attnlab.models import create_model
    >>> from attnlab.models.text import TextDims
    >>> model = create_model("bilstm-attn", dims=TextDims(vocab_size=100, num_classes=2))
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = [
    "FAMILIES",
    "MODELS",
    "ModelSpec",
    "create_model",
    "get_model",
    "list_models",
    "register",
]

#: Model family modules, imported on first use so their ``@register`` decorators run.
FAMILIES = ("text", "minilm", "seq2seq", "vision", "captioning")


@dataclass(frozen=True)
class ModelSpec:
    """A registered preset.

    Attributes:
        name: the name used on the command line (``bilstm-attn``).
        task: the task family it belongs to (``"text"``, ``"translate"``, ...).
        config_cls: its frozen config dataclass (defaults = the preset).
        dims_cls: the dims dataclass its builder takes (sizes that come from the data).
        build: ``build(config, dims) -> nn.Module``.
        description: one line for ``attnlab ls``.
        example_dims: typical dims (``attnlab ls`` counts parameters with them; the preset
            sweep builds every model with them).
        train_defaults: engine settings that suit this model (``lr``, ``epochs``, ...).
        data_defaults: task data settings that suit it (e.g. the pretrained tokenizer).
    """

    name: str
    task: str
    config_cls: type
    dims_cls: type
    build: Callable[[Any, Any], nn.Module]
    description: str
    example_dims: Any
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    data_defaults: Mapping[str, Any] = field(default_factory=dict)

    def default_config(self) -> Any:
        return self.config_cls()

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        """The config dataclass from a JSON dict.

        Raises:
            ValueError: unknown keys (the message lists the fields).
        """
        if not isinstance(values, Mapping):
            raise ValueError(f"{self.name} model config must be an object, got {values!r}")
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"{self.name} config has no field(s) {unknown}; fields: {sorted(names)}"
            )
        return self.config_cls(**values)

    def num_parameters(self, dims: Any = None) -> int:
        """Parameters of the default config built with ``dims`` (default: the example)."""
        import torch

        # Built on the meta device: shapes only, no memory, no weights read.
        with torch.device("meta"):
            config = self.default_config()
            if "pretrained" in {f.name for f in dataclasses.fields(config)}:
                config = dataclasses.replace(config, pretrained=False)
            dims = self.example_dims if dims is None else dims
            model = create_model(self.name, config, dims=dims, task=self.task)
        return sum(p.numel() for p in model.parameters())


#: Registered presets by ``(task, name)``: two tasks may each have a ``transformer``.
MODELS: dict[tuple[str, str], ModelSpec] = {}


def register(
    name: str,
    *,
    task: str,
    config: type,
    dims: type,
    description: str,
    example_dims: Any,
    train_defaults: Mapping[str, Any] | None = None,
    data_defaults: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``build(config, dims) -> nn.Module`` as preset ``name``."""
    if not isinstance(example_dims, dims):
        raise TypeError(f"example_dims of {name!r} must be a {dims.__name__}")

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if (task, name) in MODELS:
            raise ValueError(f"model preset {name!r} of task {task!r} is already registered")
        MODELS[(task, name)] = ModelSpec(
            name=name,
            task=task,
            config_cls=config,
            dims_cls=dims,
            build=fn,
            description=description,
            example_dims=example_dims,
            train_defaults=dict(train_defaults or {}),
            data_defaults=dict(data_defaults or {}),
        )
        return fn

    return deco


def _ensure_loaded() -> None:
    for family in FAMILIES:
        if importlib.util.find_spec(f"attnlab.models.{family}") is not None:
            importlib.import_module(f"attnlab.models.{family}")


def _family_rank(spec: ModelSpec) -> int:
    family = spec.build.__module__.rsplit(".", 1)[-1]
    return FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)


def _ordered() -> list[ModelSpec]:
    """Presets by family (the order of FAMILIES), then registration: the same order
    whichever family module was imported first."""
    _ensure_loaded()
    return sorted(MODELS.values(), key=_family_rank)


def list_models(task: str | None = None) -> list[ModelSpec]:
    """All registered presets, family by family (optionally only one task's)."""
    return [m for m in _ordered() if task is None or m.task == task]


def get_model(name: str, *, task: str | None = None) -> ModelSpec:
    """The preset called ``name`` (of ``task``, when given).

    Without ``task``, a name that several tasks register means the one of the first family
    in :data:`FAMILIES` (the text classifier for ``transformer``, as before translation
    presets existed); pass ``task`` to choose.

    Raises:
        ValueError: unknown name (the message lists the presets, of ``task`` when given),
            or a preset of another task (the message says which).
    """
    ordered = _ordered()
    if task is not None and (task, name) in MODELS:
        return MODELS[(task, name)]
    found = [m for m in ordered if m.name == name]
    if not found:
        known = [m.name for m in ordered if task is None or m.task == task]
        where = f" for task {task!r}" if task else ""
        raise ValueError(f"unknown model {name!r}{where}; presets: {', '.join(known)}")
    if task is not None:
        known = ", ".join(m.name for m in ordered if m.task == task)
        raise ValueError(
            f"model {name!r} belongs to task {found[0].task!r}, not {task!r}; "
            f"{task} presets: {known}"
        )
    return found[0]


def create_model(name: str, config: Any = None, *, dims: Any, task: str | None = None) -> nn.Module:
    """Build preset ``name`` with ``dims`` (and its default config unless ``config`` is given).

    When several tasks register ``name`` and ``task`` is not given, the type of ``dims``
    chooses (``TranslationDims`` -> the translation preset).

    Raises:
        ValueError: unknown preset.
        TypeError: ``config`` or ``dims`` of the wrong type for this preset.
    """
    if task is None:
        matching = [m for m in _ordered() if m.name == name and isinstance(dims, m.dims_cls)]
        if matching:
            task = matching[0].task
    spec = get_model(name, task=task)
    if config is None:
        config = spec.default_config()
    elif not isinstance(config, spec.config_cls):
        raise TypeError(
            f"model {name!r} takes a {spec.config_cls.__name__}, got {type(config).__name__}"
        )
    if not isinstance(dims, spec.dims_cls):
        raise TypeError(
            f"model {name!r} is built with {spec.dims_cls.__name__}, got {type(dims).__name__}"
        )
    return spec.build(config, dims)
