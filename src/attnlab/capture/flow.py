"""Attention flow, Abnar & Zuidema (2020), "Quantifying Attention Flow in Transformers".

The layers form a graph: ``L + 1`` rows of ``T`` nodes, and an edge from token ``j`` at
layer ``l - 1`` to token ``i`` at layer ``l`` whose capacity is the residual-augmented,
head-averaged attention ``A'_l[i, j]`` (the same matrices as :func:`rollout`). The flow
of input token ``j`` into output position ``q`` is the maximum flow from node ``(0, j)``
to node ``(L, q)``. Where rollout multiplies the attention along every path and sums
the paths, flow is limited by the narrowest cut between input and output; for a single
layer both equal ``A'[q, j]``.

The maximum flows are computed with SciPy's push-relabel solver on integer capacities
(``A' * scale``, rounded): about 5 ms per token at 7 x 50 nodes, where a pure-Python
solver such as networkx's takes over a second.

Example:
    >>> import torch
    >>> w = torch.softmax(torch.randn(2, 3, 6, 6), -1)     # (L, H, T, T)
    >>> attention_flow(w, query=0).shape                    # flow of each input into token 0
    torch.Size([6])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from attnlab.capture.aggregate import aggregate_heads

__all__ = ["attention_flow", "flow_capacities"]


def flow_capacities(
    weights: Tensor | Sequence[Tensor], *, head_reduce: str = "mean", residual: bool = True
) -> Tensor:
    """The edge capacities of the flow graph: ``(L, T, T)``, row-normalised.

    Args:
        weights: ``(L, H, T, T)`` self-attention (or a list of ``(H, T, T)``).
        head_reduce: ``"mean"`` or ``"max"`` over heads.
        residual: add the residual identity, ``0.5 * A + 0.5 * I``.
    """
    if not isinstance(weights, Tensor):
        weights = torch.stack(list(weights))  # (L, H, T, T)
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(
            f"attention flow needs (L, H, T, T) self-attention weights of one example, got "
            f"{tuple(weights.shape)}"
        )
    a = aggregate_heads(weights.detach().double().cpu(), head_reduce)  # (L, T, T)
    if residual:
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype)
    return a / a.sum(-1, keepdim=True).clamp_min(1e-12)


def attention_flow(
    weights: Tensor | Sequence[Tensor],
    *,
    query: int = 0,
    head_reduce: str = "mean",
    residual: bool = True,
    scale: float = 1e6,
) -> Tensor:
    """Maximum flow from every input token to output position ``query``.

    Args:
        weights: ``(L, H, T, T)`` self-attention of one example, first layer first.
        query: the output token the flow goes to (0: [CLS]).
        head_reduce: ``"mean"`` or ``"max"`` over heads.
        residual: add the residual identity, as rollout does.
        scale: capacities are ``round(A' * scale)`` integers (the solver is exact on
            integers); the result is divided back, so its error is about ``T / scale``.

    Returns:
        ``(T,)`` float: the flow of each input token into ``query``.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    a = flow_capacities(weights, head_reduce=head_reduce, residual=residual)  # (L, T, T)
    n_layers, t, _ = a.shape
    if not -t <= query < t:
        raise ValueError(f"query {query} out of range for {t} tokens")
    query %= t
    if not scale * t < 2**31:
        raise ValueError(f"scale {scale} overflows int32 capacities for {t} tokens")
    cap = np.rint(a.numpy() * scale).astype(np.int32)  # (L, T_to, T_from)
    # Node (l, i) is l * T + i; layer l's edges go from (l, j) to (l + 1, i).
    layer, to, frm = np.nonzero(cap)
    graph = csr_matrix(
        (cap[layer, to, frm], (layer * t + frm, (layer + 1) * t + to)),
        shape=((n_layers + 1) * t, (n_layers + 1) * t),
    )
    sink = n_layers * t + query
    flows = [maximum_flow(graph, j, sink).flow_value for j in range(t)]
    return torch.tensor(flows, dtype=torch.float64).div_(scale).float()
