"""MkDocs hooks of the attnlab site (``hooks:`` in mkdocs.yml); the work is in sitebuild.py,
imported as a regular module so that its caches survive the rebuilds of ``mkdocs serve``."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.plugins import event_priority

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sitebuild

on_config = event_priority(-200)(sitebuild.on_config)  # after Material's offline plugin


@event_priority(100)  # before the i18n plugin hides the other language's pages
def on_files(files, config):
    return sitebuild.check_twins(files, config)


# ``on_files`` can be defined once per hook module, so the later step lives in a second one.
