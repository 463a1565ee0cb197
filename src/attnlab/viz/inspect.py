"""Run a model on one text (or a sentence pair) and collect what the views need.

Used by ``attnlab viz`` and ``attnlab explore``: a *subject* is either a packaged
pretrained encoder (``load_subject(pretrained="minilm")``) or a trained attnlab run
directory (``load_subject("runs/demo")``); ``subject.analyze(text)`` returns an
:class:`Analysis` with the tokens, per-layer weights and roles, what was cut from a long
text and, for classifiers, the prediction.

Example:
    >>> from attnlab.viz import load_subject, HeadView
    >>> subject = load_subject(pretrained="minilm")
    >>> a = subject.analyze("The cat sat on the mat.")
    >>> a.layer_names[0], a.roles[0], a.truncated
    ('layer 0', 'self', None)
    >>> HeadView.from_analysis(a).save("head.html")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.capture import capture

__all__ = [
    "ROLES",
    "Analysis",
    "PretrainedSubject",
    "RunSubject",
    "Truncation",
    "check_text",
    "display_name",
    "load_subject",
    "run_tokenizers",
]

ROLES = ("self", "cross", "pool", "channel-gate", "spatial")
MIN_TOKENS = 4  # [CLS], one token of each sentence of a pair, [SEP]
RUN_MAX_TOKENS = 4096  # models without a position table (BiLSTM): a bound on time and memory


@dataclass(frozen=True)
class Truncation:
    """A text longer than the token limit: ``kept`` of its ``total`` tokens were used."""

    total: int
    kept: int
    limit: int

    def message(self, option: str = "max_tokens") -> str:
        """One sentence for the user, naming the option that sets the limit."""
        return (
            f"the input has {self.total:,} tokens; only the first {self.kept:,} are shown "
            f"(limit {self.limit:,}, set with {option})"
        )

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "kept": self.kept, "limit": self.limit}


@dataclass
class Analysis:
    """Attention of one input, padding removed.

    Attributes:
        tokens: the ``T`` input tokens.
        weights: one ``(H, Tq, Tk)`` float tensor per captured layer (``Tk = T``;
            ``Tq`` is ``T`` for self-attention and 1 for attention pooling).
        layer_names: each layer named as the model built it (``blocks.0.attn``,
            ``pool``, ``layer 3``), without the internal recording points.
        heads: head indices held by each layer.
        roles: what each layer does, one of :data:`ROLES`.
        segments: 0/1 per token for a sentence pair, else None.
        prediction: label -> probability for classifiers, else None.
        title: a short description (model and input).
        query_label: label of a single pooled query row.
        truncated: set when the text had more tokens than the limit.
    """

    tokens: list[str]
    weights: list[Tensor]
    layer_names: list[str]
    heads: list[list[int]]
    roles: list[str] | None = None
    segments: list[int] | None = None
    prediction: dict[str, float] | None = None
    title: str = "attention"
    query_label: str | None = None
    truncated: Truncation | None = None

    def __post_init__(self) -> None:
        if self.roles is None:
            # An analysis built by hand from raw weights: one query row is attention pooling.
            # The subjects below always pass the roles the recorder saw.
            self.roles = ["pool" if w.shape[1] == 1 else "self" for w in self.weights]
        if len(self.roles) != len(self.weights):
            raise ValueError(f"{len(self.roles)} roles for {len(self.weights)} layers")
        bad = sorted(set(self.roles) - set(ROLES))
        if bad:
            raise ValueError(f"unknown roles {bad}; expected some of {ROLES}")

    def layers_with(self, role: str) -> list[int]:
        """Indices of the layers with ``role``."""
        return [i for i, r in enumerate(self.roles) if r == role]

    def stacked(self) -> Tensor:
        """The self-attention layers as one ``(L, H, T, T)`` tensor (other roles left out).

        Raises:
            ValueError: no self-attention layer, or layers with different head counts.
        """
        square = [self.weights[i] for i in self.layers_with("self")]
        if not square:
            raise ValueError(
                "no self-attention layer to stack: the model only has "
                + ", ".join(f"{n} ({r})" for n, r in zip(self.layer_names, self.roles, strict=True))
            )
        if len({w.shape[0] for w in square}) != 1:
            raise ValueError("layers hold different numbers of heads; use .weights instead")
        return torch.stack(square)  # (L, H, T, T)

    @property
    def best(self) -> tuple[str, float] | None:
        """The predicted label and its probability (None for a model without labels)."""
        if not self.prediction:
            return None
        label = max(self.prediction, key=self.prediction.get)
        return label, self.prediction[label]


def display_name(name: str) -> str:
    """A recorded module's name as the user built the model.

    ``encoder.layer.3.attention.self`` (Hugging Face) becomes ``layer 3``; attnlab's
    internal recording points ``.core`` (inside an attention layer) and ``.tap`` (inside
    a pooling layer) are dropped: ``blocks.0.attn.core`` -> ``blocks.0.attn``,
    ``pool.tap`` -> ``pool``.
    """
    m = re.fullmatch(r"(?:.*\.)?layer\.(\d+)\.attention\.self", name)
    if m:
        return f"layer {m.group(1)}"
    for suffix in (".core", ".tap"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_text(text: Any, what: str = "text") -> None:
    """Raise unless ``text`` is a string with something besides whitespace.

    The one rule for empty input, shared by ``viz``, ``predict`` and the explorer.
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{what} is empty")


