"""Tokenizers: training, round trip, save/load, padding."""

from __future__ import annotations

import pytest
import torch

from attnlab.data import TextTokenizer, train_tokenizer

TEXTS = [
    "The film is a gorgeous, witty delight.",
    "A dull and tedious mess of a movie.",
    "Witty dialogue, gorgeous photography, a delight!",
    "Tedious, dull, and far too long.",
] * 5


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_subword_round_trip(kind, tmp_path):
    tok = train_tokenizer(TEXTS, kind=kind, vocab_size=200, min_frequency=1, max_len=32)
    text = "a gorgeous, witty movie."
    ids = tok.ids([text])[0]
    assert tok.decode(ids).replace(" ,", ",").replace(" .", ".") == text
    tok.save(tmp_path)
    again = TextTokenizer.load(tmp_path, max_len=32)
    assert again.ids([text]) == tok.ids([text])
    assert again.tokens([text]) == tok.tokens([text])


def test_char_tokenizer_for_chinese():
    texts = ["这本书很好看", "质量太差了", "很好 很好", "太差"]
    tok = train_tokenizer(texts, kind="char", vocab_size=100, min_frequency=1)
    assert tok.tokens(["很好看"])[0] == ["很", "好", "看"]
    assert tok.tokens(["很 好"])[0] == ["很", "好"]  # whitespace is not a token
    assert tok.tokens(["狗"])[0] == ["[UNK]"]


def test_encode_pads_and_truncates():
    tok = train_tokenizer(TEXTS, kind="wordpiece", vocab_size=200, min_frequency=1, max_len=5)
    batch = tok.encode(["dull", "a gorgeous, witty delight and a dull mess", ""])
    ids, lengths = batch["input_ids"], batch["lengths"]
    assert ids.dtype == torch.long and lengths.tolist() == [1, 5, 1]
    assert ids.shape == (3, 5) and (ids[0, 1:] == tok.pad_id).all()
    tokens = tok.tokens(["dull", "a gorgeous, witty delight and a dull mess", ""])
    assert [len(t) for t in tokens] == lengths.tolist()


def test_errors():
    with pytest.raises(ValueError, match="unknown tokenizer kind 'word'"):
        train_tokenizer(TEXTS, kind="word")
    tok = train_tokenizer(TEXTS, vocab_size=100, min_frequency=1)
    with pytest.raises(TypeError, match="list of strings"):
        tok.encode("one string")
