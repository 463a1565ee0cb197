"""The local web explorer: type a text, run the model, see its attention.

Example:
    >>> from attnlab.viz import load_subject
    >>> from attnlab.explore import Explorer, create_app
    >>> app = create_app(load_subject(pretrained="minilm"))     # doctest: +SKIP
    >>> server = Explorer(app, port=0).start()                   # doctest: +SKIP
    >>> print(server.url); server.stop()                         # doctest: +SKIP
"""

from __future__ import annotations

from attnlab.explore.app import create_app
from attnlab.explore.server import Explorer, serve

__all__ = ["Explorer", "create_app", "serve"]
