"""Saved views in a real Chromium (Playwright): they draw, react and stay inert."""

from __future__ import annotations

import pytest
import torch

from attnlab.viz import HeadView, MatrixView, ModelView

XSS = "<img src=x onerror=alert(1)>"
TOKENS = ["[CLS]", "the", XSS, "sat", "[SEP]", "it", "slept", "[SEP]"]
SEGMENTS = [0, 0, 0, 0, 0, 1, 1, 1]

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser):
    """A page that collects console errors, page errors, dialogs and network requests."""
    pg = browser.new_page(viewport={"width": 1100, "height": 900})
    pg.problems = []
    pg.requests = []
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("dialog", lambda d: (pg.problems.append(f"dialog: {d.message}"), d.dismiss()))
    pg.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return torch.softmax(torch.randn(2, 3, 8, 8) * 2, -1)  # (L, H, T, T)


def _open(page, path):
    page.goto(path.as_uri())
    page.wait_for_selector("#attnlab-root[data-ready='1']", timeout=20_000)
    # nothing but the file itself was requested
    assert all(u.startswith("file://") for u in page.requests), page.requests


def test_head_view_draws_and_toggles_heads(page, weights, tmp_path):
    path = HeadView(weights, TOKENS, segments=SEGMENTS).save(tmp_path / "head.html")
    _open(page, path)
    assert page.locator("svg.al-head-svg").count() == 1
    lines = page.locator("svg line")
    n_all = lines.count()
    assert n_all > 0
    assert page.locator("svg line[data-head='h0']").count() > 0
    page.click("button.al-head[data-head='0']")  # toggle head 0 off
    page.wait_for_function(f"document.querySelectorAll('svg line').length !== {n_all}")
    assert page.locator("svg line[data-head='h0']").count() == 0
    # pair mode: only A -> B lines remain
    page.select_option("select.al-pair", "0>1")
    page.wait_for_function(f"document.querySelectorAll('svg line').length < {n_all}")
    # selecting two tokens shades the keys by their summed attention
    page.click("text.al-q[data-i='1']")
    page.click("text.al-q[data-i='3']")
    page.wait_for_selector("rect.al-shade")
    assert "2 selected token" in page.inner_text(".al-note")
    assert page.problems == []


def test_xss_token_is_inert_text(page, weights, tmp_path):
    path = HeadView(weights, TOKENS, title=XSS).save(tmp_path / "xss.html")
    _open(page, path)
    page.wait_for_timeout(200)
    assert page.locator("img").count() == 0
    assert page.locator("text.al-q[data-i='2'] title").text_content() == XSS
    assert page.inner_text(".al-title") == XSS
    assert page.problems == []  # no alert dialog, no error


def test_model_view_thumbnails_enlarge(page, weights, tmp_path):
    path = ModelView(weights, TOKENS).save(tmp_path / "model.html")
    _open(page, path)
    assert page.locator("canvas.al-thumb").count() == 2 * (3 + 1)
    page.click("canvas.al-thumb[data-layer='1'][data-map='h2']")
    page.wait_for_selector(".al-detail canvas.al-matrix[data-layer='1'][data-map='h2']")
    page.click("button.al-theme")
    assert page.get_attribute("#attnlab-root", "data-theme") == "dark"
    assert page.problems == []


def test_matrix_view_at_2048_tokens_hovers_and_selects(page, tmp_path):
    torch.manual_seed(0)
    t = 2048
    w = torch.softmax(torch.randn(t, t) * 3, -1)
    path = MatrixView(w, [f"w{i}" for i in range(t)], title="long").save(tmp_path / "m.html")
    _open(page, path)
    canvas = page.locator("canvas.al-matrix")
    assert canvas.evaluate("c => [c.width, c.height]") == [t, t]
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.25)
    tip = page.inner_text(".al-tip")
    assert "→" in tip and tip.startswith("w")
    page.mouse.click(box["x"] + 5, box["y"] + 5)
    page.wait_for_selector("canvas.al-strip")
    assert "sum over 1 selected row" in page.inner_text(".al-note")
    assert page.problems == []


def test_repr_html_renders_inside_its_sandboxed_iframe(page, weights):
    page.set_content(f"<html><body>{ModelView(weights, TOKENS)._repr_html_()}</body></html>")
    frame = page.frame_locator("iframe")
    frame.locator("#attnlab-root[data-ready='1']").wait_for(timeout=20_000)
    assert frame.locator("canvas.al-thumb").count() == 8
    assert page.problems == []


def test_cross_attention_columns(page, tmp_path):
    torch.manual_seed(3)
    src, tgt = ["le", "chat", "dort", "</s>"], ["the", "cat", "sleeps"]
    w = torch.softmax(torch.randn(1, 2, 3, 4), -1)  # (L, H, T_target, T_source)
    path = HeadView(w, src, tokens_q=tgt, agg="mean").save(tmp_path / "cross.html")
    _open(page, path)
    assert page.locator("text.al-q title").all_text_contents() == tgt
    assert page.locator("text.al-k title").all_text_contents() == src
    page.select_option("select.al-agg", "heads")
    page.wait_for_selector("button.al-head")
    assert page.locator("select.al-pair").count() == 0 and page.problems == []
