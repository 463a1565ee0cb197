"""Attention for convolutional feature maps ``(B, C, H, W)``: Squeeze-and-Excitation and CBAM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.layers.core import WeightsTap

__all__ = ["CBAM", "ChannelAttention", "SpatialAttention", "SqueezeExcite"]


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_map(x: object, channels: int) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"x must be (B, C, H, W) with 4 dims, got shape {tuple(x.shape)} with {x.dim()} dims"
        )
    if x.shape[1] != channels:
        raise ValueError(f"x has {x.shape[1]} channels, expected {channels}")
    return x


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation, Hu et al. 2018: ``z = GAP(x)`` (eq. 2),
    ``s = sigmoid(W_2 ReLU(W_1 z))`` (eq. 3), ``y = s * x`` per channel (eq. 4).

    The channel gate ``s`` passes through ``self.tap`` (a :class:`WeightsTap` with role
    ``"channel-gate"``) as ``(B, C)``.

    Args:
        channels: C.
        reduction: bottleneck ratio r; the hidden size is ``max(1, C // r)``.

    Shapes:
        ``x (B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> import torch
        >>> SqueezeExcite(32, reduction=8)(torch.randn(2, 32, 5, 7)).shape
        torch.Size([2, 32, 5, 7])
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channels = _check_int("channels", channels)
        self.reduction = _check_int("reduction", reduction)
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.tap = WeightsTap(role="channel-gate")

    def forward(self, x: Tensor) -> Tensor:
        _check_map(x, self.channels)
        b, c = x.shape[:2]
        z = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        gate = torch.sigmoid(self.fc2(self.act(self.fc1(z))))  # (B, C, 1, 1)
        gate = self.tap(gate.view(b, c)).view(b, c, 1, 1)  # the tap sees (B, C)
        return x * gate

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class ChannelAttention(nn.Module):
    """CBAM channel attention ``M_c = sigmoid(MLP(AvgPool(x)) + MLP(MaxPool(x)))``
    (Woo et al. 2018, eq. 2): ``(B, C, H, W) -> gate (B, C, 1, 1)``; the gate passes
    through ``self.tap`` (role ``"channel-gate"``) as ``(B, C)``."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(  # shared between the two pooled descriptors
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )
        self.tap = WeightsTap(role="channel-gate")

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))  # (B, C, 1, 1)
        # max pooling keeps the argmax, so its backward is a scatter; amax's backward
        # compares every element with the maximum (10x slower on CPU)
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))  # (B, C, 1, 1)
        gate = torch.sigmoid(avg + mx)  # (B, C, 1, 1)
        return self.tap(gate.view(b, c)).view(b, c, 1, 1)  # the tap sees (B, C)


class SpatialAttention(nn.Module):
    """CBAM spatial attention ``M_s = sigmoid(conv_k([AvgPool_c(x); MaxPool_c(x)]))``
    (Woo et al. 2018, eq. 3): ``(B, C, H, W) -> map (B, 1, H, W)``; the map passes
    through ``self.tap`` (role ``"spatial"``) as ``(B, H, W)``."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.tap = WeightsTap(role="spatial")

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        pooled = torch.cat(
            [x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values], dim=1
        )  # (B, 2, H, W)
        attn = torch.sigmoid(self.conv(pooled))  # (B, 1, H, W)
        return self.tap(attn.view(b, h, w)).view(b, 1, h, w)  # the tap sees (B, H, W)


class CBAM(nn.Module):
    """Convolutional Block Attention Module, Woo et al. 2018, eq. 1:
    ``x' = M_c(x) * x``, ``x'' = M_s(x') * x'`` (channel, then spatial attention).

    The channel gate passes through ``self.channel.tap`` (role ``"channel-gate"``) as
    ``(B, C)`` and the spatial map through ``self.spatial.tap`` (role ``"spatial"``) as
    ``(B, H, W)``.

    Args:
        channels: C.
        reduction: channel-MLP bottleneck ratio.
        kernel_size: odd size of the spatial convolution (7 in the paper).

    Shapes:
        ``x (B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> import torch
        >>> CBAM(32, reduction=8)(torch.randn(2, 32, 9, 9)).shape
        torch.Size([2, 32, 9, 9])
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channels = _check_int("channels", channels)
        self.reduction = _check_int("reduction", reduction)
        _check_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep H and W, got {kernel_size}")
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        _check_map(x, self.channels)
        x = x * self.channel(x)  # (B, C, H, W) * (B, C, 1, 1)
        return x * self.spatial(x)  # (B, C, H, W) * (B, 1, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"
