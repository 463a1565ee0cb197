"""The decode-step protocol every generating model implements.

A model encodes its input once, then is stepped on the last tokens of each hypothesis with
an opaque state, and can reorder that state when search keeps, repeats or drops rows (beam
reselection, finished sentences). Search never looks inside the state.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

__all__ = ["DecodeModel"]


@runtime_checkable
class DecodeModel(Protocol):
    """What :func:`~attnlab.generate.greedy_search` and
    :func:`~attnlab.generate.beam_search` need from a model.

    Attributes:
        bos_id: the token every hypothesis starts with.
        eos_id: the token that ends a hypothesis.

    Example:
        >>> import torch
        >>> from attnlab.models import create_model
        >>> from attnlab.models.seq2seq import TranslationDims
        >>> model = create_model("gru", dims=TranslationDims(20, 20), task="translate")
        >>> isinstance(model, DecodeModel)
        True
    """

    bos_id: int
    eos_id: int

    def encode(self, src: Tensor, src_lengths: Tensor) -> Any:
        """Encode ``src (B, S)`` with ``src_lengths (B,)`` once; return the initial state."""
        ...

    def decode_step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Feed ``tokens (B,)``; return next-token logits ``(B, V)`` and the new state.

        May update ``state`` in place (KV caches grow); callers use the returned one.
        """
        ...

    def reorder_state(self, state: Any, indices: Tensor) -> Any:
        """Keep rows ``indices (B',)`` of the state, in that order (rows may repeat)."""
        ...
