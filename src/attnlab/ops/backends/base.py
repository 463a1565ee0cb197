"""What every backend sees (:class:`AttentionCall`) and must provide (:class:`Backend`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from attnlab.ops.masks import Causal, Mask

__all__ = ["AttentionCall", "Backend"]


@dataclass(frozen=True)
class AttentionCall:
    """A validated attention call. Cosine scores are already folded in: backends only
    ever compute ``softmax(q @ k^T * scale + bias, mask) @ v``."""

    q: Tensor  # (B, H, Tq, D)
    k: Tensor  # (B, Hkv, Tk, D)
    v: Tensor  # (B, Hkv, Tk, Dv)
    mask: Mask | None
    bias: Tensor | None
    scale: float
    dropout_p: float
    return_weights: bool
    strict: bool

    @property
    def batch(self) -> int:
        return self.q.shape[0]

    @property
    def heads(self) -> int:
        return self.q.shape[1]

    @property
    def kv_heads(self) -> int:
        return self.k.shape[1]

    @property
    def tq(self) -> int:
        return self.q.shape[2]

    @property
    def tk(self) -> int:
        return self.k.shape[2]

    @property
    def is_gqa(self) -> bool:
        return self.kv_heads != self.heads

    @property
    def plain_causal(self) -> bool:
        """Exactly a causal mask with square scores (what fused kernels take as a flag)."""
        return isinstance(self.mask, Causal) and self.tq == self.tk and self.bias is None

    def dense_mask(self) -> Tensor | None:
        """The typed mask as a bool tensor ``(B|1, H|1, Tq, Tk)`` (None when unmasked)."""
        if self.mask is None:
            return None
        return self.mask.dense(self.tq, self.tk, device=self.q.device)

    def describe(self) -> str:
        parts = [
            f"q {tuple(self.q.shape)} {str(self.q.dtype).removeprefix('torch.')}",
            f"k {tuple(self.k.shape)}",
            f"v {tuple(self.v.shape)}",
        ]
        if self.mask is not None:
            parts.append(f"mask={self.mask!r}")
        if self.bias is not None:
            parts.append(f"bias {tuple(self.bias.shape)}")
        if self.dropout_p:
            parts.append(f"dropout_p={self.dropout_p}")
        if self.return_weights:
            parts.append("return_weights=True")
        return ", ".join(parts)


class Backend:
    """An attention implementation.

    Subclasses set ``name`` and ``summary`` and implement :meth:`refuse`, :meth:`cost`
    and :meth:`run`. ``auto`` dispatch picks the cheapest backend that does not refuse.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    #: Whether the backend can give the attention weights without an O(N^2) path.
    returns_weights: ClassVar[bool] = False

    def refuse(self, call: AttentionCall) -> str | None:
        """Why this backend cannot (or, under ``strict``, may not) run ``call``; None if it can."""
        raise NotImplementedError

    def cost(self, call: AttentionCall) -> float:
        """Relative expected run time; lower is faster. Dense fused SDPA is 1.0."""
        raise NotImplementedError

    def run(self, call: AttentionCall) -> Tensor | tuple[Tensor, Tensor]:
        """The output ``(B, H, Tq, Dv)``, plus the weights when ``call.return_weights``."""
        raise NotImplementedError

    def plan(self, call: AttentionCall) -> str:
        """One line saying how this backend would run ``call`` (for ``explain``)."""
        return self.summary


def dense_work_fraction(call: AttentionCall, block: int = 128) -> float:
    """Fraction of ``block x block`` score tiles the typed mask leaves non-empty."""
    if call.mask is None:
        return 1.0
    any_, _ = call.mask.blocks(call.tq, call.tk, block, block, device=torch.device("cpu"))
    return float(any_.float().mean())
