"""Find the attention layers of a model whose heads can be gated, scored and pruned.

Two families are recognised: attnlab's :class:`~attnlab.layers.MultiHeadAttention`
(self or cross attention, GQA/MQA included) and the Hugging Face layouts of
:mod:`attnlab.integrations.hf_heads` (BERT/MiniLM, DistilBERT, GPT-2, LLaMA-style, ViT).
Every one of them feeds its concatenated head outputs ``(B, T, H*D)`` to an output
projection; a gate per head is a forward pre-hook on that projection
(:mod:`attnlab.heads.gates`), and pruning shrinks the projections around it.

Example:
    >>> from attnlab.layers import TransformerEncoderBlock
    >>> import torch.nn as nn
    >>> model = nn.Sequential(TransformerEncoderBlock(32, 4), TransformerEncoderBlock(32, 4))
    >>> [(layer.name, layer.num_heads) for layer in head_layers(model)]
    [('0.attn', 4), ('1.attn', 4)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from attnlab.integrations.hf_heads import HFAttention, hf_attention_layers
from attnlab.layers.multihead import MultiHeadAttention

__all__ = ["HeadLayer", "count_parameters", "head_layers", "keep_heads", "kept_from_removed"]


@dataclass
class HeadLayer:
    """One attention layer seen as a row of heads.

    Attributes:
        name: module name inside the model.
        module: the attention module (``MultiHeadAttention`` or a ``transformers`` one).
        out_proj: the projection that takes the concatenated head outputs ``(B, T, H*D)``.
        head_dim: size D of each head.
        kind: ``"attnlab"`` or the Hugging Face layout (``"bert"``, ``"gpt2"``, ...).
    """

    name: str
    module: nn.Module
    out_proj: nn.Module
    head_dim: int
    kind: str
    _hf: HFAttention | None = None

    @property
    def num_heads(self) -> int:
        """Current number of heads H (follows pruning)."""
        if self._hf is not None:
            return self._hf.num_heads
        return self.module.num_heads

    def keep(self, heads: Sequence[int]) -> None:
        """Remove, physically, every head not in ``heads`` (current numbering).

        Raises:
            ValueError: bad indices, no head kept, or a layout that cannot run with the
                result (uneven grouped-query groups in ``transformers``).
        """
        if self._hf is not None:
            self._hf.keep(heads)
        else:
            self.module.keep_heads(heads)


def head_layers(model: nn.Module) -> list[HeadLayer]:
    """The prunable attention layers of ``model``, in module order.

    Returns:
        One :class:`HeadLayer` per layer; empty when the model has none (an LSTM, a
        pooling-only model, an unknown layout).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    layers = [
        HeadLayer(name, m, m.out_proj, m.head_dim, "attnlab")
        for name, m in model.named_modules()
        if isinstance(m, MultiHeadAttention)
    ]
    layers += [HeadLayer(a.name, a.module, a.out_proj, a.head_dim, a.layout, a) for a in
               hf_attention_layers(model)]  # fmt: skip
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(layers, key=lambda layer: order[layer.name])


def kept_from_removed(
    num_heads: Sequence[int], removed: Sequence[tuple[int, int]]
) -> list[list[int]]:
    """Per layer, the heads left after removing ``(layer, head)`` pairs.

    Raises:
        ValueError: a pair out of range, or a layer left with no head.
    """
    gone: list[set[int]] = [set() for _ in num_heads]
    for layer, head in removed:
        if not 0 <= layer < len(num_heads):
            raise ValueError(f"layer {layer} out of range: the model has {len(num_heads)} layers")
        if not 0 <= head < num_heads[layer]:
            raise ValueError(
                f"head {head} out of range: layer {layer} has {num_heads[layer]} heads"
            )
        gone[layer].add(head)
    kept = [[h for h in range(n) if h not in g] for n, g in zip(num_heads, gone, strict=True)]
    empty = [i for i, k in enumerate(kept) if not k]
    if empty:
        raise ValueError(
            f"removing every head of layer(s) {empty} would remove their attention; "
            "each layer keeps at least one head"
        )
    return kept


def keep_heads(model: nn.Module, kept: Sequence[Sequence[int] | None]) -> nn.Module:
    """Physically prune ``model`` in place: layer ``i`` keeps the heads ``kept[i]``.

    The projections shrink (query/key/value out-features, output in-features), so
    parameters, FLOPs and latency fall; the output equals the unpruned model's with the
    removed heads' gates at zero.

    Args:
        model: a model with attention layers (see :func:`head_layers`).
        kept: one entry per layer: current head indices to keep, or None for all.

    Returns:
        ``model``.

    Raises:
        ValueError: ``kept`` does not match the layers, or an entry is invalid.
    """
    layers = head_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no attention layer whose heads can be pruned")
    if len(kept) != len(layers):
        raise ValueError(f"kept heads given for {len(kept)} layers, the model has {len(layers)}")
    for layer, heads in zip(layers, kept, strict=True):
        if heads is not None and list(heads) != list(range(layer.num_heads)):
            layer.keep(heads)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
