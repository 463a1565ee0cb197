"""Every Python block in the READMEs and the ops docs, and every docstring example of the
ops modules, runs as written (docs/layers.md is covered by tests/layers/test_docs.py; the
site build runs every block of every page, see test_site.py). Every page has its twin in
the other language and a place in the navigation; every `attnlab` command in a bash block
parses with the real command line."""

from __future__ import annotations

import doctest
import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "README.zh-CN.md", "docs/attention.md"]
sys.path.insert(0, str(ROOT / "tools" / "docs"))
import docpages  # noqa: E402

PAGES = docpages.read_pages(ROOT / "docs")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", DOCS)
def test_python_blocks_run(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples save figures and views to the working directory
    path = ROOT / doc
    blocks = python_blocks(path)
    assert blocks, f"{doc} has no python example"
    for i, code in enumerate(blocks):
        namespace: dict = {"__name__": f"doc_{i}"}
        exec(compile(code, f"{doc}[block {i}]", "exec"), namespace)


@pytest.mark.parametrize(
    "name",
    [
        "attnlab",
        "attnlab.ops.dispatch",
        "attnlab.ops.masks",
        "attnlab.runs.config",
        "attnlab.data.batching",
        "attnlab.train.optim",
        "attnlab.tasks",
        "attnlab.tasks.base",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


def test_every_page_has_its_twin():
    assert len(PAGES) >= 2 * 25
    assert docpages.missing_twins(PAGES) == []
    assert docpages.missing_twins(["a.md", "a.zh.md", "b.md", "t/c.zh.md"]) == [
        ("b.md", "b.zh.md"),
        ("t/c.zh.md", "t/c.md"),
    ]


def _nav_pages() -> list[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # !!python/name tags
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    out: list[str] = []

    def walk(items):
        for item in items:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                for value in item.values():
                    walk(value) if isinstance(value, list) else out.append(value)

    walk(config["nav"])
    return out


def test_every_english_page_is_in_the_navigation_once():
    nav = _nav_pages()
    english = sorted(p for p in PAGES if docpages.language_of(p) == "en")
    assert sorted(nav) == english


def test_readmes_link_each_other_and_the_site():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    zh = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "README.zh-CN.md" in en and "make docs" in en
    assert "(README.md)" in zh and "make docs" in zh


def _attnlab_commands():
    texts = {p: t for p, t in PAGES.items()}
    for readme in ("README.md", "README.zh-CN.md"):
        texts[readme] = (ROOT / readme).read_text(encoding="utf-8")
    for page, text in texts.items():
        for block in docpages.code_blocks(text):
            if block.language not in docpages.SHELLS:
                continue
            for line in block.code.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if line.startswith("attnlab "):
                    yield page, line


COMMANDS = sorted(set(_attnlab_commands()))


def test_bash_blocks_hold_commands():
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("page,line", COMMANDS, ids=[f"{p}:{c[:40]}" for p, c in COMMANDS])
def test_attnlab_commands_parse(page, line):
    from attnlab.cli.main import build_parser

    try:
        args = build_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as e:
        pytest.fail(f"{page}: `{line}` does not parse (exit {e.code})")
    assert getattr(args, "func", None) is not None, f"{page}: `{line}` names no subcommand"
