"""Overlay figures in every format and the offline image-explanation view (payload and a
real Chromium)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from attnlab.models import create_model
from attnlab.models.vision import ImageDims, ViTConfig
from attnlab.viz.explanation import conv_attention
from attnlab.viz.image_view import ImageExplanationView
from attnlab.viz.overlay import normalize_map, overlay, plot_explanations, plot_gates
from attnlab.viz.plots import save_figure

DIMS = ImageDims(1, 28, 28, 10)
MAGIC = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return create_model("vit", ViTConfig(embed_dim=32, depth=2, num_heads=2), dims=DIMS).eval()


def test_overlay_blends_heat_over_the_image():
    image = torch.zeros(1, 4, 4)
    heat = torch.zeros(4, 4)
    heat[0, 0] = 5.0
    rgb = overlay(image, heat, alpha=0.5)
    assert rgb.shape == (4, 4, 3)
    assert (rgb[1:, 1:] == 0).all() and rgb[0, 0].sum() > 0  # only the hot pixel is coloured
    assert torch.equal(normalize_map(torch.full((2, 3, 3), 7.0)), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="does not match the image"):
        overlay(image, torch.zeros(3, 3))


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_explanation_grid_in_every_format(tmp_path, suffix):
    images = torch.rand(2, 3, 16, 16)
    maps = {"a": torch.rand(2, 16, 16), "b": torch.rand(2, 16, 16), "c": torch.rand(2, 16, 16)}
    fig = plot_explanations(images, maps, labels=["x", "y"])
    assert len(fig.axes) == 2 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "a", "b", "c"]
    path = save_figure(fig, tmp_path / f"grid{suffix}")
    assert path.read_bytes()[:5].startswith(MAGIC[suffix])
    gates = conv_attention(create_model("cnn-se", dims=DIMS).eval(), torch.rand(2, 1, 28, 28)).gates
    gpath = save_figure(plot_gates(gates, example=1), tmp_path / f"gates{suffix}")
    assert gpath.read_bytes()[:5].startswith(MAGIC[suffix])
    with pytest.raises(ValueError, match="map 'a' has shape"):
        plot_explanations(images, {"a": torch.rand(1, 16, 16)})


def _payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="attnlab-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_view_payload_and_self_containment(vit, tmp_path):
    x = torch.rand(3, 1, 28, 28)
    view = ImageExplanationView.from_model(vit, x, class_names=[f"c{i}" for i in range(10)])
    html = view.html()
    data = _payload(html)
    assert data["methods"] == ["rollout", "flow", "grad-rollout", "attention", "gradient"]
    assert (data["layers"], data["heads"], data["grid"], data["prefix"]) == (2, 2, [7, 7], 1)
    assert len(data["examples"]) == 3 and data["examples"][0]["label"].startswith("predicted c")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"(src|href)=[\"']?https?:", html)
    assert view.save(tmp_path / "v.html").stat().st_size == len(html.encode())
    with pytest.raises(ValueError, match="over max_bytes"):
        ImageExplanationView.from_model(vit, x, max_bytes=1000).html()
    cnn = ImageExplanationView.from_model(create_model("cnn-cbam", dims=DIMS), x)
    assert _payload(cnn.html())["methods"] == ["cbam", "gradient"]
    with pytest.raises(ValueError, match="nothing to show"):
        ImageExplanationView(x)


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 900, "height": 800})
    pg.problems, pg.requests = [], []
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    pg.close()


@pytest.mark.browser
def test_view_in_chromium_switches_methods_and_follows_the_hovered_patch(page, vit, tmp_path):
    torch.manual_seed(1)
    x = torch.rand(2, 1, 28, 28)
    from playwright.sync_api import expect

    path = ImageExplanationView.from_model(vit, x).save(tmp_path / "view.html")
    page.goto(path.as_uri())
    page.wait_for_selector("#attnlab-root[data-ready='1']", timeout=20_000)
    root = page.locator("#attnlab-root")
    assert root.get_attribute("data-method") == "rollout"
    first = root.get_attribute("data-checksum")
    canvas = page.locator("canvas.al-image")
    assert canvas.evaluate("c => [c.width, c.height]") == [28 * 12, 28 * 12]

    page.select_option("select.al-method", "gradient")  # method switch redraws
    expect(root).to_have_attribute("data-method", "gradient")
    assert root.get_attribute("data-checksum") != first
    assert page.locator("select.al-layer").count() == 0  # no layer for a pixel map

    page.select_option("select.al-method", "attention")
    page.wait_for_selector("select.al-headsel")
    page.select_option("select.al-layer", "0")
    page.select_option("select.al-headsel", "1")
    cls_sum = root.get_attribute("data-checksum")
    box = canvas.bounding_box()
    # hover patch (row 2, col 5) of the 7 x 7 grid
    page.mouse.move(box["x"] + box["width"] * 5.5 / 7, box["y"] + box["height"] * 2.5 / 7)
    expect(root).to_have_attribute("data-query", "19")
    assert "patch (2, 5)" in page.inner_text(".al-note")
    assert root.get_attribute("data-checksum") != cls_sum
    page.mouse.move(box["x"] - 20, box["y"] - 20)  # leaving the image returns to [CLS]
    expect(root).to_have_attribute("data-query", "cls")

    page.select_option("select.al-example", "1")
    expect(root).not_to_have_attribute("data-checksum", cls_sum)
    assert all(u.startswith("file://") for u in page.requests), page.requests
    assert page.problems == []
