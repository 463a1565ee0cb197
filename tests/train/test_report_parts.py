"""Report helpers: token shading and example choice."""

from __future__ import annotations

import re

from attnlab.viz.report import pick_examples, render_tokens


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
