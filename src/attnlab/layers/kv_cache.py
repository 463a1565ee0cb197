"""Key/value cache for incremental (token-by-token) decoding."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["KVCache"]


class KVCache:
    """Keys and values of the positions decoded so far, for one attention layer.

    :class:`~attnlab.layers.MultiHeadAttention` appends the new (already rotated) keys
    and values on every call and attends over everything stored. Because causal masks
    are bottom-right aligned, a query of length 1 against ``t`` cached keys sees exactly
    what the last row of the full ``t x t`` forward sees, so cached decoding equals the
    uncached forward.

    Two storage modes:

    * ``max_len=None`` (growing): each append concatenates, which keeps autograd
      working through the cache.
    * ``max_len=N`` (preallocated): a ``(B, Hkv, N, D)`` buffer is allocated on the
      first append and filled in place; appending past ``N`` raises ValueError. Meant
      for inference (``torch.no_grad()``).

    Args:
        max_len: capacity in positions, or None to grow.

    Example:
        >>> import torch
        >>> from attnlab.layers import KVCache, MultiHeadAttention
        >>> mha = MultiHeadAttention(16, 4).eval()
        >>> x = torch.randn(2, 5, 16)
        >>> cache = KVCache()
        >>> steps = [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(5)]
        >>> torch.allclose(torch.cat(steps, 1), mha(x, causal=True), atol=1e-5)
        True
    """

    def __init__(self, max_len: int | None = None) -> None:
        if max_len is not None and (
            isinstance(max_len, bool) or not isinstance(max_len, int) or max_len <= 0
        ):
            raise ValueError(f"max_len must be a positive int or None, got {max_len!r}")
        self.max_len = max_len
        self._k: Tensor | None = None
        self._v: Tensor | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def offset(self) -> int:
        """Number of positions already stored: the absolute position of the next token."""
        return self._len

    @property
    def keys(self) -> Tensor | None:
        """Stored keys ``(B, Hkv, len, D)`` or None when empty."""
        return None if self._k is None else self._k[:, :, : self._len]

    @property
    def values(self) -> Tensor | None:
        """Stored values ``(B, Hkv, len, Dv)`` or None when empty."""
        return None if self._v is None else self._v[:, :, : self._len]

    def reset(self) -> None:
        """Forget everything (keeps nothing allocated)."""
        self._k = self._v = None
        self._len = 0

    def reorder(self, indices: Tensor) -> None:
        """Keep batch rows ``indices (B',)`` of the stored keys/values, in that order.

        Beam search calls this when beams are reselected (a row may be repeated or
        dropped); the new batch size is ``B'``.

        Example:
            >>> import torch
            >>> cache = KVCache()
            >>> _ = cache.update(torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 4))
            >>> cache.reorder(torch.tensor([1, 1, 0]))
            >>> cache.keys.shape
            torch.Size([3, 1, 3, 4])
        """
        if self._k is None:
            return
        indices = torch.as_tensor(indices, device=self._k.device)
        if indices.dim() != 1 or indices.dtype in (torch.bool, torch.float32, torch.float64):
            raise ValueError(
                f"indices must be a 1-D integer tensor, got shape {tuple(indices.shape)} "
                f"and dtype {indices.dtype}"
            )
        b = self._k.shape[0]
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= b):
            raise ValueError(f"indices {indices.tolist()} out of range for batch size {b}")
        self._k = self._k.index_select(0, indices)  # (B', Hkv, N, D)
        self._v = self._v.index_select(0, indices)

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``k (B, Hkv, T, D)`` and ``v (B, Hkv, T, Dv)``; return all stored.

        Returns:
            ``(keys (B, Hkv, len + T, D), values (B, Hkv, len + T, Dv))``.

        Raises:
            ValueError: shapes differ from what is stored, or the capacity is exceeded.
        """
        if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
            raise ValueError(
                f"KVCache.update expects k (B, Hkv, T, D) and v (B, Hkv, T, Dv) with equal "
                f"B, Hkv, T; got k {tuple(k.shape)}, v {tuple(v.shape)}"
            )
        if self._k is not None:
            want_k = (self._k.shape[0], self._k.shape[1], self._k.shape[3])
            want_v = (self._v.shape[0], self._v.shape[1], self._v.shape[3])
            got_k = (k.shape[0], k.shape[1], k.shape[3])
            got_v = (v.shape[0], v.shape[1], v.shape[3])
            if want_k != got_k or want_v != got_v:
                raise ValueError(
                    f"KVCache holds (B, Hkv, D) = {want_k} keys and {want_v} values; "
                    f"cannot append {got_k} / {got_v}"
                )
        t = k.shape[2]
        new_len = self._len + t
        if self.max_len is None:
            if self._k is None:
                self._k, self._v = k, v
            else:
                self._k = torch.cat([self.keys, k], dim=2)  # (B, Hkv, len + T, D)
                self._v = torch.cat([self.values, v], dim=2)
        else:
            if new_len > self.max_len:
                raise ValueError(
                    f"KVCache is full: {self._len} stored + {t} new > max_len={self.max_len}"
                )
            if self._k is None:
                b, h, _, d = k.shape
                self._k = k.new_zeros(b, h, self.max_len, d)  # (B, Hkv, N, D)
                self._v = v.new_zeros(b, h, self.max_len, v.shape[3])
            self._k[:, :, self._len : new_len] = k
            self._v[:, :, self._len : new_len] = v
        self._len = new_len
        return self.keys, self.values

    def __repr__(self) -> str:
        shape = None if self._k is None else tuple(self.keys.shape)
        return f"KVCache(len={self._len}, max_len={self.max_len}, keys={shape})"
