"""The built site in a real Chromium: pages render, math is typeset, the language switch
leads to the twin page, search answers offline, and no request leaves the machine."""

from __future__ import annotations

import functools
import http.server
import threading
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def page(browser):
    """A page that blocks and records every request to another host, and collects errors."""
    pg = browser.new_page(viewport={"width": 1200, "height": 900})
    pg.outside, pg.problems = [], []

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("file:", "data:", "blob:")) or host == "127.0.0.1":
            return r.continue_()
        pg.outside.append(r.request.url)
        return r.abort()

    pg.route("**/*", route)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    yield pg
    assert pg.outside == [], f"requests left the machine: {pg.outside}"
    assert pg.problems == [], pg.problems
    pg.close()


def _title(page) -> str:
    return page.locator("article h1").first.inner_text().rstrip("¶").strip()


def _switch(page, lang: str) -> None:
    """Open the language menu in the header and pick ``lang``."""
    page.hover(".md-header .md-select")
    page.click(f".md-header .md-select a[hreflang='{lang}']")


def _search(page, query: str) -> str:
    """Open the search box, wait for the index to load, type ``query``; the result list."""
    page.locator("label.md-search__icon, .md-search__input").first.click()
    # Material says "Initializing search" until its worker has built the index; a query
    # typed before that may be dropped.
    page.wait_for_function(
        "() => { const m = document.querySelector('.md-search-result__meta');"
        " return m && !/Initializ|初始化/.test(m.textContent); }",
        timeout=60_000,
    )
    box = page.locator("input.md-search__input")
    box.fill(query)
    box.press("End")  # Material searches on key events, which fill() does not send
    page.wait_for_selector(".md-search-result__item", timeout=30_000)
    return page.inner_text(".md-search-result__list")


def _typeset(page) -> int:
    page.wait_for_selector(".katex", timeout=15_000)
    text = page.inner_text("article")
    assert "$$" not in text and "\\[" not in text and "\\(" not in text, "raw TeX left on the page"
    return page.locator(".arithmatex .katex").count()


def _images_loaded(page) -> int:
    imgs = page.locator("article img")
    n = imgs.count()
    for i in range(n):
        assert imgs.nth(i).evaluate("el => el.complete && el.naturalWidth > 0"), imgs.nth(
            i
        ).get_attribute("src")
    return n


def test_home_pages_render(page, server):
    page.goto(f"{server}/index.html")
    assert _title(page) == "attnlab"
    assert page.locator(".md-tabs__link").count() >= 4
    page.goto(f"{server}/zh/index.html")
    assert page.locator("html").get_attribute("lang") == "zh"
    assert "注意力" in page.inner_text("article")


@pytest.mark.parametrize(
    "prefix,title", [("", "Scaled dot-product attention"), ("zh/", "缩放点积注意力")]
)
def test_tutorial_has_math_and_figure(page, server, prefix, title):
    page.goto(f"{server}/{prefix}tutorials/scaled-dot-product.html")
    assert _title(page) == title
    assert _typeset(page) >= 3
    assert _images_loaded(page) >= 1
    assert page.locator("article .katex-display").count() >= 1


def test_language_switch_goes_to_twin_page(page, server):
    page.goto(f"{server}/tutorials/masks.html")
    _switch(page, "zh")
    page.wait_for_url("**/zh/tutorials/masks.html")
    assert _title(page) == "掩码"
    _typeset(page)
    _switch(page, "en")
    page.wait_for_url("**/tutorials/masks.html")
    assert "zh/" not in page.url and _title(page) == "Masks"


@pytest.mark.parametrize(
    "prefix,query,expect", [("", "bahdanau", "Additive"), ("zh/", "掩码", "掩码")]
)
def test_search_answers_offline(page, server, prefix, query, expect):
    page.goto(f"{server}/{prefix}index.html")
    assert expect in _search(page, query)


def test_site_opens_from_the_file_system(page, site):
    """The offline plugin: pages and search work from file:// with no server at all."""
    page.goto((site / "tutorials" / "masks.html").as_uri())
    _typeset(page)
    assert "causal" in _search(page, "causal").lower()
