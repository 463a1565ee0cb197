"""MkDocs hook: after the i18n plugin has picked the pages of the language being built, run
them and add their figures, notebooks and the bundled front-end files (see sitebuild.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.plugins import event_priority

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sitebuild


@event_priority(-200)
def on_files(files, config):
    return sitebuild.add_generated(files, config)
