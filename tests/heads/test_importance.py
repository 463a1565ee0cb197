"""Head importance (gradient, ablation), statistics and the pruning order on models whose
answer is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attnlab.heads import (
    HeadGates,
    HeadScores,
    Objective,
    ablation_importance,
    gradient_importance,
    head_layers,
    head_statistics,
    heads_to_remove,
    importance_order,
    kept_from_removed,
    random_order,
)
from attnlab.layers import MultiHeadAttention
from attnlab.ops import masks as M


class Toy(nn.Module):
    """Two attention layers (4 and 3 heads) and a linear readout of the last position."""

    def __init__(self) -> None:
        super().__init__()
        self.a = MultiHeadAttention(12, 4)
        self.b = MultiHeadAttention(12, 3)
        self.out = nn.Linear(12, 1)

    def forward(self, x, lengths=None):
        mask = None if lengths is None else M.Padding(lengths)
        h = x + self.a(x, mask=mask)
        h = h + self.b(h, mask=mask)
        return self.out(h).mean((1, 2))  # (B,)


def _toy(important: int = 1) -> tuple[Toy, Objective]:
    """Layer b's head ``important`` carries the signal; its other heads are nearly muted."""
    torch.manual_seed(0)
    model = Toy()
    with torch.no_grad():
        w = model.b.out_proj.weight.view(12, 3, 4)  # (E, H, D)
        for h in range(3):
            if h != important:
                w[:, h] *= 0.02
            else:
                w[:, h] *= 3.0
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(16, 7, 12, generator=g) for _ in range(3)]
    with torch.no_grad():
        targets = [model(x) + 0.1 * torch.randn(16, generator=g) for x in xs]
    batches = list(zip(xs, targets, strict=True))

    def metric(m: nn.Module) -> float:
        return -sum(float(((m(x) - y) ** 2).mean()) for x, y in batches)

    obj = Objective(
        batches=batches,
        forward=lambda m, b: m(b[0]),
        loss=lambda out, b: (out - b[1]) ** 2,
        metric=metric,
        metric_name="-mse",
    )
    return model, obj


