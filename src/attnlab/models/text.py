"""Text classifiers trained from scratch: a BiLSTM and a small Transformer encoder, each
summarised by :class:`~attnlab.layers.AttentionPooling`.

Both read top-down: embedding -> encoder -> attention pooling -> linear classifier, and
take ``input_ids (B, T)`` padded with id 0 and ``lengths (B,)``. Attention weights are
never stored: the pooling weights pass through ``model.pool.tap`` (a ``WeightsTap``) and
the Transformer's self-attention through each block's ``AttentionCore``, where
``attnlab.capture.capture`` hooks them.

Example:
    >>> import torch
    >>> model = BiLSTMAttention(BiLSTMAttnConfig(), TextDims(vocab_size=100, num_classes=2))
    >>> model(torch.randint(1, 100, (3, 7)), torch.tensor([7, 5, 2])).shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlab.layers import AttentionPooling, TransformerEncoderBlock
from attnlab.models.registry import register
from attnlab.ops import masks as M

__all__ = [
    "EMBEDDINGS",
    "BiLSTMAttention",
    "BiLSTMAttnConfig",
    "TextDims",
    "TransformerClassifier",
    "TransformerConfig",
    "bilstm_attn",
    "load_embeddings",
    "normalize_kept_heads",
    "transformer",
]

#: Where token embeddings may start from: random, or a packaged pretrained encoder.
EMBEDDINGS = ("random", "minilm")


@dataclass(frozen=True)
class TextDims:
    """Sizes a text classifier takes from its data.

    Attributes:
        vocab_size: number of token ids (id 0 is padding).
        num_classes: number of labels C.
    """

    vocab_size: int
    num_classes: int

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")


def normalize_kept_heads(value) -> tuple[tuple[int, ...], ...] | None:
    """A config's ``kept_heads`` as a tuple of sorted int tuples (JSON gives lists).

    ``kept_heads[i]`` lists the heads (original numbering) that attention layer ``i`` keeps
    after pruning (Michel et al. 2019); None means no pruning. Building the model removes
    the other heads before the weights load, so a pruned run folder loads like any other.

    Raises:
        ValueError: not a list of non-empty lists of distinct non-negative ints.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"kept_heads must be a non-empty list of head lists, got {value!r}")
    out = []
    for i, heads in enumerate(value):
        ok = isinstance(heads, (list, tuple)) and all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in heads
        )
        if not ok or not heads or len(set(heads)) != len(heads):
            raise ValueError(
                f"kept_heads[{i}] must be distinct non-negative head indices (at least one), "
                f"got {heads!r}"
            )
        out.append(tuple(sorted(heads)))
    return tuple(out)


def _check_embeddings(value: str) -> None:
    if value not in EMBEDDINGS:
        raise ValueError(f"embeddings must be one of {EMBEDDINGS}, got {value!r}")


@torch.no_grad()
def load_embeddings(embed: nn.Embedding, vectors: Tensor) -> str | None:
    """Initialise ``embed`` from pretrained ``vectors (V, D')``.

    When ``D'`` differs from the embedding size ``d`` the vectors are projected on their
    top principal components; they are rescaled to the embedding's current spread. When
    fewer than ``d`` components exist (a vocabulary smaller than ``d``, or ``D' < d``), the
    remaining dimensions keep their random initialisation. Row 0 (padding) stays zero.

    Returns:
        A note saying how many dimensions came from the vectors, when not all did.
    """
    v, d = embed.weight.shape
    if vectors.shape[0] != v:
        raise ValueError(f"{vectors.shape[0]} vectors for a vocabulary of {v}")
    vectors = vectors.float()
    if vectors.shape[1] != d:
        centred = vectors - vectors.mean(0)
        _, _, basis = torch.linalg.svd(centred[1:], full_matrices=False)  # (k, D')
        vectors = centred @ basis[:d].T  # (V, min(k, d))
    k = vectors.shape[1]
    scale = embed.weight.std() / vectors.std().clamp_min(1e-12)
    embed.weight[:, :k].copy_(vectors * scale)
    embed.weight[0].zero_()
    if k < d:
        return (
            f"only {k} of the {d} embedding dimensions come from the pretrained vectors "
            f"(vocabulary of {v}); the others stay random"
        )
    return None


def _check_inputs(input_ids: Tensor, lengths: Tensor) -> None:
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}")
    if lengths.shape != input_ids.shape[:1]:
        raise ValueError(
            f"lengths must be (B,) = ({input_ids.shape[0]},), got {tuple(lengths.shape)}"
        )


@dataclass(frozen=True)
class BiLSTMAttnConfig:
    """``bilstm-attn``: embedding -> BiLSTM -> attention pooling -> linear.

    Attributes:
        embed_dim: token embedding size.
        hidden_dim: LSTM state size per direction (the pooled vector is twice this).
        num_layers: stacked BiLSTM layers.
        attn_dim: size of the tanh projection scoring each position (Yang et al. 2016).
        dropout: dropout on embeddings, LSTM outputs and the pooled vector.
        embeddings: initial token embeddings: ``"random"``, or ``"minilm"`` (context-free
            vectors read off the packaged MiniLM, see
            :func:`attnlab.models.pretrained.token_embeddings`; set by training).
    """

    embed_dim: int = 128
    hidden_dim: int = 128
    num_layers: int = 1
    attn_dim: int = 64
    dropout: float = 0.3
    embeddings: str = "minilm"

    def __post_init__(self) -> None:
        _check_embeddings(self.embeddings)


