"""Machine translation: a source sentence in, a target sentence out, with the source x target
alignment the attention learned.

Data: sentence pairs (``de-en``, ``zh-en`` or a user's TSV/CSV/JSONL file;
:mod:`attnlab.data.pairs`), split by unique source sentence with the seed; a
:class:`~attnlab.data.PairTokenizer` trained on the training split (subwords; characters
for Chinese); presets take ``src (B, S)``, ``src_lengths (B,)`` and the teacher-forced
``tgt_in (B, T)`` and return logits ``(B, T, V)``; decoding is greedy or beam search
(:mod:`attnlab.generate`), scored with sacreBLEU (:mod:`attnlab.tasks.bleu`).

Example:
    >>> from attnlab.runs import load_run
    >>> run = load_run("runs/de-en-transformer")  # doctest: +SKIP
    >>> run.translate(["Ich habe heute keine Zeit."], beam=5)[0].text  # doctest: +SKIP
    "I don't have time today."
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from attnlab.data.pair_corpora import PAIR_DATASETS, load_pairs
from attnlab.data.pair_tokenizer import PAIR_KINDS, PairTokenizer, train_pair_tokenizer
from attnlab.data.pairs import PairDataset, PairSplits
from attnlab.models.seq2seq import TranslationDims
from attnlab.tasks.base import Run, StepOutput, Task

__all__ = [
    "TASK",
    "TranslateArtifacts",
    "TranslateData",
    "TranslateRun",
    "TranslateTask",
    "Translation",
    "TruncationWarning",
    "collate_pairs",
]

ARTIFACTS = "translate.json"
CHINESE = ("zh", "cmn")


class TruncationWarning(UserWarning):
    """An input sentence was longer than the run's maximum and was cut."""


