"""Every Python block in the README and the ops docs, and every docstring example of the
ops modules, runs as written (docs/layers.md is covered by tests/layers/test_docs.py)."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/attention.md"]


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
