"""Recording attnlab's own seams: ``AttentionCore`` (weights recomputed from ``q``, ``k``
and the mask keywords) and ``WeightsTap`` (weights or gates recorded as given)."""

from __future__ import annotations

import torch
from torch import nn

from attnlab.capture.recording import Entry, check_gate, validity
from attnlab.layers.core import GATE_ROLES, AttentionCore, WeightsTap
from attnlab.ops.weights import attention_weights

__all__ = ["install", "match"]


def match(module: nn.Module) -> str | None:
    """The kind of seam ``module`` is (``"core"`` or ``"tap"``), else None."""
    if isinstance(module, AttentionCore):
        return "core"
    if isinstance(module, WeightsTap):
        return "tap"
    return None


def install(recorder, name: str, module: nn.Module) -> list:
    """Hooks recording ``module`` into ``recorder`` (a ``capture._Recorder``)."""
    hook = _core_hook if isinstance(module, AttentionCore) else _tap_hook
    return [module.register_forward_hook(hook(recorder, name, module.role), with_kwargs=True)]


def _core_hook(recorder, name: str, role: str):
    def hook(module, args, kwargs, output):
        q = args[0] if args else kwargs["q"]
        k = args[1] if len(args) > 1 else kwargs["k"]
        opts = {
            key: kwargs[key]
            for key in ("mask", "causal", "window", "scale", "score")
            if key in kwargs
        }
        with torch.no_grad():
            heads = recorder.heads_for(q.shape[1])
            w = attention_weights(q.detach(), k.detach(), heads=heads, **opts)  # (B, H', Tq, Tk)
            qv, kv = validity(
                opts.get("mask"), opts.get("causal", False), opts.get("window"),
                q.shape[0], q.shape[2], k.shape[2], q.device, role,
            )  # fmt: skip
        recorder.add(Entry(name, role, w, heads, qv, kv))

    return hook


def _tap_hook(recorder, name: str, role: str):
    def hook(module, args, kwargs, output):
        w = output.detach()
        if role in GATE_ROLES:
            check_gate(name, role, w)
            recorder.add(Entry(name, role, w, [], None, None))
            return
        if w.dim() != 4:
            raise ValueError(
                f"WeightsTap {name} ({role}) got weights of shape {tuple(w.shape)}; "
                "expected (B, H, Tq, Tk)"
            )
        heads = recorder.heads_for(w.shape[1], strict=False)
        w = w[:, heads]
        b, _, tq, tk = w.shape
        mask = kwargs.get("mask", args[1] if len(args) > 1 else None)
        if mask is None:  # a tap given no mask: keys are real where some weight is
            mask = (w.sum(1, keepdim=True) > 0).expand(b, 1, tq, tk)  # (B, 1, Tq, Tk)
        qv, kv = validity(mask.detach(), False, None, b, tq, tk, w.device, role)
        recorder.add(Entry(name, role, w, heads, qv, kv))

    return hook
