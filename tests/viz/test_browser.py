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


def _heads_drawn(page) -> set[str]:
    return set(page.eval_on_selector_all("svg line", "ls => ls.map(l => l.dataset.head)"))


def test_head_view_click_solos_a_head_shift_click_adds_and_all_restores(page, weights, tmp_path):
    path = HeadView(weights, TOKENS, segments=SEGMENTS).save(tmp_path / "head.html")
    _open(page, path)
    assert page.locator("svg.al-head-svg").count() == 1
    n_all = page.locator("svg line").count()
    assert n_all > 0 and _heads_drawn(page) == {"h0", "h1", "h2"}
    page.click("button.al-head[data-head='1']")  # one click: head 1 alone
    page.wait_for_function(f"document.querySelectorAll('svg line').length !== {n_all}")
    assert _heads_drawn(page) == {"h1"}
    assert page.locator("button.al-head.on").count() == 1
    page.click("button.al-head[data-head='2']", modifiers=["Shift"])  # shift-click adds
    page.wait_for_function("document.querySelectorAll('button.al-head.on').length === 2")
    assert _heads_drawn(page) == {"h1", "h2"}
    page.click("button.al-head[data-head='1']", modifiers=["Control"])  # ctrl-click removes
    page.wait_for_function("document.querySelectorAll('button.al-head.on').length === 1")
    assert _heads_drawn(page) == {"h2"}
    page.click("button.al-all")  # every head again
    page.wait_for_function(f"document.querySelectorAll('svg line').length === {n_all}")
    assert _heads_drawn(page) == {"h0", "h1", "h2"}
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


def _fonts_of(page, selector: str) -> list[dict]:
    """The platform fonts Chromium drew a node's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


def test_chinese_tokens_render_with_a_cjk_font_not_boxes(page, tmp_path):
    from attnlab.viz.fonts import CJK_FAMILIES

    toks = ["[CLS]", "这部", "电影", "很", "好看", "good", "[SEP]"]
    w = torch.softmax(torch.randn(1, 2, 7, 7), -1)
    path = HeadView(w, toks, title="注意力").save(tmp_path / "zh.html")
    _open(page, path)
    for j, text in ((1, "这部"), (4, "好看")):
        fonts = _fonts_of(page, f"text.al-k[data-j='{j}']")
        assert [f["familyName"] for f in fonts] and all(
            f["familyName"] in CJK_FAMILIES for f in fonts
        ), fonts
        assert sum(f["glyphCount"] for f in fonts) == len(text)
    title = _fonts_of(page, ".al-title")
    assert all(f["familyName"] in CJK_FAMILIES for f in title) and title
    assert page.problems == []


def test_pooling_layer_is_a_row_with_only_its_weights(page, tmp_path):
    torch.manual_seed(2)
    toks = ["a", "gorgeous", ",", "witty", "film"]
    blocks = [torch.softmax(torch.randn(2, 5, 5), -1) for _ in range(2)]
    pool = torch.softmax(torch.randn(1, 1, 5), -1)
    path = ModelView(
        [*blocks, pool], toks, layer_names=["blocks.0.attn", "blocks.1.attn", "pool"],
        prediction={"negative": 0.25, "positive": 0.75},
    ).save(tmp_path / "model.html")  # fmt: skip
    _open(page, path)
    assert page.inner_text(".al-prediction") == "prediction: positive 0.750 (negative 0.250)"
    row = page.locator("canvas.al-thumb[data-layer='2']")
    assert row.count() == 1  # one head: no "mean of heads" beside it
    box = row.bounding_box()
    assert box["width"] > 4 * box["height"]  # drawn as a row, not stretched into a square
    square = page.locator("canvas.al-thumb[data-layer='0'][data-map='h0']").bounding_box()
    assert abs(square["width"] - square["height"]) < 2
    row.click()
    page.wait_for_selector(".al-detail canvas.al-matrix[data-layer='2'][data-map='h0']")
    page.click("button.al-close")
    # the head view of the pooling layer offers no aggregation over its single head
    path = HeadView([*blocks, pool], toks).save(tmp_path / "head.html")
    _open(page, path)
    assert page.input_value("select.al-layer") == "2"
    assert page.locator("select.al-agg").count() == 0
    assert page.inner_text(".al-only") == "pooling weights"
    page.select_option("select.al-layer", "0")
    options = page.locator("select.al-agg option").all_text_contents()
    assert options == [
        "heads (per colour)",
        "mean of heads",
        "max of heads",
        "rollout up to this layer",
    ]
    assert page.problems == []
