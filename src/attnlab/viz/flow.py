"""Attention flow (Abnar & Zuidema 2020). The functions live in :mod:`attnlab.capture.flow`
and are re-exported here."""

from __future__ import annotations

from attnlab.capture.flow import attention_flow, flow_capacities

__all__ = ["attention_flow", "flow_capacities"]
