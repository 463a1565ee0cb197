"""The Python snippets of docs/visualization.md run as written, in order, in one namespace;
the docstring examples of the viz modules too."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "visualization.md"


@pytest.mark.slow
def test_visualization_doc_snippets_run(tmp_path, monkeypatch, capsys):
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(snippets) >= 3
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__doc_snippet__"}
    for i, code in enumerate(snippets):
        exec(compile(code, f"{DOC.name}[{i}]", "exec"), ns)
    out = capsys.readouterr().out
    assert "encoder.layer.0.attention.self" in out
    assert "torch.Size([2, 12, 11, 11])" in out and "6 torch.Size([12, 9, 9])" in out
    for name in ("head.png", "grid.svg", "layer5_max.pdf", "rollout.png", "text.png", "align.png",
                 "head.html", "model.html", "matrix.html"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 1000, name


@pytest.mark.parametrize("name", ["aggregate", "plots", "views", "report", "fonts", "inspect"])
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(f"attnlab.viz.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
