from __future__ import annotations

from collections import Counter

import httpx
import pytest
import torch

from attnlab.viz import capture
from attnlab.viz.views import decode_map


def test_page_is_self_contained(minilm_server):
    r = httpx.get(minilm_server.url, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "connect-src 'self'" in page and "<script src" not in page and "https://" not in page
    assert minilm_server.url.startswith("http://127.0.0.1:")


def test_attention_endpoint_matches_capture(minilm_server):
    body = {"text": "The cat sat.", "pair": "It slept.", "layers": [0, 5], "heads": [1]}
    r = httpx.post(minilm_server.url + "api/attention", json=body, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["tokens"][0] == "[CLS]" and data["tokens"].count("[SEP]") == 2
    assert data["segments"][0] == 0 and data["segments"][-1] == 1
    assert [x["heads"] for x in data["layers"]] == [[1], [1]]
    assert [x["name"] for x in data["layers"]] == ["layer 0", "layer 5"]
    assert data["truncated"] is None and data["bits"] == 8
    layer = data["layers"][1]
    assert set(layer["maps"]) == {"h1"} and layer["role"] == "self"  # only what was asked
    w = torch.from_numpy(decode_map(layer["maps"]["h1"]))[None]  # (H', T, T)
    t = len(data["tokens"])
    assert w.shape == (1, t, t)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, t), atol=t / 255, rtol=0)
    from attnlab.models.pretrained import load_pretrained

    model, tok = load_pretrained("minilm")
    with torch.no_grad(), capture(model, layers=[5], heads=[1]) as rec:
        model(**tok("The cat sat.", "It slept.", return_tensors="pt"))
    ref = rec.weights[0][0]  # (1, T, T)
    assert (w - ref).abs().max() <= ref.amax(-1, keepdim=True).max() / 255 + 1e-6


def test_long_text_is_cut_and_the_answer_says_so(minilm_server):
    r = httpx.post(minilm_server.url + "api/attention", json={"text": "a " * 99}, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["truncated"] == {"total": 101, "kept": 64, "limit": 64}
    assert len(data["tokens"]) == 64
    info = httpx.get(minilm_server.url + "api/info", timeout=30).json()
    assert info["max_tokens"] == 64 and info["max_answer"] == 2_000_000


def test_view_endpoint_returns_a_payload(minilm_server):
    r = httpx.post(minilm_server.url + "api/view", json={"text": "hello there"}, timeout=60)
    assert r.status_code == 200
    data = r.json()
    assert data["prediction"] is None  # an encoder, not a classifier
    assert len(data["payload"]["layers"]) == 6 and data["payload"]["tokens"] == data["tokens"]


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ({"json": {}}, 422, "text"),
        ({"json": {"text": 5}}, 422, "string"),
        ({"json": {"text": "hi", "colour": "red"}}, 422, "colour"),
        ({"json": {"text": "x" * 201}}, 413, "201 characters; the limit is 200"),
        ({"json": {"text": "   "}}, 400, "text is empty"),
        ({"json": {"text": "hi", "layers": [9]}}, 400, "layer 9 out of range"),
        ({"json": {"text": "hi", "heads": [40]}}, 400, "heads [40] out of range"),
        ({"json": {"text": "hi", "layers": list(range(65))}}, 422, "layers"),
    ],
)
def test_malformed_requests_get_4xx_and_server_keeps_serving(
    minilm_server, kwargs, status, message
):
    r = httpx.post(minilm_server.url + "api/attention", timeout=60, **kwargs)
    assert r.status_code == status, r.text
    assert message in str(r.json()["detail"])
    info = httpx.get(minilm_server.url + "api/info", timeout=30)
    assert info.status_code == 200 and info.json()["max_chars"] == 200


SECRET = "zq" * 20_000  # 40 kB of a marker that must never come back


@pytest.mark.parametrize(
    "body",
    [
        {"text": 5, "pair": SECRET[:150]},
        {"text": "hi", "layers": SECRET[:150]},
        {"text": "hi", SECRET[:150]: 1},
        {"text": SECRET[:150] + "x" * 100},
    ],
)
def test_errors_never_echo_the_input(minilm_server, body):
    r = httpx.post(minilm_server.url + "api/attention", json=body, timeout=60)
    assert 400 <= r.status_code < 500
    assert "zqzqzqzq" not in r.text and len(r.content) < 1000


