"""The explorer in a real Chromium: it draws the prefilled text on load, runs on Ctrl+Enter,
opens at the last layer like `attnlab viz`, answers only to its own host name, and no
request leaves the machine."""

from __future__ import annotations

import pytest

XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, minilm_server):
    """A page that records every request and lets none leave 127.0.0.1."""
    pg = browser.new_page(viewport={"width": 1100, "height": 900})
    pg.problems, pg.requests, pg.blocked = [], [], []
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("dialog", lambda d: (pg.problems.append(f"dialog: {d.message}"), d.dismiss()))
    pg.on("request", lambda r: pg.requests.append(r.url))

    def route(r):
        if r.request.url.startswith(minilm_server.url):
            r.continue_()
        else:
            pg.blocked.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    yield pg
    pg.close()


def test_explorer_draws_on_load_and_runs_on_ctrl_enter(page, minilm_server):
    page.goto(minilm_server.url)
    # the prefilled sentence is drawn without clicking "run", at the last layer
    page.wait_for_selector("#attnlab-root[data-ready='1'] svg.al-head-svg", timeout=30_000)
    assert page.input_value("select.al-layer") == "5"  # layer 5 of 0..5, as `attnlab viz`
    status = page.inner_text("#al-status")
    assert status.endswith(" tokens, 6 layers"), status
    first = page.locator("text.al-q title").all_text_contents()
    assert "cat" in first

    page.fill("#al-text", f"the word {XSS} is only text")
    page.fill("#al-pair", "second sentence")
    page.press("#al-text", "Control+Enter")
    # (polled from here: the page's CSP forbids the eval behind wait_for_function strings)
    for _ in range(300):
        if "<" in page.locator("text.al-q title").all_text_contents():
            break
        page.wait_for_timeout(100)
    page.wait_for_selector("#attnlab-root[data-ready='1']")
    labels = page.locator("text.al-q title").all_text_contents()
    assert "<" in labels and ">" in labels  # markup pieces arrive as plain tokens
    assert page.locator("#attnlab-root img").count() == 0
    assert page.locator("select.al-pair").count() == 1  # sentence-pair mode offered
    page.click("button.al-tab[data-view='model']")
    page.wait_for_selector("canvas.al-thumb")
    assert page.locator("canvas.al-thumb").count() == 6 * (12 + 1)
    page.click("button.al-tab[data-view='matrix']")
    page.wait_for_selector("canvas.al-matrix")
    page.select_option("select.al-layer", "2")
    page.select_option("select.al-agg", "rollout")
    page.wait_for_selector("canvas.al-matrix[data-map='rollout'][data-layer='2']")
    # an over-long text gets the server's message, and the page keeps working
    page.evaluate("document.getElementById('al-text').removeAttribute('maxlength')")
    page.fill("#al-text", "x" * 300)
    page.click("#al-run")
    page.wait_for_selector("#al-status.al-error")
    assert "limit is 200" in page.inner_text("#al-status")
    assert page.problems == [] or all("413" in p for p in page.problems), page.problems
    assert page.blocked == [] and page.requests
    assert all(u.startswith(minilm_server.url) for u in page.requests), page.requests


def test_a_cut_text_says_so_above_the_view(page, minilm_server):
    page.goto(minilm_server.url)
    page.wait_for_selector("#attnlab-root[data-ready='1']", timeout=30_000)
    page.fill("#al-text", "a " * 99)  # 101 tokens, the server keeps 64
    page.press("#al-text", "Control+Enter")
    page.wait_for_selector(".al-warn")
    assert "the input has 101 tokens; only the first 64 are shown" in page.inner_text(".al-warn")
    assert "cut from 101 tokens" in page.inner_text("#al-status")


def test_a_page_reached_under_another_host_name_gets_400(launch_browser, minilm_server):
    # DNS rebinding: a name the attacker controls now resolves to 127.0.0.1
    b = launch_browser(
        "--host-resolver-rules=MAP rebind.test 127.0.0.1", "--disable-features=HttpsUpgrades"
    )
    pg = b.new_page()
    r = pg.goto(f"http://rebind.test:{minilm_server.port}/")
    assert r.status == 400 and "invalid Host header" in pg.content()
    assert pg.locator("#al-form").count() == 0
    r = pg.goto(f"http://localhost:{minilm_server.port}/")
    assert r.status == 200 and pg.locator("#al-form").count() == 1
    pg.close()
