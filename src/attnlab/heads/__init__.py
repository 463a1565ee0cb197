"""Head importance and pruning (Michel et al. 2019, "Are Sixteen Heads Really Better than
One?") for attnlab models and Hugging Face transformers.

The methods take an ``nn.Module`` and an :class:`Objective` (data, per-example loss,
metric); :mod:`attnlab.heads.textrun` builds one from a text run folder.

* :func:`gradient_importance`, :func:`ablation_importance`, :func:`head_statistics`;
* :func:`importance_order` (iterative pruning by importance), :func:`random_order`;
* :func:`keep_heads`: physical pruning (projections shrink);
* :func:`pruning_curve`: metric, parameters and latency vs fraction pruned.

Example:
    >>> import torch
    >>> from attnlab.layers import TransformerEncoderBlock
    >>> from attnlab.heads import HeadGates, keep_heads
    >>> block = TransformerEncoderBlock(32, 4).eval()
    >>> x = torch.randn(2, 7, 32)
    >>> with HeadGates(block, [torch.tensor([1.0, 0.0, 1.0, 0.0])]):
    ...     gated = block(x)
    >>> torch.allclose(keep_heads(block, [[0, 2]])(x), gated, atol=1e-6)
    True
"""

from __future__ import annotations

from attnlab.heads.curve import pruned_copy, pruning_curve, time_forward
from attnlab.heads.gates import HeadGates, full_mask
from attnlab.heads.importance import (
    HeadScores,
    ablation_importance,
    gradient_importance,
    normalize_by_layer,
)
from attnlab.heads.locate import (
    HeadLayer,
    count_parameters,
    head_layers,
    keep_heads,
    kept_from_removed,
)
from attnlab.heads.objective import Objective, accuracy_metric
from attnlab.heads.prune import (
    METHODS,
    PruningOrder,
    heads_to_remove,
    importance_order,
    random_order,
)
from attnlab.heads.stats import head_statistics

__all__ = [
    "METHODS",
    "HeadGates",
    "HeadLayer",
    "HeadScores",
    "Objective",
    "PruningOrder",
    "ablation_importance",
    "accuracy_metric",
    "count_parameters",
    "full_mask",
    "gradient_importance",
    "head_layers",
    "head_statistics",
    "heads_to_remove",
    "importance_order",
    "keep_heads",
    "kept_from_removed",
    "normalize_by_layer",
    "pruned_copy",
    "pruning_curve",
    "random_order",
    "time_forward",
]
