"""RoPE, ALiBi and the KV cache: cached decoding must equal the uncached forward."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.layers import (
    ALiBi,
    KVCache,
    MultiHeadAttention,
    RotaryEmbedding,
    TransformerDecoderBlock,
    alibi_slopes,
)
from attnlab.ops import masks as M


def err(a, b):
    return (a.double() - b.double()).abs().max().item()


def make(position, num_kv_heads=None):
    if position == "rope":
        pos = RotaryEmbedding(8)
    elif position == "alibi":
        pos = ALiBi(4)
    else:
        pos = None
    return MultiHeadAttention(32, 4, num_kv_heads=num_kv_heads, position=pos).eval()


@pytest.mark.parametrize("position", ["none", "rope", "alibi"])
@pytest.mark.parametrize("t", [1, 7, 17])
@pytest.mark.parametrize("max_len", [None, 17])
def test_token_by_token_equals_full_forward(position, t, max_len):
    mha = make(position, num_kv_heads=2)
    x = torch.randn(2, t, 32)
    with torch.no_grad():
        full = mha(x, causal=True)
        cache = KVCache(max_len=max_len)
        steps = [mha(x[:, i : i + 1], causal=True, cache=cache) for i in range(t)]
    assert len(cache) == t
    assert err(torch.cat(steps, 1), full) < 1e-5


@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_prefill_then_chunks_with_padding_and_window(position):
    mha = make(position)
    x = torch.randn(2, 17, 32)
    lengths = torch.tensor([17, 12])  # key padding stays fixed as the cache grows
    full = mha(x, causal=True, window=(5, 0))
    cache = KVCache()
    parts = [mha(x[:, :6], causal=True, window=(5, 0), cache=cache)]
    parts += [mha(x[:, 6:7], causal=True, window=(5, 0), cache=cache)]
    parts += [mha(x[:, 7:], causal=True, window=(5, 0), cache=cache)]
    assert err(torch.cat(parts, 1), full) < 1e-5
    # bool padding mask over all Tk keys seen by the last chunk
    pad = (torch.arange(17)[None] < lengths[:, None])[:, None, None]  # (B, 1, 1, Tk)
    full = mha(x, mask=pad, causal=True)
    cache = KVCache()
    mha(x[:, :16], mask=pad[..., :16], causal=True, cache=cache)
    last = mha(x[:, 16:], mask=pad, causal=True, cache=cache)
    assert err(last, full[:, 16:]) < 1e-5


def test_cache_keeps_gradients_when_growing():
    mha = make("rope")
    x = torch.randn(1, 4, 32, requires_grad=True)
    cache = KVCache()
    out = torch.cat([mha(x[:, i : i + 1], causal=True, cache=cache) for i in range(4)], 1)
    g_cached = torch.autograd.grad(out.sum(), x)[0]
    g_full = torch.autograd.grad(mha(x, causal=True).sum(), x)[0]
    assert err(g_cached, g_full) < 1e-5


def test_decoder_block_cache_equals_uncached():
    block = TransformerDecoderBlock(32, 4, num_kv_heads=2, position=RotaryEmbedding(8)).eval()
    y, memory = torch.randn(2, 7, 32), torch.randn(2, 11, 32)
    mem_mask = M.Padding(torch.tensor([11, 5]))
    with torch.no_grad():
        full = block(y, memory, memory_mask=mem_mask)
        cache = KVCache(max_len=7)
        steps = [
            block(y[:, i : i + 1], memory, memory_mask=mem_mask, cache=cache) for i in range(7)
        ]
    assert err(torch.cat(steps, 1), full) < 1e-5


def rope_complex(x, positions, base=10000.0):
    """RoPE as a complex rotation of the pairs (x[i], x[i + D/2]) (RoFormer, Sec. 3.4.2)."""
    d = x.shape[-1]
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double())
    freqs = base ** (-torch.arange(d // 2, dtype=torch.float64) * 2 / d)
    z = z * torch.polar(torch.ones((), dtype=torch.float64), positions.double()[:, None] * freqs)
    return torch.cat([z.real, z.imag], -1)


def test_rope_matches_complex_rotation_and_is_relative():
    rope = RotaryEmbedding(16)
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    assert err(rope(x, offset=7), rope_complex(x, torch.arange(7, 12))) < 1e-12
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    dots = [(rope(q, offset=m) * rope(k, offset=m - 3)).sum() for m in (3, 10, 500)]
    assert max(dots) - min(dots) < 1e-4  # depends only on m - n
    assert torch.allclose(rope(q, offset=0), q)  # position 0 is the identity
    partial = RotaryEmbedding(16, rotary_dim=8)
    y = partial(x, offset=2)
    assert torch.equal(y[..., 8:], x[..., 8:])
    assert err(y[..., :8], rope_complex(x[..., :8], torch.arange(2, 7))) < 1e-12


def test_alibi_slopes_and_bias():
    assert torch.allclose(alibi_slopes(8), 2.0 ** -torch.arange(1, 9, dtype=torch.float64))
    # non-power of two (paper's code): the 4-head slopes then every other 8-head slope
    expected6 = [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    assert torch.allclose(alibi_slopes(6), torch.tensor(expected6, dtype=torch.float64))
    alibi = ALiBi(4)
    bias = alibi.bias(3, 5, dtype=torch.float64)
    m = alibi_slopes(4)
    for h in range(4):
        for i in range(3):
            for j in range(5):
                assert bias[0, h, i, j] == -m[h] * abs(i + 2 - j)
    assert err(alibi.bias(1, 17)[..., 0, :], alibi.bias(17, 17)[..., -1, :]) == 0


def test_alibi_equals_explicit_float_bias_with_masks():
    mha = make("alibi")
    plain = make("none")
    plain.load_state_dict(mha.state_dict())
    x = torch.randn(2, 9, 32)
    lengths = torch.tensor([9, 4])
    pad = (torch.arange(9)[None] < lengths[:, None])[:, None, None]  # (B, 1, 1, T)
    bias = ALiBi(4).bias(9, 9).masked_fill(~pad, float("-inf"))
    assert err(mha(x, mask=M.Padding(lengths)), plain(x, mask=bias)) < 1e-5
    assert err(mha(x, mask=pad, causal=True), plain(x, mask=bias, causal=True)) < 1e-5
    assert err(mha(x), plain(x, mask=ALiBi(4).bias(9, 9))) < 1e-5
    # slopes actually matter: without the bias the output changes
    assert err(mha(x), plain(x)) > 1e-3


def test_errors_name_the_values():
    with pytest.raises(
        ValueError, match="RotaryEmbedding head_dim 16 differs from the attention head dim 8"
    ):
        MultiHeadAttention(32, 4, position=RotaryEmbedding(16))
    with pytest.raises(ValueError, match="ALiBi has 8 heads but the attention has 4"):
        MultiHeadAttention(32, 4, position=ALiBi(8))
    with pytest.raises(ValueError, match="rotary_dim must be a positive even int, got 3"):
        RotaryEmbedding(8, rotary_dim=3)
    with pytest.raises(TypeError, match="position must be a RotaryEmbedding, an ALiBi or None"):
        MultiHeadAttention(32, 4, position=torch.nn.Identity())
    cache = KVCache(max_len=2)
    cache.update(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match="KVCache is full: 2 stored \\+ 1 new > max_len=2"):
        cache.update(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
    cache = KVCache()
    cache.update(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"holds \(B, Hkv, D\) = \(1, 2, 4\)"):
        cache.update(torch.zeros(3, 2, 1, 4), torch.zeros(3, 2, 1, 4))
    mha = MultiHeadAttention(32, 4)
    with pytest.raises(ValueError, match="cache is for self attention"):
        mha(torch.randn(1, 1, 32), torch.randn(1, 5, 32), cache=KVCache())
    with pytest.raises(ValueError, match="max_len must be a positive int or None, got 0"):
        KVCache(max_len=0)
    assert math.isclose(float(alibi_slopes(1)[0]), 2**-8)
