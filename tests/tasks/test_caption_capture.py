"""With ``attnlab.capture`` (roles set where attention is recorded), a caption model's
cross-attention is recorded with role ``cross`` and equals what the caption task reads."""

from __future__ import annotations

import pytest
import torch

from attnlab.models import create_model
from attnlab.models.captioning import CaptionDims, CNNGRUAttnConfig, ViTTransformerConfig
from attnlab.tasks.caption_eval import cross_attention

capture = pytest.importorskip("attnlab.capture", reason="attnlab.capture (roles) not in this tree")

DIMS = CaptionDims(1, 16, 48, 13, 4)
CONFIGS = {
    "cnn-gru-attn": CNNGRUAttnConfig(widths=(4, 8, 8), feature_dim=16),
    "vit-transformer": ViTTransformerConfig(
        patch_size=4, stem_channels=0, embed_dim=16, num_heads=2
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cross_attention_is_recorded_with_role_cross(name):
    model = create_model(name, CONFIGS[name], dims=DIMS).eval()
    x, tgt = torch.rand(2, 1, 16, 48), torch.tensor([[1, 5, 6], [1, 7, 0]])
    with torch.no_grad(), capture.capture(model) as rec:
        model(x, tgt)
    cross = rec.by_role("cross").weights
    if name == "cnn-gru-attn":  # one call per decoder step, (B, 1, 1, N) each
        assert rec.roles == ["cross"] * 3
        got = torch.cat(cross, 2)[:, None]  # (B, 1, 1, T, N)
    else:  # encoder self, then per decoder block self and cross
        assert rec.roles == ["self", "self", "self", "cross", "self", "cross"]
        got = torch.stack(cross, 1)  # (B, L, H, T, N)
    torch.testing.assert_close(got, cross_attention(model, x, tgt))
