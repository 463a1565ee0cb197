"""Recurrent encoder-decoders: a GRU baseline without attention (Cho et al. 2014), Bahdanau
et al. 2015 additive attention, and Luong et al. 2015 "general" attention with input feeding.

All three share one bidirectional GRU encoder and read top-down: encoder -> decoder step
-> readout tied to the target embedding. Teacher-forced ``forward`` and step-by-step
decoding (``encode`` / ``decode_step`` / ``reorder_state``, the protocol of
:mod:`attnlab.generate`) run the same step function, so they agree exactly. Attention
weights pass through each attention layer's ``tap``; nothing is stored on the modules.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.layers import AdditiveAttention, LuongAttention

__all__ = [
    "BahdanauDecoder",
    "BiGRUEncoder",
    "GRUDecoder",
    "LuongDecoder",
    "RNNSeq2Seq",
    "RNNState",
    "word_dropout",
]


def word_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Zero whole token embeddings ``x (B, T, E)`` with probability ``p`` while training
    (Gal & Ghahramani 2016; Sennrich & Zhang 2019 use it for low-resource NMT)."""
    if not training or p <= 0:
        return x
    keep = torch.rand(x.shape[:2], device=x.device) >= p  # (B, T)
    return x * keep[..., None].to(x.dtype)


@dataclass
class RNNState:
    """Decoding state of the recurrent models; every tensor has the batch first.

    Attributes:
        hidden: decoder state ``(B, H)``.
        memory: encoder annotations ``(B, S, 2H_enc)``.
        keys: the attention's projected keys ``(B, S, A)`` (computed once), or the
            sentence summary ``(B, 2H_enc)`` for the model without attention.
        lengths: valid source positions ``(B,)``.
        feed: the previous attentional vector ``(B, E)`` (Luong input feeding) or None.
    """

    hidden: Tensor
    memory: Tensor
    keys: Tensor
    lengths: Tensor
    feed: Tensor | None = None

    def index_select(self, indices: Tensor) -> RNNState:
        """The rows ``indices`` of every tensor (beam reselection, finished sentences)."""
        values = {}
        for f in fields(self):
            t = getattr(self, f.name)
            values[f.name] = None if t is None else t.index_select(0, indices)
        return RNNState(**values)


