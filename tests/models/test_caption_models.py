"""Captioning presets: step-by-step decoding equals the teacher-forced forward, greedy
equals beam 1, beam search never finds a worse caption than greedy, the attention grid
maps onto the image, and bad inputs are refused with the offending values."""

from __future__ import annotations

import pytest
import torch

from attnlab.generate import beam_search, greedy_search, score_sequences
from attnlab.models import create_model
from attnlab.models.captioning import CaptionDims, CNNGRUAttnConfig, ViTTransformerConfig

DIMS = CaptionDims(channels=1, height=16, width=48, vocab_size=11, max_len=4)
SMALL = {
    "cnn-gru-attn": CNNGRUAttnConfig(
        widths=(4, 8, 8), feature_dim=16, embed_dim=8, hidden_dim=16, attn_dim=8
    ),
    "cnn-gru": None,
    "vit-transformer": ViTTransformerConfig(
        patch_size=4, stem_channels=4, embed_dim=16, num_heads=2
    ),
}


def _model(name):
    cfg = SMALL[name]
    if name == "cnn-gru":
        from attnlab.models.captioning import CNNGRUConfig

        cfg = CNNGRUConfig(widths=(4, 8, 8), feature_dim=16, embed_dim=8, hidden_dim=16)
    torch.manual_seed(0)
    model = create_model(name, cfg, dims=DIMS)
    with torch.no_grad():  # untrained models put all mass on few words: spread it out
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    return model.eval()


@pytest.mark.parametrize("name", list(SMALL))
def test_step_decoding_equals_teacher_forcing(name):
    model = _model(name)
    x = torch.rand(3, 1, 16, 48)
    tgt_in = torch.tensor([[1, 5, 6, 7], [1, 8, 9, 3], [1, 3, 4, 10]])
    with torch.no_grad():
        full = model(x, tgt_in)  # (B, T, V)
        state = model.encode(x.flatten(1), torch.zeros(3, dtype=torch.long))
        steps = []
        for t in range(4):
            logits, state = model.decode_step(tgt_in[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(SMALL))
def test_greedy_beam_and_batching_agree(name):
    model = _model(name)
    x = torch.rand(4, 1, 16, 48).flatten(1)
    zeros = torch.zeros(4, dtype=torch.long)
    kw = {"max_len_a": 0.0, "max_len_b": DIMS.max_len + 1}
    greedy = greedy_search(model, x, zeros, **kw)
    beam1 = beam_search(model, x, zeros, beam_size=1, length_penalty_alpha=0.0, **kw)
    assert [h.tokens for h in greedy] == [h.tokens for h in beam1]
    assert all(len(h.tokens) <= DIMS.max_len for h in greedy)
    beam3 = beam_search(model, x, zeros, beam_size=3, length_penalty_alpha=0.0, **kw)
    for g, b in zip(greedy, beam3, strict=True):
        assert b.log_prob >= g.log_prob - 1e-5
    one = [greedy_search(model, x[i : i + 1], zeros[:1], **kw)[0].tokens for i in range(4)]
    assert one == [h.tokens for h in greedy]
    scores = score_sequences(model, x, zeros, [h.tokens for h in beam3])
    torch.testing.assert_close(
        scores.float(), torch.tensor([h.log_prob for h in beam3]), atol=1e-4, rtol=0
    )


def test_grid_and_cells_cover_the_image():
    rnn = _model("cnn-gru-attn")
    assert rnn.grid == (4, 12) and rnn.cell_size == (4, 4)
    vit = _model("vit-transformer")
    assert vit.grid == (4, 12) and vit.cell_size == (4, 4)
    assert [n for n, _ in vit.attention_modules()] == [
        "decoder.0.cross_attn.core",
        "decoder.1.cross_attn.core",
    ]
    assert _model("cnn-gru").attention_modules() == []


def test_return_attention_rows_sum_to_one():
    model = _model("cnn-gru-attn")
    logits, alphas = model(
        torch.rand(2, 1, 16, 48), torch.tensor([[1, 4, 5], [1, 6, 0]]), return_attention=True
    )
    assert logits.shape == (2, 3, 11) and alphas.shape == (2, 3, 48)
    torch.testing.assert_close(alphas.sum(-1), torch.ones(2, 3))
    _, none = _model("cnn-gru")(
        torch.rand(2, 1, 16, 48), torch.tensor([[1, 4]]).expand(2, 2), return_attention=True
    )
    assert none.shape == (2, 2, 0)


def test_bad_inputs_name_the_offending_values():
    model = _model("vit-transformer")
    with pytest.raises(
        ValueError, match=r"images of shape \(1, 16, 40\), the model was built for \(1, 16, 48\)"
    ):
        model(torch.rand(2, 1, 16, 40), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"images must be \(B, C, H, W\), got \(16, 48\)"):
        model.encode_images(torch.rand(16, 48))
    with pytest.raises(ValueError, match="patch size 5 does not divide the image size 16x48"):
        create_model("vit-transformer", ViTTransformerConfig(patch_size=5), dims=DIMS)
    with pytest.raises(
        ValueError, match="4 stages pool by 8, which does not divide the image size 18x48"
    ):
        create_model("cnn-gru-attn", dims=CaptionDims(1, 18, 48, 11, 4), task="caption")
    with pytest.raises(ValueError, match="pad, bos and eos ids must differ"):
        CaptionDims(1, 16, 48, 11, 4, bos_id=0)
    with pytest.raises(ValueError, match="embed_dim 30 must be divisible by num_heads 4"):
        ViTTransformerConfig(embed_dim=30)
