"""Run folders: save and load a trained classifier without unpickling anything.

A run folder holds ``model.safetensors`` (weights), ``config.json`` (the run config, the
label names and the sizes the model was built with) and ``tokenizer.json``.

Example:
    >>> from attnlab.train import load_run
    >>> run = load_run("runs/demo")  # doctest: +SKIP
    >>> run.predict_proba(["a gorgeous, witty film"]).shape  # doctest: +SKIP
    torch.Size([1, 2])
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from attnlab.data.tokenizers import TextTokenizer
from attnlab.layers.core import WeightsTap
from attnlab.models.registry import create_model
from attnlab.models.text import TextDims
from attnlab.train.config import RunConfig

__all__ = ["Prediction", "Run", "load_run", "pooling_weights", "save_run"]

WEIGHTS, CONFIG = "model.safetensors", "config.json"
FORMAT = 1


def save_run(
    run_dir: str | Path,
    *,
    model: nn.Module,
    config: RunConfig,
    tokenizer: TextTokenizer,
    labels: Sequence[str],
    vocab_size: int,
) -> Path:
    """Write weights, config and tokenizer into ``run_dir`` (created if needed)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, str(run_dir / WEIGHTS))
    meta = {
        "format": FORMAT,
        "labels": list(labels),
        "vocab_size": vocab_size,
        "config": config.to_dict(),
    }
    (run_dir / CONFIG).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tokenizer.save(run_dir)
    return run_dir


@dataclass
class Prediction:
    """One text's prediction: label, its probability, and the pooling weight per token."""

    text: str
    label: str
    probability: float
    probs: list[float]
    tokens: list[str]
    weights: list[float]

    def top_tokens(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most-attended tokens with their weights, highest first."""
        order = sorted(range(len(self.tokens)), key=lambda i: -self.weights[i])[:k]
        return [(self.tokens[i], self.weights[i]) for i in order]


def pooling_weights(model: nn.Module, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Run ``model(**inputs)`` and record the attention-pooling weights on the way.

    The weights are read by a forward hook on the ``WeightsTap`` of ``model.pool``
    (nothing is stored on the model).

    Returns:
        ``(logits (B, C), weights (B, T))``.
    """
    pool = getattr(model, "pool", None)
    taps = [m for m in pool.modules() if isinstance(m, WeightsTap)] if pool is not None else []
    if not taps:
        raise ValueError(f"{type(model).__name__} has no attention pooling (model.pool) to read")
    seen: list[Tensor] = []
    handle = taps[0].register_forward_hook(lambda mod, args, out: seen.append(out.detach()))
    try:
        logits = model(**inputs)
    finally:
        handle.remove()
    b, t = inputs["input_ids"].shape
    return logits, seen[-1].reshape(b, t)  # tap gives (B, 1, 1, T)


class Run:
    """A trained classifier loaded from its run folder (see :func:`load_run`).

    Attributes:
        model: the ``nn.Module`` in eval mode; ``model(**run.encode(texts))`` gives logits.
        tokenizer: its :class:`TextTokenizer`.
        labels: class names, in logit order.
        config: the frozen :class:`RunConfig`.
        run_dir: the folder.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        tokenizer: TextTokenizer,
        labels: Sequence[str],
        config: RunConfig,
        run_dir: str | Path,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config = config
        self.run_dir = Path(run_dir)

    def encode(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """``{"input_ids": (B, T), "lengths": (B,)}``: what ``model`` takes."""
        device = next(self.model.parameters()).device
        return {k: v.to(device) for k, v in self.tokenizer.encode(texts).items()}

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The token strings each row of :meth:`encode` holds, padding stripped."""
        return self.tokenizer.tokens(texts)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 128) -> Tensor:
        """Class probabilities ``(B, C)``."""
        out = [
            torch.softmax(self.model(**self.encode(texts[i : i + batch_size])).float(), -1).cpu()
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, len(self.labels))

    @torch.no_grad()
    def predict(self, texts: Sequence[str], *, batch_size: int = 128) -> list[Prediction]:
        """Label, probability and per-token pooling weights for each text."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        result = []
        for i in range(0, len(texts), batch_size):
            chunk = list(texts[i : i + batch_size])
            inputs = self.encode(chunk)
            logits, weights = pooling_weights(self.model, inputs)
            probs = torch.softmax(logits.float(), -1).cpu()
            for text, toks, p, w, n in zip(
                chunk,
                self.tokens(chunk),
                probs,
                weights.cpu(),
                inputs["lengths"].tolist(),
                strict=True,
            ):
                k = int(p.argmax())
                result.append(
                    Prediction(text, self.labels[k], float(p[k]), p.tolist(), toks, w[:n].tolist())
                )
        return result


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu") -> Run:
    """Load a run folder written by training: safetensors weights + JSON config + tokenizer.

    Nothing is unpickled. The model is in eval mode on ``device``.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: the config is from an unknown format or names an unknown model.
    """
    run_dir = Path(run_dir)
    for name in (CONFIG, WEIGHTS, "tokenizer.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a finished run folder: {name} is missing")
    meta: dict[str, Any] = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{run_dir / CONFIG}: unknown run format {meta.get('format')!r}")
    config = RunConfig.from_dict(meta["config"])
    model_config = config.model_config
    if "pretrained" in {f.name for f in dataclasses.fields(model_config)}:
        # The saved weights replace the pretrained ones: skip loading those twice.
        model_config = dataclasses.replace(model_config, pretrained=False)
    model = create_model(
        config.model,
        model_config,
        dims=TextDims(vocab_size=meta["vocab_size"], num_classes=len(meta["labels"])),
    )
    load_model(model, str(run_dir / WEIGHTS), device=str(device))
    tokenizer = TextTokenizer.load(run_dir, max_len=config.train.max_len)
    return Run(
        model=model.to(device),
        tokenizer=tokenizer,
        labels=meta["labels"],
        config=config,
        run_dir=run_dir,
    )
