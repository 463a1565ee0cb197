from __future__ import annotations

import base64
import json
import re
import zlib

import numpy as np
import pytest
import torch

from attnlab.viz import HeadView, MatrixView, ModelView, capture
from attnlab.viz.fonts import CSS_FONTS
from attnlab.viz.inspect import Analysis, Truncation
from attnlab.viz.views import assets, decode_map, encode_map

XSS = "<img src=x onerror=alert(1)>"
TOKENS = ["[CLS]", "the", XSS, "</script><script>alert(2)</script>", "[SEP]"]


def _payload(doc: str) -> dict:
    m = re.search(r'<script type="application/json" id="attnlab-data">(.*?)</script>', doc, re.S)
    assert m, "payload block missing"
    return json.loads(m.group(1))


def _decode(m: dict) -> np.ndarray:
    q = np.frombuffer(zlib.decompress(base64.b64decode(m["d"])), dtype=np.uint8).reshape(
        m["r"], m["c"]
    )
    scale = np.frombuffer(base64.b64decode(m["s"]), dtype="<f4")
    return q * (scale[:, None] / 255.0)


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return torch.softmax(torch.randn(2, 3, 5, 5) * 2, -1)  # (L, H, T, T)


@pytest.mark.parametrize("cls", [HeadView, ModelView, MatrixView])
def test_views_are_self_contained_and_escape_text(cls, weights, tmp_path):
    doc = cls(weights, TOKENS, title=f"title {XSS}").html()
    assert "<script src" not in doc and "http://" not in doc.replace("http://www.w3.org", "")
    assert "https://" not in doc and "<link" not in doc
    assert "connect-src 'none'" in doc
    # neither token appears as markup anywhere: only escaped inside JSON or the title
    assert XSS not in doc and "</script><script>alert(2)" not in doc
    assert "<title>title &lt;img src=x onerror=alert(1)&gt;</title>" in doc
    data = _payload(doc)
    assert data["tokens"] == TOKENS and data["view"] == cls.view
    js, css = assets()
    assert js in doc and css in doc
    path = cls(weights, TOKENS).save(tmp_path / "v.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_repr_html_is_a_sandboxed_iframe(weights):
    out = HeadView(weights, TOKENS)._repr_html_()
    assert out.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in out
    assert "<script" not in out  # the whole document is attribute-escaped


def test_payload_round_trips_within_quantisation(weights):
    view = HeadView(weights, TOKENS, heads=[[0, 1, 2], [0, 1, 2]])
    data = view.payload()
    layer = data["layers"][1]
    assert set(layer["maps"]) == {"h0", "h1", "h2", "mean", "max", "rollout"}
    w = weights[1].numpy()
    for h in range(3):
        got = _decode(layer["maps"][f"h{h}"])
        assert np.abs(got - w[h]).max() <= w[h].max(1, keepdims=True).max() / 255 + 1e-6
    np.testing.assert_allclose(_decode(layer["maps"]["mean"]), w.mean(0), atol=1 / 255)


def test_large_matrix_view_fits_the_size_budget():
    torch.manual_seed(0)
    t = 2048
    # worst case for compression: near-uniform rows with noise
    w = torch.softmax(torch.randn(t, t) * 0.5, -1)
    view = MatrixView(w, [f"tok{i}" for i in range(t)])
    size = len(view.html().encode())
    assert size <= 5_000_000
    assert set(view.payload(8)["layers"][0]["maps"]) == {"h0"}  # one head: its map alone
    with pytest.raises(ValueError, match="over max_bytes=100,000"):
        MatrixView(w, [f"tok{i}" for i in range(t)], max_bytes=100_000).html()


def test_view_arguments_are_checked(weights):
    with pytest.raises(ValueError, match="attends over 5 keys but 4 tokens"):
        HeadView(weights, TOKENS[:4])
    with pytest.raises(ValueError, match="theme must be one of"):
        HeadView(weights, TOKENS, theme="blue")
    with pytest.raises(ValueError, match="segments must be 0/1"):
        HeadView(weights, TOKENS, segments=[0, 1, 2, 0, 0])
    with pytest.raises(ValueError, match=r"saved as \.html"):
        HeadView(weights, TOKENS).save("x.png")


def test_mixed_layers_pooling_and_cross_attention():
    torch.manual_seed(1)
    src = ["a", "b", "c", "d"]
    tgt = ["x", "y"]
    cross = torch.softmax(torch.randn(2, 2, 4), -1)  # (H, Tq, Tk)
    pooled = torch.softmax(torch.randn(1, 1, 4), -1)
    view = HeadView([cross, pooled], src, tokens_q=tgt, query_label="pool")
    data = view.payload()
    assert data["qtokens"] == tgt and [x["tq"] for x in data["layers"]] == [2, 1]
    assert "rollout" not in data["layers"][0]["maps"]  # only for stacks of self-attention


def test_from_recording_strips_padding(minilm):
    model, tok = minilm
    batch = tok(["short", "a somewhat longer input"], padding=True, return_tensors="pt")
    with torch.no_grad(), capture(model, tokenizer=tok, layers=[0, 1]) as rec:
        model(**batch)
    view = ModelView.from_recording(rec, 0)
    data = view.payload()
    assert data["tokens"] == ["[CLS]", "short", "[SEP]"]
    assert [x["tq"] for x in data["layers"]] == [3, 3]
    assert data["layers"][0]["name"] == "encoder.layer.0.attention.self"


def test_encode_decode_round_trip_and_bits():
    torch.manual_seed(2)
    m = torch.softmax(torch.randn(7, 13) * 3, -1)
    for bits, tol in ((8, 1 / 255), (6, 4 / 255), (4, 16 / 255)):
        back = decode_map(encode_map(m, bits))
        assert back.shape == (7, 13)
        assert np.abs(back - m.numpy()).max() <= tol * float(m.max()) + 1e-6
    with pytest.raises(ValueError, match=r"bits must be in 1\.\.8, got 9"):
        encode_map(m, 9)


def test_roles_decide_what_each_layer_offers():
    torch.manual_seed(4)
    t = 6
    blocks = [torch.softmax(torch.randn(2, t, t), -1) for _ in range(2)]  # (H, T, T)
    pool = torch.softmax(torch.randn(1, 1, t), -1)  # (1, 1, T): attention pooling
    view = HeadView([*blocks, pool], [f"w{i}" for i in range(t)], layer_names=["b0", "b1", "pool"])
    data = view.payload()
    assert [x["role"] for x in data["layers"]] == ["self", "self", "pool"]
    assert set(data["layers"][0]["maps"]) == {"h0", "h1", "mean", "max", "rollout"}
    # one head: no mean or max of heads (they would repeat it), no rollout (not self-attention)
    assert set(data["layers"][2]["maps"]) == {"h0"} and data["layers"][2]["heads"] == [0]
    assert data["initial"]["layer"] == 2  # the last layer first, as `attnlab viz` does
    np.testing.assert_allclose(decode_map(data["layers"][2]["maps"]["h0"]), pool[0], atol=1 / 255)


def test_analysis_brings_names_roles_prediction_and_truncation_note():
    torch.manual_seed(5)
    w = [torch.softmax(torch.randn(1, 1, 4), -1)]
    a = Analysis(
        tokens=["a", "good", "film", "!"],
        weights=w,
        layer_names=["pool"],
        heads=[[0]],
        prediction={"negative": 0.2, "positive": 0.8},
        truncated=Truncation(total=90, kept=4, limit=4),
    )
    assert a.roles == ["pool"] and a.best == ("positive", 0.8)
    data = MatrixView.from_analysis(a).payload()
    assert data["prediction"] == {"negative": 0.2, "positive": 0.8}
    assert data["notes"] == [
        "the input has 90 tokens; only the first 4 are shown (limit 4, set with max_tokens)"
    ]
    with pytest.raises(ValueError, match="unknown roles"):
        Analysis(tokens=["a"], weights=w[:1], layer_names=["x"], heads=[[0]], roles=["mlp"])


def test_fit_coarsens_levels_before_refusing():
    torch.manual_seed(6)
    w = torch.softmax(torch.randn(2, 4, 96, 96) * 0.5, -1)  # near-uniform: compresses badly
    view = HeadView(w, [f"t{i}" for i in range(96)])
    _, bits, size = view.fit(10_000_000)
    assert bits == 8
    _, bits, smaller = view.fit(int(size * 0.8))
    assert bits < 8 and smaller <= size * 0.8
    with pytest.raises(ValueError, match="over max_bytes=1,000"):
        view.fit(1000)


def test_views_name_a_cjk_font_stack():
    _, css = assets()
    assert "WenQuanYi Micro Hei" in css and "Noto Sans CJK SC" in css
    assert "WenQuanYi Micro Hei" in CSS_FONTS
