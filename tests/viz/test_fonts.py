"""Chinese text in figures: drawn with an installed CJK font, or one clear warning."""

from __future__ import annotations

import os
import re
import warnings

import pytest
import torch

from attnlab.viz import fonts
from attnlab.viz.plots import plot_heatmap, plot_lines, plot_text, save_figure

TOKENS = ["[CLS]", "这", "部", "电", "影", "很", "好", "看", "，", "good", "[SEP]"]


@pytest.fixture
def cjk_font():
    family = fonts.fallback_family("这部电影很好看")
    if family is None:
        reason = f"no CJK font installed ({fonts.INSTALL_HINT})"
        if os.environ.get("ATTNLAB_REQUIRE_BROWSER") == "1":  # CI installs it with Chromium
            pytest.fail(reason)
        pytest.skip(reason)
    return family


def _glyph_warnings(caught) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if "missing from font" in str(w.message)
        or issubclass(w.category, fonts.MissingGlyphsWarning)
    ]


@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_chinese_figure_draws_with_a_cjk_font_and_no_warning(cjk_font, ext, tmp_path):
    torch.manual_seed(0)
    w = torch.softmax(torch.randn(len(TOKENS), len(TOKENS)), -1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_heatmap(w, TOKENS, title="注意力 · 这部电影很好看")
        path = save_figure(fig, tmp_path / f"zh{ext}")
    assert _glyph_warnings(caught) == []
    title = fig.axes[0].title
    assert title.get_fontfamily()[-1] == cjk_font  # Latin first, the CJK font for the rest
    if ext == ".svg":  # the glyphs drawn come from that font, not boxes from DejaVu Sans
        ids = set(re.findall(r'id="([A-Za-z]+)-[0-9a-f]+"', path.read_text(encoding="utf-8")))
        assert cjk_font.replace(" ", "") in ids and "DejaVuSans" in ids


def test_text_and_head_figures_are_covered_too(cjk_font, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_figure(plot_text(TOKENS[1:8], torch.rand(7)), tmp_path / "t.png")
        w = torch.softmax(torch.randn(1, 7), -1)
        save_figure(plot_lines(w, ["(pooled query)"], TOKENS[1:8]), tmp_path / "h.png")
    assert _glyph_warnings(caught) == []


def test_latin_text_keeps_the_default_font():
    from matplotlib.figure import Figure

    fig = Figure()
    fig.suptitle("plain attention")
    assert fonts.use_fonts(fig) == []
    assert fonts.missing_glyphs("plain attention, 3.5 × 2 → ok") == set()
    assert fonts.missing_glyphs("好 a") == {"好"}


def test_without_a_cjk_font_one_clear_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(fonts, "_candidates", lambda: [])  # as on a machine without one
    torch.manual_seed(1)
    w = torch.softmax(torch.randn(len(TOKENS), len(TOKENS)), -1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_heatmap(w, TOKENS, title="这部电影很好看")
        save_figure(fig, tmp_path / "zh.png")
    said = _glyph_warnings(caught)
    assert len(said) == 1, said  # not one per missing glyph
    assert "fonts-wqy-microhei" in said[0] and "drawn as boxes" in said[0]
