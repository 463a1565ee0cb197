"""Record attention weights from a running model, without changing it.

Nothing is stored on the model and its forward pass is not changed: the recorders read
the queries, keys and masks that the model computes anyway and recompute the softmax
weights with :func:`attnlab.ops.attention_weights`, so a model keeps running its fast
(SDPA, fused or attnlab) path while it is being watched. Each entry carries the role of
its attention (``self``, ``cross``, ``pool``, ``channel-gate``, ``spatial``), set where
it is recorded.

Recognised modules (found by walking ``model.named_modules()``), one file per family:

* attnlab's :class:`~attnlab.layers.AttentionCore` (recomputed from ``q, k`` and the
  mask keywords) and :class:`~attnlab.layers.WeightsTap` (weights and gates recorded
  as given) — :mod:`attnlab.capture.seams`;
* :class:`torch.nn.MultiheadAttention`, also inside ``nn.TransformerEncoder``'s nested
  fast path — :mod:`attnlab.capture.torch_mha`;
* Hugging Face attention: at the attention function for models written for
  transformers' attention interface (any ``attn_implementation``), through hooks for
  older BERT-style modules — :mod:`attnlab.capture.huggingface`.

Example:
    >>> from attnlab.models.pretrained import load_pretrained
    >>> from attnlab.capture import capture
    >>> model, tok = load_pretrained("minilm")
    >>> batch = tok(["a short one", "and a longer second sentence"], padding=True,
    ...             return_tensors="pt")
    >>> with capture(model, tokenizer=tok, layers=[0, -1], heads=[0, 3]) as rec:
    ...     _ = model(**batch)
    >>> rec.weights[0].shape          # (B, H', T, T) with padding
    torch.Size([2, 2, 7, 7])
    >>> rec.roles
    ['self', 'self']
    >>> rec.example(0)[0].shape       # padding stripped: (H', T_0, T_0)
    torch.Size([2, 5, 5])
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack

from torch import Tensor, nn

from attnlab.capture import huggingface, seams, torch_mha
from attnlab.capture.recording import Entry, Recording

__all__ = ["CaptureWarning", "attention_modules", "capture"]

_FAMILIES = (seams.match, torch_mha.match, huggingface.match)
_LOOKS_LIKE_ATTENTION = re.compile("attention|attn", re.IGNORECASE)


class CaptureWarning(UserWarning):
    """Some attention of the model is not being recorded."""


def _kind(module: nn.Module) -> str | None:
    """Which recorder handles ``module`` (None: not an attention module)."""
    for match in _FAMILIES:
        kind = match(module)
        if kind is not None:
            return kind
    return None


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """The attention modules of ``model`` that :func:`capture` can record, in order.

    Returns:
        ``(name, module, kind)`` triples; ``kind`` is ``"core"``, ``"tap"``, ``"mha"``,
        ``"hf"`` (a transformers module recorded at its attention function) or
        ``"hf-hooks"``. Modules nested inside another found module are skipped.
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


def _unrecognised(model: nn.Module, found: list[tuple[str, nn.Module, str]]) -> list[str]:
    """Modules whose class name says attention but that no recorder handles, and that
    neither hold nor sit inside a recognised module: ``"name (Class)"``, outermost only."""
    names = [n for n, _, _ in found]
    out: list[str] = []
    for name, module in model.named_modules():
        if not name or not _LOOKS_LIKE_ATTENTION.search(type(module).__name__):
            continue
        if any(n == name or n.startswith(f"{name}.") or name.startswith(f"{n}.") for n in names):
            continue
        if any(name.startswith(f"{o.split(' ')[0]}.") for o in out):
            continue
        out.append(f"{name} ({type(module).__name__})")
    return out


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


