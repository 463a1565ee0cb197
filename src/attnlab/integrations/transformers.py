"""attnlab as the attention implementation of Hugging Face ``transformers`` models.

After :func:`register` (one call; ``import attnlab`` alone does not load transformers),
``attn_implementation="attnlab"`` runs every attention of a model through
:func:`attnlab.ops.attention`:

- two things are registered: the attention function (``AttentionInterface``) and a mask
  function (``masking_utils.AttentionMaskInterface``). The mask function is what keeps
  the padding: without it transformers hands a custom implementation
  ``attention_mask=None``. It returns an :class:`HFMask`, attnlab's typed mask for the
  model's mask (``Padding`` right or left, ``Causal``, sliding ``Window`` and their
  ``&``); patterns it does not recognise are built densely by transformers' own code;
- grouped-query attention runs natively (keys and values are never repeated per head);
- weights are computed on demand (``output_attentions=True``, or
  :func:`attnlab.capture.capture`) with :func:`attnlab.ops.attention_weights`, never by
  an eager softmax over the whole score matrix in the forward pass.

Example:
    >>> from attnlab.integrations.transformers import register
    >>> from attnlab.models.pretrained import pretrained_dir
    >>> from transformers import AutoModel
    >>> register()
    'attnlab'
    >>> model = AutoModel.from_pretrained(pretrained_dir("minilm"), attn_implementation="attnlab")
    >>> model.config._attn_implementation
    'attnlab'
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlab.ops import attention, attention_weights
from attnlab.ops import masks as M

__all__ = [
    "NAME",
    "HFMask",
    "SeenAttention",
    "attention_role",
    "attnlab_attention",
    "attnlab_mask",
    "observe",
    "register",
    "uses_attention_interface",
]

#: The ``attn_implementation`` name registered by :func:`register`.
NAME = "attnlab"
_settings = {"backend": "auto"}


def register(*, backend: str = "auto") -> str:
    """Make ``attn_implementation="attnlab"`` available to every transformers model.

    Idempotent. Registers :func:`attnlab_attention` with ``AttentionInterface`` and
    :func:`attnlab_mask` with ``masking_utils.AttentionMaskInterface``.

    Args:
        backend: attnlab backend the attention runs on (``"auto"`` picks the fastest
            that fits each call; ``"sdpa"``, ``"blocksparse"``, ``"math"``, ...).

    Returns:
        The implementation name, ``"attnlab"``.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    from attnlab.ops.backends import BACKENDS

    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {list(BACKENDS)}")
    _settings["backend"] = backend
    AttentionInterface.register(NAME, attnlab_attention)
    AttentionMaskInterface.register(NAME, attnlab_mask)
    return NAME


# -- the mask ---------------------------------------------------------------------------


class HFMask:
    """The mask a model running ``attn_implementation="attnlab"`` hands its attention layers.

    Holds an attnlab typed mask (``mask``; None: every query sees every key) for
    ``(B, 1, Tq, Tk)`` scores. It looks enough like a tensor (``shape``, ``dtype``,
    ``device``, ``to``, indexing, which builds :meth:`dense`) for model code that
    inspects its mask.
    """

    dtype = torch.bool
    ndim = 4

    def __init__(self, mask: M.Mask | None, batch: int, tq: int, tk: int, device) -> None:
        self.mask, self.device = mask, torch.device(device)
        self.shape = torch.Size((batch, 1, tq, tk))

    def dim(self) -> int:
        return 4

    def to(self, *args, **kwargs) -> HFMask:
        return self  # built on the device of each call

    def dense(self) -> Tensor:
        """The bool ``(B, 1, Tq, Tk)`` tensor (True = attend)."""
        b, _, tq, tk = self.shape
        if self.mask is None:
            return torch.ones(self.shape, dtype=torch.bool, device=self.device)
        return self.mask.dense(tq, tk, device=self.device).expand(b, 1, tq, tk)

    def __getitem__(self, index) -> Tensor:
        return self.dense()[index]

    def __repr__(self) -> str:
        return f"HFMask({self.mask!r}, shape={tuple(self.shape)})"


