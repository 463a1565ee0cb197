"""Suite-wide settings: property tests draw the same examples on every run, so a failure
in CI reproduces locally (set HYPOTHESIS_PROFILE=explore to draw new ones)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "repeatable", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
