"""Recording Hugging Face ``transformers`` attention.

Two ways, chosen per module:

- **the attention function** (``"hf"``): a module whose forward dispatches through
  transformers' attention interface (BERT, DistilBERT, GPT-2, LLaMA, ViT, ... in
  transformers 5) is recorded where it calls its attention function, with the
  post-rotary queries and keys and the mask that call really used. A model running
  ``attn_implementation="attnlab"`` reports from attnlab's own function; for any other
  implementation the resolved function is wrapped while the capture is active and runs
  unchanged (see :func:`attnlab.integrations.transformers.observe`);
- **hooks** (``"hf-hooks"``): older BERT-style self-attention modules that compute their
  attention themselves (a ``query`` and a ``key`` Linear and ``num_attention_heads``)
  are recorded from their projections and the additive mask they were given.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.capture.recording import Entry, validity
from attnlab.integrations.transformers import (
    SeenAttention,
    attention_role,
    uses_attention_interface,
)
from attnlab.ops.weights import attention_weights

__all__ = ["LOOKED_FOR", "callback", "install_hooks", "match"]

#: What this family recognises, for error messages.
LOOKED_FOR = (
    "transformers attention modules whose forward dispatches through "
    "ALL_ATTENTION_FUNCTIONS (e.g. BertSelfAttention, GPT2Attention, LlamaAttention, "
    "ViTSelfAttention), BERT-style self-attention (query/key nn.Linear and "
    "num_attention_heads)"
)


def match(module: nn.Module) -> str | None:
    if uses_attention_interface(module):
        return "hf"
    if (
        isinstance(getattr(module, "query", None), nn.Linear)
        and isinstance(getattr(module, "key", None), nn.Linear)
        and isinstance(getattr(module, "num_attention_heads", None), int)
    ):
        return "hf-hooks"
    return None


def _float(t: Tensor) -> Tensor:
    return t.detach().float() if t.dtype in (torch.float16, torch.bfloat16) else t.detach()


def callback(recorder, name: str, module: nn.Module):
    """What to do with each :class:`SeenAttention` of ``module``: record its weights."""
    role = attention_role(module)

    def record(seen: SeenAttention) -> None:
        q, k = _float(seen.query), _float(seen.key)  # (B, H, Tq, D), (B, Hkv, Tk, D)
        mask = seen.mask.detach() if isinstance(seen.mask, Tensor) else seen.mask
        b, h, tq, _ = q.shape
        tk = k.shape[2]
        with torch.no_grad():
            heads = recorder.heads_for(h)
            w = attention_weights(
                q, k, mask=mask, causal=seen.causal, scale=seen.scale, heads=heads
            )  # (B, H', Tq, Tk)
            qv, kv = validity(mask, seen.causal, None, b, tq, tk, q.device, role)
        recorder.add(Entry(name, role, w, heads, qv, kv))

    return record


def install_hooks(recorder, name: str, module: nn.Module) -> list:
    """Hooks on the projections of a BERT-style module that computes attention itself."""
    state: dict = {}
    role = attention_role(module)

    def proj(which):
        def hook(_, args, output):
            state[which] = output.detach()  # (B, T, H*D)

        return hook

    def pre(_, args, kwargs):
        state.clear()
        state["mask"] = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        state["past"] = kwargs.get("past_key_values", kwargs.get("past_key_value"))

    def post(mod, args, kwargs, output):
        if "q" not in state or "k" not in state:
            return
        if state.get("past") is not None:  # cached keys are not visible to the hooks
            raise ValueError(f"capture cannot record {name} when past_key_values is used")
        h = mod.num_attention_heads
        q, k = _float(state.pop("q")), _float(state.pop("k"))
        b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
        d = q.shape[-1] // h
        q = q.view(b, tq, h, d).transpose(1, 2)  # (B, H, Tq, D)
        k = k.view(b, tk, h, d).transpose(1, 2)  # (B, H, Tk, D)
        mask = state.get("mask")
        if isinstance(mask, Tensor) and mask.dim() == 2:  # (B, Tk) 1 = attend
            mask = mask.bool()[:, None, None, :]  # (B, 1, 1, Tk)
        elif isinstance(mask, Tensor) and mask.dtype != torch.bool:
            mask = mask.float()  # additive (B, 1, 1|Tq, Tk)
        scale = float(getattr(mod, "scaling", d**-0.5))
        with torch.no_grad():
            heads = recorder.heads_for(h)
            w = attention_weights(q, k, mask=mask, scale=scale, heads=heads)
            qv, kv = validity(mask, False, None, b, tq, tk, q.device, role)
        recorder.add(Entry(name, role, w, heads, qv, kv))

    return [
        module.query.register_forward_hook(proj("q")),
        module.key.register_forward_hook(proj("k")),
        module.register_forward_pre_hook(pre, with_kwargs=True),
        module.register_forward_hook(post, with_kwargs=True),
    ]
