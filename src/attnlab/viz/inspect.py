"""Run a model on one text (or a sentence pair) and collect what the views need.

Used by ``attnlab viz`` and ``attnlab explore``: a *subject* is either a packaged
pretrained encoder (``load_subject(pretrained="minilm")``) or a trained attnlab run
directory (``load_subject("runs/demo")``); ``subject.analyze(text)`` returns an
:class:`Analysis` with the tokens, per-layer weights and, for classifiers, the prediction.

Example:
    >>> from attnlab.viz import load_subject, HeadView
    >>> subject = load_subject(pretrained="minilm")
    >>> a = subject.analyze("The cat sat on the mat.")
    >>> HeadView.from_analysis(a).save("head.html")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from attnlab.capture import capture

__all__ = ["Analysis", "PretrainedSubject", "RunSubject", "load_subject"]


@dataclass
class Analysis:
    """Attention of one input, padding removed.

    Attributes:
        tokens: the ``T`` input tokens.
        weights: one ``(H, Tq, Tk)`` float tensor per captured layer (``Tk = T``;
            ``Tq`` is ``T`` for self-attention and 1 for attention pooling).
        layer_names: module name of each layer.
        heads: head indices held by each layer.
        roles: role of each layer (``"self"``, ``"cross"``, ``"pool"``, ...), as recorded.
        segments: 0/1 per token for a sentence pair, else None.
        prediction: label -> probability for classifiers, else None.
        title: a short description (model and input).
        query_label: label of a single pooled query row.
    """

    tokens: list[str]
    weights: list[Tensor]
    layer_names: list[str]
    heads: list[list[int]]
    segments: list[int] | None = None
    prediction: dict[str, float] | None = None
    title: str = "attention"
    query_label: str | None = None
    roles: list[str] = field(default_factory=list)

    def stacked(self) -> Tensor:
        """The self-attention layers as one ``(L, H, T, T)`` tensor (pooling layers left out)."""
        t = len(self.tokens)
        square = [w for w in self.weights if w.shape[1:] == (t, t)]
        if not square:
            raise ValueError(
                "no self-attention layer to stack (only pooling attention was captured)"
            )
        if len({w.shape[0] for w in square}) != 1:
            raise ValueError("layers hold different numbers of heads; use .weights instead")
        return torch.stack(square)  # (L, H, T, T)

    def _roles(self) -> list[str | None]:
        return list(self.roles) if self.roles else [None] * len(self.weights)

    def to_json(self, decimals: int = 5) -> dict[str, Any]:
        """Plain JSON (nested lists) for the explorer's API."""
        return {
            "tokens": self.tokens,
            "segments": self.segments,
            "prediction": self.prediction,
            "layers": [
                {
                    "name": name,
                    "heads": heads,
                    "role": role,
                    "attention": torch.round(w.float(), decimals=decimals).tolist(),
                }
                for name, heads, w, role in zip(
                    self.layer_names, self.heads, self.weights, self._roles(), strict=True
                )
            ],
        }


def _finish(rec, tokens: list[str]) -> tuple[list[Tensor], list[str]]:
    weights = [w.float().cpu() for w in rec.example(0)]  # (H', Tq, Tk) each
    tk = {w.shape[-1] for w in weights}
    if len(tk) == 1:
        n = tk.pop()
        if len(tokens) > n:
            tokens = tokens[:n]
        elif len(tokens) < n:  # a model that adds positions the tokenizer does not list
            tokens = tokens + [f"[{i}]" for i in range(len(tokens), n)]
    return weights, tokens


class PretrainedSubject:
    """A packaged pretrained encoder (MiniLM) and its tokenizer.

    Args:
        name: packaged model name (see :data:`attnlab.models.pretrained.PRETRAINED`).
        max_tokens: inputs are truncated to this many tokens.
    """

    kind = "pretrained"

    def __init__(self, name: str = "minilm", *, max_tokens: int = 512) -> None:
        from attnlab.models.pretrained import load_pretrained

        self.name = name
        self.model, self.tokenizer = load_pretrained(name)
        self.max_tokens = int(min(max_tokens, self.model.config.max_position_embeddings))
        self.labels: list[str] | None = None

    def analyze(self, text: str, pair: str | None = None, *, layers=None, heads=None) -> Analysis:
        """Run the model on ``text`` (and ``pair``) and capture every layer's attention."""
        _check_text(text, pair)
        enc = self.tokenizer(
            text, pair, return_tensors="pt", truncation=True, max_length=self.max_tokens
        )
        with torch.no_grad(), capture(self.model, layers, heads, tokenizer=self.tokenizer) as rec:
            self.model(**enc)
        weights, tokens = _finish(rec, rec.tokens[0])
        segments = enc["token_type_ids"][0].tolist() if pair else None
        return Analysis(
            tokens=tokens,
            weights=weights,
            layer_names=[
                n.replace("encoder.layer.", "layer ").replace(".attention.self", "")
                for n in rec.names
            ],
            heads=rec.heads,
            segments=segments,
            title=f"{self.name}: {text[:60]}" + (f" | {pair[:40]}" if pair else ""),
            roles=list(rec.roles),
        )


class RunSubject:
    """A trained attnlab text model loaded from its run directory.

    Uses ``attnlab.train.load_run(run_dir)``, which provides ``model``, ``encode``,
    ``tokens``, ``labels`` and ``predict_proba``.
    """

    kind = "run"

    def __init__(self, run_dir: str | Path) -> None:
        from attnlab.train import load_run

        self.name = str(run_dir)
        self.run = load_run(run_dir)
        self.model = self.run.model.eval()
        self.labels = [str(x) for x in self.run.labels]

    def analyze(self, text: str, pair: str | None = None, *, layers=None, heads=None) -> Analysis:
        """Classify ``text`` and capture the model's attention."""
        _check_text(text, None)
        if pair:
            raise ValueError(f"the model in {self.name} takes one text, not a sentence pair")
        batch = self.run.encode([text])
        tokens = [str(t) for t in self.run.tokens([text])[0]]
        with torch.no_grad(), capture(self.model, layers, heads) as rec:
            logits = self.model(**batch)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        probs = torch.softmax(logits.float()[0], -1).tolist()
        weights, tokens = _finish(rec, tokens)
        pooled = "pool" in rec.roles
        return Analysis(
            tokens=tokens,
            weights=weights,
            layer_names=list(rec.names),
            heads=rec.heads,
            prediction=dict(zip(self.labels, probs, strict=False)),
            title=f"{Path(self.name).name}: {text[:60]}",
            query_label="(pooled query)" if pooled else None,
            roles=list(rec.roles),
        )


def _check_text(text, pair) -> None:
    for name, value in (("text", text), ("pair", pair)):
        if value is None and name == "pair":
            continue
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not text.strip():
        raise ValueError("text is empty")


def load_subject(
    run_dir: str | Path | None = None, *, pretrained: str | None = None, max_tokens: int = 512
) -> PretrainedSubject | RunSubject:
    """A pretrained model (``pretrained="minilm"``) or a trained run (``run_dir``).

    Raises:
        ValueError: neither or both given.
        FileNotFoundError: ``run_dir`` does not exist.
    """
    if (run_dir is None) == (pretrained is None):
        raise ValueError("give either a run directory or pretrained=NAME (e.g. 'minilm'), not both")
    if pretrained is not None:
        return PretrainedSubject(pretrained, max_tokens=max_tokens)
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    return RunSubject(run_dir)
