"""Aggregate attention over heads and layers (head mean/max, rollout, gradient-weighted
rollout). The functions live in :mod:`attnlab.capture.aggregate`, below the task families
that use them, and are re-exported here."""

from __future__ import annotations

from attnlab.capture.aggregate import AGGREGATES, aggregate_heads, grad_rollout, rollout

__all__ = ["AGGREGATES", "aggregate_heads", "grad_rollout", "rollout"]
