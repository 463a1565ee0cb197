"""Pair tokenizers: special ids, BOS/EOS framing, lossless detokenisation, Chinese
characters, joint and separate vocabularies, save/load."""

from __future__ import annotations

import pytest

from attnlab.data.pair_tokenizer import SPECIALS, PairTokenizer, train_pair_tokenizer

DE = [
    "Das Wetter ist heute schön.",
    "Er hat's nicht gesagt, oder?",
    'Sie sagte: "Komm bitte morgen!"',
    "Wir fahren am Montag nach Berlin.",
] * 4
EN = [
    "The weather is nice today.",
    "He didn't say it, did he?",
    'She said: "Please come tomorrow!"',
    "We are going to Berlin on Monday.",
] * 4


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subword_round_trip_is_exact(kind, tmp_path):
    tok = train_pair_tokenizer(DE, EN, kind=kind, vocab_size=120)
    assert tok.joint and tok.source_vocab_size == tok.target_vocab_size <= 120
    for i, s in enumerate(SPECIALS):
        assert tok.source.token_to_id(s) == i
    for text in EN[:4]:
        ids = tok.encode_target([text])[0]
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids) == text  # spacing around punctuation survives
    src = tok.encode_source(DE[:2])
    assert all(ids[-1] == tok.eos_id and tok.bos_id not in ids for ids in src)
    assert tok.decode_source(src[1]) == DE[1]
    tok.save(tmp_path)
    again = PairTokenizer.load(tmp_path)
    assert again.joint and again.encode_source(DE) == tok.encode_source(DE)


def test_decode_stops_at_eos_and_drops_specials():
    tok = train_pair_tokenizer(DE, EN, vocab_size=100)
    ids = tok.encode_target(["The weather is nice today."])[0]
    assert tok.decode([*ids, *tok.encode_target(["We are"])[0][1:]]) == "The weather is nice today."
    assert tok.decode([tok.pad_id, *ids[1:-1]]) == "The weather is nice today."


def test_max_len_truncates_subwords_but_keeps_eos():
    tok = train_pair_tokenizer(DE, EN, vocab_size=100)
    ids = tok.encode_target(["The weather is nice today."], max_len=2)[0]
    assert len(ids) == 4 and ids[-1] == tok.eos_id


def test_chinese_characters_with_separate_vocabularies(tmp_path):
    zh = ["老师，您好！", "你好，很高兴认识你。", "我们是同学。", "他 是 老师 ok"] * 2
    en = [
        "Hello, teacher!",
        "Hello, nice to meet you.",
        "We are classmates.",
        "He is a teacher.",
    ] * 2
    tok = train_pair_tokenizer(
        zh, en, source_kind="char", target_kind="bpe", joint=False, vocab_size=200, min_frequency=1
    )
    assert not tok.joint
    assert tok.source_tokens("我们是同学。") == ["我", "们", "是", "同", "学", "。", "[EOS]"]
    ids = tok.encode_source(["他 是 老师 ok"])[0]
    assert tok.decode_source(ids) == "他 是 老师 ok"  # spaces are tokens of their own
    tok.save(tmp_path)
    again = PairTokenizer.load(tmp_path)
    assert not again.joint and again.encode_target(en) == tok.encode_target(en)
    assert again.target_vocab_size == tok.target_vocab_size


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown token kind 'words'"):
        train_pair_tokenizer(DE, EN, kind="words")
    with pytest.raises(ValueError, match="joint vocabulary needs one kind"):
        train_pair_tokenizer(DE, EN, source_kind="char", target_kind="bpe")
    with pytest.raises(ValueError, match="16 sources but 1 targets"):
        train_pair_tokenizer(DE, EN[:1])
    with pytest.raises(TypeError, match="not one string"):
        train_pair_tokenizer(DE, EN, vocab_size=60).encode_source("Das")
    with pytest.raises(FileNotFoundError, match=r"pair_tokenizer\.json is missing"):
        PairTokenizer.load(tmp_path)