def _shared_copy(model: nn.Module) -> nn.Module:
    """A second module tree over the same parameters and buffers (no weight copied): it
    takes its own capture hooks, so two threads can capture at once."""
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)


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


def _check_limit(max_tokens: Any, limit: int, why: str) -> int:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(f"max_tokens must be an int, got {type(max_tokens).__name__}")
    if not MIN_TOKENS <= max_tokens <= limit:
        raise ValueError(
            f"max_tokens must be between {MIN_TOKENS} and {limit} ({why}), got {max_tokens}"
        )
    return max_tokens


def run_tokenizers(run, max_tokens: int | None = None):
    """The tokenizers to read texts for a trained run with a token limit.

    Args:
        run: a loaded text run (:func:`attnlab.runs.load_run`).
        max_tokens: the limit (None: the length the run was trained with,
            ``data.max_len``); at most the model's position table, or 4,096 for a model
            without one.

    Returns:
        ``(tokenizer, counter, limit)``: a ``TextTokenizer`` cutting at ``limit``, and a
        ``tokenizers.Tokenizer`` that does not cut (``len(counter.encode(t).ids)`` is the
        full length of ``t``, to say when a text was cut).

    Raises:
        ValueError: ``max_tokens`` out of range.
    """
    from tokenizers import Tokenizer

    from attnlab.data.tokenizers import TextTokenizer

    positions = getattr(run.config.model_config, "max_positions", None)
    limit = int(positions) if positions else RUN_MAX_TOKENS
    why = f"{run.config.model} has {limit} positions" if positions else "the bound for this model"
    default = min(run.config.data.max_len, limit)
    n = _check_limit(default if max_tokens is None else max_tokens, limit, why)
    source = run.tokenizer.tokenizer.to_str()
    counter = Tokenizer.from_str(source)
    counter.no_truncation()
    return TextTokenizer(Tokenizer.from_str(source), max_len=n), counter, n


class PretrainedSubject:
    """A packaged pretrained encoder (MiniLM) and its tokenizer.

    Args:
        name: packaged model name (see :data:`attnlab.models.pretrained.PRETRAINED`).
        max_tokens: longer inputs are cut to this many tokens (between 4 and the
            model's number of positions, 512 for MiniLM; None: that number).
    """

    kind = "pretrained"

    def __init__(self, name: str = "minilm", *, max_tokens: int | None = None) -> None:
        from attnlab.models.pretrained import load_pretrained

        self.name = name
        self.model, self.tokenizer = load_pretrained(name)
        limit = int(self.model.config.max_position_embeddings)
        self.max_tokens = _check_limit(
            limit if max_tokens is None else max_tokens, limit, f"{name} has {limit} positions"
        )
        self.labels: list[str] | None = None

    def replica(self) -> PretrainedSubject:
        """A copy sharing the weights, with its own module tree and tokenizer (one per
        thread: capture hooks and fast tokenizers are not shared between threads)."""
        other = copy.copy(self)
        other.model = _shared_copy(self.model)
        other.tokenizer = copy.deepcopy(self.tokenizer)
        return other

    def analyze(self, text: str, pair: str | None = None, *, layers=None, heads=None) -> Analysis:
        """Run the model on ``text`` (and ``pair``) and capture every layer's attention."""
        check_text(text)
        if pair is not None:
            check_text(pair, "pair")
        total = len(self.tokenizer(text, pair, truncation=False, verbose=False)["input_ids"])
        enc = self.tokenizer(
            text, pair, return_tensors="pt", truncation=True, max_length=self.max_tokens
        )
        with torch.no_grad(), capture(self.model, layers, heads, tokenizer=self.tokenizer) as rec:
            self.model(**enc)
        weights, tokens = _finish(rec, rec.tokens[0])
        segments = enc["token_type_ids"][0].tolist() if pair else None
        kept = int(enc["input_ids"].shape[1])
        return Analysis(
            tokens=tokens,
            weights=weights,
            layer_names=[display_name(n) for n in rec.names],
            heads=rec.heads,
            segments=segments,
            title=f"{self.name}: {text[:60]}" + (f" | {pair[:40]}" if pair else ""),
            truncated=Truncation(total, kept, self.max_tokens) if total > kept else None,
            roles=list(rec.roles),
        )


