"""An offline HTML view of image explanations: one self-contained file.

Pick the example, the method (raw attention, rollout, flow, gradient-weighted rollout,
CBAM, input gradient), the layer and the head; hover a patch to see what it attends to
(raw attention and rollout). The script (``viz/assets/image_view.js``) and the style are
inlined and a Content Security Policy forbids every network request. Maps travel as
uint8 relative to each row's maximum, zlib-compressed and base64-encoded, like the
attention views of :mod:`attnlab.viz.views`.

Example:
    >>> import torch
    >>> from attnlab.models import create_model
    >>> from attnlab.models.vision import ImageDims
    >>> model = create_model("vit", dims=ImageDims(1, 28, 28, 10)).eval()
    >>> view = ImageExplanationView.from_model(model, torch.rand(2, 1, 28, 28))
    >>> view.save("explain.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor, nn

from attnlab.viz.aggregate import rollout
from attnlab.viz.views import _CSP, MAX_BYTES, _encode, _json_for_script, assets

__all__ = ["ImageExplanationView", "export_explanations"]

_CSS = """
.al-image-view .al-image-wrap { display: inline-block; }
.al-image-view canvas.al-image { width: 336px; height: auto; border: 1px solid var(--line);
  cursor: crosshair; image-rendering: pixelated; }
.al-image-view .al-caption { color: var(--muted); font-size: 12px; margin-top: 4px; }
"""


@cache
def _script() -> str:
    js = (resources.files("attnlab.viz") / "assets" / "image_view.js").read_text(encoding="utf-8")
    if "</script" in js.lower():
        raise RuntimeError("image_view.js must not contain </script")
    return js


class ImageExplanationView:
    """Images with explanation maps and (for a ViT) every layer's attention.

    Args:
        images: ``(B, C, H, W)`` in [0, 1] (C = 1 or 3).
        maps: method name -> ``(B, H, W)`` map (e.g. from :func:`~attnlab.viz.explanation.explain`).
        attention: ``(B, L, H, T, T)`` ViT attention (token 0..prefix-1 are [CLS] etc.,
            then the patches row-major over ``grid``), or None.
        grid: the patch grid ``(h, w)`` (with ``attention``).
        prefix: tokens before the patches.
        labels: a caption per image.
        title: page title.
        max_bytes: refuse to build a page larger than this.
    """

    def __init__(
        self,
        images: Tensor,
        *,
        maps: Mapping[str, Tensor] | None = None,
        attention: Tensor | None = None,
        grid: tuple[int, int] | None = None,
        prefix: int = 1,
        labels: Sequence[str] | None = None,
        title: str = "image explanations",
        max_bytes: int = MAX_BYTES,
    ) -> None:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"images must be (B, C, H, W) with 1 or 3 channels, got {tuple(images.shape)}"
            )
        b, _, h, w = images.shape
        self.images = images.detach().float().clamp(0, 1).cpu()
        self.maps = {k: v.detach().float().cpu() for k, v in (maps or {}).items()}
        for k, v in self.maps.items():
            if tuple(v.shape) != (b, h, w):
                raise ValueError(f"map {k!r} has shape {tuple(v.shape)}, expected {(b, h, w)}")
        self.attention = None if attention is None else attention.detach().float().cpu()
        if self.attention is not None:
            if grid is None:
                raise ValueError("attention needs grid=(h, w), the patch grid")
            a = self.attention
            t = prefix + grid[0] * grid[1]
            if a.dim() != 5 or a.shape[0] != b or a.shape[-1] != t or a.shape[-2] != t:
                raise ValueError(
                    f"attention must be (B, L, H, T, T) with B={b}, T={t}, got {tuple(a.shape)}"
                )
        if not self.maps and self.attention is None:
            raise ValueError("nothing to show: give maps and/or attention")
        self.grid, self.prefix = grid, int(prefix)
        self.labels = (
            [str(s) for s in labels] if labels is not None else [f"image {i}" for i in range(b)]
        )
        if len(self.labels) != b:
            raise ValueError(f"{len(self.labels)} labels for {b} images")
        self.title, self.max_bytes = title, int(max_bytes)
        self._order: list[str] | None = None

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        images: Tensor,
        *,
        methods: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> ImageExplanationView:
        """Explain ``images`` with every applicable method (or ``methods``) of ``model``;
        captions give the predicted class and its probability."""
        from attnlab.viz.explanation import _VIT_METHODS, applicable_methods, explain, vit_attention

        model.eval()
        names = list(methods or applicable_methods(model))
        maps = {m: explain(model, images, m) for m in names if m not in ("attention", "rollout")}
        attention = grid = None
        prefix = 1
        if any(m in _VIT_METHODS for m in names):
            att = vit_attention(model, images)
            attention, grid, prefix = att.stacked().detach(), att.grid, att.prefix
            logits = att.logits
        else:
            with torch.no_grad():
                logits = model(images)
                logits = getattr(logits, "logits", logits)
        p = torch.softmax(logits.float(), -1)
        conf, pred = p.max(-1)
        names_ = list(class_names) if class_names else [str(i) for i in range(p.shape[-1])]
        labels = [
            f"predicted {names_[int(k)]} (p={float(c):.2f})"
            for k, c in zip(pred, conf, strict=True)
        ]
        kwargs.setdefault("labels", labels)
        view = cls(images, maps=maps, attention=attention, grid=grid, prefix=prefix, **kwargs)
        view._order = [m for m in names if m in maps or attention is not None]
        return view

    def methods(self) -> list[str]:
        """Methods offered by the page, in order."""
        have = list(self.maps)
        if self.attention is not None:
            have = ["attention", "rollout", *have]
        if self._order:
            return [m for m in self._order if m in have] + [m for m in have if m not in self._order]
        return have

    def payload(self) -> dict:
        """The JSON data the page draws."""
        examples = []
        for i in range(self.images.shape[0]):
            pixels = (self.images[i] * 255).round().to(torch.uint8).numpy().tobytes()  # (C, H, W)
            ex = {
                "label": self.labels[i],
                "shape": list(self.images.shape[1:]),
                "pixels": base64.b64encode(pixels).decode("ascii"),
                "maps": {k: _encode(v[i].numpy(), 8) for k, v in self.maps.items()},
            }
            if self.attention is not None:
                a = self.attention[i]  # (L, H, T, T)
                n_l, n_h, t, _ = a.shape
                ex["attention"] = _encode(a.reshape(n_l * n_h * t, t).numpy(), 8)
                roll = rollout(a, all_layers=True)  # (L, T, T)
                ex["rollout"] = _encode(roll.reshape(n_l * t, t).numpy(), 8)
            examples.append(ex)
        layers = heads = 0
        if self.attention is not None:
            layers, heads = int(self.attention.shape[1]), int(self.attention.shape[2])
        return {
            "title": self.title,
            "methods": self.methods(),
            "layers": layers,
            "heads": heads,
            "grid": list(self.grid) if self.grid else None,
            "prefix": self.prefix,
            "examples": examples,
        }

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
            "<script>attnlabImage.mount(document.getElementById('attnlab-root'), "
            "JSON.parse(document.getElementById('attnlab-data').textContent));</script>\n"
            "</body></html>\n"
        )
        size = len(doc.encode("utf-8"))
        if size > self.max_bytes:
            raise ValueError(
                f"the image view is {size:,} bytes, over max_bytes={self.max_bytes:,}; "
                "show fewer images or raise max_bytes"
            )
        return doc

    def _repr_html_(self) -> str:
        doc = html.escape(self.html(), quote=True)
        return (
            f'<iframe srcdoc="{doc}" sandbox="allow-scripts" '
            'style="width:100%;height:520px;border:0"></iframe>'
        )

    def save(self, path: str | Path) -> Path:
        """Write the view to ``path`` (``.html``); returns the path."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"views are saved as .html, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path


