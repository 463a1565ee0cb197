"""Training, evaluation and run folders (safetensors weights + JSON config + tokenizer).

Example:
    >>> from attnlab.train import load_run
    >>> run = load_run("runs/demo")  # doctest: +SKIP
    >>> run.predict_proba(["a gorgeous, witty film"])  # doctest: +SKIP
"""

from __future__ import annotations

from attnlab.train.config import (
    RunConfig,
    TrainConfig,
    apply_overrides,
    make_config,
    read_config_file,
)
from attnlab.train.fit import TrainResult, evaluate, load_splits, train_text
from attnlab.train.run import Prediction, Run, load_run, pooling_weights, save_run

__all__ = [
    "Prediction",
    "Run",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "evaluate",
    "load_run",
    "load_splits",
    "make_config",
    "pooling_weights",
    "read_config_file",
    "save_run",
    "train_text",
]