def _no_attention_error(model: nn.Module) -> ValueError:
    looks = _unrecognised(model, [])
    here = (
        f"modules here that look like attention but are none of these: {', '.join(looks)}"
        if looks
        else "no module here has 'attention' or 'attn' in its class name"
    )
    return ValueError(
        f"{type(model).__name__} has no attention module that capture can record. It looks "
        f"for attnlab AttentionCore and WeightsTap, torch.nn.MultiheadAttention and "
        f"{huggingface.LOOKED_FOR}; {here}"
    )


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
            raise _no_attention_error(model)
        missed = _unrecognised(model, mods)
        if missed:
            warnings.warn(
                f"capture records {len(mods)} attention modules of {type(model).__name__} "
                f"but cannot record {', '.join(missed)}",
                CaptureWarning,
                stacklevel=3,
            )
        self.modules = _select(mods, layers)
        self.rec = Recording()
        self.handles: list = []
        self.stack = ExitStack()
        self.nested = None  # (src, padding mask, batch_first) of a running TransformerEncoder
        self.calls: Counter[str] = Counter()
        self.recorded: Counter[str] = Counter()

    # -- used by the families ----------------------------------------------------------
    def heads_for(self, h: int, *, strict: bool = True) -> list[int]:
        """The selected heads of a module with ``h`` heads."""
        if self.head_sel is None:
            return list(range(h))
        bad = [i for i in self.head_sel if i >= h]
        if bad and not strict:  # a single-head pooling tap among multi-head layers
            return [i for i in self.head_sel if i < h] or list(range(h))
        if bad:
            raise ValueError(f"heads {bad} out of range for a module with {h} heads")
        return list(self.head_sel)

    def add(self, entry: Entry) -> None:
        self.recorded[entry.name] += 1
        self.rec.add(entry)

    # -- hooks -------------------------------------------------------------------------
    def _root_hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not isinstance(ids, Tensor) or ids.dtype.is_floating_point or ids.dim() != 2:
            return
        am = kwargs.get("attention_mask")
        keep = am.bool() if isinstance(am, Tensor) and am.shape == ids.shape else ids == ids
        self.rec.tokens = [
            list(self.tokenizer.convert_ids_to_tokens(row[m].tolist()))
            for row, m in zip(ids, keep, strict=True)
        ]

    def _count(self, name: str):
        def pre(*_):
            self.calls[name] += 1

        return pre

    # -- install / remove --------------------------------------------------------------
    def install(self) -> Recording:
        observed = {}
        try:
            for name, module, kind in self.modules:
                if kind in ("core", "tap"):
                    self.handles.extend(seams.install(self, name, module))
                elif kind == "mha":
                    self.handles.extend(torch_mha.install(self, name, module))
                elif kind == "hf":
                    observed[module] = huggingface.callback(self, name, module)
                    self.handles.append(module.register_forward_pre_hook(self._count(name)))
                else:
                    self.handles.extend(huggingface.install_hooks(self, name, module))
            for m in self.model.modules():
                if isinstance(m, nn.TransformerEncoder):
                    self.handles.extend(torch_mha.install_encoder(self, m))
            if observed:
                from attnlab.integrations.transformers import observe

                self.stack.enter_context(observe(observed))
            if self.tokenizer is not None:
                self.handles.append(
                    self.model.register_forward_pre_hook(self._root_hook, with_kwargs=True)
                )
        except BaseException:
            self.remove(check=False)
            raise
        return self.rec

    def remove(self, *, check: bool = True) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.stack.close()
        silent = sorted(n for n, c in self.calls.items() if c and not self.recorded[n])
        self.calls.clear()
        if check and silent:
            warnings.warn(
                f"capture found these attention modules of {type(self.model).__name__} but "
                f"they ran without reaching transformers' attention interface, so nothing "
                f"was recorded for them: {', '.join(silent)}",
                CaptureWarning,
                stacklevel=3,
            )


class capture:  # lower case: used like torch.no_grad
    """Record the attention weights of ``model`` while the ``with`` block runs.

    Args:
        model: any ``nn.Module`` holding attnlab layers, ``nn.MultiheadAttention`` or
            Hugging Face attention (any ``attn_implementation``).
        layers: which attention modules to record: indices into
            :func:`attention_modules` (negative allowed) or module names / glob patterns
            (``"encoder.layer.*"``); default all.
        heads: head indices to record in every module; default all.
        tokenizer: optional Hugging Face tokenizer (default: ``model.tokenizer`` if the
            model has one); when the model is called with ``input_ids``, ``rec.tokens``
            holds the tokens of each example.

    The weights are those before attention dropout (identical in eval mode). A model
    with attention modules capture cannot record warns once (:class:`CaptureWarning`)
    and names them.

    Returns:
        On ``__enter__``, the :class:`Recording` that fills up as the model runs.

    Raises:
        ValueError: no recordable attention module (the message says what capture looks
            for and which modules of the model look like attention), or a layer/head out
            of range.
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

    def __exit__(self, exc_type, *exc) -> None:
        self._recorder.remove(check=exc_type is None)
