"""The names attnlab.viz exports stay what they are after its submodules are imported."""

from __future__ import annotations

import importlib
import pkgutil
import types

import attnlab.viz as viz


def test_no_export_is_shadowed_by_a_submodule():
    for info in pkgutil.iter_modules(viz.__path__):
        importlib.import_module(f"attnlab.viz.{info.name}")  # sets viz.<name> to the module
    shadowed = [n for n in viz.__all__ if isinstance(getattr(viz, n), types.ModuleType)]
    assert shadowed == []
