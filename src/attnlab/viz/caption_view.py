"""Where each word of a caption looked: a figure (the image, then one overlay per word) and
an offline HTML view (click a word, see its attention on the image; pick a layer and a head).

Both take :class:`~attnlab.tasks.caption.Caption` objects, as
:meth:`CaptionRun.caption <attnlab.tasks.caption.CaptionRun.caption>` returns them. The
view is one self-contained file: its script (``viz/assets/caption_view.js``) and style are
inlined, a Content Security Policy forbids every network request, and the maps travel as
uint8 relative to each row's maximum, zlib-compressed (as in :mod:`attnlab.viz.views`).

Example:
    >>> import torch
    >>> from attnlab.tasks.caption import Caption
    >>> cap = Caption(["one", "two"], torch.rand(1, 1, 2, 4, 16).softmax(-1),
    ...               torch.rand(1, 32, 128), [], (8, 8))
    >>> fig = plot_caption([cap])
    >>> len(fig.axes)
    3
    >>> CaptionView([cap]).save("caption.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from attnlab.viz.overlay import overlay
from attnlab.viz.views import _CSP, MAX_BYTES, _json_for_script, assets, encode_map

__all__ = ["CaptionView", "export_captions", "plot_caption", "word_heat"]


def word_heat(caption, k: int, *, layer: int | None = None, head: int | None = None) -> Tensor:
    """Word ``k``'s attention over the image, bilinear at image resolution ``(H, W)``.

    Args:
        caption: a :class:`~attnlab.tasks.caption.Caption` with attention.
        k: word index.
        layer, head: one layer / head (default: the mean).
    """
    a = caption.attention  # (L, H, K, h, w)
    a = a.mean(0) if layer is None else a[layer]
    a = a.mean(0) if head is None else a[head]
    h, w = caption.image.shape[-2:]
    return F.interpolate(a[k][None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]


def plot_caption(captions: Sequence, *, labels: Sequence[str] | None = None, cell: float = 1.6):
    """A figure with one row per caption: the image, then the image under each word's
    attention (averaged over layers and heads).

    Args:
        captions: :class:`~attnlab.tasks.caption.Caption` objects.
        labels: a line per row (default: the caption text).
        cell: inches per panel height.

    Returns:
        A matplotlib ``Figure`` (save it with :func:`attnlab.viz.save_figure`).
    """
    from matplotlib.figure import Figure

    if not captions:
        raise ValueError("no captions to draw")
    if labels is not None and len(labels) != len(captions):
        raise ValueError(f"{len(labels)} labels for {len(captions)} captions")
    cols = 1 + max(len(c.words) for c in captions)
    h, w = captions[0].image.shape[-2:]
    aspect = w / h
    fig = Figure(
        figsize=(cell * aspect * cols * 0.9, cell * len(captions) + 0.3), layout="constrained"
    )
    axes = fig.subplots(len(captions), cols, squeeze=False)
    for r, cap in enumerate(captions):
        img = cap.image.float().clamp(0, 1)
        axes[r][0].imshow(
            overlay(img, torch.zeros(img.shape[-2:]), alpha=0.0), interpolation="nearest"
        )
        text = cap.text or "(empty caption)"
        axes[r][0].set_title(f"{labels[r]}: {text}" if labels is not None else text, fontsize=8)
        for k, word in enumerate(cap.words):
            ax = axes[r][k + 1]
            if cap.attention is None:
                ax.imshow(overlay(img, torch.zeros(img.shape[-2:]), alpha=0.0))
                ax.set_title(f"{word} (no attention)", fontsize=8)
            else:
                ax.imshow(overlay(img, word_heat(cap, k), alpha=0.6), interpolation="nearest")
                ax.set_title(word, fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            if not ax.images:
                ax.set_axis_off()
    return fig


_CSS = """
.al-caption-view canvas.al-image { width: 512px; max-width: 100%; height: auto;
  border: 1px solid var(--line); image-rendering: pixelated; }
