"""attnlab: attention mechanisms for PyTorch, to build, train, see and speed up.

Example:
    >>> import torch
    >>> from attnlab import attention, masks
    >>> q = k = v = torch.randn(1, 4, 10, 16)
    >>> out = attention(q, k, v, mask=masks.Causal())

Names are imported lazily so that ``attnlab --help`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "attention": "attnlab.ops",
    "attention_weights": "attnlab.ops",
    "attention_stats": "attnlab.ops",
    "linear_attention": "attnlab.ops",
    "explain": "attnlab.ops",
    "masks": "attnlab.ops",
    "ops": "attnlab.ops",
    "layers": "attnlab.layers",
    "models": "attnlab.models",
    "data": "attnlab.data",
    "train": "attnlab.train",
    "viz": "attnlab.viz",
    "capture": "attnlab.capture",
    "bench": "attnlab.bench",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'attnlab' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__ == f"attnlab.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
