"""Measuring a translation run: batched decoding, sacreBLEU BLEU and chrF of greedy and beam
output, cross-attention alignments (recorded through :mod:`attnlab.capture`, role
``cross``), and how all of it reads on the command line and in the run's report.

Example:
    >>> format_translation_metrics({"bleu": 12.3, "greedy_bleu": 11.1, "chrf": 40.2,
    ...     "greedy_chrf": 39.5, "beam": 5, "length_penalty": 0.6, "n": 1000,
    ...     "bleu_signature": "tok:13a", "chrf_signature": "nc:6"}).splitlines()[1]
    'BLEU 12.30 (greedy 11.10)  tok:13a'
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "cross_attention",
    "decode",
    "format_translation_metrics",
    "score_translations",
    "translation_report_sections",
]


def decode(model: nn.Module, src: Tensor, lengths: Tensor, *, beam: int = 1, alpha: float = 0.6):
    """Greedy (``beam=1``) or beam search :class:`~attnlab.generate.Hypothesis` per row."""
    from attnlab.generate import beam_search, greedy_search

    device = next(model.parameters()).device
    src, lengths = src.to(device), lengths.to(device)
    if beam == 1:
        return greedy_search(model, src, lengths)
    return beam_search(model, src, lengths, beam_size=beam, length_penalty_alpha=alpha)


@torch.no_grad()
def cross_attention(
    model: nn.Module, src: Tensor, lengths: Tensor, outputs: Sequence[Sequence[int]]
) -> list[Tensor] | None:
    """Cross-attention of each output token over the source, teacher-forced on ``outputs``.

    Args:
        model: a translation preset.
        src: ``(B, S)`` source ids; lengths: ``(B,)``.
        outputs: generated ids per row (no BOS/EOS); row ``t`` of a result is the attention
            of the step that predicts token ``t`` (the last row predicts EOS).

    Returns:
        Per example ``(L, H, T + 1, S)`` (layers, heads, steps, source tokens; padding
        included), or None for a model without attention (``gru``).
    """
    from attnlab.capture import capture

    bos, pad = int(model.bos_id), int(getattr(model, "pad_id", 0))
    width = 1 + max((len(o) for o in outputs), default=0)
    tgt_in = torch.full((len(outputs), width), pad, dtype=torch.long)
    for i, o in enumerate(outputs):
        tgt_in[i, : len(o) + 1] = torch.tensor([bos, *o], dtype=torch.long)
    device = next(model.parameters()).device
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the encoder's self-attention is not needed
            with capture(model) as rec:
                model(src.to(device), lengths.to(device), tgt_in.to(device))
    except ValueError:  # no recordable attention: the gru baseline
        return None
    cross = rec.by_role("cross")
    if not len(cross):
        return None
    layers: dict[str, list[Tensor]] = {}
    for name, w in zip(cross.names, cross.weights, strict=True):
        layers.setdefault(name, []).append(w.float().cpu())  # (B, H, Tq, S)
    # A recurrent decoder calls its attention once per step: join the steps.
    stacked = torch.stack([torch.cat(ws, dim=2) for ws in layers.values()], 1)  # (B, L, H, T, S)
    return list(stacked.unbind(0))


def score_translations(run, split, *, beam: int = 5, batch_size: int = 64) -> dict[str, Any]:
    """Decode ``split.sources`` greedily and with beam ``beam`` and score both against
    ``split.targets``: ``bleu``/``chrf`` (beam) with signatures, ``greedy_bleu``/
    ``greedy_chrf``, ``n``, ``truncated`` (inputs cut to ``max_len``)."""
    from attnlab.tasks.bleu import corpus_bleu, corpus_chrf
    from attnlab.tasks.translate import TruncationWarning

    sources, refs = list(split.sources), list(split.targets)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # similar lengths
    lang = run.artifacts.target_lang
    out: dict[str, Any] = {"beam": beam, "length_penalty": run.length_penalty(), "n": len(refs)}
    for width in (1, beam) if beam > 1 else (1,):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", TruncationWarning)
            done = run.translate([sources[i] for i in order], beam=width, batch_size=batch_size)
        hyps = [""] * len(sources)
        for i, t in zip(order, done, strict=True):
            hyps[i] = t.text
        bleu, chrf = corpus_bleu(hyps, refs, target_lang=lang), corpus_chrf(hyps, refs)
        key = "" if width == beam else "greedy_"
        out[f"{key}bleu"], out[f"{key}chrf"] = bleu.score, chrf.score
        if width == beam:
            out.update(bleu_signature=bleu.signature, chrf_signature=chrf.signature)
            out["bleu_text"] = bleu.text
            out["truncated"] = sum(issubclass(w.category, TruncationWarning) for w in said)
    if beam == 1:
        out["greedy_bleu"], out["greedy_chrf"] = out["bleu"], out["chrf"]
    return out


def format_translation_metrics(m: dict[str, Any]) -> str:
    """:func:`score_translations`'s metrics as lines for ``attnlab eval``."""
    decoding = (
        f"beam {m['beam']} (length penalty {m['length_penalty']:g})" if m["beam"] > 1 else "greedy"
    )
    lines = [
        f"decoding: {decoding}, {m['n']} sentences",
        f"BLEU {m['bleu']:.2f} (greedy {m['greedy_bleu']:.2f})  {m['bleu_signature']}",
        f"chrF {m['chrf']:.2f} (greedy {m['greedy_chrf']:.2f})  {m['chrf_signature']}",
    ]
    if m.get("truncated"):
        lines.append(f"{m['truncated']} inputs were cut to the run's maximum length")
    return "\n".join(lines)


