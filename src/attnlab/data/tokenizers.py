"""Tokenizers (from the ``tokenizers`` library) trained on the training split, saved with a run.

English uses WordPiece or BPE, Chinese one token per character; a pretrained model
(MiniLM) brings its own ``tokenizer.json``. All are one ``tokenizers.Tokenizer`` stored as
``tokenizer.json`` in the run folder, so loading runs no code.

Example:
    >>> tok = train_tokenizer(["a good film", "a bad film"], kind="wordpiece", vocab_size=100)
    >>> batch = tok.encode(["a good film"])
    >>> batch["input_ids"].shape, batch["lengths"].tolist()
    (torch.Size([1, 3]), [3])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from torch import Tensor

__all__ = ["KINDS", "TextTokenizer", "train_tokenizer"]

KINDS = ("wordpiece", "bpe", "char")
PAD, UNK = "[PAD]", "[UNK]"
FILE = "tokenizer.json"


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` plus the padding/truncation rules of a model.

    Args:
        tokenizer: the underlying fast tokenizer.
        max_len: longest sequence kept (longer ones are truncated).

    ``encode`` gives the tensors every attnlab text model takes:
    ``input_ids (B, T)`` int64 padded with ``pad_id`` and ``lengths (B,)``.
    """

    def __init__(self, tokenizer: Tokenizer, *, max_len: int = 128) -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.tokenizer = tokenizer
        self.max_len = max_len
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_len)
        pad = tokenizer.token_to_id(PAD)
        self.pad_id = 0 if pad is None else pad
        self.unk_id = tokenizer.token_to_id(UNK)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def vocab(self) -> list[str]:
        """Token strings in id order."""
        items = sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        return [t for t, _ in items]

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (truncated, unpadded; never empty)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        out = []
        for enc in self.tokenizer.encode_batch(list(texts)):
            ids = enc.ids
            out.append(ids if ids else [self.unk_id if self.unk_id is not None else self.pad_id])
        return out

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The token strings each row of :meth:`encode` holds, padding stripped."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        out = []
        for enc in self.tokenizer.encode_batch(list(texts)):
            out.append(enc.tokens if enc.tokens else [UNK])
        return out

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text has more than ``max_len`` tokens (and is cut by :meth:`ids`)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        return [bool(enc.overflowing) for enc in self.tokenizer.encode_batch(list(texts))]

    def pad(self, ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """Pad id lists to ``{"input_ids": (B, T), "lengths": (B,)}``."""
        lengths = torch.tensor([len(x) for x in ids], dtype=torch.long)
        t = int(lengths.max()) if len(ids) else 0
        input_ids = torch.full((len(ids), t), self.pad_id, dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        return {"input_ids": input_ids, "lengths": lengths}

    def encode(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """``{"input_ids": (B, T) int64, "lengths": (B,) int64}`` for a list of texts."""
        return self.pad(self.ids(texts))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a list of ids (subword markers joined back)."""
        return self.tokenizer.decode(list(ids))

    def save(self, folder: str | Path) -> Path:
        """Write ``tokenizer.json`` into ``folder``."""
        path = Path(folder) / FILE
        self.tokenizer.save(str(path))
        return path

    @classmethod
    def load(cls, folder_or_file: str | Path, *, max_len: int = 128) -> TextTokenizer:
        """Load ``tokenizer.json`` (a file, or a folder holding one)."""
        path = Path(folder_or_file)
        if path.is_dir():
            path = path / FILE
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {path}")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise ValueError(f"{path}: not a tokenizer file ({e})") from None
        return cls(tokenizer, max_len=max_len)


def train_tokenizer(
    texts: Sequence[str],
    *,
    kind: str = "wordpiece",
    vocab_size: int = 8000,
    min_frequency: int = 2,
    lowercase: bool = True,
    max_len: int = 128,
) -> TextTokenizer:
    """Train a tokenizer on ``texts`` (the training split only).

    Args:
        texts: training texts.
        kind: ``"wordpiece"`` or ``"bpe"`` (subwords, for space-separated languages) or
            ``"char"`` (one token per character, for Chinese).
        vocab_size: largest vocabulary, special tokens included.
        min_frequency: rarer tokens map to ``[UNK]``.
        lowercase: lowercase (and strip accents for subword kinds) before tokenizing.
        max_len: truncation length of :meth:`TextTokenizer.encode`.

    Raises:
        ValueError: unknown kind or no texts.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not texts:
        raise ValueError("cannot train a tokenizer on no texts")
    specials = [PAD, UNK]
    norm = [normalizers.NFKC()]
    if lowercase:
        norm.append(normalizers.Lowercase())
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=100))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            show_progress=False,
        )
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Whitespace(), pre_tokenizers.Metaspace()]
        )
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        # Whitespace carries no meaning in Chinese text; every other character is a token.
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Split(Regex("."), behavior="isolated"),
            ]
        )
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            show_progress=False,
        )
    tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return TextTokenizer(tok, max_len=max_len)
