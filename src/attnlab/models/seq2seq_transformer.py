"""Transformer encoder-decoder for translation (Vaswani et al. 2017) from attnlab blocks.

Reads top-down: embeddings (scaled by sqrt(E), sinusoidal positions, shared between source
and target when the vocabulary is joint) -> pre-norm encoder blocks with a typed padding
mask -> pre-norm decoder blocks (causal self-attention, cross-attention) -> output tied to
the target embedding. Step-by-step decoding keeps one :class:`~attnlab.layers.KVCache` per
decoder block and projects the cross-attention keys/values of the source once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.layers import (
    KVCache,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    sinusoidal_positions,
)
from attnlab.models.seq2seq_rnn import word_dropout
from attnlab.ops import masks as M

__all__ = ["Seq2SeqTransformer", "TransformerState"]


@dataclass
class TransformerState:
    """Decoding state of :class:`Seq2SeqTransformer`; tensors have the batch first.

    Attributes:
        memory: encoder output ``(B, S, E)``.
        lengths: valid source positions ``(B,)``.
        memory_kv: per decoder block, the cross-attention ``(k, v)``, each
            ``(B, H, S, D)``, projected once (None when decoding without a cache).
        caches: per decoder block, the self-attention :class:`KVCache` (None: no cache;
            every step then recomputes the whole prefix).
        prefix: target tokens fed so far ``(B, t)`` (used when there is no cache).
        step: number of target tokens fed so far (the next position).
    """

    memory: Tensor
    lengths: Tensor
    memory_kv: list[tuple[Tensor, Tensor]] | None
    caches: list[KVCache] | None
    prefix: Tensor
    step: int = 0


class Seq2SeqTransformer(nn.Module):
    """Pre-norm Transformer encoder-decoder with tied embeddings.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes.
        pad_id, bos_id, eos_id: special ids.
        shared_vocab: one embedding table for source, target and output.
        embed_dim: model width E.
        num_heads: attention heads.
        encoder_layers, decoder_layers: block counts.
        mlp_ratio: MLP width as a multiple of E.
        dropout: dropout on embeddings, attention weights and residual branches.
        word_dropout: probability of dropping a whole input token embedding.
        max_positions: longest sequence the position table covers.

    Shapes:
        ``src (B, S)``, ``src_lengths (B,)``, ``tgt_in (B, T)`` -> logits ``(B, T, V)``.
    """

    def __init__(
        self,
        *,
        source_vocab_size: int,
        target_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        shared_vocab: bool,
        embed_dim: int,
        num_heads: int,
        encoder_layers: int,
        decoder_layers: int,
        mlp_ratio: float,
        dropout: float,
        word_dropout: float,
        max_positions: int,
    ) -> None:
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        e = embed_dim
        self.tgt_embed = nn.Embedding(target_vocab_size, e, padding_idx=pad_id)
        self.src_embed = (
            self.tgt_embed
            if shared_vocab
            else nn.Embedding(source_vocab_size, e, padding_idx=pad_id)
        )
        self.register_buffer("positions", sinusoidal_positions(max_positions, e), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.word_dropout = word_dropout
        block = {"mlp_ratio": mlp_ratio, "dropout": dropout, "norm_first": True}
        self.encoder = nn.ModuleList(
            TransformerEncoderBlock(e, num_heads, **block) for _ in range(encoder_layers)
        )
        self.decoder = nn.ModuleList(
            TransformerDecoderBlock(e, num_heads, **block) for _ in range(decoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(e)
        self.decoder_norm = nn.LayerNorm(e)
        self.out_bias = nn.Parameter(torch.zeros(target_vocab_size))
        for emb in {self.src_embed, self.tgt_embed}:
            nn.init.normal_(emb.weight, std=e**-0.5)
            with torch.no_grad():
                emb.weight[pad_id].zero_()

    def _embed(self, emb: nn.Embedding, tokens: Tensor, offset: int = 0) -> Tensor:
        t = tokens.shape[1]
        if offset + t > self.positions.shape[0]:
            raise ValueError(
                f"sequence of {offset + t} tokens exceeds max_positions {self.positions.shape[0]}"
            )
        x = emb(tokens) * math.sqrt(emb.embedding_dim)  # (B, T, E)
        x = word_dropout(x, self.word_dropout, self.training)
        return self.drop(x + self.positions[offset : offset + t])

    def encode_memory(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """Encoder output ``(B, S, E)``."""
        x = self._embed(self.src_embed, src)
        mask = M.Padding(src_lengths)
        for block in self.encoder:
            x = block(x, mask=mask)  # (B, S, E)
        return self.encoder_norm(x)

    def _logits(self, y: Tensor) -> Tensor:
        return F.linear(self.decoder_norm(y), self.tgt_embed.weight, self.out_bias)  # (B, T, V)

    def _decode_hidden(self, tgt_in: Tensor, memory: Tensor, src_lengths: Tensor) -> Tensor:
        y = self._embed(self.tgt_embed, tgt_in)
        memory_mask = M.Padding(src_lengths)
        for block in self.decoder:
            y = block(y, memory, memory_mask=memory_mask)  # (B, T, E)
        return y

    def decode_full(self, tgt_in: Tensor, memory: Tensor, src_lengths: Tensor) -> Tensor:
        """Logits ``(B, T, V)`` of the whole target prefix ``tgt_in (B, T)``."""
        return self._logits(self._decode_hidden(tgt_in, memory, src_lengths))

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``."""
        return self.decode_full(tgt_in, self.encode_memory(src, src_lengths), src_lengths)

    def encode(
        self, src: Tensor, src_lengths: Tensor, *, use_cache: bool = True
    ) -> TransformerState:
        """Run the encoder once and, with ``use_cache``, project every decoder block's
        cross-attention keys/values once and open empty self-attention caches."""
        memory = self.encode_memory(src, src_lengths)
        lengths = src_lengths.to(src.device)
        prefix = src.new_zeros(src.shape[0], 0)
        if not use_cache:
            return TransformerState(memory, lengths, None, None, prefix)
        memory_kv = [block.cross_attn.project_kv(memory) for block in self.decoder]
        caches = [KVCache() for _ in self.decoder]
        return TransformerState(memory, lengths, memory_kv, caches, prefix)

    def decode_step(
        self, tokens: Tensor, state: TransformerState
    ) -> tuple[Tensor, TransformerState]:
        """``tokens (B,)`` -> next-token logits ``(B, V)``; the state advances one step."""
        if state.caches is None:  # recompute the whole prefix (reference path)
            prefix = torch.cat([state.prefix, tokens[:, None]], dim=1)  # (B, t+1)
            hidden = self._decode_hidden(prefix, state.memory, state.lengths)  # (B, t+1, E)
            logits = self._logits(hidden[:, -1:])[:, 0]  # only the last position
            return logits, TransformerState(
                state.memory, state.lengths, None, None, prefix, state.step + 1
            )
        assert state.memory_kv is not None
        y = self._embed(self.tgt_embed, tokens[:, None], offset=state.step)  # (B, 1, E)
        memory_mask = M.Padding(state.lengths)
        for block, kv, cache in zip(self.decoder, state.memory_kv, state.caches, strict=True):
            y = block(y, None, memory_mask=memory_mask, cache=cache, memory_kv=kv)  # (B, 1, E)
        state.step += 1
        return self._logits(y)[:, -1], state

    def reorder_state(self, state: TransformerState, indices: Tensor) -> TransformerState:
        """Keep rows ``indices`` of the state; the KV caches are reordered in place."""
        memory_kv = None
        if state.memory_kv is not None:
            memory_kv = [
                (k.index_select(0, indices), v.index_select(0, indices)) for k, v in state.memory_kv
            ]
        if state.caches is not None:
            for cache in state.caches:
                cache.reorder(indices)
        return TransformerState(
            state.memory.index_select(0, indices),
            state.lengths.index_select(0, indices),
            memory_kv,
            state.caches,
            state.prefix.index_select(0, indices),
            state.step,
        )