class _BuiltOnce:
    """Mixin for the typed masks of one model call: every layer asks the same questions
    (validity, intervals, dense form for the same sizes), so each is answered once. The
    mask lives for one forward pass, like the dense mask transformers would build."""

    def _once(self, key: tuple, build):
        cache = self.__dict__.setdefault("_answers", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def validate(self, batch, tq, tk):
        parent = super()
        self._once(("valid", batch, tq, tk), lambda: parent.validate(batch, tq, tk) or True)

    def intervals(self, tq, tk, *, device=None):
        parent, where = super(), None if device is None else torch.device(device)
        return self._once(("iv", tq, tk, where), lambda: parent.intervals(tq, tk, device=device))

    def dense(self, tq, tk, *, device=None):
        parent, where = super(), None if device is None else torch.device(device)
        return self._once(("dense", tq, tk, where), lambda: parent.dense(tq, tk, device=device))


class _Padding(_BuiltOnce, M.Padding):
    """``M.Padding`` answering each question once."""


class _And(_BuiltOnce, M.And):
    """``M.And`` answering each question once."""


def _closure(fn) -> dict:
    cells = getattr(fn, "__closure__", None) or ()
    return dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in cells), strict=True))


def _pattern(fn) -> list[M.Mask] | None:
    """The typed masks equal to a transformers mask function, None if not recognised."""
    from transformers import masking_utils as mu

    if fn is mu.causal_mask_function:
        return [M.Causal()]
    if fn is mu.bidirectional_mask_function:
        return []
    name = getattr(fn, "__qualname__", "")
    if not hasattr(fn, "__code__"):
        return None
    cells = _closure(fn)
    if name == "and_masks.<locals>.and_mask":
        parts = [_pattern(f) for f in cells.get("mask_functions", ())]
        return None if any(p is None for p in parts) else [m for p in parts for m in p]
    if name == "sliding_window_overlay.<locals>.inner_mask":
        w = int(cells["sliding_window"])  # kv_idx > q_idx - w
        return [M.Window(w - 1, None)] if w >= 1 else None
    if name == "sliding_window_bidirectional_overlay.<locals>.inner_mask":
        w = int(cells["sliding_window"])  # |q_idx - kv_idx| <= w
        return [M.Window(w, w)]
    return None


def _key_padding(attention_mask: Tensor | None, tk: int, kv_offset: int) -> M.Mask | None:
    """A 2-D padding mask ``(B, >= kv_offset + Tk)`` as a typed key mask (None: no padding)."""
    if attention_mask is None:
        return None
    valid = attention_mask.bool()
    if valid.shape[-1] < kv_offset + tk:  # as transformers' prepare_padding_mask
        valid = nn.functional.pad(valid, (0, kv_offset + tk - valid.shape[-1]))
    valid = valid[:, kv_offset : kv_offset + tk]  # (B, Tk)
    if bool(valid.all()):
        return None
    lengths = valid.sum(-1)  # (B,)
    pos = torch.arange(tk, device=valid.device)
    if torch.equal(valid, pos < lengths[:, None]):
        return _Padding(lengths)
    if torch.equal(valid, pos >= tk - lengths[:, None]):
        return _Padding(lengths, side="left")
    return M.Custom(valid[:, None, None, :])  # (B, 1, 1, Tk): holes, still only key-wise


def attnlab_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function: Callable | None = None,
    attention_mask: Tensor | None = None,
    device: torch.device | str = "cpu",
    **kwargs,
) -> HFMask:
    """Mask function for ``AttentionMaskInterface``: the model's mask as an :class:`HFMask`.

    Arguments are those transformers passes to every mask function (``mask_function``
    over absolute positions, the 2-D padding ``attention_mask``, offsets from the cache).
    Recognised patterns become typed masks; any other is built densely by
    ``transformers.masking_utils.sdpa_mask`` and wrapped as ``M.Custom``.
    """
    from transformers import masking_utils as mu

    q_offset, kv_offset = int(q_offset), int(kv_offset)
    fn = mu.causal_mask_function if mask_function is None else mask_function
    parts = _pattern(fn)
    positional = parts is not None and any(not isinstance(p, M.Padding) for p in parts)
    # attnlab aligns queries bottom-right: query i sits at key i + Tk - Tq
    if parts is None or (positional and q_offset - kv_offset != kv_length - q_length):
        dense = mu.sdpa_mask(
            batch_size=batch_size,
            q_length=q_length,
            kv_length=kv_length,
            q_offset=q_offset,
            kv_offset=kv_offset,
            mask_function=fn,
            attention_mask=attention_mask,
            allow_is_causal_skip=False,
            allow_is_bidirectional_skip=False,
            use_vmap=kwargs.get("use_vmap", False),
            device=device,
        )  # (B, 1, Tq, Tk) bool
        return HFMask(M.Custom(dense), batch_size, q_length, kv_length, device)
    pad = _key_padding(attention_mask, kv_length, kv_offset)
    parts = [*parts, pad] if pad is not None else parts
    mask = None if not parts else parts[0] if len(parts) == 1 else _And(*parts)
    return HFMask(mask, batch_size, q_length, kv_length, device)