@pytest.mark.parametrize("important", [0, 2])
def test_the_head_that_matters_ranks_first(important):
    model, obj = _toy(important)
    for scores in (gradient_importance(model, obj), ablation_importance(model, obj)):
        layer, head, _ = scores.ranking()[0]
        assert (layer, head) == (1, important), scores.method
    grad = gradient_importance(model, obj)
    for v in grad.values:  # Michel et al.: l2-normalised per layer
        assert float(v.norm()) == pytest.approx(1.0, abs=1e-5)
    assert grad.names == ["a", "b"]
    again = HeadScores.from_dict(grad.to_dict())  # what heads.json holds
    assert again.names == grad.names and again.method == "gradient"
    for a, b in zip(again.values, grad.values, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_gradient_importance_is_the_mean_absolute_per_example_gradient():
    model, obj = _toy()
    x, y = obj.batches[0]
    obj = Objective(batches=[(x[:4], y[:4]), (x[4:7], y[4:7])], forward=obj.forward, loss=obj.loss)
    scores = gradient_importance(model, obj, normalize=False).values
    # Independent computation: one example at a time, a hand-written gate hook.
    gates = [torch.ones(4, requires_grad=True), torch.ones(3, requires_grad=True)]

    def hook(i, h):
        return lambda mod, args: (
            (args[0].unflatten(-1, (h, 3 if h == 4 else 4)) * gates[i][:, None]).flatten(-2),
        )

    handles = [
        model.a.out_proj.register_forward_pre_hook(hook(0, 4)),
        model.b.out_proj.register_forward_pre_hook(hook(1, 3)),
    ]
    total = [torch.zeros(4), torch.zeros(3)]
    n = 0
    try:
        for x, y in obj.batches:
            for i in range(x.shape[0]):
                loss = ((model(x[i : i + 1]) - y[i]) ** 2).sum()
                ga, gb = torch.autograd.grad(loss, gates)
                total[0] += ga.abs()
                total[1] += gb.abs()
                n += 1
    finally:
        for h in handles:
            h.remove()
    for got, want in zip(scores, total, strict=True):
        torch.testing.assert_close(got, want / n, rtol=1e-4, atol=1e-6)


def test_scoring_leaves_the_model_as_it_was():
    model, obj = _toy()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradient_importance(model, obj)
    ablation_importance(model, obj)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_masked_heads_score_zero_and_ablation_baseline():
    model, obj = _toy()
    mask = [torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.ones(3)]
    grad = gradient_importance(model, obj, mask=mask)
    ab = ablation_importance(model, obj, mask=mask)
    assert grad.values[0][1] == 0 and ab.values[0][1] == 0
    with HeadGates(model, mask):
        assert ab.baseline == pytest.approx(obj.score(model))
    assert [r[:2] for r in grad.ranking(mask)].count((0, 1)) == 0


def test_statistics_of_uniform_attention():
    torch.manual_seed(2)
    mha = MultiHeadAttention(8, 2)
    with torch.no_grad():  # zero queries: every valid key gets the same weight
        mha.q_proj.weight.zero_()
        mha.q_proj.bias.zero_()
    ids = torch.tensor([[7, 3, 4, 5, 9], [7, 3, 9, 0, 0]])  # 7 = [CLS], 9 = [SEP], 0 = pad
    lengths = torch.tensor([5, 3])
    x = torch.randn(2, 5, 8)
    obj = Objective(
        batches=[(x, lengths, ids)],
        forward=lambda m, b: m(b[0], mask=M.Padding(b[1])),
        loss=lambda out, b: out.sum(),
        token_ids=lambda b: b[2],
    )
    stats = head_statistics(mha, obj, special={"[CLS]": 7, "[SEP]": 9, "[PAD]": 0})
    ent = (5 * math.log(5) + 3 * math.log(3)) / 8
    dist = (sum(abs(i - j) for i in range(5) for j in range(5)) / 5
            + sum(abs(i - j) for i in range(3) for j in range(3)) / 3) / 8  # fmt: skip
    torch.testing.assert_close(stats["entropy"].values[0], torch.full((2,), ent))
    torch.testing.assert_close(stats["distance"].values[0], torch.full((2,), dist))
    torch.testing.assert_close(stats["[CLS]"].values[0], torch.full((2,), 0.25))
    torch.testing.assert_close(
        stats["[SEP]"].values[0], torch.full((2,), (1 / 5 * 5 + 1 / 3 * 3) / 8)
    )
    torch.testing.assert_close(stats["[PAD]"].values[0], torch.zeros(2))


def test_statistics_on_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(3)
    cfg = BertConfig(
        vocab_size=40, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=30, max_position_embeddings=16,
    )  # fmt: skip
    model = BertModel(cfg)
    ids = torch.randint(3, 40, (2, 6))
    ids[:, 0] = 1
    am = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    obj = Objective(
        batches=[(ids, am)],
        forward=lambda m, b: m(input_ids=b[0], attention_mask=b[1]).last_hidden_state,
        loss=lambda out, b: out.sum(),
        token_ids=lambda b: b[0],
    )
    stats = head_statistics(model, obj, special={"[CLS]": 1, "[PAD]": 0})
    assert stats["entropy"].names == [x.name for x in head_layers(model)]
    for v in stats["entropy"].values:
        assert v.shape == (4,) and bool((v > 0).all()) and bool((v <= math.log(6) + 1e-5).all())
    assert all(bool((v > 0).all()) for v in stats["[CLS]"].values)
    assert all(bool((v == 0).all()) for v in stats["[PAD]"].values)  # padding is masked


def test_statistics_of_a_causal_hugging_face_model():
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    gpt2 = GPT2Model(GPT2Config(vocab_size=20, n_embd=8, n_layer=1, n_head=2, n_positions=8))
    obj = Objective(batches=[torch.tensor([[3, 5, 7, 9]])], forward=lambda m, b: m(b),
                    loss=lambda out, b: out.last_hidden_state.sum())  # fmt: skip
    stats = head_statistics(gpt2, obj)
    (entropy,) = stats["entropy"].values
    # causal rows: query i sees i + 1 keys, so the mean entropy is below mean(log(i + 1))
    bound = sum(math.log(i + 1) for i in range(4)) / 4
    assert entropy.shape == (2,) and bool((entropy >= 0).all()) and bool((entropy <= bound).all())
    with pytest.raises(ValueError, match=r"needs objective\.token_ids"):
        head_statistics(gpt2, obj, special={"[PAD]": 0})


def test_statistics_refuse_a_model_without_attention():
    obj = Objective(batches=[torch.ones(1, 3)], forward=lambda m, b: m(b),
                    loss=lambda out, b: out.sum())  # fmt: skip
    with pytest.raises(ValueError, match="no attention layer"):
        head_statistics(nn.Linear(3, 2), obj)


def test_importance_order_keeps_the_head_that_matters():
    model, obj = _toy(important=2)
    order = importance_order(model, obj, fraction=0.6, step=0.15)
    assert len(order.removed) == 5 and order.steps == [1, 2, 3, 4, 5]
    assert (1, 2) not in order.removed
    kept = order.kept()
    assert all(kept) and 2 in kept[1]
    assert [int(m.sum()) for m in order.mask()] == [len(k) for k in kept]
    with pytest.raises(ValueError, match="at most 5"):  # 7 heads, 2 layers keep one each
        importance_order(model, obj, fraction=0.8)


def test_heads_to_remove_and_its_refusals():
    assert heads_to_remove([12] * 6, 0.3) == 22  # at least 30 %
    assert heads_to_remove([12] * 6, 0.5) == 36
    assert heads_to_remove([12] * 6, 0.0) == 0
    with pytest.raises(ValueError, match=r"cannot prune 67 of 72 heads .* at most 66 \(92%\)"):
        heads_to_remove([12] * 6, 0.92)
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\)"):
            heads_to_remove([4, 4], bad)
    with pytest.raises(TypeError, match="fraction must be a number"):
        heads_to_remove([4, 4], "0.3")


