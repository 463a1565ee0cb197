"""Run folders and run configs: what a training writes and everything that reads it.

``runs`` sits below both the training engine and the views: training saves through it,
``eval``/``predict``/``viz`` load through it, and neither knows the other.

Example:
    >>> from attnlab.runs import load_run, make_config
    >>> cfg = make_config("text", "mr", "bilstm-attn")
    >>> run = load_run("runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

from attnlab.runs.config import (
    RunConfig,
    TrainConfig,
    apply_overrides,
    make_config,
    parse_value,
    read_config_file,
)
from attnlab.runs.folder import (
    CONFIG,
    METRICS,
    WEIGHTS,
    RunError,
    load_run,
    partial_dir,
    publish,
    read_history,
    read_meta,
    save_run,
    sha256,
)
from attnlab.tasks.base import Run

__all__ = [
    "CONFIG",
    "METRICS",
    "WEIGHTS",
    "Run",
    "RunConfig",
    "RunError",
    "TrainConfig",
    "apply_overrides",
    "load_run",
    "make_config",
    "parse_value",
    "partial_dir",
    "publish",
    "read_config_file",
    "read_history",
    "read_meta",
    "save_run",
    "sha256",
]
