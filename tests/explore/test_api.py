from __future__ import annotations

import httpx
import pytest
import torch

from attnlab.viz import capture


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
    w = torch.tensor(data["layers"][1]["attention"])  # (H', T, T)
    t = len(data["tokens"])
    assert w.shape == (1, t, t)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, t), atol=1e-3, rtol=0)
    from attnlab.models.pretrained import load_pretrained

    model, tok = load_pretrained("minilm")
    with torch.no_grad(), capture(model, layers=[5], heads=[1]) as rec:
        model(**tok("The cat sat.", "It slept.", return_tensors="pt"))
    torch.testing.assert_close(w, rec.weights[0][0], atol=1e-4, rtol=0)


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
