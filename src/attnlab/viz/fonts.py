"""Fonts for text that the default font cannot draw (Chinese, Japanese, Korean, ...).

matplotlib draws with DejaVu Sans, which has no CJK glyphs: a Chinese token becomes a
box and matplotlib warns once per missing glyph. :func:`use_fonts` gives every text of a
figure that needs it a fallback family (per glyph: Latin stays in DejaVu Sans) chosen
among the installed fonts, preferring the CJK families below. When no installed font has
the glyphs it warns once, naming a font package to install. The HTML views and the report
name :data:`CSS_FONTS`, a font stack that includes the same families.

On Debian/Ubuntu ``apt-get install fonts-wqy-microhei`` (about 5 MB installed) provides
WenQuanYi Micro Hei, which covers Chinese (simplified and traditional), Japanese kana and
Korean hangul.

Example:
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> _ = fig.suptitle("注意力 attention")
    >>> use_fonts(fig)                      # doctest: +SKIP
    ['WenQuanYi Micro Hei']
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache

__all__ = [
    "CJK_FAMILIES",
    "CSS_FONTS",
    "INSTALL_HINT",
    "MissingGlyphsWarning",
    "fallback_family",
    "missing_glyphs",
    "quiet_glyph_warnings",
    "use_fonts",
]

# Installed CJK families, best first (free fonts of Linux distributions, then macOS/Windows).
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Microsoft YaHei",
    "SimHei",
)
CSS_FONTS = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", '
    '"WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", '
    '"Hiragino Sans GB", "Microsoft YaHei", sans-serif'
)
INSTALL_HINT = "apt-get install fonts-wqy-microhei (WenQuanYi Micro Hei, about 5 MB)"
_GLYPH_WARNING = r"Glyph \d+ .*missing from font"


class MissingGlyphsWarning(UserWarning):
    """No installed font can draw some characters of a figure; they show as boxes."""


@cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def _primary_path() -> str:
    import matplotlib
    from matplotlib import font_manager as fm

    family = matplotlib.rcParams["font.family"]
    return fm.findfont(fm.FontProperties(family=family))


def missing_glyphs(text: str) -> set[str]:
    """Characters of ``text`` (whitespace and controls aside) the default font lacks."""
    have = _charmap(_primary_path())
    return {c for c in text if not c.isspace() and c.isprintable() and ord(c) not in have}


@cache
def _installed() -> tuple[tuple[str, str], ...]:
    """``(family, file)`` of every font matplotlib can use, system fonts added since its
    font cache was built included (a font package installed later is found too)."""
    from matplotlib import font_manager as fm

    known = {f.fname for f in fm.fontManager.ttflist}
    for path in fm.findSystemFonts():
        if path not in known:
            try:
                fm.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # unreadable font file: skip it
                continue
    seen: dict[str, str] = {}
    for f in fm.fontManager.ttflist:
        seen.setdefault(f.name, f.fname)
    return tuple(seen.items())


def _candidates() -> list[tuple[str, str]]:
    """Installed fonts in the order they are tried: CJK families first, then the rest."""
    fonts = dict(_installed())
    first = [(name, fonts[name]) for name in CJK_FAMILIES if name in fonts]
    return first + [(n, p) for n, p in fonts.items() if n not in CJK_FAMILIES]


def fallback_family(chars: Iterable[str]) -> str | None:
    """The installed family that has the most of ``chars`` (None: none has any)."""
    want = {ord(c) for c in chars}
    if not want:
        return None
    best, best_n = None, 0
    for name, path in _candidates():
        try:
            n = len(want & _charmap(path))
        except (OSError, RuntimeError, ValueError):
            continue
        if n == len(want):
            return name
        if n > best_n:
            best, best_n = name, n
    return best


def use_fonts(fig) -> list[str]:
    """Give each text of ``fig`` that the default font cannot draw a fallback family.

    Glyphs the default font has keep it; the others come from the fallback (matplotlib
    falls back per glyph in PNG, SVG and PDF). Warns once (:class:`MissingGlyphsWarning`)
    when some characters have no installed font.

    Returns:
        The fallback families used.
    """
    from matplotlib import rcParams
    from matplotlib.text import Text

    texts = [t for t in fig.findobj(Text) if t.get_text()]
    need: dict[Text, set[str]] = {}
    for t in texts:
        chars = missing_glyphs(t.get_text())
        if chars:
            need[t] = chars
    if not need:
        return []
    every = set().union(*need.values())
    family = fallback_family(every)
    lacking = set(every)
    if family is not None:
        path = dict(_installed())[family]
        lacking = {c for c in every if ord(c) not in _charmap(path)}
        base = list(rcParams["font.family"])
        for t in need:
            t.set_fontfamily([*base, family])
    warned = getattr(fig, "_attnlab_warned", set())
    lacking -= warned
    if lacking:
        fig._attnlab_warned = warned | lacking  # say it once per figure
        sample = "".join(sorted(lacking)[:12])
        cjk = any("\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in lacking)
        hint = f"; install a CJK font: {INSTALL_HINT}" if cjk else ""
        warnings.warn(
            f"no installed font has {len(lacking)} of the characters in this figure "
            f"({sample!r}); they are drawn as boxes{hint}",
            MissingGlyphsWarning,
            stacklevel=2,
        )
    return [family] if family else []


@contextmanager
def quiet_glyph_warnings() -> Iterator[None]:
    """Hide matplotlib's one-warning-per-missing-glyph messages (:func:`use_fonts` has
    already said it once)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GLYPH_WARNING, category=UserWarning)
        yield
