"""docs/translation.md runs as written, and the docstring examples of the translation
modules hold."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from attnlab.data import PAIR_DATASETS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "translation.md"


def test_translation_page_runs(tmp_path, monkeypatch):
    if not PAIR_DATASETS["zh-en"].installed():
        pytest.fail("docs/translation.md needs `pip install --no-deps hsk-sentences-audio`")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {"__name__": "translation_doc"}  # the blocks build on each other
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/translation.md[block {i}]", "exec"), namespace)
    assert namespace["bleu"].score > 40


@pytest.mark.parametrize(
    "name",
    [
        "attnlab.data.pair_tokenizer",
        "attnlab.data.pair_corpora",
        "attnlab.generate",
        "attnlab.generate.protocol",
        "attnlab.generate.search",
        "attnlab.layers.kv_cache",
        "attnlab.layers.multihead",
        "attnlab.layers.position",
        "attnlab.models",
        "attnlab.models.seq2seq",
        "attnlab.tasks.bleu",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
