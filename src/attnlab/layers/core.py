"""The two seams through which every attnlab layer exposes its attention.

``AttentionCore`` is the only place a layer calls :func:`attnlab.ops.attention`;
``WeightsTap`` passes explicitly computed weights (additive, Luong, pooling) through.
Neither stores anything: :func:`attnlab.viz.capture` attaches forward hooks to them
and records (or recomputes) the weights only while someone is looking.
"""

from __future__ import annotations

from torch import Tensor, nn

from attnlab.ops import attention
from attnlab.ops import masks as M

__all__ = ["AttentionCore", "WeightsTap"]


class AttentionCore(nn.Module):
    """Parameter-free module wrapping :func:`attnlab.ops.attention`.

    Args:
        backend: backend name passed to ``attention`` (default ``"auto"``).
        strict: refuse O(N^2)-memory paths.

    Shapes: ``q (B, H, Tq, D)``, ``k (B, Hkv, Tk, D)``, ``v (B, Hkv, Tk, Dv)``
    -> ``(B, H, Tq, Dv)``. Keyword arguments are those of ``attention``; pass them by
    keyword so hooks can read them.
    """

    def __init__(self, *, backend: str = "auto", strict: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.strict = strict

    def forward(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        mask: M.Mask | Tensor | None = None,
        causal: bool = False,
        window: int | tuple[int | None, int | None] | None = None,
        scale: float | None = None,
        score: str = "dot",
        dropout_p: float = 0.0,
    ) -> Tensor:
        return attention(
            q,
            k,
            v,
            mask=mask,
            causal=causal,
            window=window,
            scale=scale,
            score=score,
            dropout_p=dropout_p if self.training else 0.0,
            backend=self.backend,
            strict=self.strict,
        )

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}" + (", strict=True" if self.strict else "")


class WeightsTap(nn.Module):
    """Identity on attention weights ``(B, H, Tq, Tk)``; recorders hook its output."""

    def forward(self, weights: Tensor) -> Tensor:
        return weights
