"""Tokenizers for sentence pairs: joint or separate subword vocabularies, characters for
Chinese, and lossless detokenisation (what BLEU is computed on).

Subwords (BPE or unigram) are learned on the training split with the ``tokenizers``
library, SentencePiece style: spaces become ``▁`` inside tokens, so decoding restores the
original spacing exactly. Chinese is split into characters. Every vocabulary starts with
the same four special tokens, so pad/unk/bos/eos ids agree between source and target.

Example:
    >>> tok = train_pair_tokenizer(
    ...     ["Das ist gut.", "Das ist schlecht."], ["That is good.", "That is bad."],
    ...     vocab_size=60,
    ... )
    >>> ids = tok.encode_target(["That is good."])[0]
    >>> ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    True
    >>> tok.decode(ids)
    'That is good.'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

__all__ = ["PAIR_KINDS", "SPECIALS", "PairTokenizer", "train_pair_tokenizer"]

#: Token kinds: subwords (``bpe``, ``unigram``) or single characters (``char``, Chinese).
PAIR_KINDS = ("bpe", "unigram", "char")
#: Special tokens, in id order: padding 0, unknown 1, begin 2, end 3.
SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
META = "pair_tokenizer.json"


def _check_specials(tok: Tokenizer, side: str) -> None:
    for i, s in enumerate(SPECIALS):
        if tok.token_to_id(s) != i:
            raise ValueError(
                f"{side} tokenizer must map {s} to id {i}, got {tok.token_to_id(s)}; "
                "train it with train_pair_tokenizer"
            )


class PairTokenizer:
    """Source and target tokenizers of a translation model (one object when joint).

    Source ids end with ``eos_id``; target ids are ``bos_id ... eos_id``, so a model reads
    ``ids[:-1]`` and predicts ``ids[1:]``.

    Args:
        source: the source ``tokenizers.Tokenizer``.
        target: the target one; None (or ``source`` itself) for a joint vocabulary.

    Attributes:
        pad_id, unk_id, bos_id, eos_id: special ids (0-3), the same on both sides.
    """

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, source: Tokenizer, target: Tokenizer | None = None) -> None:
        self.source = source
        self.target = source if target is None else target
        _check_specials(self.source, "source")
        _check_specials(self.target, "target")
        for t in (self.source, self.target):
            t.no_padding()
            t.no_truncation()

    @property
    def joint(self) -> bool:
        """Whether source and target share one vocabulary (and can share embeddings)."""
        return self.source is self.target

    @property
    def source_vocab_size(self) -> int:
        return self.source.get_vocab_size()

    @property
    def target_vocab_size(self) -> int:
        return self.target.get_vocab_size()

    def _encode(self, tok: Tokenizer, texts: Sequence[str], max_len: int | None) -> list[list[int]]:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        out = []
        for enc in tok.encode_batch(list(texts)):
            ids = enc.ids
            out.append(ids[:max_len] if max_len is not None else ids)
        return out

    def encode_source(self, texts: Sequence[str], max_len: int | None = None) -> list[list[int]]:
        """Source ids: the subwords (at most ``max_len``) then ``eos_id``."""
        return [[*ids, self.eos_id] for ids in self._encode(self.source, texts, max_len)]

    def encode_target(self, texts: Sequence[str], max_len: int | None = None) -> list[list[int]]:
        """Target ids: ``bos_id``, the subwords (at most ``max_len``), ``eos_id``."""
        return [
            [self.bos_id, *ids, self.eos_id] for ids in self._encode(self.target, texts, max_len)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenised target text: stops at the first ``eos_id``, drops specials."""
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.target.decode(ids, skip_special_tokens=True).strip()

    def decode_source(self, ids: Sequence[int]) -> str:
        """Detokenised source text (for display)."""
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.source.decode(ids, skip_special_tokens=True).strip()

    def source_tokens(self, text: str) -> list[str]:
        """Source token strings of one text, ``[EOS]`` included (labels for attention maps)."""
        return [*self.source.encode(text).tokens, SPECIALS[EOS_ID]]

    def target_tokens(self, ids: Sequence[int]) -> list[str]:
        """Target token strings of ``ids``."""
        return [self.target.id_to_token(int(i)) or SPECIALS[UNK_ID] for i in ids]

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``source.json`` (and ``target.json`` unless joint) plus a small index."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "source.json"]
        self.source.save(str(paths[0]))
        if not self.joint:
            paths.append(folder / "target.json")
            self.target.save(str(paths[1]))
        meta = folder / META
        meta.write_text(json.dumps({"joint": self.joint}), encoding="utf-8")
        return [*paths, meta]

    @classmethod
    def load(cls, folder: str | Path) -> PairTokenizer:
        """Load what :meth:`save` wrote."""
        folder = Path(folder)
        meta = folder / META
        if not meta.is_file():
            raise FileNotFoundError(f"no pair tokenizer in {folder} ({META} is missing)")
        joint = json.loads(meta.read_text(encoding="utf-8"))["joint"]
        source = Tokenizer.from_file(str(folder / "source.json"))
        target = None if joint else Tokenizer.from_file(str(folder / "target.json"))
        return cls(source, target)

    def __repr__(self) -> str:
        if self.joint:
            return f"PairTokenizer(joint, vocab={self.source_vocab_size})"
        return (
            f"PairTokenizer(source vocab={self.source_vocab_size}, "
            f"target vocab={self.target_vocab_size})"
        )