class RunSubject:
    """A trained attnlab text model loaded from its run directory.

    Uses :func:`attnlab.runs.load_run` (a text run) for the model, labels and tokenizer.

    Args:
        run_dir: the run folder.
        max_tokens: longer inputs are cut to this many tokens (None: the length the run
            was trained with, ``data.max_len``; at most the model's position table, or
            4,096 for a model without one).
    """

    kind = "run"

    def __init__(self, run_dir: str | Path, *, max_tokens: int | None = None) -> None:
        from attnlab.runs import load_run

        self.name = str(run_dir)
        self.run = load_run(run_dir, task="text")
        self.model = self.run.model.eval()
        self.labels = [str(x) for x in self.run.labels]
        self.tokenizer, self._counter, self.max_tokens = run_tokenizers(self.run, max_tokens)

    def replica(self) -> RunSubject:
        """A copy sharing the weights, with its own module tree and tokenizers."""
        other = copy.copy(self)
        other.model = _shared_copy(self.model)
        other.tokenizer = copy.deepcopy(self.tokenizer)
        other._counter = copy.deepcopy(self._counter)
        return other

    def analyze(self, text: str, pair: str | None = None, *, layers=None, heads=None) -> Analysis:
        """Classify ``text`` and capture the model's attention."""
        check_text(text)
        if pair is not None:
            raise ValueError(f"the model in {self.name} takes one text, not a sentence pair")
        batch = self.tokenizer.encode([text])
        tokens = [str(t) for t in self.tokenizer.tokens([text])[0]]
        with torch.no_grad(), capture(self.model, layers, heads) as rec:
            logits = self.model(**batch)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        probs = torch.softmax(logits.float()[0], -1).tolist()
        weights, tokens = _finish(rec, tokens)
        total, kept = len(self._counter.encode(text).ids), int(batch["lengths"][0])
        analysis = Analysis(
            tokens=tokens,
            weights=weights,
            layer_names=[display_name(n) for n in rec.names],
            heads=rec.heads,
            prediction=dict(zip(self.labels, probs, strict=False)),
            title=f"{Path(self.name).name}: {text[:60]}",
            truncated=Truncation(total, kept, self.max_tokens) if total > kept else None,
            roles=list(rec.roles),
        )
        if "pool" in analysis.roles:
            analysis.query_label = "(pooled query)"
        return analysis


def load_subject(
    run_dir: str | Path | None = None,
    *,
    pretrained: str | None = None,
    max_tokens: int | None = None,
) -> PretrainedSubject | RunSubject:
    """A pretrained model (``pretrained="minilm"``) or a trained run (``run_dir``).

    Args:
        max_tokens: longer inputs are cut to this many tokens (None: the model's own
            limit for a pretrained model, the training length for a run).

    Raises:
        ValueError: neither or both given, or ``max_tokens`` out of range.
        RunError: ``run_dir`` is not a finished run folder.
    """
    if (run_dir is None) == (pretrained is None):
        raise ValueError("give either a run directory or pretrained=NAME (e.g. 'minilm'), not both")
    if pretrained is not None:
        return PretrainedSubject(pretrained, max_tokens=max_tokens)
    return RunSubject(run_dir, max_tokens=max_tokens)