@dataclass(frozen=True)
class TranslateData:
    """Data settings of a translation run (and how it is evaluated).

    Attributes:
        name: ``de-en``, ``zh-en`` or a .tsv/.csv/.jsonl pair file.
        source_column, target_column: columns (JSON keys) of a pair file.
        source_lang, target_lang: language codes of a pair file (``zh`` selects
            characters); the packaged corpora know theirs.
        test_size, val_size: pairs held out (>= 1: a count, < 1: a fraction, 0: the
            corpus's own: 1,000 / 500 for ``de-en``, 10 % / 10 % otherwise).
        limit: keep a seeded sample of this many pairs before splitting (0: all).
        tokenizer: subword kind, ``bpe`` or ``unigram`` (Chinese sides use characters).
        vocab_size: vocabulary size (joint, or of each side).
        joint: one vocabulary for both sides (shared embeddings); a Chinese side always
            gets its own character vocabulary.
        min_frequency: rarer merges/characters stay out of the vocabulary.
        max_len: subword tokens kept per sentence (longer ones are cut, with a warning
            when translating).
        lexicon: ``de-en`` only: add this many dictionary word/phrase pairs to the
            training split (-1: all; 0: none).
        beam: beam size of evaluation (greedy is always scored too).
        length_penalty: ``alpha`` of the length penalty (Wu et al. 2016).
    """

    name: str = "de-en"
    source_column: str = "source"
    target_column: str = "target"
    source_lang: str = "src"
    target_lang: str = "en"
    test_size: float = 0.0
    val_size: float = 0.0
    limit: int = 0
    tokenizer: str = "bpe"
    vocab_size: int = 4000
    joint: bool = True
    min_frequency: int = 2
    max_len: int = 64
    lexicon: int = 0
    beam: int = 5
    length_penalty: float = 0.6

    def __post_init__(self) -> None:
        if self.tokenizer not in PAIR_KINDS or self.tokenizer == "char":
            raise ValueError(f"tokenizer must be bpe or unigram, got {self.tokenizer!r}")
        for name in ("vocab_size", "max_len", "beam", "min_frequency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.vocab_size < 8:
            raise ValueError(f"vocab_size must be >= 8, got {self.vocab_size}")
        for name in ("test_size", "val_size"):
            v = getattr(self, name)
            if v < 0 or (v >= 1 and v != int(v)):
                raise ValueError(f"{name} must be a count >= 1, a fraction < 1 or 0, got {v}")
        if self.limit < 0 or self.lexicon < -1:
            raise ValueError(
                f"limit must be >= 0 and lexicon >= -1, got {self.limit}, {self.lexicon}"
            )
        if self.length_penalty < 0:
            raise ValueError(f"length_penalty must be >= 0, got {self.length_penalty}")

    def sizes(self) -> tuple[int | float, int | float]:
        """``(test, val)`` sizes for :meth:`~attnlab.data.PairDataset.split`."""
        info = PAIR_DATASETS.get(self.name)
        default = (info.test_size, info.val_size) if info else (0.1, 0.1)

        def size(v: float, d: int | float) -> int | float:
            return d if v == 0 else (int(v) if v >= 1 else float(v))

        return size(self.test_size, default[0]), size(self.val_size, default[1])


@dataclass
class TranslateArtifacts:
    """What a translation run derives from its training data.

    Attributes:
        tokenizer: the :class:`~attnlab.data.PairTokenizer`.
        source_lang, target_lang: language codes (``zh`` output is scored with ``tok:zh``).
        max_len: subword tokens kept per sentence.
    """

    tokenizer: PairTokenizer
    source_lang: str
    target_lang: str
    max_len: int


@dataclass
class Translation:
    """One sentence's translation and its alignment.

    Attributes:
        source: the input as given.
        text: the detokenised translation (``""`` for an empty input).
        source_tokens: source tokens the model read (``[EOS]`` last).
        target_tokens: generated target tokens (``[EOS]`` last when the model ended it).
        attention: ``(L, H, T, S)`` cross-attention of each target token over the source,
            per layer and head (None for a model without attention, or when not asked).
        log_prob: the model's log-probability of the output.
        truncated: the input was longer than the run's maximum and was cut.
    """

    source: str
    text: str
    source_tokens: list[str] = field(default_factory=list)
    target_tokens: list[str] = field(default_factory=list)
    attention: Tensor | None = None
    log_prob: float = 0.0
    truncated: bool = False

    @property
    def alignment(self) -> Tensor | None:
        """``(T, S)``: the attention averaged over layers and heads."""
        return None if self.attention is None else self.attention.mean((0, 1))


def is_chinese(lang: str) -> bool:
    """Whether ``lang`` names Chinese (its side is tokenised into characters)."""
    return lang.lower().split("-")[0] in CHINESE


class TranslateRun(Run):
    """A trained translator (see :class:`~attnlab.tasks.base.Run`)."""

    @property
    def tokenizer(self) -> PairTokenizer:
        return self.artifacts.tokenizer

    def encode(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, list[bool]]:
        """``src (B, S)``, ``src_lengths (B,)`` and whether each text was cut to
        ``max_len`` subwords."""
        tok, n = self.tokenizer, self.artifacts.max_len
        full = [len(ids) for ids in tok._encode(tok.source, texts, None)]
        rows = tok.encode_source(texts, max_len=n)
        src = _pad(rows, tok.pad_id)
        return src, torch.tensor([len(r) for r in rows]), [k > n for k in full]

    @torch.no_grad()
    def translate(
        self,
        texts: Sequence[str],
        *,
        beam: int = 1,
        alignment: bool = False,
        batch_size: int = 64,
    ) -> list[Translation]:
        """Translate ``texts`` (greedy with ``beam=1``, else beam search).

        An empty (blank) text gives an empty translation; a text longer than the run's
        ``max_len`` subwords is cut, with a :class:`TruncationWarning`.

        Args:
            texts: source sentences.
            beam: beam size.
            alignment: also record each output token's cross-attention over the source.
            batch_size: sentences decoded together.

        Raises:
            TypeError: ``texts`` is one string, or holds something else than strings.
            ValueError: ``beam`` < 1.
        """
        from attnlab.tasks.translate_eval import cross_attention, decode

        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is a {type(t).__name__}, not a string")
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be an int >= 1, got {beam!r}")
        out = [Translation(t, "") for t in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        tok = self.tokenizer
        for start in range(0, len(todo), batch_size):
            idx = todo[start : start + batch_size]
            chunk = [" ".join(texts[i].split()) for i in idx]
            src, lengths, cut = self.encode(chunk)
            hyps = decode(self.model, src, lengths, beam=beam, alpha=self.length_penalty())
            maps = (
                cross_attention(self.model, src, lengths, [h.tokens for h in hyps])
                if alignment
                else None
            )
            for j, (i, h) in enumerate(zip(idx, hyps, strict=True)):
                if cut[j]:
                    warnings.warn(
                        f"input {i + 1} has more than {self.artifacts.max_len} tokens; "
                        "it was cut to that length",
                        TruncationWarning,
                        stacklevel=2,
                    )
                n = int(lengths[j])
                ids = [*h.tokens, tok.eos_id] if h.finished else list(h.tokens)
                out[i] = Translation(
                    source=texts[i],
                    text=tok.decode(h.tokens),
                    source_tokens=[tok.source.id_to_token(int(x)) or "[UNK]" for x in src[j, :n]],
                    target_tokens=tok.target_tokens(ids),
                    attention=None
                    if maps is None or maps[j] is None
                    else maps[j][:, :, : len(ids), :n],
                    log_prob=h.log_prob,
                    truncated=cut[j],
                )
        return out

    def alignment(self, text: str, *, beam: int = 1) -> Translation:
        """One sentence's translation with its ``(L, H, T, S)`` cross-attention
        (``.alignment``: the ``(T, S)`` mean). The attention of ``gru`` is None."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return self.translate([text], beam=beam, alignment=True)[0]

    def length_penalty(self) -> float:
        return float(getattr(self.config.data, "length_penalty", 0.6))


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
    return out


def collate_pairs(
    items: Sequence[tuple[list[int], list[int]]], *, pad_id: int
) -> dict[str, Tensor]:
    """``{"src": (B, S), "src_lengths": (B,), "tgt_in": (B, T), "tgt_out": (B, T)}``;
    target ids are ``BOS ... EOS``: ``tgt_in`` drops the last, ``tgt_out`` the first."""
    src = _pad([s for s, _ in items], pad_id)
    tgt = _pad([t for _, t in items], pad_id)  # (B, T + 1)
    lengths = torch.tensor([len(s) for s, _ in items], dtype=torch.long)
    return {"src": src, "src_lengths": lengths, "tgt_in": tgt[:, :-1], "tgt_out": tgt[:, 1:]}


class _Encoded(Sequence):
    """Pairs as ``(source ids, target ids)``, encoded once."""

    def __init__(self, pairs: PairDataset, artifacts: TranslateArtifacts) -> None:
        tok, n = artifacts.tokenizer, artifacts.max_len
        self.src = tok.encode_source(pairs.sources, max_len=n)
        self.tgt = tok.encode_target(pairs.targets, max_len=n)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.src[i], self.tgt[i]


class TranslateTask(Task):
    """The translation task (validation loss picks the best epoch)."""

    name = "translate"
    data_config = TranslateData
    default_model = "transformer"
    monitor = "val_loss"
    monitor_mode = "min"
    run_class = TranslateRun

    # -- data -----------------------------------------------------------------------------
    def _pairs(self, data: TranslateData) -> PairDataset:
        pairs = load_pairs(
            data.name, source_column=data.source_column, target_column=data.target_column,
            source_lang=data.source_lang, target_lang=data.target_lang,
        )  # fmt: skip
        if data.limit and data.limit < len(pairs):
            pairs = pairs.subset(sorted(random.Random(0).sample(range(len(pairs)), data.limit)))
        return pairs

    def load_splits(self, data: TranslateData, *, seed: int) -> PairSplits:
        test, val = data.sizes()
        splits = self._pairs(data).split(seed=seed, test=test, val=val)
        if data.lexicon:
            from attnlab.data.pair_corpora import load_lexicon

            lex = load_lexicon(
                data.name, limit=None if data.lexicon < 0 else data.lexicon, seed=seed
            )
            held = set(splits.val.sources) | set(splits.test.sources)
            splits = PairSplits(splits.train + lex.without_sources(held), splits.val, splits.test)
        return splits

    def build_artifacts(self, data: TranslateData, splits: PairSplits, *, seed: int, log: Callable):
        train = splits.train
        src_zh, tgt_zh = is_chinese(train.source_lang), is_chinese(train.target_lang)
        joint = data.joint and src_zh == tgt_zh
        tok = train_pair_tokenizer(
            train.sources, train.targets, kind=data.tokenizer,
            source_kind="char" if src_zh else data.tokenizer,
            target_kind="char" if tgt_zh else data.tokenizer,
            vocab_size=data.vocab_size, joint=joint, min_frequency=data.min_frequency,
        )  # fmt: skip
        log(f"tokenizer: {tok}")
        return TranslateArtifacts(tok, train.source_lang, train.target_lang, data.max_len)

    def save_artifacts(self, artifacts: TranslateArtifacts, folder: Path) -> list[str]:
        names = [p.name for p in artifacts.tokenizer.save(folder)]
        a = artifacts
        meta = {"source_lang": a.source_lang, "target_lang": a.target_lang, "max_len": a.max_len}
        (folder / ARTIFACTS).write_text(json.dumps(meta) + "\n", encoding="utf-8")
        return [*names, ARTIFACTS]

    def load_artifacts(self, data: TranslateData, folder: Path) -> TranslateArtifacts:
        path = folder / ARTIFACTS
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            langs = str(meta["source_lang"]), str(meta["target_lang"])
            max_len = int(meta["max_len"])
            if max_len < 1:
                raise ValueError
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: not a translation file written by attnlab") from None
        try:
            tok = PairTokenizer.load(folder)
        except (OSError, ValueError, KeyError, Exception) as e:  # tokenizers raises Exception
            raise ValueError(f"{folder}: cannot read the pair tokenizer ({e})") from None
        return TranslateArtifacts(tok, *langs, max_len)

    def dims(self, artifacts: TranslateArtifacts) -> TranslationDims:
        tok = artifacts.tokenizer
        return TranslationDims(
            tok.source_vocab_size, tok.target_vocab_size, tok.pad_id, tok.bos_id, tok.eos_id,
            shared_vocab=tok.joint,
        )  # fmt: skip

    def dataset(self, split: PairDataset, artifacts: TranslateArtifacts, data) -> _Encoded:
        return _Encoded(split, artifacts)

    def collate(self, artifacts: TranslateArtifacts):
        return partial(collate_pairs, pad_id=artifacts.tokenizer.pad_id)

    def lengths(self, dataset: _Encoded) -> list[int]:
        return [max(len(s), len(t)) for s, t in zip(dataset.src, dataset.tgt, strict=True)]

    # -- training -------------------------------------------------------------------------
    def metrics(self, dims: TranslationDims) -> dict[str, Any]:
        from torchmetrics.classification import MulticlassAccuracy

        return {"acc": MulticlassAccuracy(dims.target_vocab_size, average="micro")}

    def step(self, model: nn.Module, batch: dict[str, Tensor], *, label_smoothing: float):
        tgt_out = batch["tgt_out"]
        pad = int(getattr(model, "pad_id", 0))
        valid = tgt_out != pad  # (B, T)
        logits = model(batch["src"], batch["src_lengths"], batch["tgt_in"])  # (B, T, V)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=pad,
            label_smoothing=label_smoothing,
        )  # fmt: skip
        return StepOutput(loss, logits.detach()[valid], tgt_out[valid], int(tgt_out.shape[0]))

    def example_batch(
        self, dims: TranslationDims, *, size: int = 3, seed: int = 0
    ) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        items = []
        for i in range(size):
            s, t = max(1, 9 - 2 * i), max(0, 7 - 2 * i)  # different lengths: padding included
            src = torch.randint(4, dims.source_vocab_size, (s,), generator=g).tolist()
            tgt = torch.randint(4, dims.target_vocab_size, (t,), generator=g).tolist()
            items.append(([*src, dims.eos_id], [dims.bos_id, *tgt, dims.eos_id]))
        return collate_pairs(items, pad_id=dims.pad_id)

    # -- after training -------------------------------------------------------------------
    def evaluate(self, run: TranslateRun, split: PairDataset) -> dict[str, Any]:
        """BLEU and chrF (with their sacreBLEU signatures) of greedy and beam decoding."""
        from attnlab.tasks.translate_eval import score_translations

        return score_translations(run, split, beam=run.config.data.beam)

    def evaluation_data(self, data: TranslateData) -> PairDataset:
        return self._pairs(data)

    def baseline(self, data: TranslateData, splits: PairSplits, *, seed: int) -> dict[str, Any]:
        """Copying the source sentence as its translation (names, numbers, punctuation)."""
        from attnlab.tasks.bleu import translation_metrics

        t = splits.test
        m = translation_metrics(t.sources, t.targets, target_lang=t.target_lang)
        return {"name": "copy the source", "bleu": m["bleu"], "chrf": m["chrf"]}

    def format_metrics(self, metrics: dict[str, Any], run: Run) -> str:
        from attnlab.tasks.translate_eval import format_translation_metrics

        return format_translation_metrics(metrics)

    def summary(self, metrics: dict[str, Any]) -> str:
        return (
            f"test BLEU {metrics['bleu']:.2f} (beam {metrics['beam']}; greedy "
            f"{metrics['greedy_bleu']:.2f}), chrF {metrics['chrf']:.2f}, {metrics['n']} sentences"
        )

    def report_sections(
        self,
        run: TranslateRun,
        split: PairDataset,
        metrics: dict[str, Any],
        *,
        n_examples: int = 20,
    ) -> list:
        from attnlab.tasks.translate_eval import translation_report_sections

        return translation_report_sections(run, split, metrics, n_examples=n_examples)


TASK = TranslateTask()
