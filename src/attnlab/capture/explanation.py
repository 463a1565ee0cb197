"""Explanations of image classifiers as maps over the input pixels.

Methods (:data:`METHODS`), each a ``(B, H, W)`` non-negative map where larger means
"mattered more" for the explained class:

* ``rollout`` - attention rollout with the residual identity (Abnar & Zuidema 2020),
  the [CLS] row over the patches;
* ``flow`` - attention flow (same paper), max-flow from each patch into [CLS];
* ``grad-rollout`` - gradient-weighted rollout (Chefer et al. 2021);
* ``attention`` - raw [CLS] attention of one layer (default the last), one head or the
  head mean;
* ``cbam`` - CBAM spatial attention maps, averaged over the stages at input size;
* ``gradient`` - plain input-gradient saliency, ``max_c |d y / d x_c|`` (Simonyan et al.
  2014); works for any differentiable model.

The ViT methods work on attnlab's :class:`~attnlab.models.vision.VisionTransformer` and on
a Hugging Face ``ViTForImageClassification``, whose attention is read with
``output_attentions=True`` (eager attention for that call). Patch maps are resized to the
image bilinearly.

Example:
    >>> import torch
    >>> from attnlab.models import create_model
    >>> from attnlab.models.vision import ImageDims
    >>> model = create_model("vit", dims=ImageDims(1, 28, 28, 10)).eval()
    >>> explain(model, torch.rand(2, 1, 28, 28), "rollout").shape
    torch.Size([2, 28, 28])
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.capture.aggregate import aggregate_heads, grad_rollout, rollout
from attnlab.capture.flow import attention_flow
from attnlab.layers.conv_attention import ChannelAttention, SpatialAttention, SqueezeExcite
from attnlab.layers.core import AttentionCore
from attnlab.ops import masks as M
from attnlab.ops.reference import expand_kv, masked_softmax

__all__ = [
    "METHODS",
    "ConvAttention",
    "ViTAttention",
    "applicable_methods",
    "conv_attention",
    "explain",
    "explicit_attention",
    "input_gradient",
    "vit_attention",
]

METHODS = ("rollout", "flow", "grad-rollout", "attention", "cbam", "gradient")
_VIT_METHODS = ("rollout", "flow", "grad-rollout", "attention")


def _logits(output) -> Tensor:
    return output.logits if hasattr(output, "logits") else output


def _is_hf_vit(model: nn.Module) -> bool:
    cfg = getattr(model, "config", None)
    return hasattr(cfg, "patch_size") and hasattr(cfg, "output_attentions")


def _attn_cores(model: nn.Module) -> list[AttentionCore]:
    return [m for m in model.modules() if isinstance(m, AttentionCore)]


@contextmanager
def explicit_attention(model: nn.Module):
    """Run every :class:`~attnlab.layers.AttentionCore` of ``model`` as explicit
    ``softmax(q k^T * scale) @ v`` and collect the weights, which stay in the autograd
    graph (so gradients with respect to the attention can be taken).

    Yields:
        A list that receives one ``(B, H, Tq, Tk)`` weight tensor per call, in call order.

    Example:
        >>> import torch
        >>> from attnlab.layers import TransformerEncoderBlock
        >>> block = TransformerEncoderBlock(16, 2)
        >>> with explicit_attention(block) as weights:
        ...     _ = block(torch.randn(1, 5, 16))
        >>> weights[0].shape
        torch.Size([1, 2, 5, 5])
    """
    weights: list[Tensor] = []

    def hook(module, args, kwargs, output):
        q, k, v = (*args, *(kwargs[n] for n in ("q", "k", "v")[len(args) :]))
        if kwargs.get("score", "dot") != "dot":
            raise ValueError(
                f"explicit attention supports dot-product scores, got {kwargs['score']!r}"
            )
        mask, bias = M.from_args(
            kwargs.get("mask"), kwargs.get("causal", False), kwargs.get("window")
        )
        h = q.shape[1]
        k, v = expand_kv(k, h), expand_kv(v, h)  # (B, H, Tk, D)
        scale = kwargs.get("scale") or q.shape[-1] ** -0.5
        scores = q @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()  # the softmax in float32, as the fast backends do
        scores = scores * scale
        if bias is not None:
            scores = scores + bias
        tq, tk = scores.shape[-2:]
        dense = mask.dense(tq, tk, device=q.device) if mask is not None else None
        w = masked_softmax(scores, dense)  # (B, H, Tq, Tk)
        weights.append(w)
        return (w.to(v.dtype) @ v).to(output.dtype)  # (B, H, Tq, Dv), replaces the output

    cores = _attn_cores(model)
    handles = [c.register_forward_hook(hook, with_kwargs=True) for c in cores]
    try:
        yield weights
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class ViTAttention:
    """A ViT's forward pass with its attention.

    Attributes:
        logits: ``(B, classes)``.
        weights: one ``(B, H, T, T)`` tensor per layer (in the autograd graph when asked).
        grid: the patch grid ``(h, w)``; tokens ``prefix..`` are its patches, row-major.
        prefix: number of tokens before the patches ([CLS], distillation token).
    """

    logits: Tensor
    weights: list[Tensor]
    grid: tuple[int, int]
    prefix: int

    def stacked(self) -> Tensor:
        """``(B, L, H, T, T)``."""
        return torch.stack(self.weights, 1)


@contextmanager
def _eager(model: nn.Module):
    """Run a Hugging Face model with eager attention (the only one that returns weights;
    the same numbers as SDPA), restoring its own implementation afterwards."""
    impl = getattr(model.config, "_attn_implementation", "eager")
    switch = impl != "eager" and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(impl)


def vit_attention(model: nn.Module, images: Tensor, *, grad: bool = False) -> ViTAttention:
    """Run a ViT on ``images (B, C, H, W)`` and return logits and per-layer attention.

    Works for attnlab's ``VisionTransformer`` (through :func:`explicit_attention`) and
    Hugging Face ``ViTForImageClassification`` (``output_attentions=True``; a model
    loaded with SDPA attention runs eager attention for this call).

    Args:
        grad: keep the graph so gradients with respect to the weights can be taken.

    Raises:
        TypeError: ``model`` is neither.
    """
    with torch.set_grad_enabled(grad):
        if _is_hf_vit(model):
            with _eager(model):
                out = model(pixel_values=images, output_attentions=True)
            weights = list(out.attentions or ())
            if not weights:
                raise ValueError(
                    "the Hugging Face model returned no attentions; load it with "
                    'attn_implementation="eager"'
                )
            p = model.config.patch_size
            grid = (images.shape[-2] // p, images.shape[-1] // p)
            logits = out.logits
        elif hasattr(model, "grid") and _attn_cores(model):
            with explicit_attention(model) as weights:
                logits = _logits(model(images))
            grid = tuple(model.grid())
        else:
            raise TypeError(
                f"{type(model).__name__} is not a ViT that attnlab can read (attnlab "
                "VisionTransformer or transformers ViTForImageClassification)"
            )
    t = weights[0].shape[-1]
    prefix = t - grid[0] * grid[1]
    if prefix < 0:
        raise ValueError(f"{t} tokens for a {grid[0]}x{grid[1]} patch grid")
    return ViTAttention(logits, weights, (int(grid[0]), int(grid[1])), prefix)


@dataclass
class ConvAttention:
    """The attention maps of a CNN with SE / CBAM blocks.

    Attributes:
        logits: ``(B, classes)``.
        spatial: ``(name, (B, 1, h, w))`` CBAM spatial maps, in forward order.
        gates: ``(name, (B, C))`` channel gates of SE and CBAM, in forward order.
    """

    logits: Tensor
    spatial: list[tuple[str, Tensor]]
    gates: list[tuple[str, Tensor]]


@torch.no_grad()
def conv_attention(model: nn.Module, images: Tensor) -> ConvAttention:
    """Read the CBAM spatial maps and SE / CBAM channel gates of one forward pass.

    The maps are read with forward hooks on ``SpatialAttention``, ``ChannelAttention``
    and ``SqueezeExcite.tap`` modules (nothing is stored on the model).
    """
    spatial: list[tuple[str, Tensor]] = []
    gates: list[tuple[str, Tensor]] = []

    def record(name: str, into: list, flatten: bool):
        def hook(_module, _args, out):
            out = out.detach().float()
            into.append((name, out.flatten(1) if flatten else out))  # (B, C) or (B, 1, h, w)

        return hook

    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, SpatialAttention):
            handles.append(mod.register_forward_hook(record(name, spatial, False)))
        elif isinstance(mod, ChannelAttention):
            handles.append(mod.register_forward_hook(record(name, gates, True)))
        elif isinstance(mod, SqueezeExcite):
            handles.append(mod.tap.register_forward_hook(record(name, gates, True)))
    try:
        logits = _logits(model(images))
    finally:
        for h in handles:
            h.remove()
    return ConvAttention(logits, spatial, gates)


def input_gradient(model: nn.Module, images: Tensor, target: Tensor | None = None) -> Tensor:
    """Input-gradient saliency ``max_c |d logit_target / d x_c|``: ``(B, H, W)``.

    Args:
        target: ``(B,)`` class per image; default the predicted class.
    """
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = _logits(model(x) if not _is_hf_vit(model) else model(pixel_values=x))
        target = logits.argmax(-1) if target is None else target
        logits.gather(1, target[:, None]).sum().backward()
    return x.grad.abs().amax(1)  # (B, H, W)


def _to_image(patch_map: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """``(B, N)`` patch values -> ``(B, H, W)`` resized bilinearly."""
    m = patch_map.reshape(-1, 1, *grid).float()  # (B, 1, h, w)
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)[:, 0]


def applicable_methods(model: nn.Module) -> list[str]:
    """The methods of :data:`METHODS` that apply to ``model``."""
    out = []
    if _is_hf_vit(model) or (hasattr(model, "grid") and _attn_cores(model)):
        out += list(_VIT_METHODS)
    if any(isinstance(m, SpatialAttention) for m in model.modules()):
        out.append("cbam")
    return [*out, "gradient"]


def explain(
    model: nn.Module,
    images: Tensor,
    method: str,
    *,
    target: Tensor | Sequence[int] | None = None,
    layer: int = -1,
    head: int | None = None,
) -> Tensor:
    """A ``(B, H, W)`` explanation map of each image by ``method``.

    Args:
        model: an image classifier in eval mode (``(B, C, H, W) -> logits``).
        images: ``(B, C, H, W)`` as the model takes them.
        method: one of :data:`METHODS` (see :func:`applicable_methods`).
        target: class to explain per image (``grad-rollout``, ``gradient``); default the
            predicted class. The attention-only methods do not depend on it.
        layer: layer of ``attention`` (default the last).
        head: head of ``attention`` (default the mean of heads).

    Raises:
        ValueError: unknown method, or one that does not apply to this model.
    """
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; methods: {', '.join(METHODS)}")
    if method not in applicable_methods(model):
        raise ValueError(
            f"method {method!r} does not apply to {type(model).__name__}; "
            f"applicable: {', '.join(applicable_methods(model))}"
        )
    size = (images.shape[-2], images.shape[-1])
    if target is not None:
        target = torch.as_tensor(target, dtype=torch.long)
    if method == "gradient":
        return input_gradient(model, images, target)
    if method == "cbam":
        maps = conv_attention(model, images).spatial
        up = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for _, m in maps]
        return torch.stack(up).mean(0)[:, 0]  # (B, H, W)
    att = vit_attention(model, images, grad=method == "grad-rollout")
    p = att.prefix
    if method == "grad-rollout":
        tgt = att.logits.argmax(-1) if target is None else target
        for w in att.weights:
            w.retain_grad()
        att.logits.gather(1, tgt[:, None]).sum().backward()
        w = att.stacked().detach()  # (B, L, H, T, T)
        g = torch.stack([w_.grad for w_ in att.weights], 1)  # (B, L, H, T, T)
        rel = grad_rollout(w, g)[:, 0, p:]  # (B, N)
        # The identity start gives [CLS] relevance to itself only; patches keep theirs.
    elif method == "rollout":
        rel = rollout(att.stacked().detach())[:, 0, p:]  # (B, N)
    elif method == "flow":
        w = att.stacked().detach()
        rel = torch.stack([attention_flow(w[b], query=0)[p:] for b in range(w.shape[0])])
    else:  # attention
        n = len(att.weights)
        if not -n <= layer < n:
            raise ValueError(f"layer {layer} out of range for {n} layers")
        w = att.weights[layer].detach()  # (B, H, T, T)
        if head is None:
            a = aggregate_heads(w, "mean")  # (B, T, T)
        else:
            if not -w.shape[1] <= head < w.shape[1]:
                raise ValueError(f"head {head} out of range for {w.shape[1]} heads")
            a = w[:, head]
        rel = a[:, 0, p:]  # (B, N)
    return _to_image(rel, att.grid, size)
