"""Attention layers (nn.Modules) on batch-first ``(B, T, E)`` tensors."""

from attnlab.layers.core import AttentionCore, WeightsTap
from attnlab.layers.kv_cache import KVCache
from attnlab.layers.multihead import MultiHeadAttention
from attnlab.layers.pooling import AttentionPooling
from attnlab.layers.position import ALiBi, RotaryEmbedding, alibi_slopes
from attnlab.layers.transformer import MLP, TransformerDecoderBlock, TransformerEncoderBlock

__all__ = [
    "MLP",
    "ALiBi",
    "AttentionCore",
    "AttentionPooling",
    "KVCache",
    "MultiHeadAttention",
    "RotaryEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "WeightsTap",
    "alibi_slopes",
]
