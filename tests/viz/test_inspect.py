"""Subjects: limits are stated, empty input refused, replicas share weights but not hooks."""

from __future__ import annotations

import threading

import pytest
import torch

from attnlab.viz.inspect import PretrainedSubject, Truncation, check_text


@pytest.fixture(scope="module")
def subject():
    return PretrainedSubject("minilm", max_tokens=16)


def test_a_long_text_is_cut_and_says_so(subject):
    a = subject.analyze("the cat sat on the mat " * 10)
    assert len(a.tokens) == 16 and a.tokens[-1] == "[SEP]"
    assert a.truncated == Truncation(total=62, kept=16, limit=16)
    assert "62 tokens; only the first 16 are shown" in a.truncated.message()
    assert subject.analyze("the cat sat").truncated is None
    assert a.layer_names[:2] == ["layer 0", "layer 1"] and set(a.roles) == {"self"}


@pytest.mark.parametrize("value", [0, 3, -3, 513, 4000])
def test_max_tokens_is_bounded_with_a_clear_error(value):
    with pytest.raises(
        ValueError, match=rf"between 4 and 512 \(minilm has 512 positions\), got {value}"
    ):
        PretrainedSubject("minilm", max_tokens=value)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(subject, text):
    with pytest.raises(ValueError, match=r"^text is empty$"):
        subject.analyze(text)
    with pytest.raises(ValueError, match=r"^pair is empty$"):
        subject.analyze("fine", text)
    with pytest.raises(TypeError, match="text must be a string, got int"):
        check_text(5)


def test_replicas_share_weights_and_capture_in_parallel(subject):
    other = subject.replica()
    a, b = subject.model.encoder.layer[0], other.model.encoder.layer[0]
    assert a is not b and a.attention.self.query.weight is b.attention.self.query.weight
    texts = ["the cat sat on the mat", "a dog barked at the moon all night long"]
    expected = [subject.analyze(t).weights for t in texts]
    got: dict[int, list] = {}

    def work(i, s):
        for _ in range(3):
            got[i] = s.analyze(texts[i]).weights

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate((subject, other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):  # each thread saw only its own text's attention
        assert len(got[i]) == 6
        for w, e in zip(got[i], expected[i], strict=True):
            torch.testing.assert_close(w, e)
