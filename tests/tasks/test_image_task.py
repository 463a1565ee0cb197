"""The image-classification task: data settings, artifacts, batches and augmentation,
the run folder round trip, predictions, explanations and evaluation (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from attnlab.data.image_folder import read_image
from attnlab.data.images import ImageDataset
from attnlab.models import create_model
from attnlab.models.vision import CNNConfig, ImageDims
from attnlab.runs import load_run, make_config
from attnlab.runs.folder import save_run
from attnlab.tasks import get_task
from attnlab.tasks.image import ImageArtifacts, ImageData, collate_images

TASK = get_task("image")


def _folder(tmp_path, n=6):
    """A tiny image folder: 3 classes, each a different brightness, mixed modes."""
    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for k, name in enumerate(("dark", "mid", "light")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = np.clip(rng.normal(40 + 80 * k, 10, (12, 10)), 0, 255).astype(np.uint8)
            im = Image.fromarray(a)
            im = im.convert("RGB") if i % 3 == 1 else im.convert("RGBA") if i % 3 == 2 else im
            im.save(root / name / f"{i}.png")
    return root


def test_task_is_registered_with_its_defaults():
    cfg = make_config("image", "fashion-mnist", "cnn-cbam")
    assert cfg.task == "image" and cfg.data == ImageData("fashion-mnist", crop_padding=2)
    assert cfg.train.schedule == "cosine" and cfg.train.label_smoothing == 0.1
    assert TASK.monitor == "val_acc" and TASK.monitor_mode == "max"
    assert ImageData("mnist-5k").flips() is False and ImageData("fashion-mnist").flips()


@pytest.mark.parametrize(
    "bad", [{"flip": "maybe"}, {"channels": 2}, {"crop_padding": -1}, {"val_fraction": 1.0}]
)
def test_bad_data_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        ImageData(**bad)


def test_collate_and_augmentation_are_deterministic():
    items = [(torch.full((1, 6, 6), 10 * i, dtype=torch.uint8), i) for i in range(4)]
    batch = collate_images(items, crop_padding=2, flip=True)
    assert batch["images"].dtype == torch.float32 and batch["images"].max() <= 1
    assert batch["labels"].tolist() == [0, 1, 2, 3] and batch["augment"].tolist() == [2, 1]
    batch["images"] = torch.rand(4, 1, 6, 6)
    a = TASK.transform(batch, epoch=1, index=3, seed=0)["images"]
    assert torch.equal(a, TASK.transform(batch, epoch=1, index=3, seed=0)["images"])
    assert not torch.equal(a, TASK.transform(batch, epoch=2, index=3, seed=0)["images"])
    off = collate_images(items, crop_padding=0, flip=False)
    assert TASK.transform(off, epoch=0, index=0, seed=0) is off


def test_step_uses_label_smoothing():
    dims = ImageDims(1, 8, 8, 3)
    model = create_model("cnn", CNNConfig(widths=(4, 8)), dims=dims).eval()
    batch = TASK.example_batch(dims, size=4)
    plain = TASK.step(model, batch, label_smoothing=0.0)
    smooth = TASK.step(model, batch, label_smoothing=0.2)
    assert plain.preds.shape == (4, 3) and plain.size == 4
    assert not torch.isclose(plain.loss, smooth.loss)


def test_folder_splits_artifacts_and_round_trip(tmp_path):
    data = ImageData(str(_folder(tmp_path)), val_fraction=0.2, test_fraction=0.2, size=8,
                     crop_padding=1)  # fmt: skip
    splits = TASK.load_splits(data, seed=0)
    again = TASK.load_splits(data, seed=0)
    for k in ("train", "val", "test"):
        assert torch.equal(getattr(splits, k).images, getattr(again, k).images)
    assert [len(splits.train), len(splits.val), len(splits.test)] == [12, 3, 3]
    art = TASK.build_artifacts(data, splits, seed=0, log=print)
    assert art.classes == ["dark", "light", "mid"] and (art.channels, art.height) == (3, 8)
    assert art.invert_light is False and art.flip is True
    dims = TASK.dims(art)
    cfg = make_config("image", data.name, "cnn-cbam", overrides=["model.widths=4,8",
                      "data.size=8", "data.val_fraction=0.2", "data.test_fraction=0.2"])  # fmt: skip
    model = create_model("cnn-cbam", cfg.model_config, dims=dims).eval()
    run_dir = save_run(tmp_path / "run", task=TASK, config=cfg, model=model, artifacts=art,
                       dims=dims)  # fmt: skip
    run = load_run(run_dir)
    assert type(run).__name__ == "ImageRun" and run.classes == art.classes
    x = splits.test.images.float() / 255
    assert torch.allclose(run.predict_proba(splits.test.images), torch.softmax(model(x), -1))
    assert run.methods == ["cbam", "gradient"]
    assert run.explain(splits.test.images, "cbam").shape == (3, 8, 8)
    with pytest.raises(ValueError, match="does not apply"):
        run.explain(splits.test.images, "rollout")
    m = TASK.evaluate(run, splits.test)
    assert m["n"] == 3 and sum(map(sum, m["confusion"])) == 3
    assert len(m["per_class"]["accuracy"]) == 3 and 0 <= m["macro_f1"] <= 1
    text = TASK.format_metrics(m, run)
    assert "accuracy:" in text and "light" in text
    # files of any size and mode are converted; a broken artifacts file is one line
    preds = run.predict([tmp_path / "shapes" / "mid" / "2.png"])
    assert preds[0].label in run.classes and any("resized" in n for n in preds[0].notes)
    (run_dir / "image.json").write_text("{}")
    with pytest.raises(Exception, match=r"image\.json"):
        load_run(run_dir)


def test_artifacts_file_is_checked(tmp_path):
    art = ImageArtifacts(["a", "b"], 1, 28, 28, True, 2, False)
    TASK.save_artifacts(art, tmp_path)
    assert TASK.load_artifacts(ImageData(), tmp_path) == art
    (tmp_path / "image.json").write_text(json.dumps({"classes": ["a"], "channels": 1,
                                                     "height": 2, "width": 2}))  # fmt: skip
    with pytest.raises(ValueError, match=r"image\.json"):
        TASK.load_artifacts(ImageData(), tmp_path)


def test_read_image_converts_and_refuses_non_images(tmp_path):
    Image.new("RGBA", (40, 20), (255, 255, 255, 0)).save(tmp_path / "white.png")
    x, notes = read_image(tmp_path / "white.png", channels=1, size=(28, 28), invert_light=True)
    assert x.shape == (1, 28, 28) and x.dtype == torch.uint8 and int(x.max()) == 0
    assert len(notes) == 3  # converted, resized, inverted
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"x.png: not an image"):
        read_image(tmp_path / "x.png", channels=1, size=(28, 28))
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png", channels=3, size=(4, 4))


def test_relabel_by_class_name():
    class R:
        classes = ("b", "a")

    ds = ImageDataset("x", torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1]),
                      ("a", "b"))  # fmt: skip
    assert TASK.relabel(R(), ds).labels.tolist() == [1, 0]
    other = ImageDataset("y", ds.images, ds.labels, ("a", "zebra"))
    with pytest.raises(ValueError, match="zebra"):
        TASK.relabel(R(), other)


def test_bad_files_in_a_folder_warn_or_fail_with_strict(tmp_path):
    root = _folder(tmp_path, n=5)
    (root / "mid" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = ImageData(str(root), val_fraction=0.2, test_fraction=0.2, size=8)
    with pytest.warns(UserWarning, match=r"broken\.png: skipped"):
        splits = TASK.load_splits(data, seed=0)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 15
    strict = ImageData(str(root), val_fraction=0.2, test_fraction=0.2, size=8, strict=True)
    with pytest.raises(ValueError, match=r"1 file\(s\) are not usable images"):
        TASK.load_splits(strict, seed=0)
