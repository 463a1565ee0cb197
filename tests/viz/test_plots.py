from __future__ import annotations

import pytest
import torch

from attnlab.viz import (
    aggregate_heads,
    plot_alignment,
    plot_head_average,
    plot_heads,
    plot_heatmap,
    plot_rollout,
    plot_text,
    rollout,
    save_figure,
)

TOKENS = ["[CLS]", "the", "cat", "<img src=x>", "sat", "[SEP]"]


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return torch.softmax(torch.randn(2, 3, 6, 6) * 2, -1)  # (L, H, T, T)


def _figures(w):
    return {
        "heatmap": plot_heatmap(w[0, 0], TOKENS, title="layer 0 head 0"),
        "grid": plot_heads(w, TOKENS),
        "average": plot_head_average(w[1], TOKENS, how="max"),
        "text": plot_text(TOKENS, w[1, 0, 0]),
        "alignment": plot_alignment(w[0, 0, :4], TOKENS, TOKENS[:4]),
        "rollout": plot_rollout(w, TOKENS),
    }


@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_every_figure_writes_every_format(weights, tmp_path, ext):
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[ext]
    for name, fig in _figures(weights).items():
        path = save_figure(fig, tmp_path / f"{name}{ext}")
        data = path.read_bytes()
        assert data.startswith(magic), name
        assert len(data) > 1000, name


def test_save_figure_rejects_other_suffixes(weights, tmp_path):
    with pytest.raises(ValueError, match=r"'x\.jpg'"):
        save_figure(plot_heatmap(weights[0, 0]), tmp_path / "x.jpg")


def test_token_count_is_checked(weights):
    with pytest.raises(ValueError, match="3 query tokens given for an axis of length 6"):
        plot_heatmap(weights[0, 0], TOKENS[:3])


def test_rollout_matches_hand_computation(weights):
    a = weights.mean(1)  # (L, T, T)
    eye = torch.eye(6)
    a = 0.5 * a + 0.5 * eye
    a = a / a.sum(-1, keepdim=True)
    expected = a[1] @ a[0]
    torch.testing.assert_close(rollout(weights), expected)
    per_layer = rollout(weights, all_layers=True)
    assert per_layer.shape == (2, 6, 6)
    torch.testing.assert_close(per_layer[0], a[0])
    # rows stay distributions
    torch.testing.assert_close(rollout(weights).sum(-1), torch.ones(6))
    # without the residual term it is a plain product of head means
    torch.testing.assert_close(
        rollout(weights, residual=False), weights.mean(1)[1] @ weights.mean(1)[0]
    )
    assert rollout(weights.unsqueeze(0).expand(3, -1, -1, -1, -1)).shape == (3, 6, 6)


def test_aggregate_heads():
    w = torch.rand(4, 3, 5, 5)
    assert torch.equal(aggregate_heads(w, "max"), w.amax(1))
    with pytest.raises(ValueError, match="unknown head aggregation 'sum'"):
        aggregate_heads(w, "sum")
