"""Explanation maps drawn over their images: a figure of examples x methods, and the
channel gates of SE / CBAM blocks.

Figures are matplotlib ``Figure`` objects (no pyplot state); save them as PNG, SVG or
PDF with :func:`~attnlab.viz.plots.save_figure`.

Example:
    >>> import torch
    >>> from attnlab.viz.overlay import plot_explanations
    >>> images = torch.rand(3, 1, 28, 28)
    >>> maps = {"rollout": torch.rand(3, 28, 28), "gradient": torch.rand(3, 28, 28)}
    >>> fig = plot_explanations(images, maps, labels=["coat", "bag", "shirt"])
    >>> len(fig.axes)
    9
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["normalize_map", "overlay", "plot_explanations", "plot_gates"]


def normalize_map(m: Tensor) -> Tensor:
    """Scale each ``(..., H, W)`` map to ``[0, 1]`` (min to 0, max to 1; flat maps to 0)."""
    flat = m.detach().float().flatten(-2)
    lo = flat.amin(-1, keepdim=True)
    span = flat.amax(-1, keepdim=True) - lo
    out = (flat - lo) / torch.where(span > 0, span, torch.ones_like(span))
    return out.view(m.shape)


def _image_rgb(image: Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> ``(H, W, 3)`` float array."""
    x = image.detach().float().clamp(0, 1).cpu()
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with 1 or 3 channels, got {tuple(x.shape)}")
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.permute(1, 2, 0).numpy()


def overlay(
    image: Tensor, heat: Tensor, *, alpha: float = 0.55, cmap: str = "inferno"
) -> np.ndarray:
    """An RGB array of ``image`` with ``heat`` blended over it.

    Args:
        image: ``(C, H, W)`` in [0, 1].
        heat: ``(H, W)`` map (scaled to [0, 1] here).
        alpha: opacity of the heat at its maximum (it fades with the value).
        cmap: matplotlib colormap.

    Returns:
        ``(H, W, 3)`` float array in [0, 1].
    """
    from matplotlib import colormaps

    base = _image_rgb(image)
    if tuple(heat.shape) != base.shape[:2]:
        raise ValueError(f"heat map {tuple(heat.shape)} does not match the image {base.shape[:2]}")
    h = normalize_map(heat).cpu().numpy()
    colour = colormaps[cmap](h)[..., :3]
    a = alpha * h[..., None]
    return base * (1 - a) + colour * a


def plot_explanations(
    images: Tensor,
    maps: Mapping[str, Tensor],
    *,
    labels: Sequence[str] | None = None,
    cmap: str = "inferno",
    alpha: float = 0.6,
    cell: float = 1.5,
):
    """A grid: one row per example, the image then one overlay per method.

    Args:
        images: ``(B, C, H, W)`` in [0, 1].
        maps: method name -> ``(B, H, W)`` map.
        labels: a caption per example (e.g. "coat (p=0.93)").
        cell: inches per panel.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    b = images.shape[0]
    for name, m in maps.items():
        if tuple(m.shape) != (b, *images.shape[-2:]):
            raise ValueError(
                f"map {name!r} has shape {tuple(m.shape)}, expected {(b, *images.shape[-2:])}"
            )
    if labels is not None and len(labels) != b:
        raise ValueError(f"{len(labels)} labels for {b} images")
    cols = 1 + len(maps)
    fig = Figure(figsize=(cell * cols, cell * b + 0.3), layout="constrained")
    axes = fig.subplots(b, cols, squeeze=False)
    for i in range(b):
        axes[i][0].imshow(_image_rgb(images[i]), interpolation="nearest")
        if labels is not None:
            axes[i][0].set_ylabel(str(labels[i]), fontsize=7)
        for j, (name, m) in enumerate(maps.items(), 1):
            axes[i][j].imshow(
                overlay(images[i], m[i], alpha=alpha, cmap=cmap), interpolation="nearest"
            )
            if i == 0:
                axes[i][j].set_title(name, fontsize=8)
        if i == 0:
            axes[i][0].set_title("image", fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def plot_gates(gates: Sequence[tuple[str, Tensor]], *, example: int = 0, cell: float = 1.2):
    """Bar charts of the SE / CBAM channel gates of one example, one panel per block.

    Args:
        gates: ``(name, (B, C))`` pairs, as in :class:`~attnlab.viz.explanation.ConvAttention`.
        example: which example of the batch.
    """
    from matplotlib.figure import Figure

    if not gates:
        raise ValueError("no channel gates given (the model has no SE or CBAM blocks)")
    fig = Figure(figsize=(3.2 * len(gates), 1.4 + cell), layout="constrained")
    axes = fig.subplots(1, len(gates), squeeze=False)[0]
    for ax, (name, g) in zip(axes, gates, strict=True):
        v = g[example].detach().float().cpu().numpy()
        ax.bar(np.arange(v.size), v, width=1.0, color="tab:blue")
        ax.set_ylim(0, 1)
        ax.set_title(f"{name} ({v.size} channels)", fontsize=8)
        ax.set_xlabel("channel", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_ylabel("gate", fontsize=7)
    return fig
