"""Projecting a fixed memory once: MultiHeadAttention.project_kv / forward(kv=...), the
decoder block's memory_kv, AdditiveAttention/LuongAttention.project_keys, KVCache.reorder
and sinusoidal positions."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.layers import (
    AdditiveAttention,
    KVCache,
    LuongAttention,
    MultiHeadAttention,
    RotaryEmbedding,
    TransformerDecoderBlock,
    sinusoidal_positions,
)
from attnlab.ops import masks as M


@pytest.mark.parametrize("num_kv_heads", [None, 2, 1])
@pytest.mark.parametrize("tq", [1, 7])
def test_project_kv_equals_plain_cross_attention(num_kv_heads, tq):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, num_kv_heads=num_kv_heads, kdim=24, vdim=24).double().eval()
    q, mem = torch.randn(3, tq, 32).double(), torch.randn(3, 13, 24).double()
    mask = M.Padding(torch.tensor([13, 5, 1]))
    kv = mha.project_kv(mem)
    assert kv[0].shape == (3, num_kv_heads or 4, 13, 8)
    torch.testing.assert_close(mha(q, kv=kv, mask=mask), mha(q, mem, mask=mask))
    # Gradients reach the projections through the precomputed keys/values too.
    mha(q, kv=mha.project_kv(mem), mask=mask).sum().backward()
    assert mha.k_proj.weight.grad is not None and mha.v_proj.weight.grad.abs().sum() > 0


def test_project_kv_errors():
    mha = MultiHeadAttention(16, 4)
    q, mem = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    kv = mha.project_kv(mem)
    with pytest.raises(ValueError, match="kv replaces key, value and cache"):
        mha(q, mem, kv=kv)
    with pytest.raises(ValueError, match=r"kv keys must be \(B, Hkv, Tk, D\) = \(1, 4, Tk, 4\)"):
        mha(q[:1], kv=kv)
    with pytest.raises(TypeError, match="pair returned by project_kv"):
        mha(q, kv=[kv[0]])
    rope = MultiHeadAttention(16, 4, position=RotaryEmbedding(4))
    with pytest.raises(ValueError, match="without positions"):
        rope.project_kv(mem)


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_memory_kv_with_cache_equals_full_forward(norm_first):
    torch.manual_seed(1)
    block = TransformerDecoderBlock(32, 4, norm_first=norm_first).eval()
    y, mem = torch.randn(2, 6, 32), torch.randn(2, 11, 32)
    memory_mask = M.Padding(torch.tensor([11, 4]))
    full = block(y, mem, memory_mask=memory_mask)
    kv = block.cross_attn.project_kv(mem)
    cache = KVCache()
    steps = [
        block(y[:, t : t + 1], None, memory_mask=memory_mask, cache=cache, memory_kv=kv)
        for t in range(6)
    ]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="exactly one of memory and memory_kv"):
        block(y, mem, memory_kv=kv)
    with pytest.raises(ValueError, match="exactly one of memory and memory_kv"):
        block(y, None)


def test_kv_cache_reorder_follows_the_indices():
    cache = KVCache()
    k = torch.arange(3.0)[:, None, None, None].expand(3, 2, 4, 5).clone()
    cache.update(k, k + 10)
    cache.reorder(torch.tensor([2, 2, 0, 1]))
    assert cache.keys[:, 0, 0, 0].tolist() == [2, 2, 0, 1]
    assert cache.values[:, 0, 0, 0].tolist() == [12, 12, 10, 11]
    keys, _ = cache.update(torch.zeros(4, 2, 1, 5), torch.zeros(4, 2, 1, 5))
    assert keys.shape == (4, 2, 5, 5) and len(cache) == 5
    # The preallocated mode reorders its buffer and keeps appending in place.
    fixed = KVCache(max_len=6)
    fixed.update(k, k)
    fixed.reorder(torch.tensor([1]))
    assert fixed.update(torch.ones(1, 2, 2, 5), torch.ones(1, 2, 2, 5))[0].shape == (1, 2, 6, 5)
    with pytest.raises(ValueError, match="out of range for batch size 1"):
        fixed.reorder(torch.tensor([1]))
    with pytest.raises(ValueError, match="1-D integer tensor"):
        fixed.reorder(torch.tensor([[0]]))
    KVCache().reorder(torch.tensor([0, 0]))  # an empty cache has nothing to reorder


@pytest.mark.parametrize(
    "layer",
    [
        lambda: AdditiveAttention(8, 6, hidden_dim=10),
        lambda: LuongAttention(8, 6, score="general"),
        lambda: LuongAttention(8, 6, score="concat", hidden_dim=5),
        lambda: LuongAttention(6, score="dot"),
    ],
)
def test_projected_keys_equal_projecting_every_call(layer):
    torch.manual_seed(2)
    attn = layer().double()
    dq = attn.query_dim
    q, keys = torch.randn(3, 4, dq).double(), torch.randn(3, 9, attn.key_dim).double()
    lengths = torch.tensor([9, 3, 1])
    pk = attn.project_keys(keys)
    c1, w1 = attn(q, keys, lengths=lengths, projected_keys=pk)
    c2, w2 = attn(q, keys, lengths=lengths)
    torch.testing.assert_close(c1, c2)
    torch.testing.assert_close(w1, w2)
    with pytest.raises(ValueError, match="projected_keys must be"):
        attn(q, keys, lengths=lengths, projected_keys=pk[:, :3])


def test_sinusoidal_positions():
    pe = sinusoidal_positions(40, 8)
    assert pe.shape == (40, 8) and pe.dtype == torch.float32
    p, i = 7, 1
    assert math.isclose(float(pe[p, 2 * i]), math.sin(p / 10000 ** (2 * i / 8)), abs_tol=1e-6)
    assert math.isclose(float(pe[p, 2 * i + 1]), math.cos(p / 10000 ** (2 * i / 8)), abs_tol=1e-6)
    with pytest.raises(ValueError, match="even dim"):
        sinusoidal_positions(4, 7)
