"""Luong (multiplicative / global) attention with the dot, general and concat scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.layers.additive import ScoredAttention, additive_scores
from attnlab.layers.core import WeightsTap, check_role

__all__ = ["LUONG_SCORES", "LuongAttention"]

LUONG_SCORES = ("dot", "general", "concat")


class LuongAttention(ScoredAttention):
    """Global attention of Luong et al. 2015, "Effective Approaches to Attention-based
    Neural Machine Translation", eq. 7-8.

    ``score(h_t, h_s)`` is ``h_t^T h_s`` (``"dot"``), ``h_t^T W_a h_s`` (``"general"``) or
    ``v_a^T tanh(W_a [h_t; h_s])`` (``"concat"``, computed as ``v_a^T tanh(W_1 h_t +
    W_2 h_s)`` with ``W_a = [W_1 W_2]``, chunked over queries like
    :class:`AdditiveAttention`); ``a_t = softmax(score)`` over the valid source
    positions and ``c_t = sum_s a_t(s) v_s``. Weights pass through ``self.tap`` as
    ``(B, 1, Tq, Tk)``.

    Args:
        query_dim: target hidden size Dq.
        key_dim: source hidden size Dk; default Dq (``"dot"`` needs Dk == Dq).
        score: ``"dot"``, ``"general"`` or ``"concat"``.
        hidden_dim: size of ``v_a`` for ``"concat"``; default Dq.
        chunk_size: queries per chunk for ``"concat"``; None chooses from a budget.
        role: ``"cross"`` (default: a target state over the source) or ``"self"``;
            recordings carry it.

    Shapes:
        ``query (B, Tq, Dq)`` or ``(B, Dq)``, ``keys (B, Tk, Dk)``, ``values (B, Tk, Dv)``
        (default: keys) -> ``context (B, Tq, Dv)``, ``weights (B, Tq, Tk)``.

    Example:
        >>> import torch
        >>> attn = LuongAttention(8, score="general")
        >>> ctx, w = attn(torch.randn(2, 3, 8), torch.randn(2, 5, 8), lengths=torch.tensor([5, 2]))
        >>> ctx.shape, w.shape
        (torch.Size([2, 3, 8]), torch.Size([2, 3, 5]))
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int | None = None,
        *,
        score: str = "general",
        hidden_dim: int | None = None,
        chunk_size: int | None = None,
        role: str = "cross",
    ) -> None:
        super().__init__()
        check_role(role, ("self", "cross"))
        key_dim = query_dim if key_dim is None else key_dim
        hidden_dim = query_dim if hidden_dim is None else hidden_dim
        for name, val in (
            ("query_dim", query_dim),
            ("key_dim", key_dim),
            ("hidden_dim", hidden_dim),
        ):
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ValueError(f"{name} must be a positive int, got {val!r}")
        if score not in LUONG_SCORES:
            raise ValueError(
                f"unknown score {score!r}; expected one of {', '.join(map(repr, LUONG_SCORES))}"
            )
        if score == "dot" and key_dim != query_dim:
            raise ValueError(
                f'score "dot" needs key_dim == query_dim, got key_dim {key_dim} and '
                f'query_dim {query_dim}; use "general"'
            )
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0
        ):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        self.query_dim, self.key_dim, self.score = query_dim, key_dim, score
        self.hidden_dim, self.chunk_size = hidden_dim, chunk_size
        self.w_a: nn.Linear | None = None
        self.w_q: nn.Linear | None = None
        self.w_k: nn.Linear | None = None
        self.v: nn.Parameter | None = None
        if score == "general":
            self.w_a = nn.Linear(key_dim, query_dim, bias=False)
        elif score == "concat":
            self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)  # W_a acting on h_t
            self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)  # W_a acting on h_s
            self.v = nn.Parameter(torch.randn(hidden_dim) * hidden_dim**-0.5)
        self.tap = WeightsTap(role=role)

    def project_keys(self, keys: Tensor) -> Tensor:
        """The keys' part of the score, computed once per sentence: ``h_s`` (dot),
        ``W_a h_s`` (general, ``(B, Tk, Dq)``) or ``W_2 h_s`` (concat, ``(B, Tk, A)``)."""
        if self.score == "dot":
            return keys
        if self.score == "general":
            return self.w_a(keys)  # (B, Tk, Dq)
        return self.w_k(keys)  # (B, Tk, A)

    def _scores(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        if self.score in ("dot", "general"):
            return query @ projected_keys.transpose(1, 2)  # (B, Tq, Tk)
        qp = self.w_q(query)  # (B, Tq, A)
        return additive_scores(qp, projected_keys, self.v, chunk_size=self.chunk_size)

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, score={self.score!r}"
