"""``attention(...)``: validate a call, pick a backend, run it; ``explain(...)`` says why.

Example:
    >>> import torch
    >>> from attnlab.ops import attention, explain
    >>> q = k = v = torch.randn(2, 8, 16, 32)
    >>> attention(q, k, v, causal=True).shape
    torch.Size([2, 8, 16, 32])
    >>> print(explain(q, k, v, causal=True).backend)
    sdpa
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.ops import masks as M
from attnlab.ops.backends import BACKENDS, AttentionCall, Backend

__all__ = ["SCORES", "Explanation", "attention", "explain", "prepare"]

SCORES = ("dot", "cosine")


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(
                f"{name} must be (B, H, T, D) with 4 dims, got shape {tuple(t.shape)} "
                f"with {t.dim()} dims"
            )
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating tensor, got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v are on different devices: {q.device}, {k.device}, {v.device}")
    (b, h, _, d), (bk, hk, tk, dk), (bv, hv, tv, _) = q.shape, k.shape, v.shape
    if not (b == bk == bv):
        raise ValueError(f"batch sizes differ: q has {b}, k has {bk}, v has {bv}")
    if hk != hv:
        raise ValueError(f"k has {hk} heads but v has {hv}")
    if hk == 0 or h % hk:
        raise ValueError(f"k has {hk} heads, which does not divide q's {h} heads")
    if d != dk:
        raise ValueError(f"q head dim {d} differs from k head dim {dk}")
    if tk != tv:
        raise ValueError(f"k has {tk} positions but v has {tv}")


def _check_mask_tensor(t: Tensor, q: Tensor, k: Tensor) -> None:
    target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    if t.dim() > 4:
        raise ValueError(f"mask of shape {tuple(t.shape)} has more than 4 dims; expected {target}")
    try:
        if torch.broadcast_shapes(t.shape, target) != torch.Size(target):
            raise RuntimeError
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(t.shape)} is not broadcastable to (B, H, Tq, Tk) = {target}"
        ) from None
    if t.device != q.device:
        raise ValueError(f"mask is on {t.device} but q is on {q.device}")


def prepare(
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
    strict: bool = False,
    return_weights: bool = False,
) -> AttentionCall:
    """Validate the arguments of :func:`attention` and normalise them into a call."""
    _check_qkv(q, k, v)
    if isinstance(mask, Tensor):
        _check_mask_tensor(mask, q, k)
    typed, bias = M.from_args(mask, causal, window)
    if typed is not None:
        typed.validate(q.shape[0], q.shape[2], k.shape[2])
    if bias is not None:
        bias = bias.to(q.dtype)
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {', '.join(map(repr, SCORES))}")
    if scale is not None:
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not math.isfinite(scale)
        ):
            raise ValueError(f"scale must be a finite number or None, got {scale!r}")
        scale = float(scale)
    if isinstance(dropout_p, bool) or not (0.0 <= float(dropout_p) < 1.0):
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r}")
    if score == "cosine":
        # Cosine similarity of q and k, times `scale` (a temperature; default 1/sqrt(D)
        # like dot scores, though 10-20 is usual for cosine attention).
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
    return AttentionCall(
        q=q,
        k=k,
        v=v,
        mask=typed,
        bias=bias,
        scale=q.shape[-1] ** -0.5 if scale is None else scale,
        dropout_p=float(dropout_p),
        return_weights=bool(return_weights),
        strict=bool(strict),
    )


@dataclass
class Explanation:
    """Which backend ``attention`` would run for a call and why the others were refused."""

    call: str
    backend: str
    plan: str
    costs: dict[str, float] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"attention({self.call})", f"  -> {self.backend}: {self.plan}"]
        for name, cost in self.costs.items():
            if name != self.backend:
                lines.append(
                    f"     {name}: can run, but slower (estimated cost {cost:.2f} "
                    f"vs {self.costs[self.backend]:.2f})"
                )
        for name, why in self.refused.items():
            lines.append(f"     {name}: refused, {why}")
        return "\n".join(lines)


def _choose(
    call: AttentionCall, backend: str, *, explained: bool = False
) -> tuple[Backend, Explanation | None]:
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; expected 'auto' or one of "
            f"{', '.join(map(repr, BACKENDS))}"
        )
    names = list(BACKENDS) if backend == "auto" else [backend]
    refused: dict[str, str] = {}
    costs: dict[str, float] = {}
    for name in names:
        why = BACKENDS[name].refuse(call)
        if why is None:
            costs[name] = BACKENDS[name].cost(call)
        else:
            refused[name] = why
    if not costs:
        reasons = "; ".join(f"{n}: {w}" for n, w in refused.items())
        if backend != "auto":
            raise ValueError(f"backend {backend!r} cannot run this call: {reasons}")
        raise ValueError(f"no backend can run this call ({call.describe()}): {reasons}")
    best = min(costs, key=costs.__getitem__)  # first of equals: registry order
    chosen = BACKENDS[best]
    if not explained:  # describing the call formats every mask: only explain() needs it
        return chosen, None
    return chosen, Explanation(call.describe(), best, chosen.plan(call), costs, refused)


def attention(
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
    backend: str = "auto",
    strict: bool = False,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Attention of queries over keys/values, with masks that are correct by construction.

    Args:
        q: queries ``(B, H, Tq, D)``.
        k: keys ``(B, Hkv, Tk, D)``; ``H % Hkv == 0`` (GQA/MQA share key/value heads).
        v: values ``(B, Hkv, Tk, Dv)``.
        mask: None; a bool tensor broadcastable to ``(B, H, Tq, Tk)`` with True = attend;
            a float tensor added to the scores; or a typed mask from
            :mod:`attnlab.ops.masks` (``Causal() & Padding(lengths)``, ...).
        causal: add a causal mask, bottom-right aligned: query ``i`` sees keys
            ``j <= i + Tk - Tq``.
        window: ``(left, right)`` keeps keys ``i' - left <= j <= i' + right``
            (``i' = i + Tk - Tq``); an int ``w`` means ``(w, w)``.
        scale: multiplies the scores; default ``1 / sqrt(D)``.
        score: ``"dot"`` or ``"cosine"`` (q and k L2-normalised, times ``scale``).
        dropout_p: dropout on the attention weights (returned weights are pre-dropout).
        backend: ``"auto"`` or a name in ``attnlab.ops.backends.BACKENDS``.
        strict: raise instead of running a path that materialises O(Tq x Tk) memory.
        return_weights: also return the weights ``(B, H, Tq, Tk)``.

    Returns:
        ``out (B, H, Tq, Dv)``, or ``(out, weights)``. A query row whose keys are all
        masked gives zeros in output, weights and gradients.

    Raises:
        ValueError: shapes, heads, lengths, mask, score, window or backend do not fit.
        TypeError: wrong argument types or mismatched dtypes.
    """
    call = prepare(
        q,
        k,
        v,
        mask=mask,
        causal=causal,
        window=window,
        scale=scale,
        score=score,
        dropout_p=dropout_p,
        strict=strict,
        return_weights=return_weights,
    )
    impl, _ = _choose(call, backend)
    return impl.run(call)


def explain(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    backend: str = "auto",
    **kwargs,
) -> Explanation:
    """Say which backend :func:`attention` would run for these arguments, and why.

    Takes the same arguments as :func:`attention`; ``str()`` of the result is a short
    report naming the chosen backend and why each other one was refused.
    """
    call = prepare(q, k, v, **kwargs)
    explanation = _choose(call, backend, explained=True)[1]
    assert explanation is not None
    return explanation
