"""See attention: capture weights from running models, plot them, build offline views.

``capture``, ``Recording`` and ``attention_modules`` live in :mod:`attnlab.capture` and are
re-exported here.

Example:
    >>> from attnlab.viz import capture, HeadView
    >>> with capture(model, tokenizer=tok) as rec:   # doctest: +SKIP
    ...     model(**batch)
    >>> HeadView.from_recording(rec).save("head.html")  # doctest: +SKIP

Names are imported lazily (matplotlib is loaded only when a figure is drawn).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "capture": "attnlab.capture",
    "Recording": "attnlab.capture",
    "attention_modules": "attnlab.capture",
    "rollout": "attnlab.viz.aggregate",
    "grad_rollout": "attnlab.viz.aggregate",
    "attention_flow": "attnlab.viz.flow",
    "explain": "attnlab.viz.explanation",
    "conv_attention": "attnlab.viz.explanation",
    "vit_attention": "attnlab.viz.explanation",
    "faithfulness": "attnlab.viz.perturbation",
    "plot_explanations": "attnlab.viz.overlay",
    "plot_gates": "attnlab.viz.overlay",
    "ImageExplanationView": "attnlab.viz.image_view",
    "aggregate_heads": "attnlab.viz.aggregate",
    "plot_heatmap": "attnlab.viz.plots",
    "plot_heads": "attnlab.viz.plots",
    "plot_head_average": "attnlab.viz.plots",
    "plot_text": "attnlab.viz.plots",
    "plot_alignment": "attnlab.viz.plots",
    "plot_rollout": "attnlab.viz.plots",
    "plot_lines": "attnlab.viz.plots",
    "save_figure": "attnlab.viz.plots",
    "HeadView": "attnlab.viz.views",
    "ModelView": "attnlab.viz.views",
    "MatrixView": "attnlab.viz.views",
    "decode_map": "attnlab.viz.views",
    "encode_map": "attnlab.viz.views",
    "Analysis": "attnlab.viz.inspect",
    "load_subject": "attnlab.viz.inspect",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'attnlab.viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
