"""Explanations: rollout / grad-rollout against hand computations, attention flow against a
brute-force minimum cut and networkx, the explicit-attention hook, every method on attnlab
models and a Hugging Face ViT, and deletion/insertion on a model with a known answer."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch
from torch import nn

from attnlab.layers import AttentionCore
from attnlab.models import create_model
from attnlab.models.vision import ImageDims, ViTConfig
from attnlab.viz.aggregate import grad_rollout, rollout
from attnlab.viz.explanation import (
    applicable_methods,
    conv_attention,
    explain,
    explicit_attention,
    vit_attention,
)
from attnlab.viz.flow import attention_flow, flow_capacities
from attnlab.viz.perturbation import curves, faithfulness

DIMS = ImageDims(1, 28, 28, 10)

# -- rollout, grad-rollout -----------------------------------------------------------------------


def test_rollout_equals_hand_computation_on_a_two_layer_toy():
    # layer 1: two heads whose mean is [[.6, .4], [.2, .8]]; layer 2: one map twice
    l1 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.2, 0.8], [0.4, 0.6]]])
    l2 = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).expand(2, 2, 2)
    # with the residual: A1' = [[.8, .2], [.1, .9]], A2' = [[.75, .25], [.45, .55]]
    want = torch.tensor([[0.625, 0.375], [0.415, 0.585]])  # A2' @ A1'
    got = rollout(torch.stack([l1, l2]))
    assert torch.allclose(got, want, atol=1e-6)
    both = rollout([l1, l2], all_layers=True)
    assert torch.allclose(both[0], torch.tensor([[0.8, 0.2], [0.1, 0.9]]))
    # batched input gives the same per example
    batch = torch.stack([torch.stack([l1, l2])] * 3)  # (B, L, H, T, T)
    assert torch.allclose(rollout(batch), want.expand(3, 2, 2), atol=1e-6)
    # without the residual it is the plain product of head means
    plain = torch.tensor([[0.5, 0.5], [0.9, 0.1]]) @ torch.tensor([[0.6, 0.4], [0.2, 0.8]])
    assert torch.allclose(rollout([l1, l2], residual=False), plain, atol=1e-6)


def test_grad_rollout_equals_hand_computation():
    a = torch.tensor([[[0.5, 0.5], [0.1, 0.9]], [[0.3, 0.7], [0.6, 0.4]]])  # (H, T, T)
    g = torch.tensor([[[2.0, -1.0], [0.0, 1.0]], [[1.0, 1.0], [-3.0, 0.5]]])
    # Abar = mean_h relu(g * a) = [[(1 + .3)/2, (0 + .7)/2], [(0 + 0)/2, (.9 + .2)/2]]
    abar = torch.tensor([[0.65, 0.35], [0.0, 0.55]])
    r1 = torch.eye(2) + abar
    assert torch.allclose(grad_rollout(a[None], g[None]), r1, atol=1e-6)
    r2 = r1 + abar @ r1
    assert torch.allclose(grad_rollout(torch.stack([a, a]), torch.stack([g, g])), r2, atol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        grad_rollout(a[None], g[None, :1])


# -- attention flow ------------------------------------------------------------------------------


def _random_weights(layers, heads, t, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(layers, heads, t, t, generator=g) * 2, -1)


def test_flow_equals_rollout_for_one_layer():
    w = _random_weights(1, 3, 7, 0)
    for q in (0, 3):
        assert torch.allclose(attention_flow(w, query=q), rollout(w)[q], atol=1e-5)


def _brute_force_min_cut(cap: torch.Tensor, source: int, sink_token: int) -> float:
    """Minimum s-t cut by enumerating every node set (max-flow min-cut theorem)."""
    n_layers, t, _ = cap.shape
    nodes = [(layer, i) for layer in range(n_layers + 1) for i in range(t)]
    s, k = (0, source), (n_layers, sink_token)
    free = [v for v in nodes if v not in (s, k)]
    best = float("inf")
    for bits in itertools.product((0, 1), repeat=len(free)):
        side = {s} | {v for v, b in zip(free, bits, strict=True) if b}
        cut = sum(
            float(cap[layer, i, j])
            for layer in range(n_layers)
            for i in range(t)
            for j in range(t)
            if (layer, j) in side and (layer + 1, i) not in side
        )
        best = min(best, cut)
    return best


def test_flow_equals_brute_force_max_flow_and_networkx_on_a_tiny_graph():
    w = _random_weights(2, 2, 3, 1)
    cap = flow_capacities(w)  # (L, T, T)
    flow = attention_flow(w, query=0)
    g = nx.DiGraph()
    for layer, i, j in itertools.product(range(2), range(3), range(3)):
        g.add_edge((layer, j), (layer + 1, i), capacity=float(cap[layer, i, j]))
    for j in range(3):
        want = _brute_force_min_cut(cap, j, 0)
        assert abs(float(flow[j]) - want) < 1e-5
        assert abs(nx.maximum_flow_value(g, (0, j), (2, 0)) - want) < 1e-9
    # flow differs from rollout in general (paths are not multiplied)
    assert not torch.allclose(flow, rollout(w)[0], atol=1e-3)


def test_flow_argument_checks():
    w = _random_weights(2, 1, 4, 2)
    with pytest.raises(ValueError, match="query 9 out of range"):
        attention_flow(w, query=9)
    with pytest.raises(ValueError, match="one example"):
        attention_flow(w[None])


# -- explicit attention ---------------------------------------------------------------------------


def test_explicit_attention_matches_the_fast_path_and_carries_gradients():
    torch.manual_seed(0)
    core = AttentionCore()
    q, k, v = (torch.randn(2, 4, 5, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    fast = core(q, k, v)
    r = torch.randn_like(fast)
    with explicit_attention(core) as weights:
        out = core(q, k, v)
    assert torch.allclose(out, fast, atol=1e-10)
    (w,) = weights
    assert w.shape == (2, 4, 5, 5) and torch.allclose(w.sum(-1), torch.ones(2, 4, 5, dtype=w.dtype))
    w.retain_grad()
    (out * r).sum().backward()
    assert torch.allclose(w.grad, r @ v.transpose(-2, -1), atol=1e-10)  # d(w @ v)/dw
    # the hooks are gone afterwards
    assert not core._forward_hooks


def test_explicit_attention_applies_masks():
    from attnlab.ops import masks as M

    core = AttentionCore()
    q = k = v = torch.randn(1, 2, 6, 4)
    with explicit_attention(core) as weights:
        out = core(q, k, v, mask=M.Padding(torch.tensor([4])))
    assert torch.allclose(out, core(q, k, v, mask=M.Padding(torch.tensor([4]))), atol=1e-5)
    assert (weights[0][..., 4:] == 0).all()


# -- methods on real models -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return create_model("vit", ViTConfig(embed_dim=32, depth=2, num_heads=2), dims=DIMS).eval()


def test_every_method_on_attnlab_models(vit):
    x = torch.rand(2, 1, 28, 28)
    assert applicable_methods(vit) == ["rollout", "flow", "grad-rollout", "attention", "gradient"]
    for method in applicable_methods(vit):
        m = explain(vit, x, method)
        assert m.shape == (2, 28, 28) and torch.isfinite(m).all() and (m >= 0).all(), method
    per_head = explain(vit, x, "attention", layer=0, head=1)
    assert not torch.allclose(per_head, explain(vit, x, "attention", layer=0))
    att = vit_attention(vit, x)
    assert att.grid == (7, 7) and att.prefix == 1 and att.stacked().shape == (2, 2, 2, 50, 50)
    with torch.no_grad():
        assert torch.allclose(att.logits, vit(x), atol=1e-5)
    cbam = create_model("cnn-cbam", dims=DIMS).eval()
    assert applicable_methods(cbam) == ["cbam", "gradient"]
    assert explain(cbam, x, "cbam").shape == (2, 28, 28)
    with pytest.raises(ValueError, match="does not apply to ConvNet; applicable: cbam, gradient"):
        explain(cbam, x, "rollout")
    with pytest.raises(ValueError, match="unknown explanation method 'lime'"):
        explain(cbam, x, "lime")


def test_grad_rollout_depends_on_the_target_class(vit):
    x = torch.rand(1, 1, 28, 28)
    a = explain(vit, x, "grad-rollout", target=[0])
    b = explain(vit, x, "grad-rollout", target=[1])
    assert not torch.allclose(a, b)
    assert torch.allclose(
        explain(vit, x, "rollout", target=[0]), explain(vit, x, "rollout", target=[1])
    )


def test_conv_attention_reads_cbam_maps_and_se_gates():
    x = torch.rand(3, 1, 28, 28)
    cbam = conv_attention(create_model("cnn-cbam", dims=DIMS).eval(), x)
    assert [tuple(m.shape) for _, m in cbam.spatial] == [
        (3, 1, 28, 28),
        (3, 1, 14, 14),
        (3, 1, 7, 7),
    ]
    assert [tuple(g.shape) for _, g in cbam.gates] == [(3, 32), (3, 64), (3, 128)]
    assert all(((m > 0) & (m < 1)).all() for _, m in cbam.spatial)
    se = conv_attention(create_model("cnn-se", dims=DIMS).eval(), x)
    assert not se.spatial and [g.shape[1] for _, g in se.gates] == [32, 64, 128]
    plain = conv_attention(create_model("cnn", dims=DIMS).eval(), x)
    assert not plain.spatial and not plain.gates and plain.logits.shape == (3, 10)


def test_hugging_face_vit_from_a_small_config():
    from transformers import ViTConfig as HFConfig
    from transformers import ViTForImageClassification

    torch.manual_seed(0)
    cfg = HFConfig(
        image_size=28,
        patch_size=7,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=10,
    )
    model = ViTForImageClassification(cfg).eval()
    impl = model.config._attn_implementation
    x = torch.rand(2, 1, 28, 28)
    att = vit_attention(model, x)
    assert att.grid == (4, 4) and att.prefix == 1 and len(att.weights) == 2
    assert model.config._attn_implementation == impl  # restored
    r = rollout(att.stacked())[:, 0, 1:]  # (B, 16)
    m = explain(model, x, "rollout")
    # the patch values, resized: the mean over the image equals the mean over patches
    assert torch.allclose(m.mean((1, 2)), r.mean(1), rtol=0.05)
    for method in ("flow", "grad-rollout", "attention", "gradient"):
        assert explain(model, x, method).shape == (2, 28, 28)


# -- faithfulness -------------------------------------------------------------------------------


class RegionModel(nn.Module):
    """Class 0 exactly when the top-left 2x2 pixels are bright."""

    def forward(self, x):
        s = 10 * x[:, 0, :2, :2].sum((1, 2)) - 20  # (B,)
        return torch.stack([s, -s], -1)


def test_deletion_and_insertion_on_a_model_with_a_known_region():
    model = RegionModel()
    x = torch.ones(4, 1, 8, 8)
    ideal = torch.zeros(4, 8, 8)
    ideal[:, :2, :2] = 1.0
    c = curves(model, x, ideal)
    assert torch.allclose(c.fractions, torch.tensor([round(6.4 * k) / 64 for k in range(11)]))
    assert (c.deletion[:, 0] > 0.99).all() and (c.deletion[:, 1:] < 0.01).all()
    assert (c.insertion[:, 0] < 0.01).all() and (c.insertion[:, 1:] > 0.99).all()
    assert torch.allclose(c.deletion_auc, torch.full((4,), 0.5 * 6 / 64), atol=0.01)
    worst = curves(model, x, 1.0 - ideal)  # the region last
    assert (worst.deletion_auc > 0.85).all() and (worst.insertion_auc < 0.15).all()

    table = faithfulness(model, x, methods=[])
    grad, rand = table.row("gradient"), table.row("random")
    # the gradient is non-zero only on the region: it ranks it first, like the ideal map
    assert grad.deletion_auc == pytest.approx(float(c.deletion_auc.mean()), abs=1e-3)
    assert grad.deletion_vs_random < 0.3 and grad.insertion_vs_random > 1.5
    assert rand.deletion_vs_random == 1.0
    assert "| gradient |" in table.markdown()
    with pytest.raises(ValueError, match="maps must be"):
        curves(model, x, ideal[:, :4])


def test_faithfulness_table_for_a_vit(vit):
    table = faithfulness(vit, torch.rand(3, 1, 28, 28), methods=["rollout", "grad-rollout"])
    assert [r.method for r in table.rows] == ["rollout", "grad-rollout", "gradient", "random"]
    assert table.images == 3 and all(0 <= r.deletion_auc <= 1 for r in table.rows)
    assert set(table.to_dict()["rows"][0]) >= {"method", "deletion_auc", "insertion_vs_random"}
