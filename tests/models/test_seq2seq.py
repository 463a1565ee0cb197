"""Translation presets: every one trains on a tiny batch, ignores padding, decodes step by
step exactly like its teacher-forced forward, and exposes attention only through hooks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlab.layers import AttentionCore, WeightsTap
from attnlab.models import create_model, get_model, list_models
from attnlab.models.seq2seq import (
    GRUBahdanauConfig,
    Seq2SeqTransformerConfig,
    TranslationDims,
)
from attnlab.models.text import TextDims

PRESETS = [m.name for m in list_models("translate")]
DIMS = TranslationDims(source_vocab_size=41, target_vocab_size=37)
SHARED = TranslationDims(source_vocab_size=45, target_vocab_size=45, shared_vocab=True)


def batch(dims: TranslationDims, lengths=(9, 4, 1), t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    src = torch.randint(4, dims.source_vocab_size, (len(lengths), int(lengths.max())), generator=g)
    for i, n in enumerate(lengths.tolist()):
        src[i, n:] = dims.pad_id
    tgt_in = torch.randint(4, dims.target_vocab_size, (len(lengths), t), generator=g)
    tgt_in[:, 0] = dims.bos_id
    return src, lengths, tgt_in


def test_registry_has_the_four_translation_presets():
    assert PRESETS == ["gru", "gru-bahdanau", "gru-luong", "transformer"]
    # "transformer" names a preset of two tasks: the task (or the dims) chooses.
    assert get_model("transformer").task == "text"
    assert get_model("transformer", task="translate").config_cls is Seq2SeqTransformerConfig
    assert type(create_model("transformer", dims=SHARED)).__name__ == "Seq2SeqTransformer"
    assert type(create_model("transformer", dims=TextDims(50, 2))).__name__ == (
        "TransformerClassifier"
    )
    with pytest.raises(ValueError, match="belongs to task 'translate', not 'text'"):
        get_model("gru-luong", task="text")
    with pytest.raises(TypeError, match="is built with TranslationDims, got TextDims"):
        create_model("gru", dims=TextDims(50, 2))


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("dims", [DIMS, SHARED], ids=["separate", "shared"])
def test_forward_backward_and_padding(name, dims):
    torch.manual_seed(0)
    spec = get_model(name, task="translate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.default_config().dropout = 0.5
    model = create_model(name, dims=dims, task="translate")
    src, lengths, tgt_in = batch(dims)
    logits = model(src, lengths, tgt_in)
    assert logits.shape == (3, 6, dims.target_vocab_size) and torch.isfinite(logits).all()
    logits.logsumexp(-1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        full = model(src, lengths, tgt_in)
        alone = model(src[1:2, :4], lengths[1:2], tgt_in[1:2])  # no padding at all
    torch.testing.assert_close(alone, full[1:2], atol=1e-5, rtol=1e-4)
    assert not any(isinstance(v, torch.Tensor) for v in vars(model).values())


@pytest.mark.parametrize("name", PRESETS)
def test_step_decoding_equals_teacher_forcing(name):
    torch.manual_seed(1)
    model = create_model(name, dims=SHARED, task="translate").eval()
    src, lengths, tgt_in = batch(SHARED, lengths=(7, 3, 5, 1), t=8, seed=1)
    with torch.no_grad():
        full = model(src, lengths, tgt_in)
        state = model.encode(src, lengths)
        steps = []
        for t in range(tgt_in.shape[1]):
            logits, state = model.decode_step(tgt_in[:, t], state)
            steps.append(logits)
        # Reordering mid-way follows the rows: reversed batch, same logits reversed.
        state = model.encode(src, lengths)
        for t in range(3):
            _, state = model.decode_step(tgt_in[:, t], state)
        rev = torch.tensor([3, 2, 1, 0])
        state = model.reorder_state(state, rev)
        logits, _ = model.decode_step(tgt_in[rev, 3], state)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, full[rev, 3], atol=1e-5, rtol=1e-4)


def test_transformer_uncached_step_equals_cached():
    torch.manual_seed(2)
    model = create_model("transformer", dims=DIMS, task="translate").eval()
    src, lengths, tgt_in = batch(DIMS, t=7)
    with torch.no_grad():
        cached, plain = model.encode(src, lengths), model.encode(src, lengths, use_cache=False)
        assert plain.caches is None and len(cached.caches) == 3
        for t in range(7):
            a, cached = model.decode_step(tgt_in[:, t], cached)
            b, plain = model.decode_step(tgt_in[:, t], plain)
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert len(cached.caches[0]) == 7 and plain.prefix.shape == (3, 7)


def test_shared_vocabulary_ties_all_embeddings():
    rnn = create_model("gru-bahdanau", dims=SHARED, task="translate")
    assert rnn.encoder.embed is rnn.tgt_embed and rnn.decoder.readout.embed is rnn.tgt_embed
    tr = create_model("transformer", dims=SHARED, task="translate")
    assert tr.src_embed is tr.tgt_embed
    assert create_model("transformer", dims=DIMS, task="translate").src_embed.num_embeddings == 41


def test_attention_is_reachable_only_through_hooks():
    src, lengths, tgt_in = batch(DIMS)
    for name, _seam in (("gru-bahdanau", WeightsTap), ("gru-luong", WeightsTap)):
        model = create_model(name, dims=DIMS, task="translate").eval()
        seen = []
        model.decoder.attn.tap.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o))
        with torch.no_grad():
            model(src, lengths, tgt_in)
        assert len(seen) == 6  # one (B, 1, 1, S) map per target step
        w = torch.cat(seen, dim=2)[:, 0]  # (B, T, S)
        assert torch.allclose(w.sum(-1), torch.ones(3, 6), atol=1e-5)
        assert (w[1, :, 4:] == 0).all() and (w[2, :, 1:] == 0).all()
    assert not any(isinstance(m, WeightsTap) for m in create_model("gru", dims=DIMS).modules())
    tr = create_model("transformer", dims=DIMS, task="translate")
    assert sum(isinstance(m, AttentionCore) for m in tr.modules()) == 3 + 3 * 2


def test_configs_and_dims_are_checked():
    with pytest.raises(ValueError, match="dropout must be in"):
        GRUBahdanauConfig(dropout=1.0)
    with pytest.raises(ValueError, match="not divisible by num_heads 3"):
        Seq2SeqTransformerConfig(num_heads=3)
    with pytest.raises(ValueError, match="shared vocabulary needs equal sizes"):
        TranslationDims(10, 12, shared_vocab=True)
    with pytest.raises(ValueError, match="pad, bos and eos ids must differ"):
        TranslationDims(10, 10, bos_id=0)
    with pytest.raises(ValueError, match="eos_id 30 is outside the vocabulary"):
        TranslationDims(10, 40, eos_id=30)
    with pytest.raises(ValueError, match="exceeds max_positions 8"):
        model = create_model(
            "transformer", Seq2SeqTransformerConfig(max_positions=8), dims=DIMS, task="translate"
        )
        model(*batch(DIMS, lengths=(9,)))
