"""Every Python block in the README quickstart and the ops docs runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/attention.md", "docs/layers.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", DOCS)
def test_python_blocks_run(doc):
    path = ROOT / doc
    if not path.exists():
        pytest.fail(f"{doc} is missing")
    blocks = python_blocks(path)
    assert blocks, f"{doc} has no python example"
    for i, code in enumerate(blocks):
        namespace: dict = {"__name__": f"doc_{i}"}
        exec(compile(code, f"{doc}[block {i}]", "exec"), namespace)
