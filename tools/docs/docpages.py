"""Reading the site's Markdown pages: languages, runnable code, generated figures, notebooks.

Conventions (docs/contributing.md explains them to page authors):

* ``docs/NAME.md`` is English and ``docs/NAME.zh.md`` its Simplified Chinese twin;
* a ```` ```python ```` block runs, in page order, in one namespace per page; a ```` ```py ````
  block is shown but not run (code for a library that is not installed, such as Keras);
* ``![...](figures/NAME.svg)`` (relative to the page) names a figure that the page's own code
  writes to ``NAME.svg`` in its working folder during the build;
* a page whose front matter says ``notebook: true`` is also a Jupyter notebook: its code runs in
  a real kernel during the build, and ``NAME.ipynb`` (``NAME.zh.ipynb``) is offered for download.

This module only parses; it imports neither MkDocs nor attnlab, so the tests use it too.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("en", "zh")
SHELLS = ("bash", "sh", "shell", "console")
FIGURE_SUFFIXES = (".svg", ".png", ".html")  # .html: an offline interactive view

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=ticks)[ \t]*$",
    re.M | re.S,
)
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_ADMONITION = re.compile(r'^(?:!!!|\?\?\?\+?) *(\w+)(?: +"([^"]*)")?[ \t]*$')


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language word, its text (dedented) and where it starts."""

    language: str
    code: str
    line: int


def language_of(src_uri: str) -> str:
    """``"zh"`` for ``x.zh.md``, else ``"en"``."""
    parts = posixpath.basename(src_uri).split(".")
    return parts[-2] if len(parts) > 2 and parts[-2] in LANGUAGES else "en"


def twin_of(src_uri: str) -> str:
    """The other language's file: ``a/b.md`` <-> ``a/b.zh.md``."""
    if language_of(src_uri) == "zh":
        return src_uri[: -len(".zh.md")] + ".md"
    return src_uri[: -len(".md")] + ".zh.md"


def missing_twins(src_uris: Iterable[str]) -> list[tuple[str, str]]:
    """``(page, its missing twin)`` for every page whose other-language file is absent."""
    pages = {u for u in src_uris if u.endswith(".md")}
    return sorted((u, twin_of(u)) for u in pages if twin_of(u) not in pages)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Simple ``key: value`` front matter (all this site uses) and the body after it."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    meta = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip().strip("\"'")
    return meta, text[m.end() :]


def is_notebook(text: str) -> bool:
    return split_front_matter(text)[0].get("notebook", "").lower() == "true"


def code_blocks(text: str) -> list[Block]:
    """Every fenced block, also those indented inside content tabs or admonitions."""
    blocks = []
    for m in _FENCE.finditer(text):
        words = m.group("info").strip().strip("{}").split()
        language = words[0].lstrip(".") if words else ""
        indent = len(m.group("indent"))
        body = "".join(line[indent:] for line in m.group("body").splitlines(keepends=True))
        blocks.append(Block(language, body, text.count("\n", 0, m.start()) + 1))
    return blocks


def python_blocks(text: str) -> list[Block]:
    """The blocks that run: language exactly ``python``."""
    return [b for b in code_blocks(text) if b.language == "python"]


def code_key(blocks: Iterable[Block]) -> tuple[str, ...]:
    """What the code does, without its comments: two pages whose blocks have the same key
    behave the same (a Chinese twin usually differs from its English page only in comments)."""
    return tuple(ast.dump(ast.parse(b.code)) for b in blocks)


def linked_figures(text: str, src_uri: str) -> list[str]:
    """Names of the generated figures a page shows (links resolving to ``figures/NAME``)."""
    names = []
    folder = posixpath.dirname(src_uri)
    for target in _LINK.findall(text):
        if "://" in target or target.startswith("#"):
            continue
        path = posixpath.normpath(posixpath.join(folder, target.split("#")[0]))
        if path.startswith("figures/") and path.endswith(FIGURE_SUFFIXES):
            names.append(path[len("figures/") :])
    return list(dict.fromkeys(names))


def notebook_name(src_uri: str) -> str:
    """``walkthroughs/x.zh.md`` -> ``walkthroughs/x.zh.ipynb``."""
    return src_uri[: -len(".md")] + ".ipynb"


def notebook_markdown(text: str, src_uri: str) -> str:
    """The page as notebook Markdown: no front matter, no lines that only make sense on the
    site (figure links, which the code cells draw inline in a notebook, and the notebook's own
    download link), admonitions turned into quotes (Jupyter would show their indented body
    as code), shell blocks turned into plain text (jupytext would make them ``%%bash``
    cells, which the reader should not run by accident)."""
    _, body = split_front_matter(text)
    figures = set(linked_figures(body, src_uri))
    out: list[str] = []
    in_admonition = False
    for line in body.splitlines():
        links = _LINK.findall(line)
        if any(posixpath.basename(t) in figures or t.endswith(".ipynb") for t in links):
            continue
        if line.lstrip().startswith("```") and line.strip("` ").split(" ")[0] in SHELLS:
            line = line.replace(line.strip().split(" ")[0], "```text", 1)  # shown, never run
        m = _ADMONITION.match(line)
        if m:
            in_admonition = True
            out.append(f"> **{m.group(2) or m.group(1).capitalize()}**")
            out.append(">")
            continue
        if in_admonition:
            if line.startswith("    ") or not line.strip():
                out.append(("> " + line[4:]).rstrip())
                continue
            in_admonition = False
        out.append(line)
    return "\n".join(out).strip() + "\n"


def read_pages(docs_dir: Path) -> dict[str, str]:
    """``src_uri -> text`` of every Markdown page under ``docs_dir``."""
    return {
        p.relative_to(docs_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(docs_dir.rglob("*.md"))
    }
