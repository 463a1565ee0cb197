"""Additive (Bahdanau) attention, chunked over queries so memory stays bounded."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from attnlab.layers._masking import check_features, key_mask
from attnlab.layers.core import WeightsTap, check_role
from attnlab.ops import masks as M
from attnlab.ops.reference import masked_softmax

__all__ = ["DEFAULT_BUDGET", "AdditiveAttention", "ScoredAttention", "additive_scores"]

#: Elements of the ``(B, chunk, Tk, A)`` tanh tensor allowed at once (16 MiB in float32).
DEFAULT_BUDGET = 2**22


def _chunk_scores(qp: Tensor, kp: Tensor, v: Tensor) -> Tensor:
    """``v^T tanh(qp_i + kp_j)`` for a chunk: ``(B, c, A), (B, Tk, A) -> (B, c, Tk)``."""
    return torch.tanh(qp[:, :, None, :] + kp[:, None, :, :]) @ v  # (B, c, Tk)


def additive_scores(
    qp: Tensor,
    kp: Tensor,
    v: Tensor,
    *,
    chunk_size: int | None = None,
    budget: int = DEFAULT_BUDGET,
) -> Tensor:
    """Additive scores ``e_ij = v^T tanh(qp_i + kp_j)`` without the full 4-D tensor.

    The ``(B, c, Tk, A)`` tanh tensor exists for ``c`` queries at a time only. When
    autograd is recording and there are several chunks, each chunk is checkpointed
    (recomputed in backward), so training memory is bounded by one chunk plus the
    ``(B, Tq, Tk)`` scores as well.

    Args:
        qp: projected queries ``(B, Tq, A)``.
        kp: projected keys ``(B, Tk, A)``.
        v: ``(A,)`` scoring vector.
        chunk_size: queries per chunk; None picks the largest that keeps one chunk's
            tanh tensor within ``budget`` elements.
        budget: element budget used when ``chunk_size`` is None.

    Returns:
        ``(B, Tq, Tk)`` scores.
    """
    b, tq, a = qp.shape
    tk = kp.shape[1]
    if chunk_size is None:
        chunk_size = max(1, budget // max(1, b * tk * a))
    if chunk_size >= tq:
        return _chunk_scores(qp, kp, v)
    recompute = torch.is_grad_enabled() and any(t.requires_grad for t in (qp, kp, v))
    parts = []
    for start in range(0, tq, chunk_size):
        qc = qp[:, start : start + chunk_size]  # (B, c, A)
        if recompute:
            parts.append(checkpoint(_chunk_scores, qc, kp, v, use_reentrant=False))
        else:
            parts.append(_chunk_scores(qc, kp, v))
    return torch.cat(parts, dim=1)  # (B, Tq, Tk)


class ScoredAttention(nn.Module):
    """Shared forward of the additive and Luong layers: check, score, mask, tap, mix.

    Subclasses set ``query_dim``, ``key_dim`` and ``tap`` and implement
    ``project_keys(keys (B, Tk, Dk)) -> (B, Tk, A)`` and
    ``_scores(query (B, Tq, Dq), projected_keys (B, Tk, A)) -> (B, Tq, Tk)``.
    """

    query_dim: int
    key_dim: int
    tap: WeightsTap

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        *,
        mask: M.Mask | Tensor | None = None,
        lengths: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` over ``keys``; ``values`` default to ``keys``.

        Args:
            query: ``(B, Tq, Dq)`` or ``(B, Dq)`` (one decoder step).
            keys: ``(B, Tk, Dk)``.
            values: ``(B, Tk, Dv)``; default ``keys``.
            mask: bool key padding ``(B, Tk)``, bool ``(B|1, Tq|1, Tk)``, or a typed
                mask; True = attend.
            lengths: ``(B,)`` valid keys per example (instead of ``mask``).
            projected_keys: ``self.project_keys(keys)`` computed once beforehand, so a
                decoder calling this on every step projects the keys once per
                sentence (``keys`` then only gives the shapes).

        Returns:
            ``(context, weights)``; rows with no valid key give zeros.
        """
        check_features("query", query, self.query_dim, ranks=(2, 3))
        check_features("keys", keys, self.key_dim)
        single = query.dim() == 2
        if single:
            query = query[:, None]  # (B, 1, Dq)
        b, tq, tk = query.shape[0], query.shape[1], keys.shape[1]
        if keys.shape[0] != b:
            raise ValueError(f"keys have batch size {keys.shape[0]}, but query has {b}")
        if values is None:
            values = keys
        elif (
            not isinstance(values, Tensor)
            or values.dim() != 3
            or values.shape[:2] != keys.shape[:2]
        ):
            shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ValueError(f"values must be (B, Tk, Dv) = ({b}, {tk}, Dv), got {shape}")
        valid = key_mask(mask, lengths, b, tq, tk, query.device)  # (B|1, Tq|1, Tk)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        elif (
            not isinstance(projected_keys, Tensor)
            or projected_keys.dim() != 3
            or projected_keys.shape[:2] != keys.shape[:2]
        ):
            got = getattr(projected_keys, "shape", type(projected_keys).__name__)
            raise ValueError(
                f"projected_keys must be (B, Tk, A) = ({b}, {tk}, A) from project_keys, got {got}"
            )
        scores = self._scores(query, projected_keys)  # (B, Tq, Tk)
        weights = masked_softmax(scores, valid)  # (B, Tq, Tk)
        tap_mask = None if valid is None else valid[:, None]  # (B|1, 1, Tq|1, Tk)
        weights = self.tap(weights[:, None], mask=tap_mask)[:, 0]  # tap sees (B, 1, Tq, Tk)
        context = weights @ values  # (B, Tq, Dv)
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

    def project_keys(self, keys: Tensor) -> Tensor:
        """The part of the score that depends on the keys only: ``(B, Tk, Dk) -> (B, Tk, A)``."""
        return keys

    def _scores(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        raise NotImplementedError


class AdditiveAttention(ScoredAttention):
    """Bahdanau (additive) attention.

    ``e_ij = v^T tanh(W_q q_i + W_k k_j)`` (Bahdanau et al. 2015, eq. 6 with the
    alignment model of Appendix A.1.2, ``a(s_{i-1}, h_j) = v_a^T tanh(W_a s_{i-1} +
    U_a h_j)``), ``alpha_ij = softmax_j(e_ij)`` and ``c_i = sum_j alpha_ij v_j`` (eq. 5).

    The scores are computed a chunk of queries at a time (see :func:`additive_scores`),
    so long inputs never materialise the ``(B, Tq, Tk, A)`` tensor. Weights pass
    through ``self.tap`` (a :class:`WeightsTap`) as ``(B, 1, Tq, Tk)``, with the role
    given to the constructor.

    Args:
        query_dim: query (decoder state) size Dq.
        key_dim: key (annotation) size Dk; default Dq.
        hidden_dim: alignment size A; default Dk.
        bias: add a bias inside the tanh (the paper has none).
        chunk_size: queries scored at a time; None chooses from a memory budget.
        role: ``"cross"`` (default: a decoder state over an encoder memory) or
            ``"self"`` (queries and keys are the same sequence); recordings carry it.

    Shapes:
        ``query (B, Tq, Dq)`` or ``(B, Dq)``, ``keys (B, Tk, Dk)``, ``values (B, Tk, Dv)``
        (default: keys) -> ``context (B, Tq, Dv)``, ``weights (B, Tq, Tk)`` (without the
        ``Tq`` axis for a 2-D query).

    Example:
        >>> import torch
        >>> attn = AdditiveAttention(8, 6, hidden_dim=10)
        >>> ctx, w = attn(torch.randn(2, 8), torch.randn(2, 5, 6), lengths=torch.tensor([5, 3]))
        >>> ctx.shape, w.shape
        (torch.Size([2, 6]), torch.Size([2, 5]))
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int | None = None,
        hidden_dim: int | None = None,
        *,
        bias: bool = False,
        chunk_size: int | None = None,
        role: str = "cross",
    ) -> None:
        super().__init__()
        check_role(role, ("self", "cross"))
        key_dim = query_dim if key_dim is None else key_dim
        hidden_dim = key_dim if hidden_dim is None else hidden_dim
        for name, val in (
            ("query_dim", query_dim),
            ("key_dim", key_dim),
            ("hidden_dim", hidden_dim),
        ):
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0
        ):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        self.query_dim, self.key_dim, self.hidden_dim = query_dim, key_dim, hidden_dim
        self.chunk_size = chunk_size
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=bias)  # W_a in the paper
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)  # U_a
        self.v = nn.Parameter(torch.randn(hidden_dim) * hidden_dim**-0.5)  # v_a
        self.tap = WeightsTap(role=role)

    def project_keys(self, keys: Tensor) -> Tensor:
        """``U_a h_j`` for every key, ``(B, Tk, Dk) -> (B, Tk, A)``: it does not depend on
        the decoder state, so it is computed once per sentence (Bahdanau et al. 2015,
        Appendix A.1.2)."""
        return self.w_k(keys)

    def _scores(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        qp = self.w_q(query)  # (B, Tq, A)
        return additive_scores(qp, projected_keys, self.v, chunk_size=self.chunk_size)

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, hidden_dim={self.hidden_dim}"