def test_removals_that_would_empty_a_layer_or_do_not_exist():
    assert kept_from_removed([3, 2], [(0, 1)]) == [[0, 2], [0, 1]]
    with pytest.raises(ValueError, match="head 3 out of range: layer 0 has 3 heads"):
        kept_from_removed([3, 2], [(0, 3)])
    with pytest.raises(ValueError, match="layer 2 out of range: the model has 2 layers"):
        kept_from_removed([3, 2], [(2, 0)])
    with pytest.raises(ValueError, match=r"removing every head of layer\(s\) \[1\]"):
        kept_from_removed([3, 2], [(1, 0), (1, 1)])


def test_random_orders_are_seeded_and_never_empty_a_layer():
    a = random_order([3, 1, 4], fraction=0.6, seed=5)
    assert a.removed == random_order([3, 1, 4], fraction=0.6, seed=5).removed
    assert a.removed != random_order([3, 1, 4], fraction=0.6, seed=6).removed
    assert len(a.removed) == 5 and all(len(k) == 1 for k in a.kept())
    with pytest.raises(ValueError, match="has no attention layer"):
        random_order(nn.Linear(2, 2), fraction=0.5)


def test_objective_and_gates_refuse_bad_input():
    with pytest.raises(ValueError, match="no batches"):
        Objective(batches=[], forward=lambda m, b: m(b), loss=lambda o, b: o)
    model, obj = _toy()
    with pytest.raises(ValueError, match="gate values given for 1 layers, the model has 2"):
        HeadGates(model, [torch.ones(4)])
    with pytest.raises(ValueError, match=r"gate values of layer 1 \(b\) have shape \(4,\)"):
        HeadGates(model, [torch.ones(4), torch.ones(4)])
    with pytest.raises(ValueError, match="has no attention layer whose heads can be scored"):
        gradient_importance(nn.Linear(3, 3), obj)
    no_metric = Objective(batches=obj.batches, forward=obj.forward, loss=obj.loss)
    with pytest.raises(ValueError, match="has no metric"):
        ablation_importance(model, no_metric)


def test_pruning_curve_on_the_toy():
    from attnlab.heads import pruning_curve, time_forward
    from attnlab.heads.report import plot_curve

    model, obj = _toy(important=2)
    order = importance_order(model, obj, fraction=0.6, step=0.15)
    baselines = [random_order(model, fraction=0.6, seed=s) for s in range(2)]
    curve = pruning_curve(
        model,
        order,
        obj.score,
        [0.3, 0.6],
        baselines=baselines,
        latency=lambda m: time_forward(m, obj, repeats=1, clock="cpu"),
        metric_name="-mse",
    )
    pts = curve["points"]
    assert [p["removed"] for p in pts] == [0, 3, 5]
    assert pts[0]["-mse"] == pytest.approx(obj.score(model))  # the model itself is unchanged
    assert pts[0]["parameters"] > pts[1]["parameters"] > pts[2]["parameters"]
    assert pts[0]["latency_ratio"] == 1.0 and pts[2]["latency_s"] > 0
    assert pts[2]["baseline_mean"] == pytest.approx(
        (pts[2]["baseline_0"] + pts[2]["baseline_1"]) / 2
    )
    assert pts[2]["-mse"] >= pts[2]["baseline_mean"]  # the head that matters is kept
    assert plot_curve(curve).axes
    with pytest.raises(ValueError, match=r"fewer than the 5 of fraction 0\.6"):
        pruning_curve(model, random_order(model, fraction=0.3), obj.score, [0.6])
    with pytest.raises(ValueError, match="clock must be one of"):
        time_forward(model, obj, clock="gpu")
