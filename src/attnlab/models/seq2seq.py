"""Translation presets: ``gru`` (no attention), ``gru-bahdanau``, ``gru-luong`` and
``transformer``, all registered for the task ``"translate"``.

Every model takes ``src (B, S)`` padded with ``pad_id``, ``src_lengths (B,)`` and the
teacher-forced target input ``tgt_in (B, T)`` (BOS first) and returns logits
``(B, T, V)``; for decoding it implements the step protocol of :mod:`attnlab.generate`:
``encode(src, src_lengths) -> state``, ``decode_step(tokens (B,), state) -> (logits (B, V),
state)`` and ``reorder_state(state, indices)``. Label smoothing belongs to the loss.

Example:
    >>> import torch
    >>> from attnlab.models import create_model
    >>> dims = TranslationDims(source_vocab_size=50, target_vocab_size=50, shared_vocab=True)
    >>> model = create_model("gru-bahdanau", dims=dims, task="translate")
    >>> src, tgt_in = torch.randint(4, 50, (2, 7)), torch.randint(4, 50, (2, 5))
    >>> model(src, torch.tensor([7, 4]), tgt_in).shape
    torch.Size([2, 5, 50])
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from attnlab.models.registry import register
from attnlab.models.seq2seq_rnn import RNNSeq2Seq
from attnlab.models.seq2seq_transformer import Seq2SeqTransformer

__all__ = [
    "GRUBahdanauConfig",
    "GRUConfig",
    "GRULuongConfig",
    "Seq2SeqTransformerConfig",
    "TranslationDims",
    "gru",
    "gru_bahdanau",
    "gru_luong",
    "transformer",
]


@dataclass(frozen=True)
class TranslationDims:
    """Sizes a translation model takes from its data (its tokenizer).

    Attributes:
        source_vocab_size: source token ids.
        target_vocab_size: target token ids.
        pad_id, bos_id, eos_id: special ids, the same on both sides.
        shared_vocab: source and target share one vocabulary (and one embedding).
    """

    source_vocab_size: int
    target_vocab_size: int
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3
    shared_vocab: bool = False

    def __post_init__(self) -> None:
        for name in ("source_vocab_size", "target_vocab_size"):
            if getattr(self, name) < 4:
                raise ValueError(f"{name} must be >= 4, got {getattr(self, name)}")
        ids = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        if len(set(ids.values())) != 3:
            raise ValueError(f"pad, bos and eos ids must differ, got {ids}")
        for name, i in ids.items():
            if not 0 <= i < min(self.source_vocab_size, self.target_vocab_size):
                raise ValueError(f"{name} {i} is outside the vocabulary")
        if self.shared_vocab and self.source_vocab_size != self.target_vocab_size:
            raise ValueError(
                f"a shared vocabulary needs equal sizes, got source {self.source_vocab_size} "
                f"and target {self.target_vocab_size}"
            )


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not lo <= value < hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}), got {value!r}")


@dataclass(frozen=True)
class GRUConfig:
    """``gru``: BiGRU encoder, GRU decoder fed the sentence summary, no attention.

    Attributes:
        embed_dim: token embedding size E (the readout is tied to the target embedding).
        hidden_dim: GRU size (per direction in the encoder).
        encoder_layers: stacked encoder layers.
        attn_dim: alignment size of additive attention (unused without attention).
        dropout: dropout on embeddings, annotations and readout.
        word_dropout: probability of dropping a whole input token embedding.
    """

    embed_dim: int = 256
    hidden_dim: int = 256
    encoder_layers: int = 1
    attn_dim: int = 256
    dropout: float = 0.3
    word_dropout: float = 0.1

    def __post_init__(self) -> None:
        _check("dropout", self.dropout, 0.0, 1.0)
        _check("word_dropout", self.word_dropout, 0.0, 1.0)


@dataclass(frozen=True)
class GRUBahdanauConfig(GRUConfig):
    """``gru-bahdanau``: the ``gru`` model plus additive attention (Bahdanau et al. 2015)."""


@dataclass(frozen=True)
class GRULuongConfig(GRUConfig):
    """``gru-luong``: the ``gru`` model plus "general" attention with input feeding
    (Luong et al. 2015)."""


@dataclass(frozen=True)
class Seq2SeqTransformerConfig:
    """``transformer``: pre-norm encoder-decoder with tied embeddings.

    Attributes:
        embed_dim: model width E.
        num_heads: attention heads (divides E).
        encoder_layers: encoder blocks.
        decoder_layers: decoder blocks.
        mlp_ratio: MLP width as a multiple of E.
        dropout: dropout on embeddings, attention weights and residual branches.
        word_dropout: probability of dropping a whole input token embedding.
        max_positions: longest sequence (source or target) in tokens.
    """

    embed_dim: int = 256
    num_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    mlp_ratio: float = 2.0
    dropout: float = 0.3
    word_dropout: float = 0.1
    max_positions: int = 512

    def __post_init__(self) -> None:
        _check("dropout", self.dropout, 0.0, 1.0)
        _check("word_dropout", self.word_dropout, 0.0, 1.0)
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}"
            )


_EXAMPLE = TranslationDims(source_vocab_size=8000, target_vocab_size=8000, shared_vocab=True)
#: The training recipe of every translation preset (``attnlab train translate``): AdamW at
#: 1e-3, 10 % linear warm-up then cosine decay, label smoothing 0.1, 64 sentences a step
#: grouped by length; 12 epochs of ``de-en`` cost at most ~32 single-thread CPU minutes
#: for ``transformer`` (an estimate from 2-epoch runs: benchmarks/translate-results.md).
TRAIN_DEFAULTS = {
    "epochs": 12,
    "batch_size": 64,
    "lr": 1e-3,
    "schedule": "cosine",
    "warmup": 0.1,
    "label_smoothing": 0.1,
    "patience": 3,
}


def _ids(dims: TranslationDims) -> dict:
    return {
        "source_vocab_size": dims.source_vocab_size,
        "target_vocab_size": dims.target_vocab_size,
        "pad_id": dims.pad_id,
        "bos_id": dims.bos_id,
        "eos_id": dims.eos_id,
        "shared_vocab": dims.shared_vocab,
    }


def _rnn(decoder: str, config: GRUConfig, dims: TranslationDims) -> nn.Module:
    return RNNSeq2Seq(
        decoder,
        **_ids(dims),
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        encoder_layers=config.encoder_layers,
        attn_dim=config.attn_dim,
        dropout=config.dropout,
        word_dropout=config.word_dropout,
    )


@register(
    "gru",
    task="translate",
    config=GRUConfig,
    dims=TranslationDims,
    example_dims=_EXAMPLE,
    train_defaults=TRAIN_DEFAULTS,
    description="BiGRU encoder, GRU decoder, no attention (Cho et al. 2014 baseline)",
)
def gru(config: GRUConfig, dims: TranslationDims) -> nn.Module:
    """Preset ``gru``."""
    return _rnn("none", config, dims)


@register(
    "gru-bahdanau",
    task="translate",
    config=GRUBahdanauConfig,
    dims=TranslationDims,
    example_dims=_EXAMPLE,
    train_defaults=TRAIN_DEFAULTS,
    description="BiGRU encoder, GRU decoder with additive attention (Bahdanau et al. 2015)",
)
def gru_bahdanau(config: GRUBahdanauConfig, dims: TranslationDims) -> nn.Module:
    """Preset ``gru-bahdanau``."""
    return _rnn("bahdanau", config, dims)


@register(
    "gru-luong",
    task="translate",
    config=GRULuongConfig,
    dims=TranslationDims,
    example_dims=_EXAMPLE,
    train_defaults=TRAIN_DEFAULTS,
    description='BiGRU encoder, GRU decoder, Luong "general" attention + input feeding',
)
def gru_luong(config: GRULuongConfig, dims: TranslationDims) -> nn.Module:
    """Preset ``gru-luong``."""
    return _rnn("luong", config, dims)


@register(
    "transformer",
    task="translate",
    config=Seq2SeqTransformerConfig,
    dims=TranslationDims,
    example_dims=_EXAMPLE,
    train_defaults=TRAIN_DEFAULTS,
    description="pre-norm Transformer encoder-decoder, tied embeddings, KV-cache decoding",
)
def transformer(config: Seq2SeqTransformerConfig, dims: TranslationDims) -> nn.Module:
    """Preset ``transformer`` (of the task ``translate``)."""
    return Seq2SeqTransformer(
        **_ids(dims),
        embed_dim=config.embed_dim,
        num_heads=config.num_heads,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        mlp_ratio=config.mlp_ratio,
        dropout=config.dropout,
        word_dropout=config.word_dropout,
        max_positions=config.max_positions,
    )
