"""Report helpers: token shading and example choice."""

from __future__ import annotations

import re

from attnlab.tasks.sections import pick_examples
from attnlab.viz.report import render_tokens


def test_render_tokens_shades_by_relative_weight_and_escapes():
    html = render_tokens(["a", "<b>", "##ed", "[CLS]"], [0.1, 0.4, 0.2, 0.0])
    alphas = [float(a) for a in re.findall(r"rgba\(255,140,0,([\d.]+)\)", html)]
    assert alphas == [0.25, 1.0, 0.5, 0.0]
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "</span><span" in html  # '##ed' joins its word without a space
    assert 'class="tok special"' in html


def test_chinese_characters_are_not_spaced():
    html = render_tokens(["很", "好"], [0.5, 0.5])
    assert "</span><span" in html


def test_pick_examples_mixes_right_and_wrong():
    labels = [0, 1] * 50
    preds = [0] * 100  # half wrong
    idx = pick_examples(labels, preds, n=20, seed=3)
    assert len(idx) == 20 and idx == sorted(idx)
    assert sum(labels[i] != preds[i] for i in idx) == 10
    assert idx == pick_examples(labels, preds, n=20, seed=3)
    assert len(pick_examples([0, 1], [0, 1], n=20)) == 2


def test_render_text_shades_the_original_characters_in_place():
    from attnlab.viz.report import render_text

    text = "Satur<ation> is GOOD"
    # tokens as a lower-casing subword tokenizer gives them, with character offsets
    offsets = [(0, 5), (5, 6), (6, 11), (11, 12), (13, 15), (16, 20)]
    tokens = ["satur", "<", "##ation", ">", "is", "good"]
    weights = [0.1, 0.05, 0.4, 0.05, 0.1, 0.3]
    html = render_text(text, offsets, tokens, weights)
    assert re.sub(r"<[^>]+>", "", html) == "Satur&lt;ation&gt; is GOOD"  # the text as written
    spans = re.findall(r'rgba\(255,140,0,([\d.]+)\)" title="([^"]+)">([^<]*)<', html)
    assert [(float(a), t, s) for a, t, s in spans] == [
        (0.25, "satur 0.100", "Satur"),
        (0.12, "&lt; 0.050", "&lt;"),
        (1.0, "##ation 0.400", "ation"),
        (0.12, "&gt; 0.050", "&gt;"),
        (0.25, "is 0.100", "is"),
        (0.75, "good 0.300", "GOOD"),
    ]


def test_render_text_greys_a_tail_past_the_limit():
    from attnlab.viz.report import render_text

    html = render_text("good film but long", [(0, 4), (5, 9)], ["good", "film"], [0.5, 0.5])
    assert '<span class="cut" title="not read: past the length limit"> but long</span>' in html
    assert html.count('class="tok"') == 2


def test_data_checksum_follows_lines_and_order():
    from attnlab.tasks.sections import data_checksum

    a = data_checksum(["pos\tgood", "neg\tbad"])
    assert len(a) == 64 and a == data_checksum(["pos\tgood", "neg\tbad"])
    assert a != data_checksum(["neg\tbad", "pos\tgood"])
    assert a != data_checksum(["pos\tgood", "pos\tbad"])


def test_curves_have_whole_epoch_ticks_and_mark_the_kept_epoch(tmp_path):
    from attnlab.viz.report import _curves

    history = [
        {"epoch": e, "train_loss": 0.7 - 0.1 * e, "val_loss": 0.68 - 0.05 * e,
         "train_acc": 0.6 + 0.05 * e, "val_acc": 0.62 + 0.03 * e}
        for e in range(3)
    ]  # fmt: skip
    uri = _curves(history, tmp_path, kept=2)
    assert uri.startswith("data:image/png;base64,")
    texts = re.findall(r"<!-- (.*?) -->", (tmp_path / "curves.svg").read_text(encoding="utf-8"))
    assert "kept: epoch 2" in texts
    assert {"1", "2", "3"} <= set(texts) and not {"1.5", "2.5", "0.5"} & set(texts)
