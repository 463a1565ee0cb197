"""Image captioning presets, registered for the task ``"caption"``: ``cnn-gru-attn`` (Show,
Attend and Tell with a GRU), ``vit-transformer`` (ViT encoder, Transformer decoder with
cross-attention) and ``cnn-gru`` (the same CNN and GRU without attention, the baseline).

Every model takes float pixels in ``[0, 1]`` shaped ``(B, C, H, W)`` and the teacher-forced
caption ``tgt_in (B, T)`` (BOS first) and returns logits ``(B, T, V)``; for decoding it
implements the step protocol of :mod:`attnlab.generate` (the images travel as the search's
``src``, flattened to ``(B, C*H*W)``). Each exposes ``grid`` and ``cell_size`` (where its
attention cells lie on the image) and ``attention_modules()`` (its cross-attention seams).

Example:
    >>> import torch
    >>> from attnlab.models import create_model
    >>> dims = CaptionDims(channels=1, height=32, width=128, vocab_size=13, max_len=5)
    >>> model = create_model("cnn-gru-attn", dims=dims)
    >>> model(torch.rand(2, 1, 32, 128), torch.tensor([[1, 5, 6], [1, 7, 0]])).shape
    torch.Size([2, 3, 13])
    >>> model.grid, model.cell_size
    ((4, 16), (8, 8))
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from attnlab.models.caption_rnn import CaptionRNN
from attnlab.models.caption_transformer import CaptionTransformer
from attnlab.models.registry import register

__all__ = [
    "CNNGRUAttnConfig",
    "CNNGRUConfig",
    "CaptionDims",
    "ViTTransformerConfig",
    "cnn_gru",
    "cnn_gru_attn",
    "vit_transformer",
]


@dataclass(frozen=True)
class CaptionDims:
    """Sizes a captioning model takes from its data.

    Attributes:
        channels, height, width: image shape.
        vocab_size: output words, specials included.
        max_len: longest caption in words (EOS excluded).
        pad_id, bos_id, eos_id: special ids.
    """

    channels: int
    height: int
    width: int
    vocab_size: int
    max_len: int
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "max_len"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        ids = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        if len(set(ids.values())) != 3:
            raise ValueError(f"pad, bos and eos ids must differ, got {ids}")
        if self.vocab_size < 4:
            raise ValueError(
                f"vocab_size must be >= 4 (three specials and a word), got {self.vocab_size}"
            )
        for name, i in ids.items():
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"{name} {i} is outside the vocabulary of {self.vocab_size}")


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not lo <= value < hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}), got {value!r}")


@dataclass(frozen=True)
class CNNGRUConfig:
    """``cnn-gru``: CNN grid, GRU decoder, the mean-pooled grid as context (no attention).

    Attributes:
        widths: channels of each CNN stage (2x2 max-pooling between stages).
        convs_per_stage: conv-BN-ReLU layers per stage.
        feature_dim: annotation size D of a grid cell.
        embed_dim: word embedding size (and deep output size).
        hidden_dim: GRU size.
        attn_dim: alignment size of the additive attention.
        attention: soft attention over the grid cells.
        gate: the gating scalar of Xu et al. 2015, Sec. 4.2.1 (with attention).
        dropout: dropout on the deep output.
        doubly_stochastic: weight lambda of the doubly stochastic attention regulariser
            (Xu et al. 2015, eq. 14), added to the loss by the task.
    """

    widths: tuple[int, ...] = (16, 32, 64, 64)
    convs_per_stage: int = 1
    feature_dim: int = 128
    embed_dim: int = 64
    hidden_dim: int = 128
    attn_dim: int = 64
    attention: bool = False
    gate: bool = True
    dropout: float = 0.2
    doubly_stochastic: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.widths, list):  # from a JSON run config
            object.__setattr__(self, "widths", tuple(self.widths))
        if not self.widths or any(isinstance(w, bool) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive ints, got {self.widths!r}")
        if self.convs_per_stage < 1:
            raise ValueError(f"convs_per_stage must be >= 1, got {self.convs_per_stage}")
        _check("dropout", self.dropout, 0.0, 1.0)
        if not self.doubly_stochastic >= 0:
            raise ValueError(f"doubly_stochastic must be >= 0, got {self.doubly_stochastic}")


@dataclass(frozen=True)
class CNNGRUAttnConfig(CNNGRUConfig):
    """``cnn-gru-attn``: :class:`CNNGRUConfig` with soft attention over the grid cells."""

    attention: bool = True
    doubly_stochastic: float = 0.0


@dataclass(frozen=True)
class ViTTransformerConfig:
    """``vit-transformer``: ViT patch encoder, Transformer decoder with cross-attention.

    Attributes:
        patch_size: patch side P (the image sides must be multiples of it).
        stem_channels: 0, or the width of a conv stem before the patch projection.
        embed_dim: model width E.
        num_heads: attention heads (divides E).
        encoder_layers, decoder_layers: block counts.
        mlp_ratio: MLP width as a multiple of E.
        dropout: dropout on attention weights and residual branches.
        backend: attention backend (``"auto"``, ``"sdpa"``, ``"math"``, ...).
    """

    patch_size: int = 8
    stem_channels: int = 16
    embed_dim: int = 128
    num_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    backend: str = "auto"

    def __post_init__(self) -> None:
        _check("dropout", self.dropout, 0.0, 1.0)
        if self.embed_dim % self.num_heads or self.embed_dim % 4:
            raise ValueError(
                f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads} "
                "and by 4 (2-D positions)"
            )
        for name in ("encoder_layers", "decoder_layers", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stem_channels < 0:
            raise ValueError(f"stem_channels must be >= 0, got {self.stem_channels}")


_EXAMPLE = CaptionDims(channels=1, height=32, width=128, vocab_size=13, max_len=5)


def _ids(dims: CaptionDims) -> dict:
    return {
        "channels": dims.channels,
        "height": dims.height,
        "width": dims.width,
        "vocab_size": dims.vocab_size,
        "pad_id": dims.pad_id,
        "bos_id": dims.bos_id,
        "eos_id": dims.eos_id,
    }


def _rnn(config: CNNGRUConfig, dims: CaptionDims) -> nn.Module:
    return CaptionRNN(
        **_ids(dims),
        attention=config.attention,
        widths=config.widths,
        convs_per_stage=config.convs_per_stage,
        feature_dim=config.feature_dim,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        attn_dim=config.attn_dim,
        gate=config.gate,
        dropout=config.dropout,
        regularizer=config.doubly_stochastic,
    )


@register(
    "cnn-gru-attn",
    task="caption",
    config=CNNGRUAttnConfig,
    dims=CaptionDims,
    example_dims=_EXAMPLE,
    description="CNN grid + GRU decoder with soft additive attention (Show, Attend and Tell)",
    train_defaults={"epochs": 3, "batch_size": 64, "lr": 3e-3},
    data_defaults={},
)
def cnn_gru_attn(config: CNNGRUAttnConfig, dims: CaptionDims) -> nn.Module:
    """Preset ``cnn-gru-attn``."""
    return _rnn(config, dims)


@register(
    "vit-transformer",
    task="caption",
    config=ViTTransformerConfig,
    dims=CaptionDims,
    example_dims=_EXAMPLE,
    description="ViT patch encoder + Transformer decoder reading the patches by cross-attention",
    train_defaults={"epochs": 5, "batch_size": 64, "lr": 2e-3},
    data_defaults={},
)
def vit_transformer(config: ViTTransformerConfig, dims: CaptionDims) -> nn.Module:
    """Preset ``vit-transformer``."""
    return CaptionTransformer(
        **_ids(dims),
        max_len=dims.max_len,
        patch_size=config.patch_size,
        stem_channels=config.stem_channels,
        embed_dim=config.embed_dim,
        num_heads=config.num_heads,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        mlp_ratio=config.mlp_ratio,
        dropout=config.dropout,
        backend=config.backend,
    )


@register(
    "cnn-gru",
    task="caption",
    config=CNNGRUConfig,
    dims=CaptionDims,
    example_dims=_EXAMPLE,
    description="the cnn-gru-attn model without attention: mean-pooled image as context (baseline)",
    train_defaults={"epochs": 3, "batch_size": 64, "lr": 3e-3},
    data_defaults={},
)
def cnn_gru(config: CNNGRUConfig, dims: CaptionDims) -> nn.Module:
    """Preset ``cnn-gru``."""
    return _rnn(config, dims)
