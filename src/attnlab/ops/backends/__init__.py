"""Attention backends, one per file. ``BACKENDS`` lists them in order of preference
(ties in cost go to the earlier one)."""

from __future__ import annotations

from attnlab.ops.backends.base import AttentionCall, Backend
from attnlab.ops.backends.blocksparse import BlockSparseBackend
from attnlab.ops.backends.math import MathBackend
from attnlab.ops.backends.sdpa import SDPABackend

__all__ = ["BACKENDS", "AttentionCall", "Backend", "register"]

BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add a backend to the registry (later registrations with the same name replace)."""
    BACKENDS[backend.name] = backend
    return backend


register(SDPABackend())
register(MathBackend())
register(BlockSparseBackend())
