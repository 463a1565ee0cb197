"""The documentation site, built once per test session into a temporary folder with
``mkdocs build --strict`` (which also runs every page's code, see tools/docs/sitebuild.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """Path of the built site; fails with MkDocs' own output when the strict build fails.

    ``ATTNLAB_DOCS_SITE=site`` checks a site already built by ``make docs`` instead (its
    build log is then not available to the tests that read it)."""
    prebuilt = os.environ.get("ATTNLAB_DOCS_SITE")
    if prebuilt:
        return (ROOT / prebuilt).resolve()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-12000:]}")
    (out / ".build-log").write_text(proc.stderr + f"\nbuilt in {time.perf_counter() - t0:.1f} s\n")
    return out
