"""Your own images: a folder with one subfolder per class, read with Pillow.

::

    photos/
      cat/  a.jpg b.png ...
      dog/  c.jpeg ...

Images of any size and mode are converted to one shape: resized (bilinear) to ``size``
and converted to grey (``L``) or ``RGB``; transparent pixels (RGBA, LA, palette with
transparency) are composited onto white. Bad data is said aloud: a file Pillow cannot
read gives a warning naming it and is skipped (``strict=True`` raises one error listing
every bad file); a class folder with no images gives a warning and is left out; fewer
than two classes is an error.

Example:
    >>> from attnlab.data.image_folder import read_image_folder
    >>> ds = read_image_folder("photos", size=32)  # doctest: +SKIP
    >>> ds.classes, ds.images.shape  # doctest: +SKIP
    (('cat', 'dog'), torch.Size([250, 3, 32, 32]))
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from attnlab.data.images import ImageDataset

__all__ = ["IMAGE_SUFFIXES", "BadImageError", "read_image", "read_image_folder"]

#: File suffixes read as images (case-insensitive); other files count as bad data.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


class BadImageError(ValueError):
    """Files of an image folder that could not be used.

    Attributes:
        bad: ``(path, reason)`` of every bad file.
    """

    def __init__(self, root: Path, bad: list[tuple[str, str]]) -> None:
        self.bad = bad
        lines = "\n".join(f"  {p}: {why}" for p, why in bad)
        super().__init__(f"{root}: {len(bad)} file(s) are not usable images:\n{lines}")


def _open(path: Path):
    """``(mode, size)`` of the fully decoded image, or None and the reason it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later
            return (im.mode, im.size), None
    except UnidentifiedImageError:
        return None, "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        return None, f"corrupt image ({type(e).__name__}: {e})"


def _convert(im, mode: str):
    """``im`` in ``mode`` (``L`` or ``RGB``), transparency composited onto white."""
    from PIL import Image

    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode in ("I", "I;16", "F"):  # 16-bit or float grey: scale to 8 bits
        a = np.asarray(im, dtype=np.float64)
        top = a.max() if a.max() > 0 else 1.0
        im = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L")
    return im.convert(mode)


def read_image_folder(
    root: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    strict: bool = False,
) -> ImageDataset:
    """Read a folder with one subfolder of images per class.

    Args:
        root: the folder; each subfolder name is a class (sorted). Hidden files and
            folders (starting with ``.``) are ignored.
        size: output ``(H, W)`` or one int for square images. None: the most common
            size among the images.
        channels: 1 (grey) or 3 (RGB). None: 1 when every image is grey, else 3.
        strict: raise :class:`BadImageError` listing every unreadable file instead of
            warning and skipping each.

    Returns:
        An :class:`ImageDataset` with ``files`` set (relative to ``root``).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: fewer than two classes with images; bad ``size`` or ``channels``.
        BadImageError: ``strict`` and some files are not usable images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if len(hw) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in hw):
            raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if loose:
        warnings.warn(
            f"{root}: files outside a class folder are ignored: {', '.join(loose[:5])}"
            + (" ..." if len(loose) > 5 else ""),
            stacklevel=2,
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    bad: list[tuple[str, str]] = []
    # First pass: decode every file to find the bad ones and the modes and sizes;
    # only one image is held in memory at a time.
    found: list[tuple[str, str, tuple]] = []  # (class, relative path, (mode, size))
    empty: list[str] = []
    for folder in folders:
        n_before = len(found)
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.parts[-2:]):
                continue
            rel = str(path.relative_to(root))
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                bad.append((rel, f"not an image file (suffix {path.suffix or 'none'!r})"))
                continue
            info, why = _open(path)
            if info is None:
                bad.append((rel, why))
                continue
            found.append((folder.name, rel, info))
        if len(found) == n_before:
            empty.append(folder.name)
    if bad and strict:
        raise BadImageError(root, bad)
    for rel, why in bad:
        warnings.warn(f"{root / rel}: skipped, {why}", stacklevel=2)
    if empty:
        warnings.warn(
            f"{root}: class folder(s) with no images are left out: {', '.join(empty)}",
            stacklevel=2,
        )
    classes = tuple(f.name for f in folders if f.name not in empty)
    if len(classes) < 2:
        only = f" (only {classes[0]!r})" if classes else ""
        raise ValueError(
            f"{root}: needs at least 2 class folders with images, found {len(classes)}{only}"
        )
    if channels is None:
        channels = 1 if all(mode in _GREY_MODES for _, _, (mode, _) in found) else 3
    if size is None:
        w, h = Counter(wh for _, _, (_, wh) in found).most_common(1)[0][0]
        hw = (h, w)
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    index = {c: i for i, c in enumerate(classes)}
    images = np.empty((len(found), hw[0], hw[1], channels), dtype=np.uint8)
    for i, (_, rel, _) in enumerate(found):
        with Image.open(root / rel) as im:
            im = _convert(im, mode)
        if im.size != (hw[1], hw[0]):
            im = im.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
        images[i] = np.asarray(im, dtype=np.uint8).reshape(hw[0], hw[1], channels)
    return ImageDataset(
        str(root),
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),  # (N, C, H, W)
        torch.tensor([index[c] for c, _, _ in found], dtype=torch.long),
        classes,
        tuple(rel for _, rel, _ in found),
    )


def read_image(
    image, *, channels: int, size: tuple[int, int], invert_light: bool = False
) -> tuple[torch.Tensor, list[str]]:
    """One image as a model of ``channels x size`` reads it: ``(C, H, W)`` uint8.

    Any Pillow mode is converted (transparency composited onto white), another size is
    resized (bilinear); with ``invert_light`` an image whose border is mostly light (a dark
    object on white paper) is inverted, for models trained on light objects on black
    (Fashion-MNIST, MNIST).

    Args:
        image: a file path or a ``PIL.Image.Image``.
        channels: 1 (grey) or 3 (RGB).
        size: ``(H, W)``.
        invert_light: invert images with a light background.

    Returns:
        ``(image, notes)``: the notes say what was converted (empty when nothing was).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file Pillow cannot read as an image (the message names it).
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    notes: list[str] = []
    if not isinstance(image, Image.Image):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image {path} does not exist")
        try:
            with Image.open(path) as im:
                im.load()
                image = im.copy()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{path}: not an image Pillow can read ({e})") from None
    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:
        notes.append(f"converted from mode {image.mode} to {mode}")
    im = _convert(image, mode)
    h, w = size
    if im.size != (w, h):
        notes.append(f"resized from {im.size[0]}x{im.size[1]} to {w}x{h}")
        im = im.resize((w, h), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.uint8).reshape(h, w, channels).copy())
    x = x.permute(2, 0, 1).contiguous()  # (C, H, W)
    if invert_light:
        border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], -1).float()
        if border.mean() > 127:
            x = 255 - x
            notes.append("inverted (light background; the model was trained on dark ones)")
    return x, notes
