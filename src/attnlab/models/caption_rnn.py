"""Show, Attend and Tell (Xu et al. 2015) with a GRU: a CNN turns the image into a grid of
annotation vectors, and a GRU decoder attends over the grid cells at every word (soft
additive attention, the gating scalar of Sec. 4.2.1 and the deep output layer of eq. 7);
without attention the mean-pooled grid is the context of every step (the baseline).

Reads top-down: CNN grid encoder -> decoder step -> model. Teacher-forced ``forward`` and
step-by-step decoding (``encode`` / ``decode_step`` / ``reorder_state``, the protocol of
:mod:`attnlab.generate`) run the same step function. The attention weights pass through
the attention layer's ``tap``; ``forward(..., return_attention=True)`` also returns them
for the doubly stochastic regulariser.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from attnlab.layers import AdditiveAttention, sincos_2d

__all__ = [
    "CaptionRNN",
    "CaptionRNNState",
    "ConvGrid",
    "check_images",
    "doubly_stochastic",
    "flat_images",
]


def check_images(images: Tensor, shape: tuple[int, int, int]) -> None:
    """Raise ValueError unless ``images`` is ``(B, *shape)``."""
    if not isinstance(images, Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be (B, C, H, W), got {got}")
    if tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(
            f"images of shape {tuple(images.shape[1:])}, the model was built for {tuple(shape)}"
        )


def flat_images(src: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Images from the decode-step protocol's ``src``: ``(B, C*H*W)`` (search takes 2-D
    sources) or ``(B, C, H, W)`` -> ``(B, C, H, W)`` float."""
    if src.dim() == 2 and src.shape[1] == shape[0] * shape[1] * shape[2]:
        src = src.view(src.shape[0], *shape)  # (B, C, H, W)
    check_images(src, shape)
    return src.float()


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ConvGrid(nn.Module):
    """conv-BN-ReLU stages with 2x2 max-pooling between them; the last feature map is the
    grid of annotation vectors, each cell plus a fixed 2-D sine-cosine position.

    Args:
        channels: image channels.
        height, width: image size (divisible by the stride ``2 ** (len(widths) - 1)``).
        widths: channels of each stage.
        convs_per_stage: conv-BN-ReLU layers per stage.
        dim: size D of the annotation vectors (a 1x1 projection of the last stage).

    Shapes:
        ``images (B, C, H, W)`` in [0, 1] -> ``(B, N, D)``, cells row-major over
        :attr:`grid`.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        *,
        widths: tuple[int, ...],
        convs_per_stage: int,
        dim: int,
    ) -> None:
        super().__init__()
        self.stride = 2 ** (len(widths) - 1)
        if height % self.stride or width % self.stride:
            raise ValueError(
                f"{len(widths)} stages pool by {self.stride}, which does not divide the image "
                f"size {height}x{width}"
            )
        self.grid = (height // self.stride, width // self.stride)
        self.input_norm = nn.BatchNorm2d(channels, affine=False)
        stages: list[nn.Module] = []
        cin = channels
        for i, w in enumerate(widths):
            stages += [_conv_bn_relu(cin if j == 0 else w, w) for j in range(convs_per_stage)]
            if i < len(widths) - 1:
                stages.append(nn.MaxPool2d(2))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.proj = nn.Linear(cin, dim)
        pos = sincos_2d(*self.grid, dim) if dim % 4 == 0 else torch.zeros(1, dim)
        self.register_buffer("pos", pos, persistent=False)  # (N, D)
        # Channels-last convolutions are faster on CPU (oneDNN).
        self.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> Tensor:
        x = self.input_norm(images.contiguous(memory_format=torch.channels_last))
        x = self.stages(x)  # (B, C', h, w)
        x = x.flatten(2).transpose(1, 2)  # (B, h*w, C')
        return self.proj(x) + self.pos  # (B, N, D)


@dataclass
class CaptionRNNState:
    """Decoding state; every tensor has the batch first.

    Attributes:
        hidden: decoder state ``(B, H)``.
        memory: annotation vectors ``(B, N, D)``.
        keys: their projected keys ``(B, N, A)`` (computed once), or the mean-pooled
            image ``(B, D)`` for the model without attention.
    """

    hidden: Tensor
    memory: Tensor
    keys: Tensor

    def index_select(self, indices: Tensor) -> CaptionRNNState:
        return CaptionRNNState(
            **{f.name: getattr(self, f.name).index_select(0, indices) for f in fields(self)}
        )


class CaptionRNN(nn.Module):
    """CNN grid encoder and a GRU decoder, with or without soft attention.

    With attention (Xu et al. 2015, Sec. 3.1.2 and 4.2): ``alpha_t = softmax_i(v^T
    tanh(W h_{t-1} + U a_i))`` (additive attention, ``U a_i`` projected once per image),
    ``z_t = sigmoid(f_beta(h_{t-1})) * sum_i alpha_ti a_i``, ``h_t = GRU([E y_{t-1}; z_t],
    h_{t-1})`` and ``p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t))``. Without it,
    ``z_t`` is the mean of the ``a_i`` at every step. ``h_0 = tanh(W_init mean_i a_i)``.

    Args:
        channels, height, width: image shape.
        vocab_size: output words (specials included).
        pad_id, bos_id, eos_id: special ids.
        attention: soft attention over the grid (False: the mean-pooled baseline).
        widths, convs_per_stage: the CNN (see :class:`ConvGrid`).
        feature_dim: annotation size D.
        embed_dim: word embedding size (also the deep output size).
        hidden_dim: GRU size H.
        attn_dim: alignment size A.
        gate: the gating scalar ``beta`` (Sec. 4.2.1).
        dropout: dropout on the deep output.
        regularizer: weight of the doubly stochastic regulariser (eq. 14) the training
            loss adds (read by the task; see :func:`doubly_stochastic`).

    Shapes:
        ``images (B, C, H, W)`` in [0, 1], ``tgt_in (B, T)`` (BOS first) -> logits
        ``(B, T, V)`` (and attention ``(B, T, N)`` with ``return_attention``).
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
        attention: bool,
        widths: tuple[int, ...],
        convs_per_stage: int,
        feature_dim: int,
        embed_dim: int,
        hidden_dim: int,
        attn_dim: int,
        gate: bool,
        dropout: float,
        regularizer: float = 0.0,
    ) -> None:
        super().__init__()
        self.shape = (channels, height, width)
        self.regularizer = float(regularizer) if attention else 0.0
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.encoder = ConvGrid(
            channels, height, width, widths=widths, convs_per_stage=convs_per_stage,
            dim=feature_dim,
        )  # fmt: skip
        self.uses_attention = bool(attention)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.init = nn.Linear(feature_dim, hidden_dim)
        if self.uses_attention:
            self.attn = AdditiveAttention(hidden_dim, feature_dim, attn_dim)
            self.gate = nn.Linear(hidden_dim, 1) if gate else None
        self.cell = nn.GRUCell(embed_dim + feature_dim, hidden_dim)
        self.out_h = nn.Linear(hidden_dim, embed_dim)  # L_h
        self.out_z = nn.Linear(feature_dim, embed_dim, bias=False)  # L_z
        self.out = nn.Linear(embed_dim, vocab_size)  # L_o
        self.drop = nn.Dropout(dropout)

    # -- geometry ---------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        """The attention grid ``(h, w)``."""
        return self.encoder.grid

    @property
    def cell_size(self) -> tuple[int, int]:
        """Pixels ``(rows, columns)`` per grid cell."""
        return self.encoder.stride, self.encoder.stride

    def attention_modules(self) -> list[tuple[str, nn.Module]]:
        """The cross-attention seams, in layer order (one for this model, none without
        attention)."""
        return [("attn.tap", self.attn.tap)] if self.uses_attention else []

    # -- decoding protocol ------------------------------------------------------------------
    def encode_images(self, images: Tensor) -> CaptionRNNState:
        """The state before the first word."""
        check_images(images, self.shape)
        memory = self.encoder(images)  # (B, N, D)
        mean = memory.mean(1)  # (B, D)
        hidden = torch.tanh(self.init(mean))  # (B, H)
        keys = self.attn.project_keys(memory) if self.uses_attention else mean
        return CaptionRNNState(hidden, memory, keys)

    def encode(self, src: Tensor, src_lengths: Tensor) -> CaptionRNNState:
        """Protocol entry: ``src`` holds the images, flat ``(B, C*H*W)`` or
        ``(B, C, H, W)``; ``src_lengths`` is not used."""
        return self.encode_images(flat_images(src, self.shape))

    def _step(self, y: Tensor, state: CaptionRNNState) -> tuple[Tensor, CaptionRNNState, Tensor]:
        h = state.hidden
        if self.uses_attention:
            z, alpha = self.attn(h, state.memory, projected_keys=state.keys)  # (B, D), (B, N)
            if self.gate is not None:
                z = torch.sigmoid(self.gate(h)) * z  # Xu et al. 2015, Sec. 4.2.1
        else:
            z, alpha = state.keys, state.keys.new_zeros(0)
        h = self.cell(torch.cat([y, z], -1), h)  # (B, H)
        logits = self.out(self.drop(y + self.out_h(h) + self.out_z(z)))  # eq. 7, (B, V)
        return logits, CaptionRNNState(h, state.memory, state.keys), alpha

    def decode_step(self, tokens: Tensor, state: CaptionRNNState) -> tuple[Tensor, CaptionRNNState]:
        """``tokens (B,)`` -> next-word logits ``(B, V)``."""
        logits, state, _ = self._step(self.embed(tokens), state)
        return logits, state

    def reorder_state(self, state: CaptionRNNState, indices: Tensor) -> CaptionRNNState:
        """Keep rows ``indices`` of the state (beam reselection)."""
        return state.index_select(indices)

    def forward(
        self, images: Tensor, tgt_in: Tensor, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Teacher-forced logits ``(B, T, V)``; with ``return_attention`` also the weights
        ``(B, T, N)`` of every step (empty ``(B, T, 0)`` without attention)."""
        state = self.encode_images(images)
        ys = self.embed(tgt_in)  # (B, T, E)
        logits, alphas = [], []
        for t in range(tgt_in.shape[1]):
            out, state, alpha = self._step(ys[:, t], state)
            logits.append(out)
            alphas.append(alpha if alpha.numel() else ys.new_zeros(ys.shape[0], 0))
        out = torch.stack(logits, 1)  # (B, T, V)
        return (out, torch.stack(alphas, 1)) if return_attention else out  # (B, T, N)


def doubly_stochastic(alphas: Tensor, valid: Tensor) -> Tensor:
    """Xu et al. 2015, eq. 14: ``sum_i (1 - sum_t alpha_ti)^2``, averaged over the batch.

    Args:
        alphas: ``(B, T, N)`` attention of every step.
        valid: ``(B, T)`` True at real steps (not padding).
    """
    total = (alphas * valid[..., None].to(alphas.dtype)).sum(1)  # (B, N)
    return ((1.0 - total) ** 2).sum(-1).mean()
