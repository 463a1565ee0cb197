"""Record attention weights from a running model through forward hooks.

Nothing is stored on the model and its forward pass is not changed: the hooks read
the queries, keys and masks that the model computes anyway and recompute the softmax
weights with :func:`attnlab.ops.attention_weights`, so a model keeps running its fast
(SDPA or fused) path while it is being watched.

Supported attention modules (found by walking ``model.named_modules()``):

* attnlab's :class:`~attnlab.layers.AttentionCore` (recomputed from ``q, k`` and the
  mask keywords) and :class:`~attnlab.layers.WeightsTap` (weights recorded as given);
* :class:`torch.nn.MultiheadAttention` (``query``/``key`` projected with the module's
  own ``in_proj`` weights; ``need_weights`` is left as the caller set it);
* Hugging Face BERT-style self-attention (a module with ``query``/``key`` linear
  children and ``num_attention_heads``), such as the packaged MiniLM running SDPA.

Example:
    >>> from attnlab.models.pretrained import load_pretrained
    >>> from attnlab.viz import capture
    >>> model, tok = load_pretrained("minilm")
    >>> batch = tok(["a short one", "and a longer second sentence"], padding=True,
    ...             return_tensors="pt")
    >>> with capture(model, tokenizer=tok, layers=[0, -1], heads=[0, 3]) as rec:
    ...     _ = model(**batch)
    >>> rec.weights[0].shape          # (B, H', T, T) with padding
    torch.Size([2, 2, 7, 7])
    >>> rec.example(0)[0].shape       # padding stripped: (H', T_0, T_0)
    torch.Size([2, 5, 5])
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from attnlab.layers.core import AttentionCore, WeightsTap
from attnlab.ops import masks as M
from attnlab.ops.weights import attention_weights

__all__ = ["Recording", "attention_modules", "capture"]


def _kind(module: nn.Module) -> str | None:
    """Which recorder handles ``module`` (None: not an attention module)."""
    if isinstance(module, AttentionCore):
        return "core"
    if isinstance(module, WeightsTap):
        return "tap"
    if isinstance(module, nn.MultiheadAttention):
        return "mha"
    if (
        isinstance(getattr(module, "query", None), nn.Linear)
        and isinstance(getattr(module, "key", None), nn.Linear)
        and isinstance(getattr(module, "num_attention_heads", None), int)
    ):
        return "hf"
    return None


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """The attention modules of ``model`` that :func:`capture` can record, in order.

    Returns:
        ``(name, module, kind)`` triples; ``kind`` is ``"core"``, ``"tap"``, ``"mha"``
        or ``"hf"``. Modules nested inside another found module are skipped.
    """
    found: list[tuple[str, nn.Module, str]] = []
    for name, module in model.named_modules():
        kind = _kind(module)
        if kind is None:
            continue
        if any(name.startswith(f"{n}.") or n == "" for n, _, _ in found):
            continue  # e.g. the query/key Linear of an HF module is not itself attention
        found.append((name or type(module).__name__, module, kind))
    return found


def _select(
    mods: list[tuple[str, nn.Module, str]], layers: Sequence[int | str] | None
) -> list[tuple[str, nn.Module, str]]:
    if layers is None:
        return mods
    if isinstance(layers, (int, str)):
        layers = [layers]
    picked: list[int] = []
    n = len(mods)
    for sel in layers:
        if isinstance(sel, bool) or not isinstance(sel, (int, str)):
            raise TypeError(f"layers must hold ints or names, got {sel!r}")
        if isinstance(sel, int):
            if not -n <= sel < n:
                raise ValueError(f"layer {sel} out of range: the model has {n} attention modules")
            idx = [sel % n]
        else:
            idx = [i for i, (name, _, _) in enumerate(mods) if fnmatch.fnmatchcase(name, sel)]
            if not idx:
                names = ", ".join(name for name, _, _ in mods)
                raise ValueError(f"no attention module matches {sel!r}; modules: {names}")
        picked.extend(i for i in idx if i not in picked)
    return [mods[i] for i in sorted(picked)]


@dataclass
class Recording:
    """What :func:`capture` recorded; one entry per call of a captured module.

    Attributes:
        weights: ``(B, H', Tq, Tk)`` float tensors (detached), ``H'`` the selected heads.
        names: module name of each entry (a module called twice appears twice).
        heads: head indices held by each entry.
        query_valid: ``(B, Tq)`` bool, False at padding queries.
        key_valid: ``(B, Tk)`` bool, False at padding keys.
        tokens: per example, the input tokens without padding (set when a tokenizer
            was given and the model was called with ``input_ids``), else None.
    """

    weights: list[Tensor] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    heads: list[list[int]] = field(default_factory=list)
    query_valid: list[Tensor] = field(default_factory=list)
    key_valid: list[Tensor] = field(default_factory=list)
    tokens: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.weights)

    def example(self, b: int = 0) -> list[Tensor]:
        """Weights of example ``b`` with its padding queries and keys removed.

        Returns:
            One ``(H', Tq_b, Tk_b)`` tensor per entry.
        """
        out = []
        for w, qv, kv in zip(self.weights, self.query_valid, self.key_valid, strict=True):
            if not -w.shape[0] <= b < w.shape[0]:
                raise ValueError(f"example {b} out of range for batch size {w.shape[0]}")
            out.append(w[b][:, qv[b]][:, :, kv[b]])  # (H', Tq_b, Tk_b)
        return out

    def stacked(self, b: int = 0) -> Tensor:
        """Example ``b`` as one ``(L, H', T, T)`` tensor (all entries must agree in shape)."""
        maps = self.example(b)
        shapes = {tuple(m.shape) for m in maps}
        if len(shapes) != 1:
            raise ValueError(f"entries differ in shape {sorted(shapes)}; use example() instead")
        return torch.stack(maps)  # (L, H', T, T)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        for lst in (self.weights, self.names, self.heads, self.query_valid, self.key_valid):
            lst.clear()
        self.tokens = None


def _valid_from_mask(
    mask, causal, window, b: int, tq: int, tk: int, device
) -> tuple[Tensor, Tensor]:
    """(query_valid (B, Tq), key_valid (B, Tk)) implied by attention's mask arguments.

    A query is valid when its row may attend to something; a key when some query may
    attend to it (for interval masks: the hull of the row intervals).
    """
    typed, bias = M.from_args(mask, causal, window)
    q_valid = torch.ones(1, tq, dtype=torch.bool, device=device)
    k_valid = torch.ones(1, tk, dtype=torch.bool, device=device)
    iv = typed.intervals(tq, tk, device=device) if typed is not None and bias is None else None
    if iv is not None:
        lo, hi = iv  # (B|1, Tq)
        q_valid = lo <= hi
        kpos = torch.arange(tk, device=device)
        start = torch.where(q_valid, lo, torch.full_like(lo, tk)).amin(-1, keepdim=True)
        end = torch.where(q_valid, hi, torch.full_like(hi, -1)).amax(-1, keepdim=True)
        k_valid = (kpos >= start) & (kpos <= end)  # (B|1, Tk)
    elif typed is not None or bias is not None:
        allowed = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=device)
        if typed is not None:
            allowed = typed.dense(tq, tk, device=device)  # (B|1, H|1, Tq|1, Tk|1)
        if bias is not None:
            finite = bias > torch.finfo(bias.dtype).min / 2
            while finite.dim() < 4:
                finite = finite[None]
            allowed = allowed & finite  # (B|1, H|1, Tq|1, Tk|1)
        allowed = allowed.expand(-1, -1, tq, tk).any(1)  # (B|1, Tq, Tk)
        q_valid, k_valid = allowed.any(-1), allowed.any(-2)
    q_valid, k_valid = q_valid.expand(b, tq).clone(), k_valid.expand(b, tk).clone()
    if tq == tk:  # self-attention: a padding key is also a padding query
        q_valid &= k_valid
    return q_valid, k_valid


class _Recorder:
    """Installs the hooks for :func:`capture` and fills a :class:`Recording`."""

    def __init__(self, model, tokenizer, layers, heads) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"capture expects an nn.Module, got {type(model).__name__}")
        if heads is not None:
            heads = [heads] if isinstance(heads, int) else list(heads)
            if not heads or any(isinstance(h, bool) or not isinstance(h, int) for h in heads):
                raise ValueError(f"heads must be a non-empty list of ints, got {heads!r}")
            if any(h < 0 for h in heads):
                raise ValueError(f"heads must be >= 0, got {heads}")
        if tokenizer is None and hasattr(
            getattr(model, "tokenizer", None), "convert_ids_to_tokens"
        ):
            tokenizer = model.tokenizer
        self.model, self.tokenizer, self.head_sel = model, tokenizer, heads
        mods = attention_modules(model)
        if not mods:
            raise ValueError(
                f"{type(model).__name__} has no attention module that capture can record "
                "(AttentionCore, WeightsTap, nn.MultiheadAttention or a BERT-style self-attention)"
            )
        self.modules = _select(mods, layers)
        self.rec = Recording()
        self.handles: list = []
        self._pending: dict[int, dict] = {}

    # -- bookkeeping -------------------------------------------------------------------
    def _heads(self, h: int, *, strict: bool = True) -> list[int]:
        if self.head_sel is None:
            return list(range(h))
        bad = [i for i in self.head_sel if i >= h]
        if bad and not strict:  # a single-head pooling tap among multi-head layers
            return [i for i in self.head_sel if i < h] or list(range(h))
        if bad:
            raise ValueError(f"heads {bad} out of range for a module with {h} heads")
        return list(self.head_sel)

    def _add(self, name: str, w: Tensor, heads: list[int], qv: Tensor, kv: Tensor) -> None:
        self.rec.weights.append(w.detach())
        self.rec.names.append(name)
        self.rec.heads.append(heads)
        self.rec.query_valid.append(qv.detach())
        self.rec.key_valid.append(kv.detach())

    # -- hooks -----------------------------------------------------------------------------
    def _core_hook(self, name):
        def hook(module, args, kwargs, output):
            q = args[0] if args else kwargs["q"]
            k = args[1] if len(args) > 1 else kwargs["k"]
            opts = {
                key: kwargs[key]
                for key in ("mask", "causal", "window", "scale", "score")
                if key in kwargs
            }
            with torch.no_grad():
                heads = self._heads(q.shape[1])
                w = attention_weights(
                    q.detach(), k.detach(), heads=heads, **opts
                )  # (B, H', Tq, Tk)
                qv, kv = _valid_from_mask(
                    opts.get("mask"), opts.get("causal", False), opts.get("window"),
                    q.shape[0], q.shape[2], k.shape[2], q.device,
                )  # fmt: skip
            self._add(name, w, heads, qv, kv)

        return hook

    def _tap_hook(self, name):
        def hook(module, args, output):
            w = output.detach()  # (B, H, Tq, Tk)
            if w.dim() != 4:
                raise ValueError(
                    f"WeightsTap {name} got weights of shape {tuple(w.shape)}; expected (B, H, Tq, Tk)"
                )
            heads = self._heads(w.shape[1], strict=False)
            w = w[:, heads]
            used = w.sum(1) > 0  # (B, Tq, Tk)
            qv, kv = used.any(-1), used.any(-2)
            if w.shape[2] == w.shape[3]:
                qv = qv & kv
            self._add(name, w, heads, qv, kv)

        return hook

    def _mha_hook(self, name):
        def hook(module: nn.MultiheadAttention, args, kwargs, output):
            names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask")
            bound = dict(zip(names, args, strict=False))
            bound.update(kwargs)
            heads = self._heads(module.num_heads)
            with torch.no_grad():
                w, qv, kv = _mha_weights(module, bound, heads)
            self._add(name, w, heads, qv, kv)

        return hook

    def _hf_hooks(self, name, module):
        state: dict = {}

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
            h, d = mod.num_attention_heads, mod.attention_head_size
            q, k = state.pop("q"), state.pop("k")
            b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
            q = q.view(b, tq, h, d).transpose(1, 2)  # (B, H, Tq, D)
            k = k.view(b, tk, h, d).transpose(1, 2)  # (B, H, Tk, D)
            mask = state.get("mask")
            if isinstance(mask, Tensor) and mask.dim() == 2:  # (B, Tk) 1 = attend
                mask = mask.bool()[:, None, None, :]  # (B, 1, 1, Tk)
            causal = bool(getattr(mod, "is_causal", False)) and mask is None and tq > 1
            scale = float(getattr(mod, "scaling", d**-0.5))
            with torch.no_grad():
                heads = self._heads(h)
                w = attention_weights(
                    q.float(), k.float(), mask=mask, causal=causal, scale=scale, heads=heads
                )
                qv, kv = _valid_from_mask(mask, causal, None, b, tq, tk, q.device)
            self._add(name, w, heads, qv, kv)

        return [
            module.query.register_forward_hook(proj("q")),
            module.key.register_forward_hook(proj("k")),
            module.register_forward_pre_hook(pre, with_kwargs=True),
            module.register_forward_hook(post, with_kwargs=True),
        ]

    def _root_hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not isinstance(ids, Tensor) or ids.dtype.is_floating_point or ids.dim() != 2:
            return
        am = kwargs.get("attention_mask")
        keep = (
            am.bool()
            if isinstance(am, Tensor) and am.shape == ids.shape
            else torch.ones_like(ids, dtype=torch.bool)
        )
        self.rec.tokens = [
            list(self.tokenizer.convert_ids_to_tokens(row[m].tolist()))
            for row, m in zip(ids, keep, strict=True)
        ]

    # -- install / remove ------------------------------------------------------------------
    def install(self) -> Recording:
        for name, module, kind in self.modules:
            if kind == "core":
                self.handles.append(
                    module.register_forward_hook(self._core_hook(name), with_kwargs=True)
                )
            elif kind == "tap":
                self.handles.append(module.register_forward_hook(self._tap_hook(name)))
            elif kind == "mha":
                self.handles.append(
                    module.register_forward_hook(self._mha_hook(name), with_kwargs=True)
                )
            else:
                self.handles.extend(self._hf_hooks(name, module))
        if self.tokenizer is not None:
            self.handles.append(
                self.model.register_forward_pre_hook(self._root_hook, with_kwargs=True)
            )
        return self.rec

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """torch's MHA masks (bool True = blocked, or float added) as an additive float mask."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def _mha_weights(
    m: nn.MultiheadAttention, a: dict, heads: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Recompute the per-head weights of ``nn.MultiheadAttention`` from its inputs."""
    query, key = a["query"], a["key"]
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
    kpm = a.get("key_padding_mask")
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
    finite = torch.isfinite(bias).any(1)  # (B, Tq, Tk)
    qv, kv = finite.any(-1), finite.any(-2)
    if tq == tk:
        qv = qv & kv
    return w, qv, kv


class capture:  # lower case: used like torch.no_grad
    """Record the attention weights of ``model`` while the ``with`` block runs.

    Args:
        model: any ``nn.Module`` holding attnlab layers, ``nn.MultiheadAttention`` or
            Hugging Face BERT-style attention.
        layers: which attention modules to record: indices into
            :func:`attention_modules` (negative allowed) or module names / glob patterns
            (``"encoder.layer.*"``); default all.
        heads: head indices to record in every module; default all.
        tokenizer: optional Hugging Face tokenizer (default: ``model.tokenizer`` if the
            model has one); when the model is called with ``input_ids``, ``rec.tokens``
            holds the tokens of each example.

    The weights are those before attention dropout (identical in eval mode).

    Returns:
        On ``__enter__``, the :class:`Recording` that fills up as the model runs.

    Raises:
        ValueError: no recordable attention module, or a layer/head out of range.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[int | str] | int | str | None = None,
        heads: Sequence[int] | int | None = None,
        *,
        tokenizer=None,
    ) -> None:
        self._recorder = _Recorder(model, tokenizer, layers, heads)

    def __enter__(self) -> Recording:
        return self._recorder.install()

    def __exit__(self, *exc) -> None:
        self._recorder.remove()
