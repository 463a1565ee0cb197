"""Transformer encoder and decoder blocks (Vaswani et al. 2017, Sec. 3.1) built on
:class:`~attnlab.layers.MultiHeadAttention`."""

from __future__ import annotations

from torch import Tensor, nn

from attnlab.layers.kv_cache import KVCache
from attnlab.layers.multihead import MultiHeadAttention
from attnlab.layers.position import ALiBi, RotaryEmbedding
from attnlab.ops import masks as M

__all__ = ["MLP", "TransformerDecoderBlock", "TransformerEncoderBlock"]


class MLP(nn.Module):
    """Position-wise feed-forward network ``W_2 GELU(W_1 x)`` (Vaswani et al. 2017, eq. 2,
    with GELU as in BERT/GPT). ``(B, T, E) -> (B, T, E)``."""

    def __init__(self, embed_dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


def _hidden(embed_dim: int, mlp_ratio: float) -> int:
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
        raise ValueError(f"mlp_ratio must be a positive number, got {mlp_ratio!r}")
    return max(1, round(embed_dim * mlp_ratio))


class TransformerEncoderBlock(nn.Module):
    """Self-attention + MLP with residual connections and LayerNorm.

    Pre-norm (``norm_first=True``, Xiong et al. 2020): ``x + Attn(LN(x))`` then
    ``x + MLP(LN(x))``. Post-norm (the original, Vaswani et al. 2017):
    ``LN(x + Attn(x))`` then ``LN(x + MLP(x))``.

    Args:
        embed_dim: model width E.
        num_heads: attention heads (divides E).
        mlp_ratio: MLP hidden width as a multiple of E.
        dropout: dropout on the attention weights and on both residual branches.
        norm_first: pre-norm (True) or post-norm (False).
        num_kv_heads: key/value heads for GQA/MQA (default: num_heads).
        position: optional :class:`RotaryEmbedding` or :class:`ALiBi` for the attention.
        backend: attention backend name.

    Shapes:
        ``x (B, T, E) -> (B, T, E)``.

    Example:
        >>> import torch
        >>> block = TransformerEncoderBlock(32, 4)
        >>> x = torch.randn(2, 9, 32)
        >>> block(x, mask=M.Padding(torch.tensor([9, 4]))).shape
        torch.Size([2, 9, 32])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        norm_first: bool = True,
        num_kv_heads: int | None = None,
        position: RotaryEmbedding | ALiBi | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(
            embed_dim,
            num_heads,
            num_kv_heads=num_kv_heads,
            dropout=dropout,
            position=position,
            backend=backend,
        )
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, _hidden(embed_dim, mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)
        self.norm_first = bool(norm_first)

    def forward(
        self,
        x: Tensor,
        *,
        mask: M.Mask | Tensor | None = None,
        causal: bool = False,
        window: int | tuple[int | None, int | None] | None = None,
    ) -> Tensor:
        """``x (B, T, E) -> (B, T, E)``; ``mask``/``causal``/``window`` go to the attention."""

        def attn(h: Tensor) -> Tensor:
            return self.drop(self.attn(h, mask=mask, causal=causal, window=window))

        if self.norm_first:
            x = x + attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + attn(x))
        return self.norm2(x + self.mlp(x))


class TransformerDecoderBlock(nn.Module):
    """Causal self-attention, cross-attention to an encoder memory, then an MLP
    (Vaswani et al. 2017, Sec. 3.1, "Decoder"), each with a residual and LayerNorm.

    Incremental decoding: pass a :class:`KVCache` as ``cache`` and feed one new token (or
    a few) per call; the self-attention appends to the cache and the result equals the
    uncached forward over the whole prefix.

    Args:
        embed_dim: model width E.
        num_heads: attention heads (divides E).
        mlp_ratio: MLP hidden width as a multiple of E.
        dropout: dropout on the attention weights and on the residual branches.
        norm_first: pre-norm (True) or post-norm (False).
        num_kv_heads: key/value heads of the self-attention (GQA/MQA).
        memory_dim: feature size of the encoder memory (default E).
        position: optional :class:`RotaryEmbedding` or :class:`ALiBi` for the
            self-attention (the cross-attention uses none).
        backend: attention backend name.

    Shapes:
        ``x (B, T, E)``, ``memory (B, S, memory_dim)`` -> ``(B, T, E)``.

    Example:
        >>> import torch
        >>> block = TransformerDecoderBlock(32, 4)
        >>> y, mem = torch.randn(2, 5, 32), torch.randn(2, 11, 32)
        >>> block(y, mem).shape
        torch.Size([2, 5, 32])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        norm_first: bool = True,
        num_kv_heads: int | None = None,
        memory_dim: int | None = None,
        position: RotaryEmbedding | ALiBi | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(
            embed_dim,
            num_heads,
            num_kv_heads=num_kv_heads,
            dropout=dropout,
            position=position,
            backend=backend,
        )
        self.cross_attn = MultiHeadAttention(
            embed_dim,
            num_heads,
            kdim=memory_dim,
            vdim=memory_dim,
            dropout=dropout,
            backend=backend,
            role="cross",
        )
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, _hidden(embed_dim, mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)
        self.norm_first = bool(norm_first)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        *,
        mask: M.Mask | Tensor | None = None,
        memory_mask: M.Mask | Tensor | None = None,
        cache: KVCache | None = None,
        memory_kv: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Decode ``x (B, T, E)`` against ``memory (B, S, memory_dim)``.

        Args:
            x: decoder input (the new tokens when ``cache`` is given).
            memory: encoder output; None when ``memory_kv`` is given.
            mask: extra self-attention mask (combined with the causal mask); with a
                cache its key length counts the cached positions.
            memory_mask: cross-attention mask, e.g. ``M.Padding(source_lengths)``.
            cache: :class:`KVCache` of this block's self-attention.
            memory_kv: the memory's cross-attention keys/values, projected once by
                ``self.cross_attn.project_kv(memory)``; replaces ``memory`` (decoding
                step by step then projects the memory once per sentence).

        Returns:
            ``(B, T, E)``.
        """
        if (memory is None) == (memory_kv is None):
            raise ValueError("pass exactly one of memory and memory_kv")

        def self_attn(h: Tensor) -> Tensor:
            return self.drop(self.self_attn(h, mask=mask, causal=True, cache=cache))

        def cross_attn(h: Tensor) -> Tensor:
            if memory_kv is not None:
                return self.drop(self.cross_attn(h, mask=memory_mask, kv=memory_kv))
            return self.drop(self.cross_attn(h, memory, mask=memory_mask))

        if self.norm_first:
            x = x + self_attn(self.norm1(x))
            x = x + cross_attn(self.norm2(x))
            return x + self.mlp(self.norm3(x))
        x = self.norm1(x + self_attn(x))
        x = self.norm2(x + cross_attn(x))
        return self.norm3(x + self.mlp(x))