class BiGRUEncoder(nn.Module):
    """Embedding -> bidirectional GRU over packed sequences.

    Shapes:
        ``src (B, S)``, ``lengths (B,)`` -> annotations ``(B, S, 2H)`` and the summary
        ``(B, 2H)`` (last forward state ++ first backward state).
    """

    def __init__(
        self,
        embed: nn.Embedding,
        hidden_dim: int,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        word_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.gru = nn.GRU(
            embed.embedding_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.word_dropout = word_dropout

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        s = src.shape[1]
        x = self.drop(word_dropout(self.embed(src), self.word_dropout, self.training))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, h = self.gru(packed)  # h: (2L, B, H)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=s)
        summary = torch.cat([h[-2], h[-1]], dim=-1)  # (B, 2H)
        return self.drop(out), summary  # (B, S, 2H), (B, 2H)


class _Readout(nn.Module):
    """``tanh(W [parts]) -> (B, E)``, then logits through the tied target embedding."""

    def __init__(self, in_dim: int, embed: nn.Embedding, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, embed.embedding_dim)
        self.drop = nn.Dropout(dropout)
        self.embed = embed
        self.bias = nn.Parameter(torch.zeros(embed.num_embeddings))

    def hidden(self, *parts: Tensor) -> Tensor:
        return torch.tanh(self.proj(torch.cat(parts, dim=-1)))  # (B, E)

    def logits(self, h: Tensor) -> Tensor:
        return F.linear(self.drop(h), self.embed.weight, self.bias)  # (B, V)


class GRUDecoder(nn.Module):
    """No attention: the sentence summary ``c`` enters every step (Cho et al. 2014).

    ``s_i = GRU([E y_{i-1}; c], s_{i-1})``, ``p(y_i) = softmax(E tanh(W [s_i; c; E y_{i-1}]))``.
    """

    uses_attention = False

    def __init__(self, embed: nn.Embedding, hidden_dim: int, memory_dim: int, dropout: float):
        super().__init__()
        e = embed.embedding_dim
        self.cell = nn.GRUCell(e + memory_dim, hidden_dim)
        self.readout = _Readout(hidden_dim + memory_dim + e, embed, dropout)

    def prepare(self, memory: Tensor, summary: Tensor) -> tuple[Tensor, Tensor | None]:
        return summary, None  # (B, 2H), no input feeding

    def step(self, y_emb: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        c = state.keys  # (B, 2H)
        h = self.cell(torch.cat([y_emb, c], dim=-1), state.hidden)  # (B, H)
        out = self.readout.hidden(h, c, y_emb)  # (B, E)
        return out, RNNState(h, state.memory, state.keys, state.lengths)


class BahdanauDecoder(nn.Module):
    """Additive attention with the previous state as query (Bahdanau et al. 2015, eq. 4-6).

    ``c_i = sum_j alpha_ij h_j``, ``alpha_i = softmax_j(v^T tanh(W s_{i-1} + U h_j))`` with
    ``U h_j`` projected once per sentence; ``s_i = GRU([E y_{i-1}; c_i], s_{i-1})``;
    ``p(y_i) = softmax(E tanh(W_o [s_i; c_i; E y_{i-1}]))`` (a tanh readout in place of the
    paper's maxout).
    """

    uses_attention = True

    def __init__(
        self,
        embed: nn.Embedding,
        hidden_dim: int,
        memory_dim: int,
        dropout: float,
        attn_dim: int,
    ):
        super().__init__()
        e = embed.embedding_dim
        self.attn = AdditiveAttention(hidden_dim, memory_dim, attn_dim)
        self.cell = nn.GRUCell(e + memory_dim, hidden_dim)
        self.readout = _Readout(hidden_dim + memory_dim + e, embed, dropout)

    def prepare(self, memory: Tensor, summary: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.attn.project_keys(memory), None  # (B, S, A)

    def step(self, y_emb: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        c, _ = self.attn(
            state.hidden, state.memory, lengths=state.lengths, projected_keys=state.keys
        )  # (B, 2H)
        h = self.cell(torch.cat([y_emb, c], dim=-1), state.hidden)  # (B, H)
        out = self.readout.hidden(h, c, y_emb)  # (B, E)
        return out, RNNState(h, state.memory, state.keys, state.lengths)


class LuongDecoder(nn.Module):
    """Global attention, "general" score, input feeding (Luong et al. 2015, eq. 5, 8, Sec. 3.3).

    ``h_t = GRU([E y_{t-1}; h~_{t-1}], h_{t-1})``; ``a_t = softmax(h_t^T W_a h_s)`` with
    ``W_a h_s`` projected once; ``h~_t = tanh(W_c [c_t; h_t])``; ``p(y_t) = softmax(E h~_t)``.
    """

    uses_attention = True

    def __init__(
        self,
        embed: nn.Embedding,
        hidden_dim: int,
        memory_dim: int,
        dropout: float,
    ):
        super().__init__()
        e = embed.embedding_dim
        self.attn = LuongAttention(hidden_dim, memory_dim, score="general")
        self.cell = nn.GRUCell(2 * e, hidden_dim)
        self.readout = _Readout(memory_dim + hidden_dim, embed, dropout)
        self.drop = nn.Dropout(dropout)

    def prepare(self, memory: Tensor, summary: Tensor) -> tuple[Tensor, Tensor | None]:
        feed = memory.new_zeros(memory.shape[0], self.readout.embed.embedding_dim)  # (B, E)
        return self.attn.project_keys(memory), feed  # (B, S, H)

    def step(self, y_emb: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        assert state.feed is not None
        h = self.cell(torch.cat([y_emb, self.drop(state.feed)], dim=-1), state.hidden)  # (B, H)
        c, _ = self.attn(h, state.memory, lengths=state.lengths, projected_keys=state.keys)
        out = self.readout.hidden(c, h)  # (B, E): the attentional vector h~_t
        return out, RNNState(h, state.memory, state.keys, state.lengths, out)


class RNNSeq2Seq(nn.Module):
    """A bidirectional GRU encoder and one of the decoders above.

    Args:
        decoder: "none" (:class:`GRUDecoder`), "bahdanau" or "luong".
        source_vocab_size, target_vocab_size: vocabulary sizes.
        pad_id, bos_id, eos_id: special ids.
        shared_vocab: one embedding for source and target (joint vocabulary).
        embed_dim: token embedding size E (also the readout size: output tied to it).
        hidden_dim: GRU size per direction (encoder) and of the decoder.
        encoder_layers: stacked encoder layers.
        attn_dim: alignment size A of additive attention.
        dropout: dropout on embeddings, annotations and the readout.
        word_dropout: probability of dropping a whole input token embedding.

    Shapes:
        ``src (B, S)``, ``src_lengths (B,)``, ``tgt_in (B, T)`` -> logits ``(B, T, V)``.
    """

    def __init__(
        self,
        decoder: str,
        *,
        source_vocab_size: int,
        target_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        shared_vocab: bool,
        embed_dim: int,
        hidden_dim: int,
        encoder_layers: int,
        attn_dim: int,
        dropout: float,
        word_dropout: float,
    ) -> None:
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.tgt_embed = nn.Embedding(target_vocab_size, embed_dim, padding_idx=pad_id)
        src_embed = (
            self.tgt_embed
            if shared_vocab
            else nn.Embedding(source_vocab_size, embed_dim, padding_idx=pad_id)
        )
        self.encoder = BiGRUEncoder(
            src_embed,
            hidden_dim,
            num_layers=encoder_layers,
            dropout=dropout,
            word_dropout=word_dropout,
        )
        memory_dim = 2 * hidden_dim
        self.init = nn.Linear(memory_dim, hidden_dim)  # s_0 = tanh(W [h_fwd; h_bwd])
        args = (self.tgt_embed, hidden_dim, memory_dim, dropout)
        if decoder == "none":
            self.decoder: nn.Module = GRUDecoder(*args)
        elif decoder == "bahdanau":
            self.decoder = BahdanauDecoder(*args, attn_dim)
        elif decoder == "luong":
            self.decoder = LuongDecoder(*args)
        else:
            raise ValueError(f"unknown decoder {decoder!r}; choose none, bahdanau or luong")
        self.drop = nn.Dropout(dropout)
        self.word_dropout = word_dropout
        nn.init.normal_(self.tgt_embed.weight, std=embed_dim**-0.5)
        with torch.no_grad():
            self.tgt_embed.weight[pad_id].zero_()
            if not shared_vocab:
                nn.init.normal_(src_embed.weight, std=embed_dim**-0.5)
                src_embed.weight[pad_id].zero_()

    def encode(self, src: Tensor, src_lengths: Tensor) -> RNNState:
        """Run the encoder once: the decoding state before the first target token."""
        memory, summary = self.encoder(src, src_lengths)  # (B, S, 2H), (B, 2H)
        keys, feed = self.decoder.prepare(memory, summary)
        hidden = torch.tanh(self.init(summary))  # (B, H)
        return RNNState(hidden, memory, keys, src_lengths.to(src.device), feed)

    def _embed_target(self, tokens: Tensor) -> Tensor:
        x = word_dropout(self.tgt_embed(tokens), self.word_dropout, self.training)
        return self.drop(x)

    def decode_step(self, tokens: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        """``tokens (B,)`` (the last target tokens) -> next-token logits ``(B, V)``."""
        y = self._embed_target(tokens[:, None])[:, 0]  # (B, E)
        out, state = self.decoder.step(y, state)
        return self.decoder.readout.logits(out), state

    def reorder_state(self, state: RNNState, indices: Tensor) -> RNNState:
        """Keep rows ``indices`` of the state (beam reselection)."""
        return state.index_select(indices)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)`` for ``tgt_in (B, T)`` (starting with BOS)."""
        state = self.encode(src, src_lengths)
        ys = self._embed_target(tgt_in)  # (B, T, E)
        outs = []
        for t in range(tgt_in.shape[1]):
            out, state = self.decoder.step(ys[:, t], state)
            outs.append(out)
        return self.decoder.readout.logits(torch.stack(outs, dim=1))  # (B, T, V)
