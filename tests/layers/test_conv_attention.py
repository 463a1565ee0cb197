"""SqueezeExcite and CBAM against their formulas, shapes, gradients and taps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.layers import CBAM, SqueezeExcite


def err(a, b):
    return (a.double() - b.double()).abs().max().item()


@pytest.mark.parametrize("shape", [(2, 32, 5, 7), (1, 3, 1, 1)])
def test_squeeze_excite_matches_formula(shape):
    se = SqueezeExcite(shape[1], reduction=8).double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    y = se(x)
    z = x.mean((2, 3))  # squeeze (B, C)
    w1, b1 = se.fc1.weight[:, :, 0, 0], se.fc1.bias
    w2, b2 = se.fc2.weight[:, :, 0, 0], se.fc2.bias
    s = torch.sigmoid(F.relu(z @ w1.T + b1) @ w2.T + b2)  # excitation (B, C)
    assert y.shape == x.shape
    assert err(y, x * s[:, :, None, None]) < 1e-12
    y.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in se.parameters())
    assert x.grad.abs().sum() > 0 and se.fc2.bias.grad.abs().sum() > 0


def test_cbam_matches_formula_and_taps():
    cbam = CBAM(16, reduction=4, kernel_size=3).double()
    taps = {}
    cbam.channel.tap.register_forward_hook(lambda m, a, out: taps.setdefault("c", out))
    cbam.spatial.tap.register_forward_hook(lambda m, a, out: taps.setdefault("s", out))
    x = torch.randn(2, 16, 6, 5, dtype=torch.float64, requires_grad=True)
    y = cbam(x)
    w1, w2 = cbam.channel.mlp[0].weight[:, :, 0, 0], cbam.channel.mlp[2].weight[:, :, 0, 0]

    def mlp(d):
        return F.relu(d @ w1.T) @ w2.T

    mc = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))[:, :, None, None]
    x1 = mc * x
    pooled = torch.stack([x1.mean(1), x1.amax(1)], 1)  # (B, 2, H, W)
    ms = torch.sigmoid(F.conv2d(pooled, cbam.spatial.conv.weight, padding=1))
    assert err(y, ms * x1) < 1e-12
    assert taps["c"].shape == (2, 16) and taps["s"].shape == (2, 6, 5)  # (B, C), (B, H, W)
    assert err(taps["s"], ms[:, 0]) < 1e-12 and err(taps["c"], mc[:, :, 0, 0]) < 1e-12
    y.sum().backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in cbam.parameters())
    assert CBAM(64)(torch.randn(1, 64, 7, 9)).shape == (1, 64, 7, 9)  # defaults r=16, k=7


def test_errors_name_the_values():
    with pytest.raises(ValueError, match="kernel_size must be odd to keep H and W, got 4"):
        CBAM(8, kernel_size=4)
    with pytest.raises(ValueError, match="reduction must be an int >= 1, got 0"):
        SqueezeExcite(8, reduction=0)
    with pytest.raises(
        ValueError, match=r"x must be \(B, C, H, W\) with 4 dims, got shape \(2, 8, 5\)"
    ):
        CBAM(8)(torch.randn(2, 8, 5))
    with pytest.raises(ValueError, match="x has 4 channels, expected 8"):
        SqueezeExcite(8)(torch.randn(2, 4, 5, 5))
