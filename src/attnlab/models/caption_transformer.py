"""A ViT patch encoder and a Transformer decoder that reads the patches through
cross-attention (Dosovitskiy et al. 2021; Vaswani et al. 2017), from attnlab blocks.

Reads top-down: (optional conv stem) -> patch embedding + fixed 2-D sine-cosine positions ->
pre-norm encoder blocks -> memory; word embeddings + 1-D positions -> pre-norm decoder blocks
(causal self-attention, cross-attention over the patches) -> output tied to the word
embedding. Step-by-step decoding keeps one :class:`~attnlab.layers.KVCache` per decoder
block and projects the cross-attention keys/values of the patches once per image. Every
attention runs through an ``AttentionCore``; the cross-attention ones are listed by
:meth:`CaptionTransformer.attention_modules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.layers import (
    KVCache,
    PatchEmbedding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    sincos_2d,
    sinusoidal_positions,
)
from attnlab.models.caption_rnn import check_images, flat_images

__all__ = ["CaptionTransformer", "CaptionTransformerState"]


@dataclass
class CaptionTransformerState:
    """Decoding state; tensors have the batch first.

    Attributes:
        memory_kv: per decoder block, the cross-attention ``(k, v)``, each ``(B, H, N, D)``.
        caches: per decoder block, the self-attention :class:`KVCache`.
        step: words fed so far (the next position).
    """

    memory_kv: list[tuple[Tensor, Tensor]]
    caches: list[KVCache]
    step: int = 0


class CaptionTransformer(nn.Module):
    """ViT encoder + Transformer decoder.

    Args:
        channels, height, width: image shape (divisible by ``patch_size``).
        vocab_size: output words (specials included).
        pad_id, bos_id, eos_id: special ids.
        max_len: longest caption in words (EOS excluded).
        patch_size: patch side P.
        stem_channels: 0, or the width of a conv3x3-BN-ReLU layer before the patch
            projection (a small convolutional stem, Xiao et al. 2021).
        embed_dim: model width E.
        num_heads: attention heads.
        encoder_layers, decoder_layers: block counts.
        mlp_ratio: MLP width as a multiple of E.
        dropout: dropout on attention weights and residual branches.
        backend: attention backend.

    Shapes:
        ``images (B, C, H, W)`` in [0, 1], ``tgt_in (B, T)`` -> logits ``(B, T, V)``.
    """

    def __init__(
        self,
        *,
        channels: int,
        height: int,
        width: int,
        vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        max_len: int,
        patch_size: int,
        stem_channels: int,
        embed_dim: int,
        num_heads: int,
        encoder_layers: int,
        decoder_layers: int,
        mlp_ratio: float,
        dropout: float,
        backend: str,
    ) -> None:
        super().__init__()
        self.shape = (channels, height, width)
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        e = embed_dim
        self.input_norm = nn.BatchNorm2d(channels, affine=False)
        self.stem: nn.Module = nn.Identity()
        cin = channels
        if stem_channels:
            self.stem = nn.Sequential(
                nn.Conv2d(channels, stem_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(stem_channels),
                nn.ReLU(inplace=True),
            )
            cin = stem_channels
        self.patch = PatchEmbedding(cin, e, patch_size)
        self._grid = self.patch.grid(height, width)
        self.register_buffer("patch_pos", sincos_2d(*self._grid, e), persistent=False)
        block = {"mlp_ratio": mlp_ratio, "dropout": dropout, "norm_first": True, "backend": backend}
        self.encoder = nn.ModuleList(
            TransformerEncoderBlock(e, num_heads, **block) for _ in range(encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(e)
        self.embed = nn.Embedding(vocab_size, e, padding_idx=pad_id)
        self.register_buffer("word_pos", sinusoidal_positions(max_len + 2, e), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.ModuleList(
            TransformerDecoderBlock(e, num_heads, **block) for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(e)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.embed.weight, std=e**-0.5)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    # -- geometry ---------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        """The patch grid ``(h, w)`` the cross-attention reads."""
        return self._grid

    @property
    def cell_size(self) -> tuple[int, int]:
        """Pixels ``(rows, columns)`` per patch."""
        return self.patch.patch_size, self.patch.patch_size

    def attention_modules(self) -> list[tuple[str, nn.Module]]:
        """The cross-attention seams (``AttentionCore``), one per decoder block."""
        return [
            (f"decoder.{i}.cross_attn.core", b.cross_attn.core) for i, b in enumerate(self.decoder)
        ]

    def encoder_attention_modules(self) -> list[tuple[str, nn.Module]]:
        """The encoder's self-attention seams (for rollout), one per block."""
        return [(f"encoder.{i}.attn.core", b.attn.core) for i, b in enumerate(self.encoder)]

    # -- model ------------------------------------------------------------------------------
    def encode_images(self, images: Tensor) -> Tensor:
        """Patch memory ``(B, N, E)``."""
        check_images(images, self.shape)
        x = self.patch(self.stem(self.input_norm(images)))  # (B, N, E)
        x = x + self.patch_pos
        for block in self.encoder:
            x = block(x)  # (B, N, E)
        return self.encoder_norm(x)

    def _embed(self, tokens: Tensor, offset: int = 0) -> Tensor:
        t = tokens.shape[1]
        if offset + t > self.word_pos.shape[0]:
            raise ValueError(
                f"caption of {offset + t} tokens exceeds the {self.word_pos.shape[0]} positions "
                "the model was built for"
            )
        x = self.embed(tokens) * math.sqrt(self.embed.embedding_dim)  # (B, T, E)
        return self.drop(x + self.word_pos[offset : offset + t])

    def _logits(self, y: Tensor) -> Tensor:
        return F.linear(self.decoder_norm(y), self.embed.weight, self.out_bias)  # (B, T, V)

    def forward(self, images: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``."""
        memory = self.encode_images(images)
        y = self._embed(tgt_in)
        for block in self.decoder:
            y = block(y, memory)  # (B, T, E)
        return self._logits(y)

    # -- decoding protocol ------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor) -> CaptionTransformerState:
        """Protocol entry: ``src`` holds the images, flat ``(B, C*H*W)`` or
        ``(B, C, H, W)``; the cross-attention keys/values are projected once here."""
        memory = self.encode_images(flat_images(src, self.shape))
        memory_kv = [block.cross_attn.project_kv(memory) for block in self.decoder]
        return CaptionTransformerState(memory_kv, [KVCache() for _ in self.decoder])

    def decode_step(
        self, tokens: Tensor, state: CaptionTransformerState
    ) -> tuple[Tensor, CaptionTransformerState]:
        """``tokens (B,)`` -> next-word logits ``(B, V)``; the state advances one step."""
        y = self._embed(tokens[:, None], offset=state.step)  # (B, 1, E)
        for block, kv, cache in zip(self.decoder, state.memory_kv, state.caches, strict=True):
            y = block(y, None, cache=cache, memory_kv=kv)  # (B, 1, E)
        state.step += 1
        return self._logits(y)[:, -1], state

    def reorder_state(
        self, state: CaptionTransformerState, indices: Tensor
    ) -> CaptionTransformerState:
        """Keep rows ``indices``; the KV caches are reordered in place."""
        for cache in state.caches:
            cache.reorder(indices)
        kv = [(k.index_select(0, indices), v.index_select(0, indices)) for k, v in state.memory_kv]
        return CaptionTransformerState(kv, state.caches, state.step)
