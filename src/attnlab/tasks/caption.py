"""Image captioning: an image in, a sentence of object names out, with attention that can be
checked against the boxes of the objects (the pointing game).

Data: generated canvases (``digits-caption``, ``fashion-grid``; :mod:`attnlab.data.captions`),
deterministic from ``data.seed`` so the 2,000 test canvases stay fixed whatever the training
seed; presets take images ``(B, C, H, W)`` in [0, 1] and the teacher-forced caption and
return logits ``(B, T, V)``; decoding is greedy or beam search (:mod:`attnlab.generate`).

Example:
    >>> from attnlab.runs import load_run
    >>> run = load_run("runs/digits-caption-cnn-gru-attn")  # doctest: +SKIP
    >>> run.caption(["three-digits.png"])[0].text  # doctest: +SKIP
    'three one four'
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

from attnlab.data.captions import CAPTION_DATASETS, CanvasOptions, CanvasSet, make_canvases
from attnlab.models.captioning import CaptionDims
from attnlab.tasks.base import Run, StepOutput, Task

__all__ = ["TASK", "Caption", "CaptionArtifacts", "CaptionData", "CaptionRun", "CaptionTask"]

ARTIFACTS = "caption.json"
SPECIALS = ("<pad>", "<bos>", "<eos>")
#: Canvas size of each data set when ``data.height``/``data.width`` are 0.
CANVAS = {"digits-caption": (32, 128), "fashion-grid": (96, 96)}


@dataclass(frozen=True)
class CaptionData:
    """Data settings of a captioning run (and how it is evaluated).

    Attributes:
        name: ``digits-caption`` or ``fashion-grid``.
        seed: source split and canvas layouts (fixed test canvases whatever ``train.seed``).
        train_size, val_size, test_size: canvases per split.
        height, width: canvas size (0: the data set's, 32x128 for digits, 96x96 for grids).
        min_objects, max_objects: digits per canvas.
        min_size, max_size: longer side of a digit in pixels.
        gap: fewest pixels between digits.
        grids: grid sides of ``fashion-grid``, comma-separated (``"2,3"``).
        empty_fraction: share of empty training/validation canvases (caption ``""``).
        beam: beam size used by evaluation (1: greedy).
        pointing_tolerance: pixels a box is grown by in the pointing game.
    """

    name: str = "digits-caption"
    seed: int = 0
    train_size: int = 60000
    val_size: int = 1000
    test_size: int = 2000
    height: int = 0
    width: int = 0
    min_objects: int = 1
    max_objects: int = 5
    min_size: int = 16
    max_size: int = 28
    gap: int = 2
    grids: str = "2,3"
    empty_fraction: float = 0.01
    beam: int = 1
    pointing_tolerance: float = 2.0

    def __post_init__(self) -> None:
        if self.name not in CAPTION_DATASETS:
            raise ValueError(
                f"unknown caption data set {self.name!r}; choose {', '.join(CAPTION_DATASETS)}"
            )
        if self.beam < 1:
            raise ValueError(f"beam must be >= 1, got {self.beam}")
        if self.pointing_tolerance < 0:
            raise ValueError(f"pointing_tolerance must be >= 0, got {self.pointing_tolerance}")
        self.options().check(self.name)

    def options(self) -> CanvasOptions:
        """The canvas layout these settings describe."""
        h, w = CANVAS[self.name]
        try:
            grids = tuple(int(g) for g in str(self.grids).split(","))
        except ValueError:
            raise ValueError(f"grids must be comma-separated ints, got {self.grids!r}") from None
        return CanvasOptions(
            height=self.height or h, width=self.width or w, min_objects=self.min_objects,
            max_objects=self.max_objects, min_size=self.min_size, max_size=self.max_size,
            gap=self.gap, grids=grids, empty_fraction=self.empty_fraction,
        )  # fmt: skip

    @property
    def max_words(self) -> int:
        """Longest caption of these canvases."""
        o = self.options()
        return o.max_objects if self.name == "digits-caption" else max(o.grids) ** 2


@dataclass
class CaptionArtifacts:
    """What a captioning run needs besides its weights: the words and the canvas shape."""

    words: list[str]
    channels: int
    height: int
    width: int
    max_len: int

    def ids(self, words: Sequence[str]) -> list[int]:
        index = {w: i + len(SPECIALS) for i, w in enumerate(self.words)}
        return [index[w] for w in words]

    def text(self, ids: Sequence[int]) -> list[str]:
        return [self.words[i - len(SPECIALS)] for i in ids if i >= len(SPECIALS)]


@dataclass
class Caption:
    """One image's caption and where each word looked.

    Attributes:
        words: the generated words.
        attention: ``(L, H, K, h, w)`` cross-attention of each of the ``K`` words over the
            ``h x w`` grid, per layer and head (None for a model without attention).
        image: the ``(C, H, W)`` image the model read, in [0, 1].
        notes: what was done to the input (resized, converted, inverted).
        cell: pixels ``(rows, columns)`` per grid cell.
    """

    words: list[str]
    attention: Tensor | None
    image: Tensor
    notes: list[str]
    cell: tuple[int, int] = (1, 1)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def maps(self) -> Tensor | None:
        """``(K, h, w)``: each word's attention, averaged over layers and heads."""
        return None if self.attention is None else self.attention.mean((0, 1))


class CaptionRun(Run):
    """A trained captioner (see :class:`~attnlab.tasks.base.Run`)."""

    @property
    def words(self) -> list[str]:
        return self.artifacts.words

    def prepare(self, images: Sequence[Any] | Tensor) -> tuple[Tensor, list[list[str]]]:
        """Images as the model reads them, ``(B, C, H, W)`` in [0, 1], and what was done
        to each (files and PIL images are converted, resized and, when their background is
        light, inverted; see :func:`attnlab.data.captions.read_canvas`)."""
        from attnlab.data.captions import read_canvas

        a = self.artifacts
        if isinstance(images, Tensor):
            if images.dim() == 3:
                images = images[None]
            x = images.float()
            x = x / 255 if images.dtype == torch.uint8 else x
            if tuple(x.shape[1:]) != (a.channels, a.height, a.width):
                raise ValueError(
                    f"image tensors must be (B, {a.channels}, {a.height}, {a.width}), got "
                    f"{tuple(images.shape)}; pass files or PIL images to have them resized"
                )
            return x, [[] for _ in range(x.shape[0])]
        if isinstance(images, (str, Path)):
            raise TypeError("images must be a list of files or PIL images, not one path")
        read = [read_canvas(im, height=a.height, width=a.width) for im in images]
        x = torch.stack([r[0] for r in read]).float().div(255) if read else torch.zeros(0)
        return x, [r[1] for r in read]

    @torch.no_grad()
    def caption(self, images: Sequence[Any] | Tensor, *, beam: int = 1) -> list[Caption]:
        """Caption ``images`` (files, PIL images or a ``(B, C, H, W)`` tensor) and record
        where each generated word looked. An image without ink gets an empty caption."""
        from attnlab.tasks.caption_eval import cross_attention, decode

        x, notes = self.prepare(images)
        if x.numel() == 0:
            return []
        x = x.to(self.device)
        blank = (x.flatten(1).amax(1) - x.flatten(1).amin(1)) < 1e-3  # no ink at all
        hyps: list[list[int]] = [[] for _ in range(x.shape[0])]
        for i in blank.nonzero().flatten().tolist():
            notes[i].append("no ink: empty caption")
        todo = [i for i in range(x.shape[0]) if not blank[i]]
        if todo:
            for i, h in zip(
                todo, decode(self.model, x[todo], max_len=self.dims.max_len, beam=beam), strict=True
            ):
                hyps[i] = h
        maps: list[Tensor | None] = [None] * len(hyps)
        gh, gw = self.model.grid
        if self.model.attention_modules():
            from attnlab.tasks.caption_eval import pad_inputs

            tgt = pad_inputs(hyps, self.dims.bos_id, self.dims.pad_id).to(self.device)
            cross = cross_attention(self.model, x, tgt).cpu()  # (B, L, H, T, N)
            for i, h in enumerate(hyps):
                # one map per word: an id that is no word (an untrained model may emit
                # padding) has no place in the caption, so its step is left out too
                keep = [t for t, tok in enumerate(h) if tok >= len(SPECIALS)]
                a = cross[i, :, :, keep]  # (L, H, K, N)
                maps[i] = a.reshape(*a.shape[:3], gh, gw)  # (L, H, K, h, w)
        cell = tuple(self.model.cell_size)
        return [
            Caption(self.artifacts.text(h), m, x[i].cpu(), notes[i], cell)
            for i, (h, m) in enumerate(zip(hyps, maps, strict=True))
        ]


class _Encoded(Sequence):
    """Canvases with their caption ids, rendered on access."""

    def __init__(self, canvases: CanvasSet, artifacts: CaptionArtifacts) -> None:
        self.canvases, self.artifacts = canvases, artifacts

    def __len__(self) -> int:
        return len(self.canvases)

    def __getitem__(self, i: int) -> tuple[Tensor, list[int]]:
        return self.canvases.image(i), self.artifacts.ids(self.canvases.caption(i))


def collate_captions(
    items: Sequence[tuple[Tensor, list[int]]], *, pad_id: int, bos_id: int, eos_id: int
) -> dict[str, Tensor]:
    """``{"images": (B, C, H, W) float in [0, 1], "tgt_in": (B, T), "tgt_out": (B, T)}``;
    ``tgt_in`` starts with BOS, ``tgt_out`` ends with EOS, both padded with ``pad_id``."""
    t = 1 + max(len(ids) for _, ids in items)
    tgt_in = torch.full((len(items), t), pad_id, dtype=torch.long)
    tgt_out = torch.full((len(items), t), pad_id, dtype=torch.long)
    for i, (_, ids) in enumerate(items):
        tgt_in[i, : len(ids) + 1] = torch.tensor([bos_id, *ids], dtype=torch.long)
        tgt_out[i, : len(ids) + 1] = torch.tensor([*ids, eos_id], dtype=torch.long)
    images = torch.stack([im for im, _ in items]).float().div_(255)  # (B, C, H, W)
    return {"images": images, "tgt_in": tgt_in, "tgt_out": tgt_out}


class CaptionTask(Task):
    """The captioning task (teacher-forced word accuracy picks the best epoch)."""

    name = "caption"
    data_config = CaptionData
    default_model = "cnn-gru-attn"
    monitor = "val_acc"
    monitor_mode = "max"
    run_class = CaptionRun

    # -- data -----------------------------------------------------------------------------
    def load_splits(self, data: CaptionData, *, seed: int):
        return make_canvases(
            data.name, seed=data.seed, train_size=data.train_size, val_size=data.val_size,
            test_size=data.test_size, options=data.options(),
        )  # fmt: skip

    def build_artifacts(self, data: CaptionData, splits, *, seed: int, log: Callable):
        o = data.options()
        return CaptionArtifacts(list(splits.train.words), 1, o.height, o.width, data.max_words)

    def save_artifacts(self, artifacts: CaptionArtifacts, folder: Path) -> list[str]:
        meta = {
            k: getattr(artifacts, k) for k in ("words", "channels", "height", "width", "max_len")
        }
        (folder / ARTIFACTS).write_text(json.dumps(meta) + "\n", encoding="utf-8")
        return [ARTIFACTS]

    def load_artifacts(self, data: CaptionData, folder: Path) -> CaptionArtifacts:
        path = folder / ARTIFACTS
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            words = [str(w) for w in meta["words"]]
            shape = [int(meta[k]) for k in ("channels", "height", "width", "max_len")]
            if not words or min(shape) < 1:
                raise ValueError
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: not a caption file written by attnlab") from None
        return CaptionArtifacts(words, *shape)

    def dims(self, artifacts: CaptionArtifacts) -> CaptionDims:
        a = artifacts
        return CaptionDims(a.channels, a.height, a.width, len(SPECIALS) + len(a.words), a.max_len)

    def dataset(self, split: CanvasSet, artifacts: CaptionArtifacts, data: CaptionData) -> _Encoded:
        return _Encoded(split, artifacts)

    def collate(self, artifacts: CaptionArtifacts):
        return partial(collate_captions, pad_id=0, bos_id=1, eos_id=2)

    # -- training -------------------------------------------------------------------------
    def metrics(self, dims: CaptionDims) -> dict[str, Any]:
        from torchmetrics.classification import MulticlassAccuracy

        return {"acc": MulticlassAccuracy(dims.vocab_size, average="micro")}

    def step(self, model: nn.Module, batch: dict[str, Tensor], *, label_smoothing: float):
        from attnlab.models.caption_rnn import doubly_stochastic

        tgt_out = batch["tgt_out"]
        valid = tgt_out != 0  # (B, T)
        weight = float(getattr(model, "regularizer", 0.0))
        alphas = None
        if weight > 0:
            logits, alphas = model(batch["images"], batch["tgt_in"], return_attention=True)
        else:
            logits = model(batch["images"], batch["tgt_in"])  # (B, T, V)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=0,
            label_smoothing=label_smoothing,
        )  # fmt: skip
        if alphas is not None:
            loss = loss + weight * doubly_stochastic(alphas.float(), valid)
        return StepOutput(loss, logits.detach()[valid], tgt_out[valid], int(valid.shape[0]))

    def example_batch(
        self, dims: CaptionDims, *, size: int = 3, seed: int = 0
    ) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        images = torch.rand(size, dims.channels, dims.height, dims.width, generator=g)
        items = []
        for i in range(size):
            n = max(0, dims.max_len - 2 * i)  # different lengths: padding included
            ids = torch.randint(3, dims.vocab_size, (n,), generator=g).tolist()
            items.append(((images[i] * 255).to(torch.uint8), ids))
        return collate_captions(items, pad_id=dims.pad_id, bos_id=dims.bos_id, eos_id=dims.eos_id)

    # -- after training -------------------------------------------------------------------
    def evaluate(self, run: CaptionRun, split: CanvasSet) -> dict[str, Any]:
        """Exact match, per-word accuracy (by number of objects) and pointing accuracy."""
        from attnlab.tasks.caption_eval import score_captions

        d = run.config.data
        return score_captions(
            run, split, beam=d.beam, tolerance=d.pointing_tolerance,
            batch_size=run.config.train.eval_batch_size,
        )  # fmt: skip

    def evaluation_data(self, data: CaptionData) -> CanvasSet:
        return self.load_splits(data, seed=data.seed).test

    def format_metrics(self, metrics: dict[str, Any], run: Run) -> str:
        from attnlab.tasks.caption_report import format_caption_metrics

        return format_caption_metrics(metrics)

    def summary(self, metrics: dict[str, Any]) -> str:
        line = (
            f"test exact match: {metrics['exact_match']:.2%}  (per word "
            f"{metrics['word_accuracy']:.2%}"
        )
        if metrics.get("pointing") is not None:
            line += f", pointing {metrics['pointing']:.2%}"
        return line + f", {metrics['n']} canvases, {metrics['decoding']})"

    def report_sections(
        self, run: CaptionRun, split: CanvasSet, metrics: dict[str, Any], *, n_examples: int = 20
    ) -> list:
        from attnlab.tasks.caption_report import caption_report_sections

        return caption_report_sections(run, split, metrics, n_examples=n_examples)


TASK = CaptionTask()
