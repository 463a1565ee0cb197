"""The generic training engine (Lightning): any task, one or several processes.

Example:
    >>> from attnlab.runs import make_config
    >>> from attnlab.train import fit
    >>> result = fit(make_config("text", "mr", "bilstm-attn"), "runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

from attnlab.train.engine import CHECKPOINT, TrainResult, fit, read_history

__all__ = ["CHECKPOINT", "TrainResult", "fit", "read_history"]