def _new_tokenizer(kind: str, vocab_size: int, min_frequency: int):
    specials = list(SPECIALS)
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=SPECIALS[UNK_ID]))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            show_progress=False,
        )
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            unk_token=SPECIALS[UNK_ID],
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.WordLevel(unk_token=SPECIALS[UNK_ID]))
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            show_progress=False,
        )
    tok.normalizer = normalizers.NFKC()
    if kind == "char":
        # Every character is a token; a space becomes its own "▁" token.
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Metaspace(prepend_scheme="never"),
                pre_tokenizers.Split(Regex("."), behavior="isolated"),
            ]
        )
        tok.decoder = decoders.Metaspace(prepend_scheme="never")
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
    return tok, trainer


def train_pair_tokenizer(
    sources: Sequence[str],
    targets: Sequence[str],
    *,
    kind: str = "bpe",
    source_kind: str | None = None,
    target_kind: str | None = None,
    vocab_size: int = 8000,
    target_vocab_size: int | None = None,
    joint: bool = True,
    min_frequency: int = 2,
) -> PairTokenizer:
    """Learn source and target vocabularies on the training pairs.

    Args:
        sources: training source sentences.
        targets: training target sentences.
        kind: token kind of both sides (``"bpe"``, ``"unigram"`` or ``"char"``).
        source_kind: override for the source side (``"char"`` for Chinese).
        target_kind: override for the target side.
        vocab_size: vocabulary size (of the joint vocabulary, or of the source side).
        target_vocab_size: target vocabulary size when separate (default ``vocab_size``).
        joint: one vocabulary learned on both sides (needs the same kind on both).
        min_frequency: rarer merges/characters are left out.

    Raises:
        ValueError: unknown kind, a joint vocabulary over different kinds, no text.
    """
    source_kind = source_kind or kind
    target_kind = target_kind or kind
    for k in (source_kind, target_kind):
        if k not in PAIR_KINDS:
            raise ValueError(f"unknown token kind {k!r}; choose one of {', '.join(PAIR_KINDS)}")
    if not sources or not targets:
        raise ValueError("cannot train a tokenizer on no sentences")
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    if vocab_size < len(SPECIALS) + 1:
        raise ValueError(f"vocab_size must be > {len(SPECIALS)}, got {vocab_size}")
    if joint:
        if source_kind != target_kind:
            raise ValueError(
                f"a joint vocabulary needs one kind on both sides, got source {source_kind!r} "
                f"and target {target_kind!r}; pass joint=False"
            )
        tok, trainer = _new_tokenizer(source_kind, vocab_size, min_frequency)
        tok.train_from_iterator([*sources, *targets], trainer=trainer)
        return PairTokenizer(tok)
    src, src_trainer = _new_tokenizer(source_kind, vocab_size, min_frequency)
    src.train_from_iterator(list(sources), trainer=src_trainer)
    tgt, tgt_trainer = _new_tokenizer(target_kind, target_vocab_size or vocab_size, min_frequency)
    tgt.train_from_iterator(list(targets), trainer=tgt_trainer)
    return PairTokenizer(src, tgt)
