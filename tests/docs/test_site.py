"""The bilingual site builds in strict mode from this checkout, running every page's code
(in both languages) and every walkthrough as a notebook in a real kernel; each page is
there in both languages with its generated figures, formulas and notebook; nothing is
loaded from the network."""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "docs"))
import docpages  # noqa: E402

PAGES = docpages.read_pages(ROOT / "docs")
TUTORIALS = sorted(p for p in PAGES if p.startswith("tutorials/") and "/index." not in p)
NOTEBOOKS = sorted(p for p, t in PAGES.items() if docpages.is_notebook(t))

pytestmark = pytest.mark.slow


def _html(site: Path, src_uri: str) -> Path:
    lang = docpages.language_of(src_uri)
    stem = src_uri[: -len(".zh.md")] if lang == "zh" else src_uri[: -len(".md")]
    return site / ("zh/" if lang == "zh" else "") / f"{stem}.html"


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []  # what the browser fetches: scripts, styles, images, frames

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and a.get("src"):
            self.loaded.append(a["src"])
        if tag == "link" and a.get("rel") in ("stylesheet", "icon", "preload") and a.get("href"):
            self.loaded.append(a["href"])


def test_every_page_is_built_in_both_languages(site):
    for src_uri in PAGES:
        assert _html(site, src_uri).is_file(), src_uri
    assert 'lang="zh"' in (site / "zh" / "index.html").read_text(encoding="utf-8")


def test_pages_load_nothing_from_the_network(site):
    for path in site.rglob("*.html"):
        parser = Refs()
        parser.feed(path.read_text(encoding="utf-8"))
        remote = [u for u in parser.loaded if re.match(r"(https?:)?//", u)]
        assert remote == [], f"{path.relative_to(site)} loads {remote}"
    assert (site / "assets" / "katex" / "katex.min.js").is_file()
    assert list((site / "assets" / "katex" / "fonts").glob("*.woff2"))
    assert (site / "search" / "search_index.js").is_file()  # search from file://


@pytest.mark.parametrize("src_uri", TUTORIALS)
def test_tutorial_has_formula_figure_and_code(site, src_uri):
    text = PAGES[src_uri]
    figures = docpages.linked_figures(text, src_uri)
    assert figures, f"{src_uri} shows no generated figure"
    assert docpages.python_blocks(text), f"{src_uri} has no runnable code"
    html = _html(site, src_uri).read_text(encoding="utf-8")
    assert 'class="arithmatex"' in html, f"{src_uri} has no formula"
    for name in figures:
        data = (site / "figures" / name).read_bytes()
        assert len(data) > 2000 and (b"<svg" in data[:400] or data[:4] == b"\x89PNG"), name
        assert f"figures/{name}" in html


def test_figures_are_not_committed():
    assert not (ROOT / "docs" / "figures").exists()
    assert not [p for p in (ROOT / "docs").rglob("*") if p.suffix in (".svg", ".png", ".ipynb")]


def test_chinese_code_matches_english(site):
    """A twin shows the same program (comments and printed text may differ)."""
    for src_uri, text in PAGES.items():
        if docpages.language_of(src_uri) != "en":
            continue
        en = docpages.python_blocks(text)
        zh = docpages.python_blocks(PAGES[docpages.twin_of(src_uri)])
        assert len(en) == len(zh), f"{src_uri}: {len(en)} python blocks, its twin {len(zh)}"


@pytest.mark.parametrize("src_uri", NOTEBOOKS)
def test_walkthrough_notebook_is_offered(site, src_uri):
    import nbformat

    path = site / docpages.notebook_name(src_uri)
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(nb)
    cells = [c.source.strip() for c in nb.cells if c.cell_type == "code"]
    assert cells == [b.code.strip() for b in docpages.python_blocks(PAGES[src_uri])]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "figures/" not in markdown and "%%bash" not in "".join(cells)
    assert path.name in _html(site, src_uri).read_text(encoding="utf-8")  # download link


def test_every_page_ran(site):
    if not (site / ".build-log").is_file():
        pytest.skip("a prebuilt site (ATTNLAB_DOCS_SITE) has no build log")
    log = (site / ".build-log").read_text()
    for src_uri in PAGES:
        if docpages.python_blocks(PAGES[src_uri]) and docpages.language_of(src_uri) == "en":
            assert f"ran {src_uri} " in log, src_uri


def test_search_index_has_both_languages(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    locations = [d["location"] for d in index["docs"]]
    assert any(loc.startswith("zh/") for loc in locations)
    assert any(loc.startswith("tutorials/") for loc in locations)
