"""The caption task: batches, the loss with its doubly stochastic term, artifacts, recorded
cross-attention (equal to the attention the models compute), rollout, the pointing game,
and captioning of user images (an image without ink gets an empty caption)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from attnlab.models import create_model
from attnlab.models.captioning import CaptionDims, CNNGRUAttnConfig, ViTTransformerConfig
from attnlab.runs import make_config
from attnlab.tasks import get_task
from attnlab.tasks.caption import CaptionArtifacts, CaptionData, collate_captions
from attnlab.tasks.caption_eval import (
    cell_centers,
    cross_attention,
    encoder_attention,
    hits,
    pad_inputs,
    rollout_cross,
)

TASK = get_task("caption")
DIMS = CaptionDims(channels=1, height=16, width=48, vocab_size=13, max_len=4)
RNN = CNNGRUAttnConfig(widths=(4, 8, 8), feature_dim=16, embed_dim=8, hidden_dim=16, attn_dim=8)
VIT = ViTTransformerConfig(patch_size=4, stem_channels=0, embed_dim=16, num_heads=2)


def test_collate_pads_and_shifts():
    a = (torch.full((1, 16, 48), 255, dtype=torch.uint8), [5, 6, 7])
    b = (torch.zeros(1, 16, 48, dtype=torch.uint8), [])
    batch = collate_captions([a, b], pad_id=0, bos_id=1, eos_id=2)
    assert batch["tgt_in"].tolist() == [[1, 5, 6, 7], [1, 0, 0, 0]]
    assert batch["tgt_out"].tolist() == [[5, 6, 7, 2], [2, 0, 0, 0]]
    assert batch["images"].dtype == torch.float32 and batch["images"].max() == 1.0


def test_step_adds_the_doubly_stochastic_term():
    torch.manual_seed(0)
    batch = TASK.example_batch(DIMS, size=4)
    plain = create_model("cnn-gru-attn", RNN, dims=DIMS)
    reg = create_model("cnn-gru-attn", dataclasses.replace(RNN, doubly_stochastic=0.5), dims=DIMS)
    reg.load_state_dict(plain.state_dict())
    plain.eval(), reg.eval()
    base, more = (TASK.step(m, batch, label_smoothing=0.0) for m in (plain, reg))
    _, alphas = plain(batch["images"], batch["tgt_in"], return_attention=True)
    valid = batch["tgt_out"] != 0
    term = ((1 - (alphas * valid[..., None]).sum(1)) ** 2).sum(-1).mean()
    torch.testing.assert_close(more.loss, base.loss + 0.5 * term)
    assert base.preds.shape == (int(valid.sum()), DIMS.vocab_size)
    assert base.target.tolist() == batch["tgt_out"][valid].tolist()


def test_artifacts_round_trip_and_a_bad_file(tmp_path):
    art = CaptionArtifacts(["zero", "one"], 1, 32, 128, 5)
    assert TASK.save_artifacts(art, tmp_path) == ["caption.json"]
    back = TASK.load_artifacts(CaptionData(), tmp_path)
    assert back == art and TASK.dims(back) == CaptionDims(1, 32, 128, 5, 5)
    assert back.ids(["one", "zero"]) == [4, 3] and back.text([1, 4, 3, 2]) == ["one", "zero"]
    (tmp_path / "caption.json").write_text('{"words": []}')
    with pytest.raises(
        ValueError, match=re.escape("caption.json: not a caption file written by attnlab")
    ):
        TASK.load_artifacts(CaptionData(), tmp_path)


def test_data_settings_are_checked():
    with pytest.raises(ValueError, match="unknown caption data set 'mnist'"):
        CaptionData(name="mnist")
    with pytest.raises(ValueError, match="6 digits of at least 24 pixels"):
        CaptionData(max_objects=6, min_size=24)
    with pytest.raises(ValueError, match="grids must be comma-separated ints, got 'two'"):
        CaptionData(name="fashion-grid", grids="two")
    cfg = make_config("caption", "fashion-grid", "vit-transformer", overrides=["data.grids=3"])
    assert cfg.data.options().grids == (3,) and cfg.data.max_words == 9
    assert (cfg.data.options().height, cfg.data.options().width) == (96, 96)


def test_recorded_attention_is_what_the_rnn_computes():
    model = create_model("cnn-gru-attn", RNN, dims=DIMS).eval()
    x, tgt = torch.rand(2, 1, 16, 48), torch.tensor([[1, 5, 6], [1, 7, 0]])
    with torch.no_grad():
        logits, alphas = model(x, tgt, return_attention=True)
    rec = cross_attention(model, x, tgt)
    assert rec.shape == (2, 1, 1, 3, 48)
    torch.testing.assert_close(rec[:, 0, 0], alphas)
    with torch.no_grad():
        torch.testing.assert_close(model(x, tgt), logits)  # hooks removed, output unchanged
    assert cross_attention(create_model("cnn-gru", dims=DIMS, task="caption"), x, tgt) is None


def test_recorded_transformer_attention_matches_a_manual_computation():
    torch.manual_seed(0)
    model = create_model("vit-transformer", VIT, dims=DIMS).eval()
    x, tgt = torch.rand(2, 1, 16, 48), torch.tensor([[1, 5, 6], [1, 7, 0]])
    rec = cross_attention(model, x, tgt)  # (B, L, H, T, N)
    assert rec.shape == (2, 2, 2, 3, 48)
    torch.testing.assert_close(rec.sum(-1), torch.ones(2, 2, 2, 3))
    # layer 0 by hand: queries from the decoder input after the first residual branches
    with torch.no_grad():
        memory = model.encode_images(x)
        block = model.decoder[0]
        y = model._embed(tgt)
        y = y + block.self_attn(block.norm1(y), causal=True)
        mha = block.cross_attn
        q = mha.q_proj(block.norm2(y)).view(2, 3, 2, 8).transpose(1, 2)  # (B, H, T, D)
        k = mha.k_proj(memory).view(2, 48, 2, 8).transpose(1, 2)  # (B, H, N, D)
        manual = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1)  # (B, H, T, N)
    torch.testing.assert_close(rec[:, 0], manual, atol=1e-5, rtol=1e-4)
    enc = encoder_attention(model, x)
    assert enc.shape == (2, 2, 2, 48, 48)


def test_rollout_through_an_identity_encoder_is_the_mean_cross_attention():
    cross = torch.softmax(torch.randn(2, 3, 2, 4, 6), -1)  # (B, L, H, T, N)
    eye = torch.eye(6).expand(2, 2, 2, 6, 6)  # an encoder that attends only to itself
    torch.testing.assert_close(rollout_cross(cross, eye), cross.mean((1, 2)))
    uniform = torch.full((2, 1, 2, 6, 6), 1 / 6)  # one layer spreading everything evenly
    roll = rollout_cross(cross, uniform)
    a = 0.5 * torch.full((6, 6), 1 / 6) + 0.5 * torch.eye(6)
    torch.testing.assert_close(roll, cross.mean((1, 2)) @ a)


def test_pointing_game_on_cell_centres():
    centers = cell_centers((2, 4), (8, 8))
    assert centers[0].tolist() == [4.0, 4.0] and centers[7].tolist() == [28.0, 12.0]
    maps = torch.zeros(3, 8)
    maps[0, 1] = maps[1, 6] = maps[2, 3] = 1.0  # maxima at (12, 4), (20, 12), (28, 4)
    boxes = torch.tensor([[8, 0, 16, 8], [0, 0, 8, 8], [20, 0, 26, 16]])
    assert hits(maps, boxes, centers).tolist() == [True, False, False]
    assert hits(maps, boxes, centers, tolerance=2.0).tolist() == [True, False, True]
    assert pad_inputs([[5, 6], []], 1, 0).tolist() == [[1, 5, 6], [1, 0, 0]]


def test_captioning_user_images_and_an_empty_canvas(tmp_path):
    from PIL import Image

    cfg = make_config("caption", "digits-caption", "cnn-gru-attn")
    art = CaptionArtifacts([f"w{i}" for i in range(10)], 1, 32, 128, 5)
    model = create_model("cnn-gru-attn", cfg.model_config, dims=TASK.dims(art))
    run = TASK.run_class(
        task=TASK, config=cfg, model=model, artifacts=art, dims=TASK.dims(art), run_dir=tmp_path
    )
    Image.new("L", (40, 40)).save(tmp_path / "blank.png")
    noisy = (torch.rand(64, 256) * 255).to(torch.uint8).numpy()
    Image.fromarray(noisy).save(tmp_path / "noise.png")
    blank, noise = run.caption([tmp_path / "blank.png", tmp_path / "noise.png"], beam=2)
    assert blank.words == [] and blank.text == ""
    assert blank.notes == ["resized from 40x40 to fit 128x32", "no ink: empty caption"]
    assert blank.attention.shape[2] == 0
    assert len(noise.words) <= 5 and noise.attention.shape == (1, 1, len(noise.words), 4, 16)
    if noise.words:
        torch.testing.assert_close(noise.maps.sum((-2, -1)), torch.ones(len(noise.words)))
    with pytest.raises(ValueError, match=r"image tensors must be \(B, 1, 32, 128\)"):
        run.caption(torch.rand(2, 1, 28, 28))
    with pytest.raises(TypeError, match="not one path"):
        run.caption(str(tmp_path / "blank.png"))
