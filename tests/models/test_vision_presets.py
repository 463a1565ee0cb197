"""Every image preset: forward/backward on a tiny batch, frozen configs, attention reachable
only through hooks, and the ViT's pieces (patch grid, positions, stem)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlab.layers import CBAM, AttentionCore, PatchEmbedding, SqueezeExcite, WeightsTap, sincos_2d
from attnlab.models import create_model, get_model, list_models
from attnlab.models.vision import ConvNet, ImageDims, VisionTransformer, ViTConfig
from attnlab.tasks.image import ImageData

PRESETS = [m.name for m in list_models("image")]


def test_image_presets_are_registered():
    assert PRESETS == ["cnn", "cnn-se", "cnn-cbam", "vit"]
    for name in PRESETS:
        spec = get_model(name)
        assert spec.dims_cls is ImageDims and spec.task == "image"
        assert {"epochs", "lr", "batch_size"} <= set(spec.train_defaults)
        fields = {f.name for f in dataclasses.fields(ImageData)}
        assert set(spec.data_defaults) <= fields, spec.data_defaults


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("dims", [ImageDims(1, 28, 28, 10), ImageDims(3, 12, 20, 3)])
def test_forward_backward_tiny_batch(name, dims):
    torch.manual_seed(0)
    spec = get_model(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.default_config().dropout = 0.5
    config = spec.default_config()
    if name == "vit" and dims.height == 12:
        config = dataclasses.replace(config, patch_size=4)  # 12 x 20 -> 3 x 5 patches
    model = create_model(name, config, dims=dims)
    x = torch.rand(3, dims.channels, dims.height, dims.width)
    logits = model(x)
    assert logits.shape == (3, dims.num_classes) and torch.isfinite(logits).all()
    logits.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():  # eval: each image independent of the others in the batch
        assert torch.allclose(model(x[:1]), model(x)[:1], atol=1e-5)
    assert not any(isinstance(v, torch.Tensor) for v in vars(model).values())
    with pytest.raises(ValueError, match="the model was built for"):
        model(torch.rand(2, dims.channels, dims.height + 4, dims.width))


def test_attention_modules_sit_where_hooks_find_them():
    dims = ImageDims(1, 28, 28, 10)
    se = create_model("cnn-se", dims=dims)
    cbam = create_model("cnn-cbam", dims=dims)
    plain = create_model("cnn", dims=dims)
    assert sum(isinstance(m, SqueezeExcite) for m in se.modules()) == 3
    assert sum(isinstance(m, CBAM) for m in cbam.modules()) == 3
    assert not any(isinstance(m, WeightsTap) for m in plain.modules())
    assert isinstance(plain, ConvNet)
    vit = create_model("vit", dims=dims)
    assert isinstance(vit, VisionTransformer)
    assert sum(isinstance(m, AttentionCore) for m in vit.modules()) == vit.config.depth
    assert vit.grid() == (7, 7)


def test_config_from_json_lists_and_validation():
    spec = get_model("cnn-cbam")
    cfg = spec.config_from_dict({"widths": [16, 32], "reduction": 4})
    assert cfg.widths == (16, 32) and cfg.attention == "cbam"
    model = create_model("cnn-cbam", cfg, dims=ImageDims(1, 28, 28, 10))
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="attention must be one of"):
        spec.config_cls(attention="sparse")
    with pytest.raises(ValueError, match="position must be one of"):
        ViTConfig(position="rope")
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        ImageDims(1, 28, 28, 1)


@pytest.mark.parametrize(
    "config",
    [ViTConfig(position="sincos"), ViTConfig(stem_channels=16, patch_size=7), ViTConfig(depth=1)],
)
def test_vit_variants(config):
    model = create_model("vit", config, dims=ImageDims(1, 28, 28, 10))
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    tokens = 1 + (28 // config.patch_size) ** 2
    assert model.pos.shape == (1, tokens, config.embed_dim)
    names = {n for n, _ in model.named_parameters()}
    assert ("pos" in names) == (config.position == "learned")


def test_vit_patch_size_must_divide_the_image():
    with pytest.raises(ValueError, match="patch size 5 does not divide the image size 28x28"):
        create_model("vit", ViTConfig(patch_size=5), dims=ImageDims(1, 28, 28, 10))


def test_patch_embedding_tokens_are_row_major_patches():
    embed = PatchEmbedding(1, 2, 2)
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.weight[0, 0, 0, 0] = 1.0  # token channel 0 = top-left pixel of its patch
        embed.proj.bias.zero_()
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert embed(x)[0, :, 0].tolist() == [0.0, 2.0, 8.0, 10.0]


def test_sincos_positions_float64_reference():
    pe = sincos_2d(3, 4, 8)
    assert pe.shape == (12, 8)
    # token (row 2, col 1): first quarter sin(2 w_i), second cos(2 w_i), then the column
    w = 10000.0 ** (-torch.arange(2, dtype=torch.float64) / 2)
    want = torch.cat([(2 * w).sin(), (2 * w).cos(), (1 * w).sin(), (1 * w).cos()]).float()
    assert torch.allclose(pe[2 * 4 + 1], want, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(2, 2, 6)
