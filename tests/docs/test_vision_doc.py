"""The Python snippets of docs/vision.md run as written, in order, in one namespace; the
docstring examples of the image modules too."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from attnlab.data.images import image_dataset_installed

DOC = Path(__file__).resolve().parents[2] / "docs" / "vision.md"


@pytest.mark.slow
def test_vision_doc_snippets_run(tmp_path, monkeypatch, capsys):
    if not image_dataset_installed("fashion-mnist"):
        pytest.skip("apt-get install dataset-fashion-mnist")
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(snippets) >= 6
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__doc_snippet__"}
    for i, code in enumerate(snippets):
        exec(compile(code, f"{DOC.name}[{i}]", "exec"), ns)
    out = capsys.readouterr().out
    assert "55000 5000 10000" in out and "torch.uint8 (1, 28, 28)" in out
    assert "('blue', 'red') (6, 3, 32, 32)" in out and "notes.txt: skipped" in out
    assert "cnn-cbam" in out and "| rollout |" in out
    assert "torch.Size([4, 28, 28])" in out
    for name in ("explanations.png", "explain.html", "gates.svg"):
        assert (tmp_path / name).stat().st_size > 1000, name


@pytest.mark.parametrize(
    "name",
    [
        "attnlab.data.image_batches",
        "attnlab.layers.patch",
        "attnlab.models.vision",
        "attnlab.capture.aggregate",
        "attnlab.capture.explanation",
        "attnlab.viz.perturbation",
        "attnlab.capture.flow",
        "attnlab.viz.overlay",
    ],
)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
