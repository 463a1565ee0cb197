"""Capture from Hugging Face models equals their own eager ``output_attentions``, through
attnlab's attention function, through any other implementation, and through hooks."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from attnlab.capture import CaptureWarning, attention_modules, capture

ARCHS = ["bert", "distilbert", "gpt2", "llama", "mistral", "vit"]


def _valid(inputs: dict, b: int) -> torch.Tensor | None:
    am = inputs.get("attention_mask")
    return None if am is None else am[b].bool()


def _assert_equals_eager(rec, eager, inputs, heads=None):
    batch = next(iter(inputs.values())).shape[0]
    assert len(rec) == len(eager)
    for b in range(batch):
        keep = _valid(inputs, b)
        for w, ref in zip(rec.example(b), eager, strict=True):
            ref = ref[b] if heads is None else ref[b][heads]
            if keep is not None:
                ref = ref[:, keep][:, :, keep]  # (H, T_b, T_b)
            assert w.shape == ref.shape
            assert (w - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("impl", ["attnlab", "sdpa"])
@pytest.mark.parametrize("arch", ARCHS)
def test_capture_equals_eager_and_leaves_outputs_alone(tiny_hf, arch, impl):
    model, inputs = tiny_hf(arch)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        eager = model(**inputs, output_attentions=True).attentions
    model.set_attn_implementation(impl)
    with torch.no_grad():
        plain = model(**inputs).last_hidden_state
        with capture(model) as rec:
            out = model(**inputs).last_hidden_state
    assert torch.equal(out, plain)
    assert set(rec.roles) == {"self"} and len(rec) == 2
    assert [k for _, _, k in attention_modules(model)] == ["hf", "hf"]
    _assert_equals_eager(rec, eager, inputs)


def test_minilm_on_attnlab_is_recorded_without_switching_to_eager(minilm_eager, monkeypatch):
    from transformers.models.bert import modeling_bert

    from attnlab.models.pretrained import load_pretrained

    model, tok = load_pretrained("minilm", attn_implementation="attnlab")
    batch = tok(["Attention is all you need.", "A second, longer sentence here."],
                padding=True, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        eager = minilm_eager(**batch, output_attentions=True).attentions

    def refuse(*args, **kwargs):
        raise AssertionError("the eager attention ran")

    monkeypatch.setattr(modeling_bert, "eager_attention_forward", refuse)
    with torch.no_grad():
        plain = model(**batch).last_hidden_state
        with capture(model, tokenizer=tok) as rec:
            out = model(**batch).last_hidden_state
    assert model.config._attn_implementation == "attnlab"
    assert torch.equal(out, plain)
    assert rec.names[0] == "encoder.layer.0.attention.self" and len(rec) == 6
    assert rec.tokens[0][0] == "[CLS]"
    _assert_equals_eager(rec, eager, dict(batch))


def test_heads_and_layers_with_grouped_query_attention(tiny_hf):
    model, inputs = tiny_hf("llama")
    model.set_attn_implementation("eager")
    with torch.no_grad():
        eager = model(**inputs, output_attentions=True).attentions
    model.set_attn_implementation("attnlab")
    with torch.no_grad(), capture(model, layers=[-1], heads=[0, 5]) as rec:
        model(**inputs)
    assert rec.names == ["layers.1.self_attn"] and rec.heads == [[0, 5]]
    _assert_equals_eager(rec, eager[-1:], inputs, heads=[0, 5])


def test_one_cached_decoding_step(tiny_hf):
    # Tq = 1 query over Tk = 10 cached keys: the query is the last key position
    model, inputs = tiny_hf("gpt2")
    ids, am = inputs["input_ids"], inputs["attention_mask"]
    step = torch.randint(1, 99, (3, 1))
    am_step = torch.cat([am, torch.ones(3, 1, dtype=am.dtype)], 1)
    results = {}
    for impl in ("eager", "attnlab"):
        model.set_attn_implementation(impl)
        with torch.no_grad():
            past = model(input_ids=ids, attention_mask=am, use_cache=True).past_key_values
            if impl == "eager":
                results[impl] = model(input_ids=step, attention_mask=am_step, cache=past,
                                      output_attentions=True).attentions  # fmt: skip
            else:
                with capture(model) as rec:
                    model(input_ids=step, attention_mask=am_step, cache=past)
    assert rec.weights[0].shape == (3, 4, 1, 10)
    assert rec.query_valid[0].all() and rec.key_valid[0][1].tolist() == [False] * 4 + [True] * 6
    keys = am_step.bool()[:, None, None, :]  # (B, 1, 1, Tk)
    for w, ref in zip(rec.weights, results["eager"], strict=True):
        assert (w - ref).abs().masked_select(keys.expand_as(w)).max() <= 1e-5


def test_modules_without_the_attention_interface_are_hooked():
    # MegatronBERT computes its attention itself, so it cannot switch implementation
    import transformers as T

    torch.manual_seed(0)
    cfg = T.MegatronBertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=48)  # fmt: skip
    model = T.MegatronBertModel(cfg, add_pooling_layer=False).eval()
    ids = torch.randint(1, 99, (2, 7))
    am = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=am, output_attentions=True).attentions
        with capture(model) as rec:
            model(input_ids=ids, attention_mask=am)
    assert [k for _, _, k in attention_modules(model)] == ["hf-hooks", "hf-hooks"]
    _assert_equals_eager(rec, eager, {"attention_mask": am})


def _squeezebert():
    import transformers as T

    cfg = T.SqueezeBertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=4, intermediate_size=32, embedding_size=32)  # fmt: skip
    return T.SqueezeBertModel(cfg).eval()


def test_an_unknown_architecture_is_named_in_the_error():
    with pytest.raises(ValueError) as err:
        capture(_squeezebert())
    msg = str(err.value)
    assert "SqueezeBertModel has no attention module that capture can record" in msg
    assert "ALL_ATTENTION_FUNCTIONS" in msg and "nn.MultiheadAttention" in msg
    assert "encoder.layers.0.attention (SqueezeBertSelfAttention)" in msg


def test_a_model_with_unrecordable_attention_warns_once_naming_it(tiny_hf):
    bert, inputs = tiny_hf("bert")
    both = nn.ModuleDict({"bert": bert, "squeeze": _squeezebert()})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cap = capture(both)
    ours = [w for w in caught if issubclass(w.category, CaptureWarning)]
    assert len(ours) == 1
    assert "squeeze.encoder.layers.0.attention (SqueezeBertSelfAttention)" in str(ours[0].message)
    bert.set_attn_implementation("sdpa")
    with torch.no_grad(), cap as rec:
        both["bert"](**inputs)
    assert len(rec) == 2


def test_attention_that_bypasses_the_interface_is_reported(tiny_hf):
    # GPT-2's eager "reorder and upcast" path computes attention without the interface
    model, inputs = tiny_hf("gpt2")
    model.set_attn_implementation("eager")
    for block in model.h:
        block.attn.reorder_and_upcast_attn = True
    try:
        silent = r"nothing was recorded for them: h\.0\.attn, h\.1\.attn"
        with torch.no_grad(), pytest.warns(CaptureWarning, match=silent), capture(model) as rec:
            model(**inputs)
    finally:
        for block in model.h:
            block.attn.reorder_and_upcast_attn = False
    assert len(rec) == 0


def test_interface_is_restored_after_capture(tiny_hf):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    model, inputs = tiny_hf("bert")
    model.set_attn_implementation("sdpa")
    with torch.no_grad(), capture(model) as outer:
        assert "get_interface" in ALL_ATTENTION_FUNCTIONS.__dict__
        with capture(model, layers=[0]) as inner:  # captures nest
            model(**inputs)
        model(**inputs)
    assert len(outer) == 4 and len(inner) == 1
    torch.testing.assert_close(inner.weights[0], outer.weights[0], atol=0, rtol=0)
    assert "get_interface" not in ALL_ATTENTION_FUNCTIONS.__dict__
    with pytest.raises(RuntimeError, match="boom"), capture(model):
        raise RuntimeError("boom")
    assert "get_interface" not in ALL_ATTENTION_FUNCTIONS.__dict__