def test_oversized_body_is_refused_before_parsing(minilm_server):
    info = httpx.get(minilm_server.url + "api/info", timeout=30).json()
    limit = info["max_body"]
    assert limit == 24 * 200 + 4096
    # declared length over the limit: refused without reading the body
    big = b'{"text": "' + b"a" * (limit + 10) + b'"}'
    r = httpx.post(minilm_server.url + "api/attention", content=big, timeout=60,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and f"limit of {limit:,} bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while it arrives
        yield b'{"text": "'
        for _ in range(limit // 1000 + 2):
            yield b"b" * 1000
        yield b'"}'

    r = httpx.post(minilm_server.url + "api/attention", content=chunks(), timeout=60,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "aaaa" not in r.text and "bbbb" not in r.text


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:80", "127.0.0.1", "127.0.0.2:{port}", "attacker.test:{port}"],
)
def test_foreign_host_header_gets_400(minilm_server, host):
    host = host.format(port=minilm_server.port)
    r = httpx.get(minilm_server.url + "api/info", headers={"Host": host}, timeout=30)
    assert r.status_code == 400 and "invalid Host header" in r.json()["detail"]
    assert "evil" not in r.text and "attacker" not in r.text and "127.0.0.2" not in r.text
    ok = httpx.get(
        minilm_server.url + "api/info", headers={"Host": f"localhost:{minilm_server.port}"}
    )
    assert ok.status_code == 200


def test_cross_origin_post_gets_403(minilm_server):
    r = httpx.post(minilm_server.url + "api/attention", json={"text": "hi"}, timeout=30,
                   headers={"Origin": "http://evil.example"})  # fmt: skip
    assert r.status_code == 403
    same = httpx.post(minilm_server.url + "api/attention", json={"text": "hi"}, timeout=60,
                      headers={"Origin": minilm_server.url.rstrip("/")})  # fmt: skip
    assert same.status_code == 200


def test_a_full_queue_answers_503_and_everything_is_answered():
    from attnlab.explore import Explorer, create_app
    from attnlab.explore.load import hammer
    from attnlab.viz import load_subject

    subject = load_subject(pretrained="minilm", max_tokens=32)
    server = Explorer(create_app(subject, workers=1, queue=1), port=0).start()
    try:
        bodies = [{"text": f"text number {i} " * 8} for i in range(12)]
        seen = Counter()
        for _ in range(3):  # 12 at once against 1 worker + 1 waiting: the rest get 503
            result = hammer(server.url + "api/view", bodies, concurrency=12)
            assert set(result.statuses) <= {200, 503}, result.statuses  # each one answered
            assert result.statuses[200] >= 2
            seen += result.statuses
            if seen[503]:
                break
        assert seen[503] > 0
        assert (
            httpx.post(server.url + "api/view", json={"text": "again"}, timeout=60).status_code
            == 200
        )
    finally:
        server.stop()


def test_busy_answer_names_the_limit_and_retry_after():
    import asyncio

    from fastapi import HTTPException

    from attnlab.explore.workers import Workers

    class Slow:
        kind, name, labels = "pretrained", "slow", None

        def analyze(self, *args, **kwargs):
            raise AssertionError("not called")

    pool = Workers(Slow(), workers=1, queue=0)
    gate = __import__("threading").Event()

    async def scenario():
        first = asyncio.create_task(pool.run(lambda s: gate.wait(5)))
        await asyncio.sleep(0.05)
        try:
            await pool.run(lambda s: None)
        except HTTPException as e:
            busy = e
        gate.set()
        await first
        return busy

    import threading

    out = {}
    t = threading.Thread(target=lambda: out.setdefault("e", asyncio.run(scenario())))
    t.start()
    t.join(10)
    e = out["e"]
    assert e.status_code == 503 and e.headers == {"Retry-After": "1"}
    assert "busy: 1 requests are already running or waiting" in e.detail
    with pytest.raises(ValueError, match=r"workers must be in 1\.\.16, got 0"):
        Workers(Slow(), workers=0)
