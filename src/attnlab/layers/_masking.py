"""Shared input checks and key masks for the layers that compute weights themselves."""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab.ops import masks as M


def check_features(name: str, x: object, dim: int, ranks: tuple[int, ...] = (3,)) -> Tensor:
    """Raise unless ``x`` is a tensor of one of ``ranks`` dims whose last size is ``dim``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in ranks:
        want = " or ".join({2: "(B, D)", 3: "(B, T, D)"}[r] for r in ranks)
        raise ValueError(
            f"{name} must be {want} with {' or '.join(map(str, ranks))} dims, got shape "
            f"{tuple(x.shape)} with {x.dim()} dims"
        )
    if x.shape[-1] != dim:
        raise ValueError(f"{name} has {x.shape[-1]} features, expected {dim}")
    return x


def key_mask(
    mask: M.Mask | Tensor | None,
    lengths: Tensor | None,
    batch: int,
    tq: int,
    tk: int,
    device: torch.device,
) -> Tensor | None:
    """Normalise a key mask to bool ``(B|1, Tq|1, Tk)`` (True = attend), or None.

    Accepts ``lengths (B,)`` of valid keys, a bool key-padding mask ``(B, Tk)``, a bool
    ``(B|1, Tq|1, Tk)`` tensor, or a typed mask from :mod:`attnlab.ops.masks`.
    """
    if lengths is not None:
        if mask is not None:
            raise ValueError("pass either lengths or mask, not both")
        mask = M.Padding(torch.as_tensor(lengths))
    if mask is None:
        return None
    if isinstance(mask, M.Mask):
        mask.validate(batch, tq, tk)
        return mask.dense(tq, tk, device=device)[:, 0]  # (B|1, Tq, Tk)
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"mask must be a bool tensor (True = attend) or a typed mask, got {got}")
    if mask.dim() == 2:
        if mask.shape != (batch, tk):
            raise ValueError(
                f"key padding mask must have shape (B, Tk) = ({batch}, {tk}), "
                f"got {tuple(mask.shape)}"
            )
        return mask[:, None, :].to(device)  # (B, 1, Tk)
    if mask.dim() == 3:
        try:
            ok = torch.broadcast_shapes(mask.shape, (batch, tq, tk)) == (batch, tq, tk)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} is not broadcastable to (B, Tq, Tk) = "
                f"({batch}, {tq}, {tk})"
            )
        return mask.to(device)
    raise ValueError(
        f"mask must be (B, Tk) or (B, Tq, Tk), got shape {tuple(mask.shape)} with {mask.dim()} dims"
    )