# -- the attention function -------------------------------------------------------------


def resolve_mask(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask,
    *,
    is_causal: bool | None = None,
    position_bias: Tensor | None = None,
    sdpa_rules: bool = True,
) -> tuple[M.Mask | Tensor | None, bool, Tensor, Tensor]:
    """``(mask, causal, key, value)`` for :func:`attnlab.ops.attention` from what a
    transformers attention function receives.

    ``sdpa_rules``: a missing mask means causal for a causal module when there is more
    than one query (PyTorch SDPA's reading, and flash attention's); False reads it as
    "no mask" (eager).
    """
    tq, tk = query.shape[2], key.shape[2]
    causal = False
    if isinstance(attention_mask, HFMask):
        mask = attention_mask.mask
    elif attention_mask is None:
        mask = None
        flag = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        causal = sdpa_rules and bool(flag) and tq > 1
        if causal and tk > tq:  # SDPA's causal is top-left: keys past Tq are never seen
            key, value = key[:, :, :tq], value[:, :, :tq]
    elif isinstance(attention_mask, Tensor) and attention_mask.dim() == 2:
        # flash attention's mask: (B, >= Tk) key padding, 1 = real, the last Tk columns
        mask = attention_mask[:, -tk:].bool()[:, None, None, :]  # (B, 1, 1, Tk)
        flag = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        causal = sdpa_rules and bool(flag) and tq > 1
    elif isinstance(attention_mask, Tensor):
        mask = attention_mask[..., :tk] if attention_mask.shape[-1] > tk else attention_mask
    else:
        raise TypeError(
            f"attnlab attention cannot use a {type(attention_mask).__name__} mask; load the "
            f"model with attn_implementation='{NAME}' so its masks are built by attnlab"
        )
    if position_bias is not None:  # additive bias (T5-style): fold the mask into it
        bias = position_bias.to(query.dtype)
        if isinstance(mask, Tensor) and mask.dtype != torch.bool:
            bias = bias + mask
        else:
            allowed = M.from_args(mask, causal)[0]
            if allowed is not None:
                dense = allowed.dense(tq, key.shape[2], device=query.device)
                bias = bias.masked_fill(~dense, float("-inf"))
        mask, causal = bias, False
    return mask, causal, key, value


def _wants_weights(kwargs: dict) -> bool:
    if kwargs.get("output_attentions"):
        return True
    try:  # the output collector of transformers 5 (``output_attentions`` on the model)
        from transformers.utils.output_capturing import _active_collector

        collected = _active_collector.get() or {}
    except (ImportError, AttributeError, LookupError):  # pragma: no cover - other versions
        return False
    return "attentions" in collected or "cross_attentions" in collected


def attnlab_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[Tensor, Tensor | None]:
    """Attention function for ``AttentionInterface``: :func:`attnlab.ops.attention`.

    Args:
        module: the calling attention module.
        query: ``(B, H, Tq, D)``; key, value: ``(B, Hkv, Tk, D)`` (GQA: ``H % Hkv == 0``,
            never repeated).
        attention_mask: an :class:`HFMask`, a bool (True = attend) or additive float
            tensor broadcastable to ``(B, H, Tq, Tk)``, or None.
        dropout: dropout on the weights (the modules pass 0 in eval mode).
        scaling: score scale (default ``1 / sqrt(D)``).
        is_causal: overrides ``module.is_causal`` when there is no mask.

    Returns:
        ``(out (B, Tq, H, D), weights)``; weights ``(B, H, Tq, Tk)`` only when the caller
        asks for attentions (``output_attentions=True``), else None.

    Raises:
        ValueError: options attnlab does not implement (``softcap``, attention sinks).
    """
    for opt in ("softcap", "s_aux"):
        if kwargs.get(opt) is not None:
            raise ValueError(
                f"{type(module).__name__} passes {opt}, which attnlab attention does not "
                "implement; load the model with attn_implementation='eager'"
            )
    mask, causal, key, value = resolve_mask(
        module,
        query,
        key,
        value,
        attention_mask,
        is_causal=is_causal,
        position_bias=kwargs.get("position_bias"),
    )
    out = attention(
        query,
        key,
        value,
        mask=mask,
        causal=causal,
        scale=scaling,
        dropout_p=dropout,
        backend=_settings["backend"],
    )  # (B, H, Tq, Dv)
    weights = None
    if _wants_weights(kwargs):
        weights = attention_weights(query, key, mask=mask, causal=causal, scale=scaling)
    callbacks = _observers.get(id(module))
    if callbacks:
        seen = SeenAttention(module, query, key, mask, causal, scaling)
        for callback in callbacks:
            callback(seen)
    return out.transpose(1, 2).contiguous(), weights  # (B, Tq, H, Dv)


