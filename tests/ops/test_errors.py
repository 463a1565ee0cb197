"""Bad input to attention() raises ValueError/TypeError naming the offending values."""

from __future__ import annotations

import pytest
import torch

from attnlab.ops import attention, attention_weights
from attnlab.ops import masks as M

q = torch.randn(2, 8, 5, 16)
k = torch.randn(2, 2, 7, 16)
v = torch.randn(2, 2, 7, 12)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((q[0], k, v), {}, ValueError, r"q must be \(B, H, T, D\).*\(8, 5, 16\)"),
        (
            (q, torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 12)),
            {},
            ValueError,
            "k has 3 heads, which does not divide q's 8 heads",
        ),
        ((q, k, torch.randn(2, 4, 7, 12)), {}, ValueError, "k has 2 heads but v has 4"),
        (
            (q, torch.randn(2, 2, 7, 32), v),
            {},
            ValueError,
            "q head dim 16 differs from k head dim 32",
        ),
        ((q, k, torch.randn(2, 2, 6, 12)), {}, ValueError, "k has 7 positions but v has 6"),
        ((q, k[:1], v[:1]), {}, ValueError, "batch sizes differ"),
        (
            (q, k, v),
            {"mask": torch.ones(3, 5, 7, dtype=torch.bool)},
            ValueError,
            r"mask of shape \(3, 5, 7\) is not broadcastable to \(B, H, Tq, Tk\) = \(2, 8, 5, 7\)",
        ),
        ((q, k, v), {"mask": torch.ones(5, 7, dtype=torch.long)}, TypeError, "torch.int64"),
        ((q, k, v), {"mask": [[True]]}, TypeError, "list"),
        ((q, k, v), {"score": "bahdanau"}, ValueError, "unknown score 'bahdanau'"),
        ((q, k, v), {"backend": "flash"}, ValueError, "unknown backend 'flash'"),
        ((q, k, v), {"dropout_p": 1.5}, ValueError, "dropout_p"),
        ((q, k, v), {"window": (1, 2, 3)}, ValueError, "window"),
        ((q, k, v), {"window": -2}, ValueError, "left"),
        ((q, k, v), {"scale": float("nan")}, ValueError, "scale"),
        ((q, k, v), {"causal": "yes"}, TypeError, "causal"),
        ((q, k, v), {"mask": M.Padding([3, 4, 5])}, ValueError, "batch size 3.*batch size 2"),
        ((q, k, v), {"mask": M.Padding([3, 9])}, ValueError, "Padding length 9 exceeds"),
        (
            (q, k, v),
            {"mask": M.Document(torch.zeros(2, 4, dtype=torch.long))},
            ValueError,
            "Document ids have length 4",
        ),
        (
            (q, k, v),
            {"mask": M.Custom(torch.ones(5, 6, dtype=torch.bool))},
            ValueError,
            "not broadcastable",
        ),
        ((q.double(), k, v), {}, TypeError, "dtypes differ"),
        ((q.long(), k, v), {}, TypeError, "floating"),
        (("q", k, v), {}, TypeError, "q must be a torch.Tensor"),
        (
            (q, k, v),
            {"return_weights": True, "backend": "sdpa"},
            ValueError,
            "backend 'sdpa' cannot run this call: .*weights",
        ),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        attention(*args, **kwargs)


def test_device_mismatch_is_reported():
    meta = torch.randn(2, 2, 7, 16, device="meta")
    with pytest.raises(ValueError, match="different devices"):
        attention(q, meta, meta)


def test_attention_weights_bad_heads():
    with pytest.raises(ValueError, match="out of range"):
        attention_weights(q, k, heads=[9])
