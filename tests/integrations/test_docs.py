"""docs/pretrained.md runs as written, in order, in one namespace; the docstring examples
of the capture and integration modules too."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "pretrained.md"


@pytest.mark.slow
def test_pretrained_doc_snippets_run(capsys):
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(snippets) == 4
    ns: dict = {"__name__": "__doc_snippet__"}
    for i, code in enumerate(snippets):
        exec(compile(code, f"{DOC.name}[{i}]", "exec"), ns)
    out = capsys.readouterr().out
    assert "[9, 11]" in out and "tensor(True)" in out
    assert "6 torch.Size([2, 12, 11, 11])" in out
    assert "torch.Size([2, 12, 11]) torch.Size([2, 12, 11, 3])" in out
    assert "encoder.layer.0.attention.self self" in out and "torch.Size([12, 9, 9])" in out
    assert "False" not in out


@pytest.mark.parametrize(
    "name",
    [
        "attnlab.capture",
        "attnlab.capture.recorder",
        "attnlab.capture.recording",
        "attnlab.integrations.transformers",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
