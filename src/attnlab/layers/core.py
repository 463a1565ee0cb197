"""The two seams through which every attnlab layer exposes its attention.

``AttentionCore`` is the only place a layer calls :func:`attnlab.ops.attention`;
``WeightsTap`` passes explicitly computed weights (additive, Luong, pooling) and gates
(Squeeze-and-Excitation, CBAM) through. Neither stores anything:
:func:`attnlab.capture.capture` attaches forward hooks to them and records (or
recomputes) the weights only while someone is looking. Each seam carries the *role* of
its attention, set where the layer is built, so a recording never has to guess it.
"""

from __future__ import annotations

from torch import Tensor, nn

from attnlab.ops import attention
from attnlab.ops import masks as M

__all__ = ["ATTENTION_ROLES", "GATE_ROLES", "ROLES", "AttentionCore", "WeightsTap", "check_role"]

#: Roles of query-key attention: weights ``(B, H, Tq, Tk)``.
ATTENTION_ROLES = ("self", "cross", "pool")
#: Roles of gates, which are not heads: ``channel-gate`` ``(B, C)``, ``spatial`` ``(B, H, W)``.
GATE_ROLES = ("channel-gate", "spatial")
#: Every role a recorded attention can carry.
ROLES = ATTENTION_ROLES + GATE_ROLES


def check_role(role: object, allowed: tuple[str, ...] = ROLES) -> str:
    """``role`` itself, or a ValueError naming it and the allowed roles."""
    if role not in allowed:
        raise ValueError(f"role must be one of {', '.join(map(repr, allowed))}, got {role!r}")
    return role  # type: ignore[return-value]


class AttentionCore(nn.Module):
    """Parameter-free module wrapping :func:`attnlab.ops.attention`.

    Args:
        backend: backend name passed to ``attention`` (default ``"auto"``).
        strict: refuse O(N^2)-memory paths.
        role: ``"self"`` (default), ``"cross"`` (queries over another sequence, e.g. a
            decoder over its encoder memory) or ``"pool"`` (learned queries summarising
            a sequence); recordings carry it.

    Shapes: ``q (B, H, Tq, D)``, ``k (B, Hkv, Tk, D)``, ``v (B, Hkv, Tk, Dv)``
    -> ``(B, H, Tq, Dv)``. Keyword arguments are those of ``attention``; pass them by
    keyword so hooks can read them.
    """

    def __init__(self, *, backend: str = "auto", strict: bool = False, role: str = "self") -> None:
        super().__init__()
        self.backend = backend
        self.strict = strict
        self.role = check_role(role, ATTENTION_ROLES)

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
        s = f"backend={self.backend!r}" + (", strict=True" if self.strict else "")
        return s + (f", role={self.role!r}" if self.role != "self" else "")


class WeightsTap(nn.Module):
    """Identity on explicitly computed weights; recorders hook its input and output.

    Args:
        role: what passes through: ``"self"`` / ``"cross"`` / ``"pool"`` attention
            weights ``(B, H, Tq, Tk)``, a ``"channel-gate"`` ``(B, C)`` or a
            ``"spatial"`` map ``(B, H, W)``.

    ``forward(weights, mask=None)`` returns ``weights`` unchanged; ``mask`` (bool,
    broadcastable to the weights, True = the query may attend to the key) tells a
    recorder which queries and keys are real, so it never infers padding from zeros.
    """

    def __init__(self, role: str = "self") -> None:
        super().__init__()
        self.role = check_role(role)

    def forward(self, weights: Tensor, mask: Tensor | None = None) -> Tensor:
        return weights

    def extra_repr(self) -> str:
        return f"role={self.role!r}"
