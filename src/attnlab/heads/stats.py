"""Simple statistics of each head's attention over a data set: entropy, mean attention
distance, and the attention mass on special tokens ([CLS], [SEP], padding; Clark et al.
2019, "What Does BERT Look At?").

The weights are read through :func:`attnlab.viz.capture` (forward hooks that recompute
them from the queries and keys), so any layer it records can be described: attnlab's
``MultiHeadAttention`` and BERT-style ``transformers`` attention.

Example:
    >>> import torch
    >>> from attnlab.layers import MultiHeadAttention
    >>> from attnlab.heads.objective import Objective
    >>> mha = MultiHeadAttention(16, 4)
    >>> ids = torch.randint(1, 9, (3, 6))
    >>> obj = Objective(batches=[ids], forward=lambda m, b: m(torch.randn(3, 6, 16)),
    ...                 loss=lambda y, b: y.sum(), token_ids=lambda b: b)
    >>> stats = head_statistics(mha, obj, special={"[CLS]": 1})
    >>> sorted(stats)
    ['[CLS]', 'distance', 'entropy']
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from attnlab.heads.importance import HeadScores
from attnlab.heads.locate import head_layers
from attnlab.heads.objective import Objective

__all__ = ["head_statistics"]


def _recorded_names(model: nn.Module) -> dict[str, str]:
    """attention layer name -> the module name :func:`capture` records it under."""
    from attnlab.capture import attention_modules

    recordable = [name for name, _, kind in attention_modules(model) if kind in ("core", "hf")]
    out = {}
    for layer in head_layers(model):
        for name in recordable:
            if name == layer.name or name.startswith(f"{layer.name}.") or not layer.name:
                out[layer.name] = name
                break
    return out


@torch.no_grad()
def head_statistics(
    model: nn.Module,
    objective: Objective,
    *,
    special: Mapping[str, int] | None = None,
) -> dict[str, HeadScores]:
    """Per head, averaged over every real query position of ``objective.batches``:

    * ``entropy``: entropy of the attention row, in nats (low = focused);
    * ``distance``: mean ``|i - j|`` under the attention of query ``i`` (tokens);
    * one entry per ``special`` token: mass on keys holding that id.

    Args:
        model: a model with attention layers that :func:`attnlab.viz.capture` records.
        objective: data; ``forward`` runs the model, ``token_ids`` gives each batch's ids
            (needed when ``special`` is given).
        special: token name -> id, e.g. ``{"[CLS]": 101, "[SEP]": 102, "[PAD]": 0}``.

    Returns:
        name -> :class:`HeadScores`.

    Raises:
        ValueError: a layer that cannot be recorded, or ``special`` without ``token_ids``.
    """
    from attnlab.capture import capture

    special = dict(special or {})
    if special and objective.token_ids is None:
        raise ValueError("attention to special tokens needs objective.token_ids")
    layers = head_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no attention layer to describe")
    names = _recorded_names(model)
    missing = [layer.name for layer in layers if layer.name not in names]
    if missing:
        raise ValueError(
            f"attention statistics need weights that attnlab.viz.capture can record; it "
            f"cannot record {missing}"
        )
    index = {names[layer.name]: i for i, layer in enumerate(layers)}
    keys = ["entropy", "distance", *special]
    sums = {
        k: [torch.zeros(layer.num_heads, dtype=torch.float64) for layer in layers] for k in keys
    }
    counts = [0] * len(layers)
    was_training = model.training
    model.eval()
    try:
        for batch in objective.batches:
            with capture(model, layers=list(index)) as rec:
                objective.forward(model, batch)
            ids = objective.token_ids(batch) if objective.token_ids is not None else None
            for name, w, qv in zip(rec.names, rec.weights, rec.query_valid, strict=True):
                i = index[name]
                w = w.double()  # (B, H, Tq, Tk)
                tq, tk = w.shape[-2:]
                valid = qv.to(w.device)  # (B, Tq)
                ent = -(w * w.clamp_min(1e-30).log()).sum(-1)  # (B, H, Tq)
                qpos = torch.arange(tq, device=w.device) + (tk - tq)  # bottom-right aligned
                dist = (qpos[:, None] - torch.arange(tk, device=w.device)).abs().double()
                mean_dist = (w * dist).sum(-1)  # (B, H, Tq)
                sel = valid[:, None, :].double()  # (B, 1, Tq)
                sums["entropy"][i] += (ent * sel).sum((0, 2)).cpu()
                sums["distance"][i] += (mean_dist * sel).sum((0, 2)).cpu()
                for token, tid in special.items():
                    if ids is None or ids.shape[-1] != tk:
                        continue  # keys are not the input tokens (e.g. cross attention)
                    on = (ids.to(w.device) == tid).double()[:, None, None, :]  # (B, 1, 1, Tk)
                    sums[token][i] += ((w * on).sum(-1) * sel).sum((0, 2)).cpu()
                counts[i] += int(valid.sum())
    finally:
        model.train(was_training)
    names_out = [layer.name for layer in layers]
    return {
        k: HeadScores(
            names_out, [(s / max(c, 1)).float() for s, c in zip(v, counts, strict=True)], k
        )
        for k, v in sums.items()
    }
