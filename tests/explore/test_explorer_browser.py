"""The explorer in a real Chromium: type a text, run it, see the three views."""

from __future__ import annotations

import pytest

XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.browser


def test_explorer_runs_text_and_shows_views(browser, minilm_server):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(minilm_server.url)
    page.fill("#al-text", f"the word {XSS} is only text")
    page.fill("#al-pair", "second sentence")
    page.click("#al-run")
    page.wait_for_selector("#attnlab-root[data-ready='1'] svg.al-head-svg", timeout=30_000)
    assert "tokens" in page.inner_text("#al-status")
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
    assert problems == [] or all("413" in p for p in problems), problems
    page.close()