def export_explanations(
    model: nn.Module,
    images: Tensor,
    out: str | Path,
    *,
    method: str | None = None,
    class_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Write explanations of ``images (B, C, H, W)`` to ``out``: ``.html`` is the offline
    view with every applicable method (``method`` first), ``.png``/``.svg``/``.pdf`` a
    figure of the images and their overlay by ``method`` (default the first applicable).

    Raises:
        ValueError: another suffix, or a method that does not apply to ``model``.
    """
    from attnlab.viz.explanation import applicable_methods, explain
    from attnlab.viz.overlay import plot_explanations
    from attnlab.viz.plots import FORMATS, save_figure

    out = Path(out)
    suffix = out.suffix.lower()
    methods = applicable_methods(model)
    if method is not None and method not in methods:
        raise ValueError(
            f"method {method!r} does not apply to {type(model).__name__}; "
            f"applicable: {', '.join(methods)}"
        )
    if suffix in (".html", ".htm"):
        order = [method, *(m for m in methods if m != method)] if method else methods
        view = ImageExplanationView.from_model(model, images, methods=order,
                                               class_names=class_names)  # fmt: skip
        if labels is not None:
            view.labels = [f"{a}: {b}" for a, b in zip(labels, view.labels, strict=True)]
        return view.save(out)
    if suffix not in FORMATS:
        raise ValueError(f"cannot write {out.name!r}; use .html, {', '.join(FORMATS)}")
    name = method or methods[0]
    fig = plot_explanations(images, {name: explain(model, images, name)}, labels=labels)
    return save_figure(fig, out)
