"""Attention pooling: a learned query summarises a padded sequence into one vector."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.layers.core import WeightsTap
from attnlab.ops.reference import masked_softmax

__all__ = ["AttentionPooling", "padding_mask"]


def padding_mask(
    batch: int, length: int, lengths: Tensor | None, mask: Tensor | None, device
) -> Tensor | None:
    """A ``(B, T)`` bool key-padding mask (True = real token) from lengths or a mask."""
    if lengths is not None and mask is not None:
        raise ValueError("pass either lengths or mask, not both")
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.dtype == torch.bool or lengths.dtype.is_floating_point:
            raise TypeError(f"lengths must be an integer tensor (B,), got {lengths.dtype}")
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
        if (lengths < 0).any() or (lengths > length).any():
            raise ValueError(f"lengths must be in [0, {length}], got {lengths.tolist()}")
        return torch.arange(length, device=device)[None] < lengths[:, None]  # (B, T)
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"mask must be a bool tensor (True = attend), got {got}")
        if mask.shape != (batch, length):
            raise ValueError(
                f"mask must have shape (B, T) = ({batch}, {length}), got {tuple(mask.shape)}"
            )
        return mask.to(device)
    return None


class AttentionPooling(nn.Module):
    """Attention pooling over time with a learned query (context vector).

    ``e_t = u^T tanh(W x_t + b)`` when ``hidden_dim`` is given (Yang et al. 2016,
    "Hierarchical Attention Networks", eq. 5-7; the pooling of Zhou et al. 2016's
    attention-BiLSTM), or ``e_t = u^T x_t / sqrt(E)`` when it is None (a learned query
    in dot-product attention); ``a = softmax(e)`` over the real (unpadded) positions and
    ``pooled = sum_t a_t x_t``. A sequence of length 0 pools to zeros.

    The weights pass through ``self.tap`` (a :class:`WeightsTap` with role ``"pool"``)
    as ``(B, 1, 1, T)``, one head and one query, with the key padding, so recorders can
    capture them.

    Args:
        input_dim: feature size E of the sequence.
        hidden_dim: size of the tanh projection; None scores with a dot product.

    Shapes:
        ``x (B, T, E)``, ``lengths (B,)`` or ``mask (B, T)`` bool (True = real token)
        -> ``(pooled (B, E), weights (B, T))``.

    Example:
        >>> import torch
        >>> pool = AttentionPooling(8, hidden_dim=16)
        >>> pooled, w = pool(torch.randn(3, 5, 8), torch.tensor([5, 2, 4]))
        >>> pooled.shape, w.shape
        (torch.Size([3, 8]), torch.Size([3, 5]))
    """

    def __init__(self, input_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim <= 0:
            raise ValueError(f"input_dim must be a positive int, got {input_dim!r}")
        if hidden_dim is not None and (
            isinstance(hidden_dim, bool) or not isinstance(hidden_dim, int) or hidden_dim <= 0
        ):
            raise ValueError(f"hidden_dim must be a positive int or None, got {hidden_dim!r}")
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        if hidden_dim is None:
            self.proj = None
            self.query = nn.Parameter(torch.randn(input_dim) * input_dim**-0.5)
        else:
            self.proj = nn.Linear(input_dim, hidden_dim)
            self.query = nn.Parameter(torch.randn(hidden_dim) * hidden_dim**-0.5)
        self.tap = WeightsTap(role="pool")

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, *, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Pool ``x (B, T, E)``; padding given by ``lengths (B,)`` or ``mask (B, T)``.

        A bool ``(B, T)`` tensor passed as ``lengths`` is taken as the mask.

        Returns:
            ``(pooled (B, E), weights (B, T))``; weights are 0 at padded positions.
        """
        if not isinstance(x, Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, T, E) with 3 dims, got {shape}")
        b, t, e = x.shape
        if e != self.input_dim:
            raise ValueError(f"x has {e} features, expected input_dim {self.input_dim}")
        if isinstance(lengths, Tensor) and lengths.dtype == torch.bool and mask is None:
            lengths, mask = None, lengths
        valid = padding_mask(b, t, lengths, mask, x.device)  # (B, T) or None
        if self.proj is None:
            scores = x @ self.query * e**-0.5  # (B, T)
        else:
            scores = torch.tanh(self.proj(x)) @ self.query  # (B, T)
        weights = masked_softmax(scores, valid)  # (B, T)
        tap_mask = None if valid is None else valid[:, None, None, :]  # (B, 1, 1, T)
        weights = self.tap(weights[:, None, None, :], mask=tap_mask).view(b, t)  # (B, T)
        pooled = (weights[:, :, None] * x).sum(1)  # (B, E)
        return pooled, weights

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, hidden_dim={self.hidden_dim}"
