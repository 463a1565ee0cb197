"""attnlab as the attention implementation of Hugging Face models equals their SDPA."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from attnlab.integrations import transformers as AT
from attnlab.ops import masks as M

ARCHS = ["bert", "distilbert", "gpt2", "llama", "mistral", "vit"]


def _run(model, impl: str, inputs: dict, **kw):
    model.set_attn_implementation(impl)
    with torch.no_grad():
        return model(**inputs, **kw)


def test_importing_attnlab_does_not_load_transformers():
    code = (
        "import sys, attnlab, attnlab.capture, attnlab.cli.main, "
        "attnlab.integrations.transformers; assert 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("side", ["right", "left"])
def test_outputs_equal_the_models_sdpa(tiny_hf, arch, side):
    model, inputs = tiny_hf(arch)
    inputs = dict(inputs)
    if arch != "vit" and side == "right":
        valid = torch.ones_like(inputs["attention_mask"])
        valid[1, 6:] = 0
        valid[2, 3:] = 0
        inputs["attention_mask"] = valid
    elif arch != "vit":
        valid = torch.ones_like(inputs["attention_mask"])
        valid[1, :5] = 0
        valid[2, :2] = 0
        inputs["attention_mask"] = valid
    ours = _run(model, "attnlab", inputs).last_hidden_state
    ref = _run(model, "sdpa", inputs).last_hidden_state
    assert model.config._attn_implementation == "sdpa"
    assert (ours - ref).abs().max() <= 1e-5
    if arch != "vit":  # without the padding the outputs would differ: the mask matters
        unpadded = _run(model, "attnlab", {"input_ids": inputs["input_ids"]}).last_hidden_state
        assert (unpadded - ref).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("bert", "Padding([9, 5, 8])"),
        ("llama", "(Causal() & Padding([9, 5, 8], side='left'))"),
        ("mistral", "(Window(3, None) & Causal() & Padding([9, 5, 8], side='left'))"),
        ("vit", "None"),
    ],
)
def test_the_attention_sees_the_models_mask_as_a_typed_mask(tiny_hf, arch, expected):
    model, inputs = tiny_hf(arch)
    model.set_attn_implementation("attnlab")
    layer = next(m for m in model.modules() if AT.uses_attention_interface(m))
    seen: list[AT.SeenAttention] = []
    with torch.no_grad(), AT.observe({layer: seen.append}):
        model(**inputs)
    assert len(seen) == 1
    assert repr(seen[0].mask) == expected
    if arch in ("llama", "mistral"):  # grouped-query attention: keys arrive unrepeated
        assert seen[0].key.shape[1] == model.config.num_key_value_heads == 2
        assert seen[0].query.shape[1] == 6


def _mask_args(q, kv, **kw):
    return dict(batch_size=2, q_length=q, kv_length=kv, device="cpu", **kw)


@pytest.mark.parametrize(
    ("fn", "kw", "typed"),
    [
        ("causal_mask_function", {}, ["Causal()"]),
        ("bidirectional_mask_function", {}, []),
        ("causal_mask_function", {"q_offset": 4}, ["Causal()"]),  # one cached decoding step
        ("sliding_window_causal_mask_function(3)", {}, ["Window(2, None)", "Causal()"]),
        ("sliding_window_bidirectional_mask_function(2)", {}, ["Window(2, 2)"]),
        # not recognised: built densely by transformers' own sdpa_mask
        ("chunked_causal_mask_function(2, torch.zeros(2, dtype=torch.long))", {}, ["Custom"]),
    ],
)
@pytest.mark.parametrize("padding", ["none", "right", "left", "holes"])
def test_mask_function_matches_transformers_dense_masks(fn, kw, typed, padding):
    from transformers import masking_utils as mu

    mask_function = eval(f"mu.{fn}", {"mu": mu, "torch": torch})
    q = 1 if kw.get("q_offset") else 5
    kv = 5
    am = torch.ones(2, kv, dtype=torch.bool)
    if padding == "right":
        am[1, 3:] = False
    elif padding == "left":
        am[1, :2] = False
    elif padding == "holes":
        am[1, 1] = False
    ours = AT.attnlab_mask(
        **_mask_args(q, kv, **kw), mask_function=mask_function, attention_mask=am
    )
    ref = mu.sdpa_mask(
        **_mask_args(q, kv, **kw),
        mask_function=mask_function,
        attention_mask=am,
        allow_is_causal_skip=False,
    )
    assert ours.shape == (2, 1, q, kv)
    assert torch.equal(ours.dense(), ref.expand(2, 1, q, kv))
    r = repr(ours.mask)
    assert all(part in r for part in typed)
    if typed == ["Custom"]:
        return
    assert (r == "None") == (padding == "none" and not typed)
    assert ("Padding([5, 3])" in r) == (padding == "right")
    assert ("Padding([5, 3], side='left')" in r) == (padding == "left")
    assert ("Custom(tensor(2, 1, 1, 5))" in r) == (padding == "holes")  # key-wise only


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_output_attentions_come_from_attention_weights(tiny_hf, arch):
    model, inputs = tiny_hf(arch)
    ours = _run(model, "attnlab", inputs, output_attentions=True)
    eager = _run(model, "eager", inputs, output_attentions=True)
    rows = inputs["attention_mask"].bool()[:, None, :, None]  # valid query rows
    for w, ref in zip(ours.attentions, eager.attentions, strict=True):
        assert w.shape == ref.shape
        assert (w - ref).abs().masked_select(rows.expand_as(w)).max() <= 1e-5
    assert _run(model, "attnlab", inputs).attentions is None  # not asked: not computed


def test_training_gradients_equal_sdpa(tiny_hf):
    model, inputs = tiny_hf("llama")
    grads = {}
    for impl in ("attnlab", "sdpa"):
        model.set_attn_implementation(impl)
        model.zero_grad()
        out = model(**inputs).last_hidden_state
        (out * inputs["attention_mask"][..., None]).square().sum().backward()
        grads[impl] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    for a, b in zip(grads["attnlab"], grads["sdpa"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    model.zero_grad()


def test_unsupported_options_are_named():
    q = torch.randn(1, 2, 3, 4)
    layer = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="passes softcap, which attnlab attention does not"):
        AT.attnlab_attention(layer, q, q, q, None, softcap=30.0)
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        AT.register(backend="fast")


def test_minilm_real_weights_equal_sdpa(minilm):
    from attnlab.models.pretrained import load_pretrained

    sdpa, tok = minilm
    ours, _ = load_pretrained("minilm", attn_implementation="attnlab")
    assert ours.config._attn_implementation == "attnlab"
    texts = ["Attention is all you need.", "A much longer second sentence, padded less?", "ok"]
    for side in ("right", "left"):
        tok.padding_side = side
        batch = tok(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            a = ours(**batch).last_hidden_state
            b = sdpa(**batch).last_hidden_state
        assert (a - b).abs().max() <= 1e-5, side
    tok.padding_side = "right"


def test_minilm_classifier_accepts_attnlab():
    from attnlab.models.minilm import MiniLMClassifier, MiniLMConfig

    torch.manual_seed(0)
    ours = MiniLMClassifier(MiniLMConfig(attn_implementation="attnlab"), num_classes=2).eval()
    ref = MiniLMClassifier(MiniLMConfig(), num_classes=2).eval()
    ref.load_state_dict(ours.state_dict())
    assert ours.encoder.config._attn_implementation == "attnlab"
    ids = torch.randint(1000, 2000, (3, 11))
    lengths = torch.tensor([11, 6, 2])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, lengths), ref(ids, lengths), atol=1e-5, rtol=0)


def test_hfmask_looks_like_a_tensor_where_models_look():
    m = AT.HFMask(M.Padding([2, 3]), 2, 4, 3, "cpu")
    assert m.shape == (2, 1, 4, 3) and m.ndim == 4 and m.dtype == torch.bool and m.to("cpu") is m
    assert m[:, :, :, :2].shape == (2, 1, 4, 2)
    assert m.dense()[0, 0, 0].tolist() == [True, True, False]
    assert AT.HFMask(None, 1, 2, 2, "cpu").dense().all()


def test_the_mask_of_one_forward_is_built_once_for_all_layers():
    from transformers import masking_utils as mu

    am = torch.ones(2, 6, dtype=torch.bool)
    am[1, 4:] = False
    hm = AT.attnlab_mask(**_mask_args(6, 6), mask_function=mu.causal_mask_function,
                         attention_mask=am)  # fmt: skip
    first = hm.mask.dense(6, 6, device="cpu")
    assert hm.mask.dense(6, 6, device="cpu") is first  # the next layer reuses it
    assert hm.mask.intervals(6, 6) is hm.mask.intervals(6, 6)
    expected = (M.Causal() & M.Padding([6, 4])).dense(6, 6)
    assert torch.equal(first, expected) and isinstance(hm.mask, M.And)
