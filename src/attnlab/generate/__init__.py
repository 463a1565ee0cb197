"""Greedy and beam search over a small decode-step protocol (encode once, step on the last
tokens with a state, reorder the state by beam indices).

Example:
    >>> import torch
    >>> from attnlab.generate import beam_search, greedy_search
    >>> from attnlab.models import create_model
    >>> from attnlab.models.seq2seq import TranslationDims
    >>> model = create_model("transformer", dims=TranslationDims(40, 40), task="translate")
    >>> src, lengths = torch.randint(4, 40, (3, 8)), torch.tensor([8, 5, 2])
    >>> [len(h) for h in (greedy_search(model.eval(), src, lengths), beam_search(model, src, lengths))]
    [3, 3]
"""

from __future__ import annotations

from attnlab.generate.protocol import DecodeModel
from attnlab.generate.search import (
    Hypothesis,
    beam_search,
    greedy_search,
    length_penalty,
    score_sequences,
)

__all__ = [
    "DecodeModel",
    "Hypothesis",
    "beam_search",
    "greedy_search",
    "length_penalty",
    "score_sequences",
]
