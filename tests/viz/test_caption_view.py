"""The caption figure and the offline caption view: self-contained, every word clickable,
the marked cell is the maximum of the chosen word's attention, and no network request."""

from __future__ import annotations

import json
import re

import pytest
import torch

from attnlab.tasks.caption import Caption
from attnlab.viz.caption_view import CaptionView, export_captions, plot_caption, word_heat


def _caption(words, layers=2, heads=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = len(words)
    att = torch.rand(layers, heads, k, 4, 16, generator=g) ** 8  # peaked maps
    att = att / att.sum((-2, -1), keepdim=True)
    return Caption(list(words), att, torch.rand(1, 32, 128, generator=g), ["resized"], (8, 8))


def _payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="attnlab-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_word_heat_is_the_mean_map_at_image_size():
    cap = _caption(["one", "two"])
    heat = word_heat(cap, 1)
    assert heat.shape == (32, 128)
    # bilinear upsampling keeps the mean of a map (up to the borders)
    assert abs(float(heat.mean()) - float(cap.maps[1].mean())) < 0.2 * float(cap.maps[1].mean())
    one = word_heat(cap, 0, layer=1, head=0)
    assert not torch.allclose(one, word_heat(cap, 0))


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".html"])
def test_export_in_every_format(tmp_path, suffix):
    caps = [_caption(["one", "two", "three"]), _caption([], seed=1)]
    path = export_captions(caps, tmp_path / f"c{suffix}", labels=["a.png", "blank.png"])
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"use \.html"):
        export_captions(caps, tmp_path / "c.gif")


def test_figure_has_a_panel_per_word_and_no_attention_is_said():
    caps = [_caption(["one", "two"]), Caption(["seven"], None, torch.rand(1, 32, 128), [], (8, 8))]
    fig = plot_caption(caps)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["one two", "one", "two", "seven", "seven (no attention)"]
    with pytest.raises(ValueError, match="carry no attention"):
        CaptionView(caps)


def test_view_is_self_contained(tmp_path):
    view = CaptionView([_caption(["one", "two"])], labels=["digits.png"])
    html = view.html()
    data = _payload(html)
    ex = data["examples"][0]
    assert ex["words"] == ["one", "two"] and ex["grid"] == [4, 16] and ex["layers"] == 2
    assert "default-src 'none'" in html and not re.search(r"(src|href)=[\"']?https?:", html)
    with pytest.raises(ValueError, match="over max_bytes"):
        CaptionView([_caption(["one"])], max_bytes=1000).html()
    with pytest.raises(ValueError, match=r"saved as \.html"):
        view.save(tmp_path / "v.png")


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 900, "height": 700})
    pg.problems, pg.requests = [], []
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    pg.close()


def _wait_word(page, word):
    page.wait_for_function(f"document.getElementById('attnlab-root').dataset.word === '{word}'")


@pytest.mark.browser
def test_clicking_a_word_shows_where_it_looked(page, tmp_path):
    caps = [_caption(["three", "one", "four"]), _caption(["nine"], seed=1), _caption([], seed=2)]
    path = CaptionView(caps, labels=["a.png", "b.png", "blank.png"]).save(tmp_path / "v.html")
    page.goto(path.as_uri())
    page.wait_for_selector("#attnlab-root[data-ready='1']", timeout=20_000)
    root = page.locator("#attnlab-root")
    assert page.locator("button.al-word").all_inner_texts() == ["three", "one", "four"]
    assert root.get_attribute("data-word") == "three"
    mean = caps[0].maps  # (K, h, w)
    assert root.get_attribute("data-cell") == str(int(mean[0].flatten().argmax()))
    first = root.get_attribute("data-checksum")
    page.click("button.al-word >> text=four")
    _wait_word(page, "four")
    assert root.get_attribute("data-cell") == str(int(mean[2].flatten().argmax()))
    assert root.get_attribute("data-checksum") != first
    assert page.locator("button.al-word >> text=four").get_attribute("aria-pressed") == "true"
    assert "where \u201cfour\u201d looked" in page.inner_text(".al-note")

    page.select_option("select.al-layer", "1")  # one layer and head: its own maximum
    page.select_option("select.al-headsel", "0")
    cell = str(int(caps[0].attention[1, 0, 2].flatten().argmax()))
    page.wait_for_function(f"document.getElementById('attnlab-root').dataset.cell === '{cell}'")

    page.select_option("select.al-example", "2")  # an empty caption
    page.wait_for_function("document.getElementById('attnlab-root').dataset.cell === ''")
    assert "(empty caption)" in page.inner_text(".al-words")
    assert all(u.startswith("file://") for u in page.requests), page.requests
    assert page.problems == []
