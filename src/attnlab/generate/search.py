"""Batched greedy and beam search over the decode-step protocol.

Beam search keeps ``beam_size`` hypotheses per sentence, ranks finished ones by the length
penalty of Wu et al. 2016 (eq. 14, ``lp(Y) = ((5 + |Y|) / 6) ** alpha``), caps the output
at ``max_len_a * source_length + max_len_b`` tokens and stops a sentence only when no
unfinished hypothesis can still beat the finished ones (an exact bound, not a heuristic).
Sentences that are done leave the batch, so the model's state shrinks as decoding goes.

Example:
    >>> import torch
    >>> from attnlab.models import create_model
    >>> from attnlab.models.seq2seq import TranslationDims
    >>> model = create_model("gru", dims=TranslationDims(30, 30), task="translate").eval()
    >>> src, lengths = torch.randint(4, 30, (2, 6)), torch.tensor([6, 3])
    >>> hyps = beam_search(model, src, lengths, beam_size=3, max_len_b=5)
    >>> len(hyps), len(hyps[0].tokens) <= 6 * 1.5 + 5
    (2, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attnlab.generate.protocol import DecodeModel

__all__ = ["Hypothesis", "beam_search", "greedy_search", "length_penalty", "score_sequences"]


@dataclass(frozen=True)
class Hypothesis:
    """One output sequence.

    Attributes:
        tokens: generated ids without BOS and EOS.
        log_prob: sum of the token log-probabilities, EOS included when it was produced.
        score: what search ranked by (``log_prob / lp(length)``; ``log_prob`` for greedy).
        finished: whether the model chose to end it (False: EOS was forced at the cap).
    """

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool = True


def length_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """Wu et al. 2016, eq. 14: ``((5 + length) / 6) ** alpha`` (1 when ``alpha`` is 0)."""
    return ((5 + length) / 6) ** alpha


def _check(model: Any, src: Tensor, src_lengths: Tensor, max_len_a: float, max_len_b: int):
    if not isinstance(model, DecodeModel):
        raise TypeError(
            f"{type(model).__name__} does not implement the decode-step protocol "
            "(encode, decode_step, reorder_state, bos_id, eos_id)"
        )
    if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
        raise ValueError(
            f"src must be (B, S) and src_lengths (B,), got {tuple(src.shape)} and "
            f"{tuple(src_lengths.shape)}"
        )
    if max_len_a < 0 or max_len_b < 0 or (max_len_a == 0 and max_len_b < 1):
        raise ValueError(
            f"max_len_a and max_len_b must be >= 0 and allow one token, got {max_len_a}, "
            f"{max_len_b}"
        )


def _max_lengths(src_lengths: Tensor, a: float, b: int) -> Tensor:
    """Longest output of each sentence, EOS included: ``floor(a * S + b)``, at least 1."""
    return (src_lengths.double() * a + b).floor().long().clamp(min=1).cpu()


@torch.no_grad()
def greedy_search(
    model: DecodeModel,
    src: Tensor,
    src_lengths: Tensor,
    *,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    state: Any = None,
) -> list[Hypothesis]:
    """Pick the most probable next token at every step, for a batch of sentences.

    Args:
        model: implements :class:`~attnlab.generate.DecodeModel`.
        src: ``(B, S)`` source ids.
        src_lengths: ``(B,)`` valid source tokens.
        max_len_a, max_len_b: at most ``floor(max_len_a * src_length + max_len_b)``
            output tokens per sentence, EOS included; EOS is forced at the cap.
        state: a state from ``model.encode`` to start from (e.g. one without a KV cache);
            default: ``model.encode(src, src_lengths)``.

    Returns:
        One :class:`Hypothesis` per sentence, in input order.
    """
    _check(model, src, src_lengths, max_len_a, max_len_b)
    b = src.shape[0]
    max_lens = _max_lengths(src_lengths, max_len_a, max_len_b)
    state = model.encode(src, src_lengths) if state is None else state
    alive = torch.arange(b)  # original index of each row of the state
    tokens = torch.full((b,), model.bos_id, dtype=torch.long, device=src.device)
    out: list[list[int]] = [[] for _ in range(b)]
    logp_sum = [0.0] * b
    result: list[Hypothesis | None] = [None] * b
    step = 0
    while alive.numel():
        logits, state = model.decode_step(tokens, state)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (b', V)
        step += 1
        at_cap = (max_lens[alive] <= step).to(logp.device)
        if at_cap.any():  # only EOS may follow at the length cap
            logp[at_cap] = torch.where(
                torch.arange(logp.shape[1], device=logp.device) == model.eos_id,
                logp[at_cap],
                -math.inf,
            )
        best_logp, tokens = logp.max(dim=-1)
        keep = []
        for row, (i, tok, lp) in enumerate(
            zip(alive.tolist(), tokens.tolist(), best_logp.tolist(), strict=True)
        ):
            logp_sum[i] += lp
            if tok == model.eos_id:
                ended = not bool(at_cap[row])
                result[i] = Hypothesis(out[i], logp_sum[i], logp_sum[i], ended)
                continue
            out[i].append(tok)
            keep.append(row)
        if len(keep) < alive.numel():
            rows = torch.tensor(keep, dtype=torch.long)
            alive, tokens = alive[rows], tokens[rows.to(tokens.device)]
            if keep:
                state = model.reorder_state(state, rows.to(src.device))
    return [h for h in result if h is not None]


@torch.no_grad()
def beam_search(
    model: DecodeModel,
    src: Tensor,
    src_lengths: Tensor,
    *,
    beam_size: int = 5,
    length_penalty_alpha: float = 0.6,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    nbest: int = 1,
    state: Any = None,
) -> list[Hypothesis] | list[list[Hypothesis]]:
    """Beam search for a batch of sentences.

    Each step scores the ``beam_size * V`` extensions of every sentence's beams and keeps
    the best ``2 * beam_size``: those ending in EOS within the top ``beam_size`` become
    finished hypotheses, the best ``beam_size`` others continue (so a beam of 1 is greedy
    search when ``length_penalty_alpha`` is 0). A sentence stops once it has ``nbest``
    finished hypotheses and no unfinished one, even grown to the length cap, can score
    better than the ``nbest``-th of them (``log_prob`` only falls as tokens are added, so
    ``log_prob / lp(cap)`` bounds every continuation): stopping then never changes the
    result, unlike stopping at the first ``beam_size`` finished hypotheses.

    Args:
        model: implements :class:`~attnlab.generate.DecodeModel`.
        src: ``(B, S)`` source ids.
        src_lengths: ``(B,)`` valid source tokens.
        beam_size: hypotheses kept per sentence.
        length_penalty_alpha: ``alpha`` of Wu et al. 2016 (0: rank by log-probability;
            larger values favour longer outputs).
        max_len_a, max_len_b: at most ``floor(max_len_a * src_length + max_len_b)``
            output tokens per sentence, EOS included; EOS is forced at the cap.
        nbest: hypotheses returned per sentence (<= ``beam_size``).
        state: a state from ``model.encode`` to start from; default
            ``model.encode(src, src_lengths)``.

    Returns:
        The best :class:`Hypothesis` per sentence, or (``nbest > 1``) a list of the
        ``nbest`` best, in input order.

    Raises:
        ValueError: ``beam_size`` < 1, ``nbest`` outside ``[1, beam_size]``, bad lengths.
    """
    _check(model, src, src_lengths, max_len_a, max_len_b)
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be in [1, beam_size={beam_size}], got {nbest}")
    k, b, dev = beam_size, src.shape[0], src.device
    max_lens = _max_lengths(src_lengths, max_len_a, max_len_b)
    state = model.encode(src, src_lengths) if state is None else state
    state = model.reorder_state(state, torch.arange(b, device=dev).repeat_interleave(k))
    alive = torch.arange(b)  # original sentence of each group of k rows
    tokens = torch.full((b * k,), model.bos_id, dtype=torch.long, device=dev)
    scores = torch.full((b, k), -math.inf, device=dev)
    scores[:, 0] = 0.0  # one live beam at the start: the others would repeat it
    history = torch.empty(b, k, 0, dtype=torch.long, device=dev)
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    step = 0
    while alive.numel():
        n = alive.numel()
        logits, state = model.decode_step(tokens, state)
        logp = torch.log_softmax(logits.float(), dim=-1).view(n, k, -1)  # (n, k, V)
        v = logp.shape[-1]
        step += 1
        at_cap = (max_lens[alive] <= step).to(dev)  # (n,)
        if at_cap.any():  # only EOS may follow at the length cap
            forced = torch.full_like(logp[at_cap], -math.inf)
            forced[..., model.eos_id] = logp[at_cap][..., model.eos_id]
            logp[at_cap] = forced
        cand = (scores[:, :, None] + logp).view(n, k * v)  # (n, k*V)
        cand_scores, cand_idx = cand.topk(min(2 * k, k * v), dim=-1)  # (n, 2k)
        cand_beam, cand_tok = cand_idx // v, cand_idx % v
        is_eos = (cand_tok == model.eos_id) & torch.isfinite(cand_scores)
        lp = length_penalty(step, length_penalty_alpha)
        # Finish the EOS candidates ranked within the top k.
        for row, col in is_eos[:, :k].nonzero().tolist():
            i = int(alive[row])
            raw = float(cand_scores[row, col])
            prefix = history[row, int(cand_beam[row, col])].tolist()
            finished[i].append(Hypothesis(prefix, raw, raw / lp, not bool(at_cap[row])))
        # The best k non-EOS candidates continue (each beam yields at most one EOS, so
        # there are always k of them).
        rank = torch.arange(cand_scores.shape[1], device=dev).expand_as(cand_scores)
        order = torch.where(cand_tok == model.eos_id, rank + 2 * k, rank)
        keep = order.topk(k, dim=-1, largest=False).indices  # (n, k)
        scores = cand_scores.gather(1, keep)  # (n, k)
        beam = cand_beam.gather(1, keep)
        tok = cand_tok.gather(1, keep)
        history = torch.cat(
            [history.gather(1, beam[..., None].expand(-1, -1, step - 1)), tok[..., None]], dim=2
        )
        # A sentence is done when no live beam can beat its nbest-th finished hypothesis.
        done = []
        for row in range(n):
            i = int(alive[row])
            fin = finished[i]
            if at_cap[row]:
                done.append(row)
                continue
            if len(fin) < nbest:
                continue
            worst = sorted(h.score for h in fin)[-nbest]
            best_raw = float(scores[row].max())
            bound = best_raw / max(
                length_penalty(step + 1, length_penalty_alpha),
                length_penalty(int(max_lens[i]), length_penalty_alpha),
            )
            if bound <= worst:
                done.append(row)
        if done:
            live = [r for r in range(n) if r not in set(done)]
            rows = torch.tensor(live, dtype=torch.long, device=dev)
            alive, scores, history, tok = alive[rows.cpu()], scores[rows], history[rows], tok[rows]
            beam = beam[rows]
            if not live:
                break
            flat = (rows[:, None] * k + beam).view(-1)  # rows of the old state to keep
        else:
            flat = (torch.arange(n, device=dev)[:, None] * k + beam).view(-1)
        state = model.reorder_state(state, flat)
        tokens = tok.reshape(-1)
    results = []
    for fin in finished:
        ranked = sorted(fin, key=lambda h: h.score, reverse=True)[:nbest]
        results.append(ranked[0] if nbest == 1 else ranked)
    return results


@torch.no_grad()
def score_sequences(
    model: DecodeModel, src: Tensor, src_lengths: Tensor, sequences: list[list[int]]
) -> Tensor:
    """Log-probability ``(B,)`` of each output sequence (EOS appended) under the model.

    Uses the same steps as search, so ``score_sequences(...)[i]`` equals the
    ``log_prob`` of a hypothesis found for sentence ``i`` (up to float rounding).
    """
    if len(sequences) != src.shape[0]:
        raise ValueError(f"{len(sequences)} sequences for {src.shape[0]} sentences")
    seqs = [[*s, model.eos_id] for s in sequences]
    t = max(len(s) for s in seqs)
    state = model.encode(src, src_lengths)
    tokens = torch.full((len(seqs),), model.bos_id, dtype=torch.long, device=src.device)
    total = torch.zeros(len(seqs), dtype=torch.float64)
    for step in range(t):
        logits, state = model.decode_step(tokens, state)
        logp = torch.log_softmax(logits.float(), dim=-1)
        nxt = [s[step] if step < len(s) else model.eos_id for s in seqs]
        nxt_t = torch.tensor(nxt, device=src.device)
        gathered = logp.gather(1, nxt_t[:, None])[:, 0].double().cpu()
        live = torch.tensor([step < len(s) for s in seqs])
        total += torch.where(live, gathered, torch.zeros_like(gathered))
        tokens = nxt_t
    return total