def translation_report_sections(
    run, split, metrics: dict[str, Any], *, n_examples: int = 20
) -> list:
    """BLEU/chrF next to the copy-the-source baseline, curves, how to read alignments,
    ``n_examples`` test sentences (source, reference, hypothesis) with their alignments,
    and the commands that translate and draw."""
    import shlex

    from attnlab.tasks import sections as S

    m, base = metrics["test"], metrics.get("baseline") or {}
    rows = [[run.config.model, f"{m['bleu']:.2f}", f"{m['greedy_bleu']:.2f}", f"{m['chrf']:.2f}",
             f"{m['greedy_chrf']:.2f}"]]  # fmt: skip
    if base:
        rows.append([base["name"], f"{base['bleu']:.2f}", "", f"{base['chrf']:.2f}", ""])
    beam = int(m["beam"])
    n = min(len(split), max(n_examples * 3, 60))
    sources, refs = list(split.sources[:n]), list(split.targets[:n])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = run.translate(sources, beam=beam, alignment=True)
    idx = S.pick_examples(refs, [t.text for t in done], n=n_examples, seed=run.config.train.seed)
    d = shlex.quote(str(run.run_dir))
    sections: list = [
        S.Table(
            "Metrics",
            [
                "model",
                f"BLEU (beam {beam})",
                "BLEU (greedy)",
                f"chrF (beam {beam})",
                "chrF (greedy)",
            ],
            rows,
            note=f"{m['n']:,} test sentences. {m['bleu_signature']}; {m['chrf_signature']}",
        ),
        S.Curves("acc", "token accuracy (teacher-forced)"),
        S.Prose(
            "How to read the alignments",
            [
                "Each row of an alignment is one generated target token; its shading is the "
                "cross-attention of the step that produced it over the source tokens (for the "
                "Transformer, averaged over heads and decoder layers; the dot marks the most "
                "attended source token). Attention shows where the decoder read, which often, "
                "but not always, is the word it translates.",
                "BLEU counts n-gram overlap with one reference, so a correct paraphrase scores "
                "low; chrF works on characters and is kinder to inflections.",
            ],
            links=[
                (
                    "Bahdanau et al. 2015, Neural Machine Translation by Jointly Learning to Align "
                    "and Translate",
                    "https://arxiv.org/abs/1409.0473",
                ),
                (
                    "Post 2018, A Call for Clarity in Reporting BLEU Scores",
                    "https://arxiv.org/abs/1804.08771",
                ),
            ],
        ),
    ]
    headers = [
        [
            ("source", done[i].source),
            ("reference", refs[i]),
            ("hypothesis", done[i].text or "(empty)"),
        ]
        for i in idx
    ]
    if all(done[i].alignment is not None for i in idx) and idx:
        items = [
            S.Alignment(done[i].source_tokens, done[i].target_tokens, done[i].alignment,
                        ok=done[i].text == refs[i], header=h)
            for i, h in zip(idx, headers, strict=True)
        ]  # fmt: skip
        sections.append(S.Alignments("Test sentences and their alignments", items,
                                     f"{len(items)} test sentences, beam {beam}."))  # fmt: skip
    else:
        rows = [[v for _, v in h] for h in headers]
        sections.append(S.Table("Test sentences", ["source", "reference", "hypothesis"], rows,
                                note="this model has no attention, so there is no alignment"))  # fmt: skip
    sections.append(
        S.Commands(
            "Translate your own sentences",
            [
                "# one translation per line; --alignment draws the cross-attention",
                f'attnlab translate {d} "Ich habe heute keine Zeit." --beam 5 --alignment align.png',
                "# an offline view: hover a target token to see its source weights",
                f'attnlab viz {d} "Ich habe heute keine Zeit." --out align.html',
                "# BLEU and chrF with their sacreBLEU signatures on the test split",
                f"attnlab eval {d}",
            ],
        )
    )
    return sections
