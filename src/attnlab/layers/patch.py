"""Images as token sequences: patch embedding and 2-D sine-cosine positions (Dosovitskiy
et al. 2021, "An Image is Worth 16x16 Words", Sec. 3.1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PatchEmbedding", "sincos_2d"]


def sincos_2d(grid_h: int, grid_w: int, dim: int, *, base: float = 10000.0) -> Tensor:
    """Fixed 2-D sine-cosine position embeddings (the MAE / ViT-22B variant).

    Half the channels encode the row, half the column, each as
    ``[sin(p w_i), cos(p w_i)]`` with ``w_i = base^(-i / (dim/4))`` (Vaswani et al. 2017,
    Sec. 3.5, applied per axis).

    Args:
        grid_h, grid_w: patch grid size.
        dim: embedding size (a multiple of 4).

    Returns:
        ``(grid_h * grid_w, dim)``, row-major over the grid.

    Example:
        >>> sincos_2d(7, 7, 64).shape
        torch.Size([49, 64])
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos positions need dim divisible by 4, got {dim}")
    quarter = dim // 4
    omega = base ** (-torch.arange(quarter, dtype=torch.float64) / quarter)  # (dim/4,)
    ys, xs = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64),
        torch.arange(grid_w, dtype=torch.float64),
        indexing="ij",
    )
    parts = []
    for pos in (ys.flatten(), xs.flatten()):
        angle = pos[:, None] * omega[None]  # (N, dim/4)
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, 1).float()  # (N, dim)


class PatchEmbedding(nn.Module):
    """Split an image into non-overlapping ``patch x patch`` squares and project each to
    ``embed_dim`` (a convolution with kernel = stride = patch size).

    Args:
        in_channels: image channels C.
        embed_dim: token width E.
        patch_size: patch side P (must divide the image height and width).

    Shapes:
        ``x (B, C, H, W) -> (B, (H/P) * (W/P), E)``, tokens in row-major order.

    Example:
        >>> PatchEmbedding(1, 64, 4)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 49, 64])
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("embed_dim", embed_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid ``(H/P, W/P)`` of an image.

        Raises:
            ValueError: P does not divide H or W.
        """
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"patch size {p} does not divide the image size {height}x{width}")
        return height // p, width // p

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
        self.grid(x.shape[2], x.shape[3])
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h*w, E)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"