class BiLSTMAttention(nn.Module):
    """The classic attention text classifier (Zhou et al. 2016; Yang et al. 2016).

    Args:
        config: sizes and dropout.
        dims: vocabulary size (id 0 is padding) and number of labels C.

    Shapes:
        ``input_ids (B, T)``, ``lengths (B,)`` -> logits ``(B, C)``.
    """

    def __init__(self, config: BiLSTMAttnConfig, dims: TextDims) -> None:
        super().__init__()
        self.config = config
        vocab_size, num_classes = dims.vocab_size, dims.num_classes
        self.embed = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_dim,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.pool = AttentionPooling(2 * config.hidden_dim, hidden_dim=config.attn_dim)
        self.head = nn.Linear(2 * config.hidden_dim, num_classes)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        _check_inputs(input_ids, lengths)
        t = input_ids.shape[1]
        x = self.drop(self.embed(input_ids))  # (B, T, E)
        # Packing makes the backward direction start at each sequence's last real token.
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=t)  # (B, T, 2H)
        pooled, _ = self.pool(self.drop(h), lengths)  # (B, 2H)
        return self.head(self.drop(pooled))  # (B, C)


@dataclass(frozen=True)
class TransformerConfig:
    """``transformer``: embedding + learned positions -> pre-norm encoder blocks ->
    attention pooling -> linear.

    Attributes:
        embed_dim: model width E.
        num_heads: attention heads per block.
        num_layers: encoder blocks.
        mlp_ratio: MLP width as a multiple of E.
        attn_dim: tanh projection size of the pooling (None: dot-product query).
        dropout: dropout in blocks, on embeddings and on the pooled vector.
        max_positions: longest sequence the position table covers.
        embeddings: initial token embeddings (``"random"`` or ``"minilm"``).
        kept_heads: per block, the attention heads kept after pruning (original
            numbering; see ``attnlab prune``); None: all heads.
    """

    embed_dim: int = 128
    num_heads: int = 4
    num_layers: int = 2
    mlp_ratio: float = 2.0
    attn_dim: int = 64
    dropout: float = 0.2
    max_positions: int = 512
    embeddings: str = "minilm"
    kept_heads: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        _check_embeddings(self.embeddings)
        object.__setattr__(self, "kept_heads", normalize_kept_heads(self.kept_heads))
        if self.kept_heads is not None and len(self.kept_heads) != self.num_layers:
            raise ValueError(
                f"kept_heads has {len(self.kept_heads)} entries for {self.num_layers} layers"
            )


class TransformerClassifier(nn.Module):
    """A small Transformer encoder (Vaswani et al. 2017) with padding masks.

    Args:
        config: sizes and dropout.
        dims: vocabulary size (id 0 is padding) and number of labels C.

    Shapes:
        ``input_ids (B, T)``, ``lengths (B,)`` -> logits ``(B, C)``.
    """

    def __init__(self, config: TransformerConfig, dims: TextDims) -> None:
        super().__init__()
        self.config = config
        vocab_size, num_classes = dims.vocab_size, dims.num_classes
        e = config.embed_dim
        self.embed = nn.Embedding(vocab_size, e, padding_idx=0)
        self.pos = nn.Embedding(config.max_positions, e)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(
                e, config.num_heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout
            )
            for _ in range(config.num_layers)
        )
        for block, heads in zip(self.blocks, config.kept_heads or (), strict=False):
            block.attn.keep_heads(heads)  # a pruned run: shrink before the weights load
        self.norm = nn.LayerNorm(e)
        self.pool = AttentionPooling(e, hidden_dim=config.attn_dim)
        self.head = nn.Linear(e, num_classes)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        _check_inputs(input_ids, lengths)
        t = input_ids.shape[1]
        if t > self.config.max_positions:
            raise ValueError(
                f"sequence length {t} exceeds max_positions {self.config.max_positions}"
            )
        positions = torch.arange(t, device=input_ids.device)
        x = self.drop(self.embed(input_ids) + self.pos(positions))  # (B, T, E)
        mask = M.Padding(lengths)
        for block in self.blocks:
            x = block(x, mask=mask)  # (B, T, E)
        pooled, _ = self.pool(self.norm(x), lengths)  # (B, E)
        return self.head(self.drop(pooled))  # (B, C)


@register(
    "bilstm-attn",
    task="text",
    config=BiLSTMAttnConfig,
    dims=TextDims,
    example_dims=TextDims(vocab_size=8000, num_classes=2),
    description="BiLSTM + attention pooling text classifier (Zhou et al. 2016)",
    train_defaults={"epochs": 5},
)
def bilstm_attn(config: BiLSTMAttnConfig, dims: TextDims) -> nn.Module:
    """Preset ``bilstm-attn``."""
    return BiLSTMAttention(config, dims)


@register(
    "transformer",
    task="text",
    config=TransformerConfig,
    dims=TextDims,
    example_dims=TextDims(vocab_size=8000, num_classes=2),
    description="small pre-norm Transformer encoder + attention pooling, padding masks",
    train_defaults={"lr": 1e-3, "epochs": 5},
)
def transformer(config: TransformerConfig, dims: TextDims) -> nn.Module:
    """Preset ``transformer``."""
    return TransformerClassifier(config, dims)
