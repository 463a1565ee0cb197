from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The packaged MiniLM (SDPA) and its tokenizer, loaded once per session."""
    from attnlab.models.pretrained import load_pretrained

    return load_pretrained("minilm")


@pytest.fixture(scope="session")
def minilm_eager():
    """A second copy of MiniLM running the eager attention path (the oracle)."""
    from attnlab.models.pretrained import load_pretrained

    return load_pretrained("minilm", attn_implementation="eager")[0]
