"""Functional attention on ``(B, H, T, D)`` tensors: no modules, no parameters."""

from attnlab.ops import masks
from attnlab.ops.dispatch import Explanation, attention, explain
from attnlab.ops.reference import reference_attention
from attnlab.ops.weights import attention_weights

__all__ = [
    "Explanation",
    "attention",
    "attention_weights",
    "explain",
    "masks",
    "reference_attention",
]
