"""Greedy and beam search: a beam of 1 is greedy, beam search never scores below greedy,
batches give the one-sentence results, KV-cache decoding equals recomputing the prefix,
the early stop never changes the result, and the length cap and penalty hold."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from attnlab.generate import (
    DecodeModel,
    beam_search,
    greedy_search,
    length_penalty,
    score_sequences,
)
from attnlab.models import create_model
from attnlab.models.seq2seq import GRUConfig, Seq2SeqTransformerConfig, TranslationDims

DIMS = TranslationDims(source_vocab_size=24, target_vocab_size=24, shared_vocab=True)
PRESETS = ["gru", "gru-bahdanau", "gru-luong", "transformer"]
SMALL = {
    "gru": GRUConfig(embed_dim=16, hidden_dim=16),
    "transformer": Seq2SeqTransformerConfig(
        embed_dim=16, num_heads=2, encoder_layers=1, decoder_layers=2, mlp_ratio=2.0
    ),
}


def small(name: str, dims: TranslationDims = DIMS):
    from attnlab.models import get_model

    spec = get_model(name, task="translate")
    base = SMALL["transformer" if name == "transformer" else "gru"]
    config = spec.config_cls(**{f: getattr(base, f) for f in base.__dataclass_fields__})
    return create_model(name, config, dims=dims, task="translate")


def sources(n=5, seed=0, vocab=24):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 8, (n,), generator=g)
    src = torch.randint(4, vocab, (n, int(lengths.max())), generator=g)
    for i, k in enumerate(lengths.tolist()):
        src[i, k:] = 0
    return src, lengths


@pytest.fixture(scope="module")
def trained():
    """Each preset after 60 steps on a toy task (reverse the source), so its distributions
    are peaked like a real model's and it ends sentences, unlike an untrained one."""
    torch.manual_seed(0)
    models = {}
    for name in PRESETS:
        model = small(name)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for step in range(60):
            src, lengths = sources(16, seed=100 + step)
            tgt = [
                [DIMS.bos_id, *reversed(s[: int(n)].tolist()), DIMS.eos_id]
                for s, n in zip(src, lengths, strict=True)
            ]
            t = max(map(len, tgt))
            y = torch.tensor([x + [0] * (t - len(x)) for x in tgt])
            logits = model(src, lengths, y[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, 24), y[:, 1:].reshape(-1), ignore_index=0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        models[name] = model.eval()
    return models


def test_models_follow_the_protocol():
    assert all(isinstance(small(n), DecodeModel) for n in PRESETS)
    with pytest.raises(TypeError, match="does not implement the decode-step protocol"):
        greedy_search(torch.nn.Linear(2, 2), *sources())


@pytest.mark.parametrize("name", PRESETS)
def test_beam_of_one_is_greedy(trained, name):
    model = trained[name]
    src, lengths = sources(6, seed=1)
    greedy = greedy_search(model, src, lengths)
    beam = beam_search(model, src, lengths, beam_size=1, length_penalty_alpha=0.0)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    for g, b in zip(greedy, beam, strict=True):
        assert math.isclose(g.log_prob, b.log_prob, rel_tol=1e-5, abs_tol=1e-5)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("seed", [2, 3])
def test_beam_never_scores_below_greedy(trained, name, seed):
    model = trained[name]
    src, lengths = sources(8, seed=seed)
    greedy = greedy_search(model, src, lengths)
    beam = beam_search(model, src, lengths, beam_size=5, length_penalty_alpha=0.0)
    g = score_sequences(model, src, lengths, [h.tokens for h in greedy])
    b = score_sequences(model, src, lengths, [h.tokens for h in beam])
    assert (b >= g - 1e-5).all(), (b - g).tolist()
    # Search reports the model's own log-probabilities.
    assert torch.allclose(b, torch.tensor([h.log_prob for h in beam], dtype=b.dtype), atol=1e-4)


@pytest.mark.parametrize("name", PRESETS)
def test_batched_equals_one_sentence_at_a_time(trained, name):
    model = trained[name]
    src, lengths = sources(5, seed=4)
    batched = beam_search(model, src, lengths, beam_size=4, nbest=2)
    greedy = greedy_search(model, src, lengths)
    for i in range(5):
        n = int(lengths[i])
        one = beam_search(model, src[i : i + 1, :n], lengths[i : i + 1], beam_size=4, nbest=2)[0]
        assert [h.tokens for h in one] == [h.tokens for h in batched[i]]
        assert math.isclose(one[0].score, batched[i][0].score, rel_tol=1e-4, abs_tol=1e-5)
        assert greedy_search(model, src[i : i + 1, :n], lengths[i : i + 1])[0].tokens == (
            greedy[i].tokens
        )


@pytest.mark.parametrize("beam_size", [1, 3])
def test_kv_cache_decoding_equals_recomputing_the_prefix(trained, beam_size):
    model = trained["transformer"]
    src, lengths = sources(6, seed=5)
    cached = beam_search(model, src, lengths, beam_size=beam_size)
    plain = beam_search(
        model, src, lengths, beam_size=beam_size, state=model.encode(src, lengths, use_cache=False)
    )
    assert [h.tokens for h in cached] == [h.tokens for h in plain]
    for a, b in zip(cached, plain, strict=True):
        assert math.isclose(a.score, b.score, rel_tol=1e-4, abs_tol=1e-5)


def reference_beam(model, src, length, k, alpha, max_len):
    """Beam search for one sentence that never stops early: it runs to the length cap,
    scoring every prefix from scratch."""
    eos = model.eos_id

    def next_logp(prefix):
        state = model.encode(src, length)
        for tok in [model.bos_id, *prefix]:
            logits, state = model.decode_step(torch.tensor([tok]), state)
        return torch.log_softmax(logits[0].double(), -1)

    beams, finished = [([], 0.0)], []
    for step in range(1, max_len + 1):
        cands = []
        for prefix, score in beams:
            logp = next_logp(prefix)
            toks = [eos] if step == max_len else range(len(logp))
            cands += [(score + float(logp[t]), prefix, t) for t in toks]
        cands.sort(key=lambda c: -c[0])
        cands = cands[: 2 * k]
        finished += [(s / length_penalty(step, alpha), p) for s, p, t in cands[:k] if t == eos]
        beams = [([*p, t], s) for s, p, t in cands if t != eos][:k]
    return max(finished)[1]


@pytest.mark.parametrize("alpha", [0.6, 2.0])
def test_early_stop_never_changes_the_result(trained, alpha):
    model = trained["gru-bahdanau"]
    src, lengths = sources(3, seed=6)
    found = beam_search(
        model, src, lengths, beam_size=3, length_penalty_alpha=alpha, max_len_a=1.0, max_len_b=3
    )
    with torch.no_grad():
        for i in range(3):
            n = int(lengths[i])
            ref = reference_beam(model, src[i : i + 1, :n], lengths[i : i + 1], 3, alpha, n + 3)
            assert found[i].tokens == ref


def test_large_beam_finds_the_exact_best_sequence():
    """With a beam wider than every prefix set, beam search is exhaustive: it returns the
    sequence with the best length-penalised score among all of them."""
    torch.manual_seed(7)
    dims = TranslationDims(6, 6)
    model = small("gru-luong", dims).eval()
    src, lengths = torch.tensor([[4, 5, 4]]), torch.tensor([3])
    alpha, cap = 1.0, 3
    best = None
    with torch.no_grad():
        for n in range(cap):
            for body in itertools.product(range(6), repeat=n):
                if dims.eos_id in body:
                    continue
                lp = float(score_sequences(model, src, lengths, [list(body)])[0])
                score = lp / length_penalty(n + 1, alpha)
                best = max(best or (score, body), (score, body))
        found = beam_search(
            model,
            src,
            lengths,
            beam_size=36,
            length_penalty_alpha=alpha,
            max_len_a=0.0,
            max_len_b=cap,
        )[0]
    assert tuple(found.tokens) == best[1]
    assert math.isclose(found.score, best[0], rel_tol=1e-5)


def test_length_cap_and_forced_eos():
    model = small("transformer").eval()  # untrained: rarely ends by itself
    src, lengths = sources(4, seed=8)
    for hyps in (
        greedy_search(model, src, lengths, max_len_a=0.5, max_len_b=2),
        beam_search(model, src, lengths, max_len_a=0.5, max_len_b=2),
    ):
        for h, n in zip(hyps, lengths.tolist(), strict=True):
            cap = math.floor(0.5 * n + 2)
            assert len(h.tokens) <= cap - 1  # EOS takes the last place
            assert h.finished or len(h.tokens) == cap - 1


def test_length_penalty_and_arguments():
    assert length_penalty(1, 0.0) == 1.0
    assert math.isclose(length_penalty(7, 0.6), (12 / 6) ** 0.6)
    model = small("gru").eval()
    src, lengths = sources(2)
    with pytest.raises(ValueError, match="beam_size must be a positive int"):
        beam_search(model, src, lengths, beam_size=0)
    with pytest.raises(ValueError, match=r"nbest must be in \[1, beam_size=2\]"):
        beam_search(model, src, lengths, beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="src must be"):
        greedy_search(model, src, lengths[:1])
    nbest = beam_search(model, src, lengths, beam_size=3, nbest=3)
    assert all(len(n) == 3 and n[0].score >= n[1].score >= n[2].score for n in nbest)
