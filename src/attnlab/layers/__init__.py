"""Attention layers (nn.Modules) on batch-first ``(B, T, E)`` tensors.

Every layer reaches attention through one of the two seams in :mod:`attnlab.layers.core`:
``AttentionCore`` (calls :func:`attnlab.ops.attention`) or ``WeightsTap`` (explicitly
computed weights), so recorders can capture weights without the modules storing them.
"""

from attnlab.layers.additive import AdditiveAttention, additive_scores
from attnlab.layers.conv_attention import CBAM, ChannelAttention, SpatialAttention, SqueezeExcite
from attnlab.layers.core import AttentionCore, WeightsTap
from attnlab.layers.kv_cache import KVCache
from attnlab.layers.luong import LuongAttention
from attnlab.layers.multihead import MultiHeadAttention
from attnlab.layers.patch import PatchEmbedding, sincos_2d
from attnlab.layers.pooling import AttentionPooling
from attnlab.layers.position import ALiBi, RotaryEmbedding, alibi_slopes, sinusoidal_positions
from attnlab.layers.transformer import MLP, TransformerDecoderBlock, TransformerEncoderBlock

__all__ = [
    "CBAM",
    "MLP",
    "ALiBi",
    "AdditiveAttention",
    "AttentionCore",
    "AttentionPooling",
    "ChannelAttention",
    "KVCache",
    "LuongAttention",
    "MultiHeadAttention",
    "PatchEmbedding",
    "RotaryEmbedding",
    "SpatialAttention",
    "SqueezeExcite",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "WeightsTap",
    "additive_scores",
    "alibi_slopes",
    "sinusoidal_positions",
    "sincos_2d",
]
