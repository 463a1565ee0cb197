"""Position information: rotary embeddings, ALiBi biases and sinusoidal encodings.

Both follow the library's bottom-right alignment: the keys sit at absolute positions
``offset .. offset + Tk - 1`` and the ``Tq`` queries are the *last* ``Tq`` of the
``Tk_total`` key positions, so a query decoded one token at a time against a KV cache
gets exactly the position it had in the full forward.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ALiBi", "RotaryEmbedding", "alibi_slopes", "sinusoidal_positions"]


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE), Su et al. 2021, "RoFormer", eq. 34.

    Channel pairs ``(x[i], x[i + D/2])`` of queries and keys are rotated by the angle
    ``pos * base^(-2i/D)``, so ``<rot(q, m), rot(k, n)>`` depends only on ``m - n``. This
    is the "rotate half" pairing used by GPT-NeoX and Llama.

    Args:
        head_dim: per-head channel count D (even).
        base: wavelength base (10000 in the paper).
        rotary_dim: rotate only the first ``rotary_dim`` channels (even, <= D); the
            rest pass through (partial rotary). Default: all ``head_dim``.

    Shapes:
        ``x (B, H, T, D)`` -> ``(B, H, T, D)``.

    Example:
        >>> rope = RotaryEmbedding(16)
        >>> q = torch.randn(2, 4, 5, 16)
        >>> rope(q, offset=3).shape  # positions 3..7
        torch.Size([2, 4, 5, 16])
    """

    def __init__(self, head_dim: int, *, base: float = 10000.0, rotary_dim: int | None = None):
        super().__init__()
        rotary_dim = head_dim if rotary_dim is None else rotary_dim
        if not isinstance(head_dim, int) or head_dim <= 0:
            raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
        if not isinstance(rotary_dim, int) or rotary_dim <= 0 or rotary_dim % 2:
            raise ValueError(f"rotary_dim must be a positive even int, got {rotary_dim!r}")
        if rotary_dim > head_dim:
            raise ValueError(f"rotary_dim {rotary_dim} exceeds head_dim {head_dim}")
        if not base > 1:
            raise ValueError(f"base must be > 1, got {base!r}")
        self.head_dim = head_dim
        self.rotary_dim = rotary_dim
        self.base = float(base)

    def angles(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``cos`` and ``sin`` of the rotation angles, each ``(T, rotary_dim)``."""
        # Angles in float64 so long positions keep their precision, then cast.
        half = self.rotary_dim // 2
        inv_freq = self.base ** (
            -torch.arange(half, dtype=torch.float64, device=positions.device) * 2 / self.rotary_dim
        )
        theta = positions.to(torch.float64)[:, None] * inv_freq[None]  # (T, D/2)
        theta = torch.cat([theta, theta], dim=-1)  # (T, rotary_dim)
        return theta.cos().to(dtype), theta.sin().to(dtype)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate ``x (B, H, T, D)`` as if it sat at positions ``offset .. offset + T - 1``."""
        if x.dim() != 4 or x.shape[-1] != self.head_dim:
            raise ValueError(
                f"RotaryEmbedding expects (B, H, T, {self.head_dim}), got shape {tuple(x.shape)}"
            )
        t = x.shape[2]
        positions = torch.arange(offset, offset + t, device=x.device)
        # Rotate half-precision inputs in float32, as the rounding of cos/sin matters.
        work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        cos, sin = self.angles(positions, work)  # (T, R)
        r = self.rotary_dim
        xr, rest = x[..., :r].to(work), x[..., r:]
        x1, x2 = xr[..., : r // 2], xr[..., r // 2 :]
        rotated = torch.cat([-x2, x1], dim=-1)  # (B, H, T, R)
        out = (xr * cos + rotated * sin).to(x.dtype)
        return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}, base={self.base:g}"


def alibi_slopes(num_heads: int) -> Tensor:
    """Per-head ALiBi slopes ``(H,)``, Press et al. 2022, Sec. 3.

    For ``H`` a power of two the slopes are the geometric sequence
    ``2^(-8/H), 2^(-16/H), ...``; otherwise the slopes of the closest smaller power of
    two are followed by every other slope of the next power of two (the paper's code).
    """
    if not isinstance(num_heads, int) or num_heads <= 0:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")

    def pow2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = pow2(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = pow2(closest) + pow2(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64)


class ALiBi(nn.Module):
    """Attention with Linear Biases, Press et al. 2022, "Train Short, Test Long", eq. in Sec. 3.

    Adds ``-m_h * |i' - j|`` to the score of query ``i`` and key ``j`` in head ``h``,
    with ``i' = i + Tk - Tq`` (bottom-right aligned, so KV-cache decoding sees the same
    bias as the full forward). Causal models only ever see ``j <= i'`` where this is the
    paper's ``-m_h (i' - j)``; bidirectional use gets the symmetric distance.

    Args:
        num_heads: number of query heads H.
        slopes: optional custom slopes ``(H,)``; default :func:`alibi_slopes`.

    Shapes:
        ``bias(tq, tk)`` -> float ``(1, H, Tq, Tk)``.

    Example:
        >>> ALiBi(4).bias(1, 7).shape
        torch.Size([1, 4, 1, 7])
    """

    def __init__(self, num_heads: int, *, slopes: Tensor | None = None) -> None:
        super().__init__()
        slopes = alibi_slopes(num_heads) if slopes is None else torch.as_tensor(slopes)
        if slopes.shape != (num_heads,):
            raise ValueError(
                f"ALiBi slopes must have shape ({num_heads},), got {tuple(slopes.shape)}"
            )
        self.num_heads = num_heads
        # A plain attribute, not a buffer: module.to(bfloat16) must not round the slopes.
        self.slopes = slopes.double()

    def bias(
        self,
        tq: int,
        tk: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> Tensor:
        """The additive bias ``(1, H, Tq, Tk)`` for ``Tq`` queries over ``Tk`` keys."""
        qpos = torch.arange(tk - tq, tk, device=device)  # (Tq,) in key coordinates
        kpos = torch.arange(tk, device=device)
        dist = (qpos[:, None] - kpos[None, :]).abs().to(torch.float64)  # (Tq, Tk)
        bias = -self.slopes.to(device)[:, None, None] * dist + 0.0  # (H, Tq, Tk); + 0.0: no -0
        return bias[None].to(dtype)  # (1, H, Tq, Tk)

    def forward(self, tq: int, tk: int, *, dtype=torch.float32, device=None) -> Tensor:
        """Same as :meth:`bias`."""
        return self.bias(tq, tk, dtype=dtype, device=device)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"


def sinusoidal_positions(num_positions: int, dim: int) -> Tensor:
    """Fixed sinusoidal position encodings ``(num_positions, dim)`` (Vaswani et al. 2017,
    Sec. 3.5): ``PE[p, 2i] = sin(p / 10000^(2i/dim))``, ``PE[p, 2i+1] = cos(...)``.

    Example:
        >>> pe = sinusoidal_positions(50, 16)
        >>> pe.shape, float(pe[0, 1])
        (torch.Size([50, 16]), 1.0)
    """
    if num_positions < 1 or dim < 2 or dim % 2:
        raise ValueError(
            f"need num_positions >= 1 and an even dim >= 2, got {num_positions} and {dim}"
        )
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(num_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe.float()
