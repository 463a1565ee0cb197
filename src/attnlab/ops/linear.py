"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

Replaces ``softmax(q k^T)`` by the kernel ``phi(q) phi(k)^T`` with ``phi = elu + 1``,
so ``out_i = phi(q_i) S_i / (phi(q_i) z_i)`` with ``S_i = sum_j phi(k_j) v_j^T`` and
``z_i = sum_j phi(k_j)`` over the keys row ``i`` sees. Time and memory are linear in the
sequence length. It is a *different function* from softmax attention, so
:func:`attnlab.ops.attention` never substitutes it: call it by name.

Example:
    >>> import torch
    >>> from attnlab.ops import linear_attention
    >>> q = k = v = torch.randn(2, 4, 1000, 32)
    >>> linear_attention(q, k, v, causal=True).shape
    torch.Size([2, 4, 1000, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.ops.reference import expand_kv

__all__ = ["FEATURE_MAPS", "linear_attention"]

FEATURE_MAPS = {
    "elu": lambda x: F.elu(x) + 1.0,  # Katharopoulos et al. 2020, eq. 7
    "relu": F.relu,
}


def linear_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    lengths: Tensor | None = None,
    feature_map: str = "elu",
    eps: float = 1e-6,
    chunk: int = 64,
) -> Tensor:
    """Linear attention with a positive feature map.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, Hkv, Tk, D)``; v: ``(B, Hkv, Tk, Dv)``.
        causal: query ``i`` sees keys ``j <= i + Tk - Tq`` (bottom-right aligned), computed
            with chunked prefix sums: ``O(T (chunk + D) Dv)`` time, ``O(T/chunk D Dv)`` memory.
        lengths: optional ``(B,)`` valid key counts (key padding).
        feature_map: ``"elu"`` (``elu(x) + 1``) or ``"relu"``.
        eps: added to the normaliser.
        chunk: rows per chunk of the causal prefix sums.

    Returns:
        ``(B, H, Tq, Dv)``. Rows that see no key give zeros.

    Raises:
        ValueError: shapes do not fit, or an unknown feature map.
    """
    if feature_map not in FEATURE_MAPS:
        raise ValueError(
            f"unknown feature_map {feature_map!r}; expected one of {list(FEATURE_MAPS)}"
        )
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or t.dim() != 4:
            raise ValueError(f"{name} must be a (B, H, T, D) tensor, got {getattr(t, 'shape', t)}")
    (b, h, tq, d), (_, hk, tk, dk) = q.shape, k.shape
    if hk == 0 or h % hk or v.shape[1] != hk:
        raise ValueError(f"k has {hk} heads and v {v.shape[1]}; they must match and divide q's {h}")
    if dk != d or v.shape[2] != tk or k.shape[0] != b or v.shape[0] != b:
        raise ValueError(
            f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if causal and tq > tk:
        raise ValueError(f"causal linear attention needs Tq <= Tk, got Tq={tq}, Tk={tk}")
    phi = FEATURE_MAPS[feature_map]
    fq = phi(q)  # (B, H, Tq, D)
    fk = phi(expand_kv(k, h))  # (B, H, Tk, D)
    v = expand_kv(v, h)  # (B, H, Tk, Dv)
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=q.device)
        if lengths.shape != (b,):
            raise ValueError(f"lengths must have shape ({b},), got {tuple(lengths.shape)}")
        keep = torch.arange(tk, device=q.device) < lengths[:, None]  # (B, Tk)
        fk = fk * keep[:, None, :, None].to(fk.dtype)
    if not causal:
        s = fk.transpose(-2, -1) @ v  # (B, H, D, Dv)
        z = fk.sum(2)  # (B, H, D)
        num = fq @ s  # (B, H, Tq, Dv)
        den = (fq @ z[..., None]).squeeze(-1)  # (B, H, Tq)
        return _normalise(num, den, eps)
    off = tk - tq
    # Keys before the first query position are seen by every row: an initial state.
    s0 = fk[:, :, :off].transpose(-2, -1) @ v[:, :, :off]  # (B, H, D, Dv)
    z0 = fk[:, :, :off].sum(2)  # (B, H, D)
    num, den = _causal_chunks(fq, fk[:, :, off:], v[:, :, off:], s0, z0, chunk)
    return _normalise(num, den, eps)


def _normalise(num: Tensor, den: Tensor, eps: float) -> Tensor:
    valid = den > 0  # a row with no key (all padded) has den == 0
    return num / (den + eps)[..., None] * valid[..., None]


def _causal_chunks(fq, fk, v, s0, z0, c):
    """Causal sums over aligned rows: chunk-local quadratic part + prefix of chunk states."""
    b, h, t, d = fq.shape
    dv = v.shape[-1]
    n = -(-t // c)
    pad = n * c - t
    fq, fk, v = (F.pad(x, (0, 0, 0, pad)) for x in (fq, fk, v))  # padded keys are zeros
    fq = fq.view(b, h, n, c, d)  # (B, H, n, c, D)
    fk = fk.view(b, h, n, c, d)
    v = v.view(b, h, n, c, dv)  # (B, H, n, c, Dv)
    kv = fk.transpose(-2, -1) @ v  # (B, H, n, D, Dv) per-chunk states
    states = s0[:, :, None] + kv.cumsum(2) - kv  # exclusive prefix (B, H, n, D, Dv)
    zs = fk.sum(3)  # (B, H, n, D)
    zstates = z0[:, :, None] + zs.cumsum(2) - zs  # (B, H, n, D)
    tri = torch.ones(c, c, dtype=torch.bool, device=fq.device).tril()
    local = (fq @ fk.transpose(-2, -1)) * tri  # (B, H, n, c, c)
    num = fq @ states + local @ v  # (B, H, n, c, Dv)
    den = (fq @ zstates[..., None]).squeeze(-1) + local.sum(-1)  # (B, H, n, c)
    return num.reshape(b, h, n * c, dv)[:, :, :t], den.reshape(b, h, n * c)[:, :, :t]
