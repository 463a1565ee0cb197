"""Attention heads of Hugging Face ``transformers`` models: find them, and remove some
physically (what ``prune_heads`` did before transformers 5 removed it).

Four module layouts are recognised (walking ``model.named_modules()``):

* ``"bert"``: ``query``/``key``/``value`` linears with ``num_attention_heads`` and
  ``attention_head_size`` (BERT, RoBERTa, MiniLM, ELECTRA...); the output projection is
  the parent's ``output.dense``.
* ``"distilbert"``: ``q_lin``/``k_lin``/``v_lin``/``out_lin`` with ``n_heads``.
* ``"gpt2"``: a fused ``c_attn`` ``Conv1D`` (q, k, v side by side) and ``c_proj``.
* ``"qkvo"``: ``q_proj``/``k_proj``/``v_proj``/``o_proj`` with ``head_dim`` (LLaMA-style
  decoders with grouped-query attention, ViT in transformers 5).

Every layout runs ``view(..., -1, head_dim)`` on its projections, so shrinking the
linears (and the module's head counters) is all it takes.

Example:
    >>> from transformers import BertConfig, BertModel
    >>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2,
    ...                              num_attention_heads=4, intermediate_size=37))
    >>> [(a.name, a.num_heads) for a in hf_attention_layers(model)]
    [('encoder.layer.0.attention.self', 4), ('encoder.layer.1.attention.self', 4)]
    >>> keep_hf_heads(model, [[0, 2], [1]])
    >>> model.encoder.layer[1].attention.self.query.out_features
    8
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlab.layers.multihead import check_heads

__all__ = ["HFAttention", "hf_attention_layers", "keep_hf_heads", "shrink_projection"]


@dataclass
class HFAttention:
    """One attention layer of a ``transformers`` model, seen as heads.

    Attributes:
        name: module name inside the model.
        module: the attention module.
        out_proj: the projection whose input is the concatenated head outputs
            ``(B, T, H*D)`` (``nn.Linear`` or GPT-2's ``Conv1D``).
        layout: ``"bert"``, ``"distilbert"``, ``"gpt2"`` or ``"qkvo"``.
        head_dim: size D of each head.
    """

    name: str
    module: nn.Module
    out_proj: nn.Module
    layout: str
    head_dim: int

    @property
    def num_heads(self) -> int:
        """Query heads H (read off the output projection, so it follows pruning)."""
        return _in_features(self.out_proj) // self.head_dim

    @property
    def num_kv_heads(self) -> int:
        """Key/value heads (differs from H only for grouped-query ``"qkvo"`` layers)."""
        if self.layout == "qkvo":
            return self.module.k_proj.out_features // self.head_dim
        return self.num_heads

    def keep(self, heads: Sequence[int]) -> None:
        """Keep only ``heads`` (current numbering), removing the others physically.

        Raises:
            ValueError: an index out of range or repeated, no head kept, or a
                grouped-query layer whose key/value groups would hold different numbers
                of query heads (``transformers`` repeats every key/value head equally).
        """
        keep = check_heads(heads, self.num_heads, self.name)
        if keep == list(range(self.num_heads)):
            return
        m, d = self.module, self.head_dim
        rows = _feature_index(keep, d)
        if self.layout == "bert":
            for lin in (m.query, m.key, m.value):
                shrink_projection(lin, rows=rows)
            shrink_projection(self.out_proj, cols=rows)
            m.num_attention_heads = len(keep)
            m.all_head_size = len(keep) * d
        elif self.layout == "distilbert":
            for lin in (m.q_lin, m.k_lin, m.v_lin):
                shrink_projection(lin, rows=rows)
            shrink_projection(self.out_proj, cols=rows)
            m.n_heads = len(keep)
        elif self.layout == "gpt2":
            width = m.split_size
            fused = torch.cat([rows, rows + width, rows + 2 * width])  # q | k | v blocks
            shrink_projection(m.c_attn, rows=fused)
            shrink_projection(self.out_proj, cols=rows)
            m.num_heads = len(keep)
            m.split_size = len(keep) * d
        else:
            self._keep_qkvo(keep, rows)

    def _keep_qkvo(self, keep: list[int], rows: Tensor) -> None:
        m, d = self.module, self.head_dim
        h, hkv = self.num_heads, self.num_kv_heads
        group = h // hkv
        kv_keep = sorted({q // group for q in keep})
        sizes = {g: sum(q // group == g for q in keep) for g in kv_keep}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"{self.name}: keeping heads {keep} leaves key/value groups "
                f"{ {g: n for g, n in sizes.items()} } (query heads per key/value head) of "
                "different sizes, which transformers cannot run; keep the same number of "
                "heads in every group, or whole groups"
            )
        kv_rows = _feature_index(kv_keep, d)
        shrink_projection(m.q_proj, rows=rows)
        shrink_projection(m.k_proj, rows=kv_rows)
        shrink_projection(m.v_proj, rows=kv_rows)
        shrink_projection(self.out_proj, cols=rows)
        for attr, value in (
            ("num_heads", len(keep)),
            ("num_attention_heads", len(keep)),
            ("num_key_value_heads", len(kv_keep)),
            ("num_key_value_groups", len(keep) // len(kv_keep)),
        ):
            if hasattr(m, attr):
                setattr(m, attr, value)


def _in_features(proj: nn.Module) -> int:
    if isinstance(proj, nn.Linear):
        return proj.in_features
    return proj.weight.shape[0]  # Conv1D stores (in, out)


def _feature_index(heads: Sequence[int], d: int) -> Tensor:
    idx = torch.tensor(heads)[:, None] * d + torch.arange(d)  # (H', D)
    return idx.reshape(-1)  # (H' * D,)


@torch.no_grad()
def shrink_projection(
    proj: nn.Module, *, rows: Tensor | None = None, cols: Tensor | None = None
) -> None:
    """Keep output features ``rows`` and input features ``cols`` of a linear layer, in place.

    Works on ``nn.Linear`` (weight ``(out, in)``) and GPT-2's ``Conv1D`` (weight
    ``(in, out)``); the module object (and any hook on it) stays the same.
    """
    conv = not isinstance(proj, nn.Linear)
    w = proj.weight.detach()
    out_dim, in_dim = (1, 0) if conv else (0, 1)
    if rows is not None:
        w = w.index_select(out_dim, rows.to(w.device))
    if cols is not None:
        w = w.index_select(in_dim, cols.to(w.device))
    grad = proj.weight.requires_grad
    proj.weight = nn.Parameter(w.contiguous(), requires_grad=grad)
    if proj.bias is not None and rows is not None:
        b = proj.bias.detach().index_select(0, rows.to(w.device))
        proj.bias = nn.Parameter(b, requires_grad=proj.bias.requires_grad)
    if conv:
        proj.nx, proj.nf = w.shape
    else:
        proj.out_features, proj.in_features = w.shape


def _layout(module: nn.Module) -> str | None:
    def linear(*names: str) -> bool:
        return all(isinstance(getattr(module, n, None), nn.Linear) for n in names)

    def integer(name: str) -> bool:
        value = getattr(module, name, None)
        return isinstance(value, int) and not isinstance(value, bool)

    if linear("query", "key", "value") and integer("num_attention_heads"):
        return "bert" if integer("attention_head_size") else None
    if linear("q_lin", "k_lin", "v_lin", "out_lin") and integer("n_heads"):
        return "distilbert"
    if linear("q_proj", "k_proj", "v_proj", "o_proj") and integer("head_dim"):
        return "qkvo"
    c_attn, c_proj = getattr(module, "c_attn", None), getattr(module, "c_proj", None)
    if (
        type(c_attn).__name__ == "Conv1D"
        and type(c_proj).__name__ == "Conv1D"
        and integer("num_heads")
        and integer("split_size")
        and not getattr(module, "is_cross_attention", False)
    ):
        return "gpt2"
    return None


def hf_attention_layers(model: nn.Module) -> list[HFAttention]:
    """The attention layers of a ``transformers`` model whose heads can be gated and pruned.

    Returns:
        One :class:`HFAttention` per layer, in module order (empty when none is known).
    """
    found: list[HFAttention] = []
    for name, module in model.named_modules():
        layout = _layout(module)
        if layout is None or any(name.startswith(f"{f.name}.") for f in found):
            continue
        if layout == "bert":
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else None
            out = getattr(getattr(parent, "output", None), "dense", None)
            if not isinstance(out, nn.Linear):
                continue  # no known output projection: its heads cannot be gated
            found.append(HFAttention(name, module, out, layout, module.attention_head_size))
        elif layout == "distilbert":
            found.append(
                HFAttention(name, module, module.out_lin, layout, module.attention_head_size)
            )
        elif layout == "gpt2":
            found.append(HFAttention(name, module, module.c_proj, layout, module.head_dim))
        else:
            found.append(HFAttention(name, module, module.o_proj, layout, module.head_dim))
    return found


def keep_hf_heads(model: nn.Module, kept: Sequence[Sequence[int] | None]) -> None:
    """Keep, in attention layer ``i`` of ``model``, only the heads ``kept[i]`` (None: all).

    Raises:
        ValueError: ``kept`` does not have one entry per attention layer, or an entry is
            invalid (see :meth:`HFAttention.keep`).
    """
    layers = hf_attention_layers(model)
    if len(kept) != len(layers):
        raise ValueError(
            f"kept heads given for {len(kept)} layers, but {type(model).__name__} has "
            f"{len(layers)} attention layers"
        )
    for layer, heads in zip(layers, kept, strict=True):
        if heads is not None:
            layer.keep(heads)
