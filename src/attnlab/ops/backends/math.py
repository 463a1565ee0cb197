"""The "math" backend: the float64-capable reference, materialising every score."""

from __future__ import annotations

from attnlab.ops.backends.base import AttentionCall, Backend
from attnlab.ops.reference import reference_attention

__all__ = ["MathBackend"]


class MathBackend(Backend):
    name = "math"
    summary = "reference softmax(q k^T) v, materialises the (B, H, Tq, Tk) scores"
    returns_weights = True

    def refuse(self, call: AttentionCall) -> str | None:
        if call.strict:
            return "strict=True forbids materialising the (B, H, Tq, Tk) score matrix"
        return None

    def cost(self, call: AttentionCall) -> float:
        # The eager path writes and reads the score matrix several times; measured at
        # 3-10x slower than the fused kernel on CPU.
        return 8.0

    def run(self, call: AttentionCall):
        out, weights = reference_attention(
            call.q,
            call.k,
            call.v,
            mask=call.dense_mask(),
            bias=call.bias,
            scale=call.scale,
            dropout_p=call.dropout_p,
        )
        return (out, weights) if call.return_weights else out
