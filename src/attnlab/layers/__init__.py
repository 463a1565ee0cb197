"""Attention layers (nn.Modules) on batch-first ``(B, T, E)`` tensors."""

from attnlab.layers.core import AttentionCore, WeightsTap

__all__ = ["AttentionCore", "WeightsTap"]
