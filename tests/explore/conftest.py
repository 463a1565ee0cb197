from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def minilm_server():
    """The explorer over the packaged MiniLM, served from a thread on a free port."""
    from attnlab.explore import Explorer, create_app
    from attnlab.viz import load_subject

    subject = load_subject(pretrained="minilm", max_tokens=64)
    server = Explorer(create_app(subject, max_chars=200), port=0).start()
    yield server
    server.stop()
