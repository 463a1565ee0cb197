"""How a captioning run's metrics read on the command line and in its report (see
:mod:`attnlab.tasks.sections`)."""

from __future__ import annotations

from typing import Any

__all__ = ["caption_report_sections", "format_caption_metrics", "pointing_rows"]


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2%}"


def pointing_rows(m: dict[str, Any]) -> list[list[str]]:
    """``[map, pointing]`` rows: the main map, rollout, then every layer's head mean, best
    head and heads."""
    if m.get("pointing") is None:
        return []
    rows = [["heads and layers averaged", _pct(m["pointing"])]]
    if m.get("pointing_rollout") is not None:
        rows.append(["rollout through the encoder", _pct(m["pointing_rollout"])])
    layers = m.get("pointing_by_layer", [])
    for x in layers if len(layers) > 1 or len(layers[0]["heads"]) > 1 else []:
        rows.append([f"layer {x['layer']}, head mean", _pct(x["mean"])])
        rows.append([f"layer {x['layer']}, best head ({x['best_head']})", _pct(x["best"])])
        heads = ", ".join(f"{h}: {_pct(v)}" for h, v in enumerate(x["heads"]))
        rows.append([f"layer {x['layer']}, each head", heads])
    return rows


def format_caption_metrics(m: dict[str, Any]) -> str:
    """``evaluate``'s metrics as lines for ``attnlab eval``."""
    lines = [
        f"decoding: {m['decoding']}, {m['n']} canvases",
        f"exact match: {m['exact_match']:.2%}",
        f"per-word accuracy: {m['word_accuracy']:.2%}",
        "by number of objects:",
        "  objects  canvases  exact match  per word",
    ]
    for k, v in m["by_objects"].items():
        lines.append(
            f"  {k:>7}  {v['n']:>8}  {v['exact_match']:>11.2%}  {v['word_accuracy']:>8.2%}"
        )
    if m.get("pointing") is None:
        lines.append("pointing: n/a (the model has no attention)")
    else:
        lines.append(
            f"pointing accuracy: {m['pointing']:.2%} of {m['pointing_words']} correctly "
            f"generated words (box grown by {m['pointing_tolerance']:g} px)"
        )
        for name, value in pointing_rows(m)[1:]:
            lines.append(f"  {name}: {value}")
    return "\n".join(lines)


def caption_report_sections(run, split, metrics: dict[str, Any], *, n_examples: int = 20) -> list:
    """Exact match, per-word and pointing accuracy, accuracy by number of objects, the
    pointing game per layer and head, curves, how to read the maps, about 20 test canvases
    with one map per generated word, and the commands that open the views."""
    import shlex

    from attnlab.tasks import sections as S

    m = metrics["test"]
    model = run.config.model
    rows = [
        [model, f"{m['exact_match']:.2%}", f"{m['word_accuracy']:.2%}", _pct(m.get("pointing"))]
    ]
    by = [
        [k, f"{v['n']:,}", f"{v['exact_match']:.2%}", f"{v['word_accuracy']:.2%}"]
        for k, v in m["by_objects"].items()
    ]
    n = min(len(split), max(n_examples * 4, 64))
    caps = run.caption(split.images(range(n)), beam=run.config.data.beam)
    refs = [split.caption(i) for i in range(n)]
    idx = S.pick_examples(
        [" ".join(r) for r in refs],
        [c.text for c in caps],
        n=n_examples,
        seed=run.config.train.seed,
    )
    items = []
    for i in idx:
        cap, ref = caps[i], refs[i]
        maps = {}
        if cap.maps is not None:
            maps = {f"{k + 1}: {w}": cap.maps[k] for k, w in enumerate(cap.words)}
        items.append(
            S.ImageExample(
                cap.image, maps, ok=cap.words == ref,
                header=[("reference", " ".join(ref)), ("generated", cap.text or "(empty)")],
            )
        )  # fmt: skip
    d = shlex.quote(str(run.run_dir))
    sections = [
        S.Table("Metrics", ["model", "exact match", "per word", "pointing"], rows,
                note=f"{m['n']:,} test canvases, {m['decoding']} decoding; pointing on correctly "
                f"generated words, boxes grown by {m['pointing_tolerance']:g} px."),
        S.Table("By number of objects", ["objects", "canvases", "exact match", "per word"], by),
    ]  # fmt: skip
    if m.get("pointing") is not None:
        sections.append(
            S.Table("Pointing game", ["attention", "pointing accuracy"], pointing_rows(m))
        )
    sections += [
        S.Curves("acc", "word accuracy (teacher-forced)"),
        S.Prose(
            "How to read the maps",
            [
                "Every generated word comes with the attention of the step that produced it "
                "over the image's grid of cells (for the Transformer, averaged over heads and "
                "decoder layers), drawn over the canvas. The canvases are generated, so the "
                "box of the object each word names is known.",
                "The pointing game (Zhang et al. 2016) asks, for each correctly generated word, "
                "whether the cell of maximum attention has its centre inside that box (grown by "
                "a small tolerance). It measures where the attention points, not why the model "
                "chose the word: a model can name the right digit while looking next to it, "
                "because a convolutional cell also sees its neighbours.",
            ],
            links=[
                ("Xu et al. 2015, Show, Attend and Tell", "https://arxiv.org/abs/1502.03044"),
                (
                    "Zhang et al. 2016, Top-down Neural Attention by Excitation Backprop",
                    "https://arxiv.org/abs/1608.00507",
                ),
            ],
        ),
        S.ImageExamples(
            "Where each word looked",
            items,
            f"{len(items)} test canvases, right and wrong; one panel per generated word.",
        ),
        S.Commands(
            "Caption your own images",
            [
                "# one caption line per image; --overlay draws where each word looked",
                f"attnlab caption {d} image.png --beam 3 --overlay words.png",
                "# an offline view: click a word, see its attention (pick layer and head)",
                f"attnlab viz {d} image.png --out caption.html",
                "# exact match, per-word and pointing accuracy on the test canvases",
                f"attnlab eval {d}",
            ],
        ),
    ]
    return sections
