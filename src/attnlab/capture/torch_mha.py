"""Recording ``torch.nn.MultiheadAttention``: weights recomputed from ``query``/``key``
and the module's own input projections, masks included; ``need_weights`` stays as the
caller set it.

``nn.TransformerEncoder`` in eval mode with a padding mask turns its input into a
nested tensor (its "sparsity fast path") before the layers run; the attention then sees
nested tensors. The recorder pads them back using the padding mask the encoder was
called with (read by a pre-hook on the encoder), so the model keeps its fast path and
its outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.capture.recording import Entry, validity
from attnlab.ops.weights import attention_weights

__all__ = ["install", "install_encoder", "match", "role_of"]

# Attribute names torch's own layers give their attentions.
_ROLES = {"self_attn": "self", "multihead_attn": "cross"}


def match(module: nn.Module) -> str | None:
    return "mha" if isinstance(module, nn.MultiheadAttention) else None


def role_of(name: str) -> str | None:
    """The role torch's transformer layers give the attention called ``name``, if any."""
    return _ROLES.get(name.rsplit(".", 1)[-1])


def install(recorder, name: str, module: nn.Module) -> list:
    role = role_of(name)

    def hook(module: nn.MultiheadAttention, args, kwargs, output):
        names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask")
        bound = dict(zip(names, args, strict=False))
        bound.update(kwargs)
        # torch's layers name their attentions; elsewhere self attention is a call whose
        # key is the query itself
        r = role or ("self" if bound["key"] is bound["query"] else "cross")
        heads = recorder.heads_for(module.num_heads)
        with torch.no_grad():
            w, qv, kv = _mha_weights(module, bound, heads, r, recorder.nested)
        recorder.add(Entry(name, r, w, heads, qv, kv))

    return [module.register_forward_hook(hook, with_kwargs=True)]


def install_encoder(recorder, encoder: nn.TransformerEncoder) -> list:
    """Remember the padded input and padding mask of an encoder call (for nested layers)."""

    def pre(module, args, kwargs):
        src = args[0] if args else kwargs["src"]
        kpm = kwargs.get("src_key_padding_mask", args[2] if len(args) > 2 else None)
        first = module.layers[0].self_attn if len(module.layers) else None
        batch_first = bool(getattr(first, "batch_first", False))
        recorder.nested = (src, kpm, batch_first)

    def post(module, args, output):
        recorder.nested = None

    return [
        encoder.register_forward_pre_hook(pre, with_kwargs=True),
        encoder.register_forward_hook(post),
    ]


def _unnest(x: Tensor, nested) -> tuple[Tensor, Tensor]:
    """A nested ``(B, T_b, E)`` tensor padded back to ``(B, T, E)`` and its key padding
    ``(B, T)`` (True = padding), T being the length the encoder was called with."""
    if nested is not None:
        src, kpm, batch_first = nested
        b, t = (src.shape[0], src.shape[1]) if batch_first else (src.shape[1], src.shape[0])
        if kpm is not None:
            kpm = kpm.bool() if kpm.dtype == torch.bool else kpm != 0
            return x.to_padded_tensor(0.0, (b, t, x.size(-1))), kpm
    lengths = torch.tensor([p.shape[0] for p in x.unbind()], device=x.device)
    padded = x.to_padded_tensor(0.0)  # (B, max T_b, E)
    kpm = torch.arange(padded.shape[1], device=x.device)[None] >= lengths[:, None]
    return padded, kpm


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """torch's MHA masks (bool True = blocked, or float added) as an additive float mask."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def _mha_weights(
    m: nn.MultiheadAttention, a: dict, heads: list[int], role: str, nested
) -> tuple[Tensor, Tensor, Tensor]:
    """Recompute the per-head weights of ``nn.MultiheadAttention`` from its inputs."""
    query, key = a["query"], a["key"]
    kpm = a.get("key_padding_mask")
    if query.is_nested:  # inside nn.TransformerEncoder's fast path: batch first
        same = key is query
        query, kpm = _unnest(query, nested)
        key = query if same else _unnest(key, nested)[0]
        batched = True
    else:
        batched = query.dim() == 3
        if not batched:
            query, key = query[None], key[None]
        elif not m.batch_first:
            query, key = query.transpose(0, 1), key.transpose(0, 1)  # (B, T, E)
    e, h = m.embed_dim, m.num_heads
    if m._qkv_same_embed_dim:
        wq, wk = m.in_proj_weight[:e], m.in_proj_weight[e : 2 * e]
    else:
        wq, wk = m.q_proj_weight, m.k_proj_weight
    bq = bk = None
    if m.in_proj_bias is not None:
        bq, bk = m.in_proj_bias[:e], m.in_proj_bias[e : 2 * e]
    q = nn.functional.linear(query, wq, bq)  # (B, Tq, E)
    k = nn.functional.linear(key, wk, bk)  # (B, Tk, E)
    b, tq = q.shape[:2]
    attn_mask = a.get("attn_mask")
    if kpm is not None and not batched:
        kpm = kpm[None]
    if m.bias_k is not None:
        k = torch.cat([k, m.bias_k.reshape(1, 1, e).expand(b, 1, e)], 1)
        attn_mask = nn.functional.pad(attn_mask, (0, 1)) if attn_mask is not None else None
        kpm = nn.functional.pad(kpm, (0, 1)) if kpm is not None else None
    if m.add_zero_attn:
        k = torch.cat([k, k.new_zeros(b, 1, e)], 1)
        attn_mask = nn.functional.pad(attn_mask, (0, 1)) if attn_mask is not None else None
        kpm = nn.functional.pad(kpm, (0, 1)) if kpm is not None else None
    tk = k.shape[1]
    d = e // h
    q = q.view(b, tq, h, d).transpose(1, 2)  # (B, H, Tq, D)
    k = k.view(b, tk, h, d).transpose(1, 2)  # (B, H, Tk, D)
    bias = torch.zeros(b, 1, tq, tk, dtype=q.dtype, device=q.device)  # (B, 1|H, Tq, Tk)
    if attn_mask is not None:
        am = _additive(attn_mask, q.dtype)
        am = am.view(b, h, tq, tk) if am.dim() == 3 else am[None, None]  # (B|1, H|1, Tq, Tk)
        bias = bias + am
    if kpm is not None:
        bias = bias + _additive(kpm, q.dtype)[:, None, None, :]  # (B, 1, 1, Tk)
    w = attention_weights(q, k, mask=bias, heads=heads)  # (B, H', Tq, Tk)
    qv, kv = validity(bias, False, None, b, tq, tk, q.device, "cross")
    if role == "self":  # query i is key i; bias_k / zero-attention keys come after them
        qv &= kv[:, :tq]
    return w, qv, kv