# -- observing attention calls (used by attnlab.capture) --------------------------------


@dataclass(frozen=True)
class SeenAttention:
    """One call of a transformers attention module, as :func:`attnlab.ops.attention` reads it.

    ``attention_weights(query, key, mask=mask, causal=causal, scale=scale)`` gives the
    weights the call used (before dropout).
    """

    module: nn.Module
    query: Tensor  # (B, H, Tq, D)
    key: Tensor  # (B, Hkv, Tk, D)
    mask: M.Mask | Tensor | None
    causal: bool
    scale: float | None


_observers: dict[int, list[Callable[[SeenAttention], None]]] = {}
_lock = threading.Lock()
_patched: dict[str, Callable] = {}


@functools.cache
def _class_uses_interface(cls: type) -> bool:
    fwd = inspect.unwrap(getattr(cls, "forward", None) or (lambda: None))
    code = getattr(fwd, "__code__", None)
    return code is not None and "ALL_ATTENTION_FUNCTIONS" in code.co_names


def uses_attention_interface(module: nn.Module) -> bool:
    """True for a transformers module whose forward dispatches through the attention
    interface (``ALL_ATTENTION_FUNCTIONS``): every attention of models written for it."""
    return _class_uses_interface(type(module))


def attention_role(module: nn.Module) -> str:
    """``"cross"`` for a transformers cross-attention module, else ``"self"``."""
    cross = bool(getattr(module, "is_cross_attention", False))
    return "cross" if cross or "crossattention" in type(module).__name__.lower() else "self"


def _watching(fn: Callable, impl: str) -> Callable:
    """``fn`` (the implementation a model resolved) reporting calls of observed modules."""

    @functools.wraps(fn)
    def watched(module, query, key, value, attention_mask, *args, **kwargs):
        out = fn(module, query, key, value, attention_mask, *args, **kwargs)
        callbacks = _observers.get(id(module))
        if callbacks:
            named = dict(zip(("dropout", "scaling", "is_causal"), args, strict=False))
            named.update(kwargs)
            mask, causal, k, _ = resolve_mask(
                module,
                query,
                key,
                value,
                attention_mask,
                is_causal=named.get("is_causal"),
                position_bias=named.get("position_bias"),
                sdpa_rules=impl != "eager",
            )
            seen = SeenAttention(module, query, k, mask, causal, named.get("scaling"))
            for callback in callbacks:
                callback(seen)
        return out

    return watched


def _install() -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = type(ALL_ATTENTION_FUNCTIONS).get_interface.__get__(ALL_ATTENTION_FUNCTIONS)

    def get_interface(attn_implementation, default):
        fn = original(attn_implementation, default)
        if attn_implementation == NAME:
            return fn  # reports to observers itself
        return _watching(fn, attn_implementation or "eager")

    ALL_ATTENTION_FUNCTIONS.get_interface = get_interface
    _patched["get_interface"] = get_interface


def _uninstall() -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if ALL_ATTENTION_FUNCTIONS.__dict__.get("get_interface") is _patched.pop("get_interface", None):
        del ALL_ATTENTION_FUNCTIONS.get_interface


@contextmanager
def observe(callbacks: dict[nn.Module, Callable[[SeenAttention], None]]) -> Iterator[None]:
    """Report every call of the given transformers attention modules while active.

    A model running ``attn_implementation="attnlab"`` reports from its attention
    function. For any other implementation (``sdpa``, ``eager``, flash, ...) the function
    transformers resolves for each call is wrapped: it runs unchanged and then reports,
    so the model's outputs stay bit-identical. Observers may nest.
    """
    with _lock:
        for m, cb in callbacks.items():
            _observers.setdefault(id(m), []).append(cb)
        if callbacks and "get_interface" not in _patched:
            _install()
    try:
        yield
    finally:
        with _lock:
            for m, cb in callbacks.items():
                left = [c for c in _observers.get(id(m), []) if c is not cb]
                if left:
                    _observers[id(m)] = left
                else:
                    _observers.pop(id(m), None)
            if not _observers and "get_interface" in _patched:
                _uninstall()
