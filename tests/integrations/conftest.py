from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The packaged MiniLM (SDPA) and its tokenizer, loaded once per session."""
    from attnlab.models.pretrained import load_pretrained

    return load_pretrained("minilm")
