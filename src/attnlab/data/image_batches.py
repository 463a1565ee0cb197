"""Fast batches of in-memory uint8 images, with light augmentation in plain tensor ops.

Augmentation is deterministic: every random choice comes from a ``torch.Generator`` seeded
with ``seed + epoch``, so the same seed gives the same batches and the same crops.

Example:
    >>> import torch
    >>> from attnlab.data.image_batches import Augment, ImageBatches, augment
    >>> x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    >>> augment(x, Augment(crop_padding=2, flip=True), torch.Generator().manual_seed(0)).shape
    torch.Size([8, 1, 28, 28])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.data.images import ImageDataset

__all__ = ["Augment", "ImageBatches", "augment", "to_float"]


@dataclass(frozen=True)
class Augment:
    """Light augmentation of training images.

    Attributes:
        crop_padding: pad by this many (zero) pixels on every side, then crop back to the
            original size at a random offset (0: off).
        flip: mirror left-right with probability 0.5 (for clothes, not for digits).
    """

    crop_padding: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        p = self.crop_padding
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise ValueError(f"crop_padding must be an int >= 0, got {p!r}")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


def augment(images: Tensor, aug: Augment, generator: torch.Generator) -> Tensor:
    """Random crop with padding and horizontal flip, per image.

    Args:
        images: ``(B, C, H, W)`` of any dtype.
        aug: what to apply.
        generator: source of every random choice.

    Returns:
        ``(B, C, H, W)``, same dtype.
    """
    b, _, h, w = images.shape
    x = images
    if aug.crop_padding:
        p = aug.crop_padding
        padded = F.pad(x, (p, p, p, p))  # (B, C, H + 2p, W + 2p)
        dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
        bi = torch.arange(b)[:, None, None, None]
        ci = torch.arange(x.shape[1])[None, :, None, None]
        x = padded[bi, ci, rows, cols]  # (B, C, H, W)
    if aug.flip:
        flip = torch.rand(b, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def to_float(images: Tensor) -> Tensor:
    """uint8 ``(B, C, H, W)`` -> float32 in ``[0, 1]`` (what the image models take)."""
    return images.float().div_(255.0)


class ImageBatches:
    """Batches ``{"images": (B, C, H, W) float in [0, 1], "labels": (B,)}`` of a data set.

    Args:
        dataset: the images.
        batch_size: images per batch.
        shuffle: seeded random order (epoch ``k`` uses ``seed + k``), else file order.
        seed: base seed of the order and of the augmentation.
        augment: augmentation to apply (None: none).
        drop_last: drop a last, smaller batch (training).

    Example:
        >>> import torch
        >>> ds = ImageDataset("x", torch.zeros(10, 1, 4, 4, dtype=torch.uint8),
        ...                   torch.arange(10) % 2, ("a", "b"))
        >>> [b["images"].shape[0] for b in ImageBatches(ds, 4)]
        [4, 4, 2]
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment if augment is not None and augment.active else None
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.dataset)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if self.shuffle:
            self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.dataset.images[idx]  # (B, C, H, W) uint8
            if self.augment is not None:
                x = augment(x, self.augment, g)
            yield {"images": to_float(x), "labels": self.dataset.labels[idx]}
