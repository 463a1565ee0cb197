"""Functional attention on ``(B, H, T, D)`` tensors: no modules, no parameters."""

from attnlab.ops import masks
from attnlab.ops.dispatch import Explanation, attention, explain
from attnlab.ops.linear import linear_attention
from attnlab.ops.reference import reference_attention
from attnlab.ops.weights import AttentionStats, attention_stats, attention_weights

__all__ = [
    "AttentionStats",
    "Explanation",
    "attention",
    "attention_stats",
    "attention_weights",
    "explain",
    "linear_attention",
    "masks",
    "reference_attention",
]
