"""Explanations of image classifiers as maps over the input pixels (rollout, flow,
gradient-weighted rollout, raw attention, CBAM maps, input gradients). The functions live
in :mod:`attnlab.capture.explanation`, below the task families that use them (the image
task's reports and ``ImageRun.explain``), and are re-exported here."""

from __future__ import annotations

from attnlab.capture.explanation import (
    _VIT_METHODS,
    METHODS,
    ConvAttention,
    ViTAttention,
    _is_hf_vit,
    _logits,
    applicable_methods,
    conv_attention,
    explain,
    explicit_attention,
    input_gradient,
    vit_attention,
)

__all__ = [
    "METHODS",
    "_VIT_METHODS",
    "ConvAttention",
    "ViTAttention",
    "_is_hf_vit",
    "_logits",
    "applicable_methods",
    "conv_attention",
    "explain",
    "explicit_attention",
    "input_gradient",
    "vit_attention",
]
