"""Every Python snippet in docs/layers.md runs as written."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "layers.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_has_snippets():
    assert len(SNIPPETS) >= 9


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs(code, capsys):
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_snippet__"})
    out = capsys.readouterr().out
    assert "False" not in out and "nan" not in out  # printed checks hold


@pytest.mark.parametrize(
    "name",
    [
        "additive",
        "conv_attention",
        "kv_cache",
        "luong",
        "multihead",
        "patch",
        "pooling",
        "position",
        "transformer",
    ],
)
def test_docstring_examples(name):
    module = importlib.import_module(f"attnlab.layers.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