.al-caption-view .al-words { margin: 6px 0; display: flex; flex-wrap: wrap; gap: 4px; }
.al-caption-view .al-words button { font: inherit; padding: 2px 8px; cursor: pointer;
  border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
.al-caption-view .al-words button[aria-pressed="true"] { background: #f59e0b; color: #000; }
"""


@cache
def _script() -> str:
    js = (resources.files("attnlab.viz") / "assets" / "caption_view.js").read_text(encoding="utf-8")
    if "</script" in js.lower():
        raise RuntimeError("caption_view.js must not contain </script")
    return js


class CaptionView:
    """Captions with the attention of every word, as one offline HTML page.

    Args:
        captions: :class:`~attnlab.tasks.caption.Caption` objects (with attention).
        labels: a line per image (e.g. its file name).
        title: page title.
        max_bytes: refuse to build a page larger than this.
    """

    def __init__(
        self,
        captions: Sequence,
        *,
        labels: Sequence[str] | None = None,
        title: str = "caption attention",
        max_bytes: int = MAX_BYTES,
    ) -> None:
        if not captions:
            raise ValueError("no captions to show")
        if any(c.attention is None for c in captions):
            raise ValueError("these captions carry no attention (a model without attention)")
        self.captions = list(captions)
        self.labels = (
            [str(s) for s in labels]
            if labels is not None
            else [f"image {i}" for i in range(len(self.captions))]
        )
        if len(self.labels) != len(self.captions):
            raise ValueError(f"{len(self.labels)} labels for {len(self.captions)} captions")
        self.title, self.max_bytes = title, int(max_bytes)

    def payload(self) -> dict:
        """The JSON data the page draws."""
        examples = []
        for cap, label in zip(self.captions, self.labels, strict=True):
            img = cap.image.float().clamp(0, 1)
            pixels = (img * 255).round().to(torch.uint8).numpy().tobytes()  # (C, H, W)
            a = cap.attention.float()  # (L, H, K, h, w)
            n_l, n_h, k, gh, gw = a.shape
            examples.append(
                {
                    "label": label,
                    "words": list(cap.words),
                    "notes": list(cap.notes),
                    "shape": list(img.shape),
                    "pixels": base64.b64encode(pixels).decode("ascii"),
                    "grid": [gh, gw],
                    "layers": n_l,
                    "heads": n_h,
                    "attention": encode_map(a.reshape(n_l * n_h * k, gh * gw).numpy())
                    if k
                    else None,
                }
            )
        return {"title": self.title, "examples": examples}

    def html(self) -> str:
        """The complete, self-contained HTML document.

        Raises:
            ValueError: the page would exceed ``max_bytes``.
        """
        _, css = assets()
        csp = _CSP.format(connect="'none'")
        doc = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{css}\n{_CSS}</style>\n"
            f"<script>{_script()}</script>\n</head><body>\n"
            '<div id="attnlab-root"></div>\n'
            f'<script type="application/json" id="attnlab-data">{_json_for_script(self.payload())}</script>\n'
            "<script>attnlabCaption.mount(document.getElementById('attnlab-root'), "
            "JSON.parse(document.getElementById('attnlab-data').textContent));</script>\n"
            "</body></html>\n"
        )
        size = len(doc.encode("utf-8"))
        if size > self.max_bytes:
            raise ValueError(
                f"the caption view is {size:,} bytes, over max_bytes={self.max_bytes:,}; "
                "show fewer images or raise max_bytes"
            )
        return doc

    def save(self, path: str | Path) -> Path:
        """Write the view to ``path`` (``.html``); returns the path."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"views are saved as .html, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path


def export_captions(
    captions: Sequence, out: str | Path, *, labels: Sequence[str] | None = None
) -> Path:
    """Write captions with their attention to ``out``: ``.html`` is the offline view,
    ``.png``/``.svg``/``.pdf`` the figure of :func:`plot_caption`.

    Raises:
        ValueError: another suffix, or an HTML view of captions without attention.
    """
    from attnlab.viz.plots import FORMATS, save_figure

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in (".html", ".htm"):
        return CaptionView(captions, labels=labels).save(out)
    if suffix in FORMATS:
        return save_figure(plot_caption(captions, labels=labels), out)
    raise ValueError(f"cannot write {out.name!r}; use .html, {', '.join(FORMATS)}")
