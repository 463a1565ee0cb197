"""``export`` on analyses shaped like the trained models: a BiLSTM (attention pooling
only) and a Transformer classifier (self-attention blocks, then pooling)."""

from __future__ import annotations

import re

import pytest
import torch

from attnlab.viz.export import VIEWS, check_view, export
from attnlab.viz.inspect import Analysis, display_name

TOKENS = ["a", "gorgeous", ",", "witty", "film"]


def _bilstm() -> Analysis:
    torch.manual_seed(0)
    return Analysis(
        tokens=TOKENS,
        weights=[torch.softmax(torch.randn(1, 1, 5), -1)],  # (1, 1, T)
        layer_names=[display_name("pool.tap")],
        heads=[[0]],
        prediction={"negative": 0.1, "positive": 0.9},
        title="run: a gorgeous, witty film",
        query_label="(pooled query)",
    )


def _transformer() -> Analysis:
    torch.manual_seed(1)
    blocks = [torch.softmax(torch.randn(2, 5, 5) * 2, -1) for _ in range(2)]  # (H, T, T)
    return Analysis(
        tokens=TOKENS,
        weights=[*blocks, torch.softmax(torch.randn(1, 1, 5), -1)],
        layer_names=[
            display_name(n) for n in ("blocks.0.attn.core", "blocks.1.attn.core", "pool.tap")
        ],
        heads=[[0, 1], [0, 1], [0]],
        prediction={"negative": 0.7, "positive": 0.3},
    )


def test_layers_are_named_as_built_and_given_roles():
    a = _transformer()
    assert a.layer_names == ["blocks.0.attn", "blocks.1.attn", "pool"]
    assert a.roles == ["self", "self", "pool"]
    assert display_name("encoder.layer.3.attention.self") == "layer 3"
    assert display_name("encoder.mha") == "encoder.mha"


@pytest.mark.parametrize("ext", [".html", ".png", ".svg", ".pdf"])
def test_rollout_without_self_attention_is_refused_alike_in_every_format(ext, tmp_path):
    with pytest.raises(ValueError) as err:
        export(_bilstm(), "rollout", tmp_path / f"r{ext}")
    assert str(err.value) == (
        "the rollout view needs self-attention layers, and this model has only pool (pool); "
        "use --view head, matrix, model or text"
    )
    assert not list(tmp_path.iterdir())


def test_every_other_view_of_a_pooling_model_is_drawn(tmp_path):
    a = _bilstm()
    for view in VIEWS:
        for ext in (".html", ".png"):
            if view == "rollout" or (view == "text" and ext == ".html"):
                continue
            path = export(a, view, tmp_path / f"{view}{ext}")
            assert path.stat().st_size > 1000, path
    with pytest.raises(ValueError, match="text view is a static figure"):
        check_view(a, "text", ".html")


def test_head_and_matrix_figures_differ(tmp_path):
    a = _transformer()
    head = export(a, "head", tmp_path / "head.png", layer=0).read_bytes()
    matrix = export(a, "matrix", tmp_path / "matrix.png", layer=0).read_bytes()
    assert head != matrix
    svg = export(a, "head", tmp_path / "head.svg", layer=0).read_text(encoding="utf-8")
    texts = re.findall(r"<!-- (.*?) -->", svg, re.S)  # matplotlib names each text it drew
    assert "blocks.0.attn · mean over 2 heads" in texts and "prediction: negative (0.700)" in texts
    mean = a.weights[0].mean(0)  # one line per weight of at least 0.01
    assert len(re.findall(r'<g id="line2d_\d+">', svg)) == int((mean >= 0.01).sum())


def test_html_view_carries_prediction_roles_and_pooling_row(tmp_path):
    a = _transformer()
    doc = export(a, "model", tmp_path / "m.html").read_text(encoding="utf-8")
    payload = re.search(r'id="attnlab-data">(.*?)</script>', doc, re.S).group(1)
    assert '"prediction":{"negative":0.7,"positive":0.3}' in payload
    assert '"role":"pool"' in payload and '"name":"pool"' in payload
    assert "pool.tap" not in doc and ".core" not in payload


def test_rollout_of_a_mixed_model_stops_at_its_last_self_attention_layer(tmp_path):
    a = _transformer()
    doc = export(a, "rollout", tmp_path / "r.html").read_text(encoding="utf-8")
    assert '"initial":{"layer":1,' in doc
    assert export(a, "rollout", tmp_path / "r.png").stat().st_size > 1000


def test_single_head_layer_draws_that_head(tmp_path):
    a = _bilstm()
    svg = export(a, "matrix", tmp_path / "m.svg").read_text(encoding="utf-8")
    texts = re.findall(r"<!-- (.*?) -->", svg, re.S)
    assert "pool · pooling weights" in texts and not any("mean over" in t for t in texts)
    assert "prediction: positive (0.900)" in texts
