"""A physically pruned model computes exactly what the unpruned one computes with the
removed heads' gates at zero: attnlab MultiHeadAttention (MHA, GQA, MQA, cross
attention, RoPE, ALiBi, KV cache) and transformers layouts (BERT, DistilBERT, GPT-2,
LLaMA, ViT); and MultiHeadAttention's head size stays backwards compatible."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.heads import HeadGates, count_parameters, head_layers, keep_heads
from attnlab.layers import KVCache, MultiHeadAttention, TransformerEncoderBlock
from attnlab.layers.position import ALiBi, RotaryEmbedding
from attnlab.ops import masks as M


def _gates(num_heads: list[int], kept: list[list[int]]) -> list[torch.Tensor]:
    out = []
    for n, k in zip(num_heads, kept, strict=True):
        g = torch.zeros(n, dtype=torch.float64)
        g[k] = 1.0
        out.append(g)
    return out


def _check(model: nn.Module, kept: list[list[int]], run, atol=1e-10):
    """Pruned output == gated output (float64), and fewer parameters."""
    model = model.double().eval()
    num_heads = [layer.num_heads for layer in head_layers(model)]
    with torch.no_grad():
        full = run(model)
        with HeadGates(model, _gates(num_heads, kept)):
            gated = run(model)
        before = count_parameters(model)
        keep_heads(model, kept)
        pruned = run(model)
    assert [layer.num_heads for layer in head_layers(model)] == [len(k) for k in kept]
    assert count_parameters(model) < before
    assert not torch.allclose(full, gated)  # the removed heads did matter
    torch.testing.assert_close(pruned, gated, atol=atol, rtol=1e-9)


@pytest.mark.parametrize(
    ("heads", "kv_heads", "kept"),
    [
        (8, None, [0, 3, 7]),  # MHA
        (8, 2, [0, 1, 2, 5]),  # GQA: groups of 3 and 1 left -> uneven groups
        (8, 2, [4, 6]),  # GQA: the first key/value head disappears
        (6, 1, [1, 4]),  # MQA
    ],
)
def test_mha_pruned_equals_gated(heads, kv_heads, kept):
    torch.manual_seed(0)
    mha = MultiHeadAttention(48, heads, num_kv_heads=kv_heads)
    x = torch.randn(3, 7, 48, dtype=torch.float64)
    mask = M.Padding(torch.tensor([7, 4, 1]))
    _check(mha, [kept], lambda m: m(x, mask=mask))
    assert mha.q_proj.out_features == len(kept) * mha.head_dim
    assert mha.out_proj.in_features == len(kept) * mha.head_dim
    assert sum(mha.kv_groups) == len(kept)


def test_mha_cross_attention_rope_and_alibi():
    torch.manual_seed(1)
    cross = MultiHeadAttention(24, 4, kdim=10, vdim=6)
    q, mem = torch.randn(2, 5, 24).double(), torch.randn(2, 9, 10).double()
    v = torch.randn(2, 9, 6).double()
    _check(cross, [[1, 2]], lambda m: m(q, mem, v, mask=M.Padding(torch.tensor([9, 3]))))

    rope = MultiHeadAttention(32, 4, num_kv_heads=2, position=RotaryEmbedding(8))
    x = torch.randn(2, 11, 32).double()
    _check(rope, [[0, 2, 3]], lambda m: m(x, causal=True))

    alibi = MultiHeadAttention(32, 4, position=ALiBi(4))
    _check(alibi, [[1, 3]], lambda m: m(x, causal=True))
    assert alibi.position.num_heads == 2
    torch.testing.assert_close(alibi.position.slopes, ALiBi(4).slopes[[1, 3]])


def test_mha_uneven_groups_decode_with_cache():
    torch.manual_seed(2)
    mha = MultiHeadAttention(32, 8, num_kv_heads=2).double().eval().keep_heads([0, 1, 2, 6])
    assert mha.kv_groups == (3, 1)
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    with torch.no_grad():
        full = mha(x, causal=True)
        cache = KVCache()
        steps = [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(9)]
    torch.testing.assert_close(torch.cat(steps, 1), full)


def test_mha_pruning_twice_and_gradients():
    torch.manual_seed(3)
    mha = MultiHeadAttention(32, 8).keep_heads([0, 2, 4, 6]).keep_heads([1, 3])
    assert mha.num_heads == 2 and mha.q_proj.weight.shape == (8, 32)
    x = torch.randn(2, 5, 32, requires_grad=True)
    mha(x).sum().backward()
    assert x.grad is not None and mha.q_proj.weight.grad.shape == (8, 32)


def test_mha_head_dim_is_backwards_compatible():
    old = MultiHeadAttention(32, 4, num_kv_heads=2)
    assert old.head_dim == 8 and old.kv_groups == (2, 2)
    assert {k: tuple(v.shape) for k, v in old.state_dict().items()} == {
        "q_proj.weight": (32, 32),
        "q_proj.bias": (32,),
        "k_proj.weight": (16, 32),
        "k_proj.bias": (16,),
        "v_proj.weight": (16, 32),
        "v_proj.bias": (16,),
        "out_proj.weight": (32, 32),
        "out_proj.bias": (32,),
    }
    wide = MultiHeadAttention(30, 4, head_dim=16)  # E not divisible by H: fine with head_dim
    assert wide.q_proj.weight.shape == (64, 30) and wide.out_proj.weight.shape == (30, 64)
    assert wide(torch.randn(2, 3, 30)).shape == (2, 3, 30)
    grouped = MultiHeadAttention(32, 5, head_dim=8, kv_groups=[3, 2])
    assert grouped.num_kv_heads == 2 and grouped(torch.randn(1, 4, 32)).shape == (1, 4, 32)
    assert "kv_groups=(3, 2)" in repr(grouped)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kv_groups": [3, 2]}, r"kv_groups \[3, 2\] must sum to num_heads 4"),
        ({"kv_groups": [2, 2], "num_kv_heads": 4}, "num_kv_heads 4 differs from the 2 kv_groups"),
        ({"kv_groups": [4, 0]}, "kv_groups entry must be a positive int, got 0"),
        ({"head_dim": 0}, "head_dim must be a positive int, got 0"),
    ],
)
def test_mha_bad_head_layout(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(32, 4, **kwargs)


def test_mha_keep_heads_refuses_bad_input():
    mha = MultiHeadAttention(32, 4)
    with pytest.raises(ValueError, match=r"heads \[4\] out of range for a layer with 4 heads"):
        mha.keep_heads([0, 4])
    with pytest.raises(ValueError, match="keeping none of its 4 heads would remove the attention"):
        mha.keep_heads([])
    with pytest.raises(ValueError, match="name a head twice"):
        mha.keep_heads([1, 1])
    with pytest.raises(TypeError, match="heads must be ints"):
        mha.keep_heads([0.5])
    assert mha.num_heads == 4  # nothing changed


def test_encoder_stack_pruned_equals_gated():
    torch.manual_seed(4)
    model = nn.Sequential(TransformerEncoderBlock(32, 4), TransformerEncoderBlock(32, 4))
    x = torch.randn(2, 6, 32).double()
    _check(model, [[0, 1, 3], [2]], lambda m: m(x))


# -- transformers ---------------------------------------------------------------------------


def _bert():
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=50,
        hidden_size=36,
        num_hidden_layers=2,
        num_attention_heads=6,
        intermediate_size=37,
        max_position_embeddings=32,
    )
    cfg._attn_implementation = "sdpa"
    return BertModel(cfg)


def _ids(b=3, t=9, vocab=50):
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(1, vocab, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    return ids, mask


def test_bert_pruned_equals_gated():
    torch.manual_seed(6)
    model = _bert()
    ids, mask = _ids()
    layers = head_layers(model)
    assert [(x.name, x.kind, x.num_heads) for x in layers] == [
        ("encoder.layer.0.attention.self", "bert", 6),
        ("encoder.layer.1.attention.self", "bert", 6),
    ]

    def run(m):
        h = m(input_ids=ids, attention_mask=mask).last_hidden_state
        return h * mask[..., None]  # padding positions are not compared

    _check(model, [[0, 2, 5], [4]], run)
    att = model.encoder.layer[1].attention
    assert att.self.num_attention_heads == 1 and att.self.all_head_size == 6
    assert att.self.query.weight.shape == (6, 36) and att.output.dense.weight.shape == (36, 6)


def test_distilbert_gpt2_pruned_equal_gated():
    from transformers import DistilBertConfig, DistilBertModel, GPT2Config, GPT2Model

    torch.manual_seed(7)
    ids, mask = _ids()
    distil = DistilBertModel(
        DistilBertConfig(vocab_size=50, dim=24, n_layers=2, n_heads=4, hidden_dim=30)
    )
    assert [x.kind for x in head_layers(distil)] == ["distilbert", "distilbert"]
    _check(
        distil,
        [[1, 3], [0, 1, 2]],
        lambda m: m(input_ids=ids, attention_mask=mask).last_hidden_state * mask[..., None],
    )
    gpt2 = GPT2Model(GPT2Config(vocab_size=50, n_embd=24, n_layer=2, n_head=4, n_positions=16))
    assert [x.kind for x in head_layers(gpt2)] == ["gpt2", "gpt2"]
    _check(gpt2, [[0], [1, 2, 3]], lambda m: m(input_ids=ids).last_hidden_state)
    assert gpt2.h[0].attn.split_size == 6 and gpt2.h[0].attn.c_attn.weight.shape == (24, 18)


def _llama(kv_heads: int):
    from transformers import LlamaConfig, LlamaModel

    cfg = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=32,
    )
    cfg._attn_implementation = "sdpa"
    return LlamaModel(cfg)


def test_llama_and_vit_pruned_equal_gated():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(8)
    ids, _ = _ids()
    _check(_llama(4), [[0, 3], [1]], lambda m: m(input_ids=ids).last_hidden_state)
    gqa = _llama(2)  # heads 0,1 share key/value head 0; heads 2,3 share 1
    _check(gqa, [[0, 2], [2, 3]], lambda m: m(input_ids=ids).last_hidden_state)
    assert gqa.layers[0].self_attn.num_key_value_groups == 1
    assert gqa.layers[1].self_attn.k_proj.out_features == 8  # one key/value head left

    vit = ViTModel(
        ViTConfig(
            hidden_size=24,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=30,
            image_size=16,
            patch_size=8,
        ),
        add_pooling_layer=False,
    )
    pixels = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    assert [x.kind for x in head_layers(vit)] == ["qkvo", "qkvo"]
    _check(vit, [[2], [0, 1, 3]], lambda m: m(pixel_values=pixels).last_hidden_state)


def test_llama_uneven_groups_are_refused():
    model = _llama(2)
    with pytest.raises(ValueError, match=r"key/value groups .* of different sizes"):
        keep_heads(model, [[0, 1, 2], None])


def test_keep_heads_refuses_bad_input():
    model = _bert()
    with pytest.raises(ValueError, match=r"heads \[6, 7\] out of range for a layer with 6 heads"):
        keep_heads(model, [[0, 6, 7], None])
    with pytest.raises(ValueError, match="keeping none of its 6 heads would remove the attention"):
        keep_heads(model, [[], None])
    with pytest.raises(ValueError, match="kept heads given for 1 layers, the model has 2"):
        keep_heads(model, [[0]])
    with pytest.raises(ValueError, match="has no attention layer whose heads can be pruned"):
        keep_heads(nn.LSTM(4, 4), [[0]])
    assert [x.num_heads for x in head_layers(model)] == [6, 6]
