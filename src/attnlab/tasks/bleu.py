"""Translation metrics: sacreBLEU corpus BLEU and chrF on detokenised text, with the
signatures that make a score reproducible.

BLEU tokenises the hypotheses and references itself (``13a``, the WMT standard), or
with ``zh`` when the output is Chinese; chrF works on characters. Both expect plain,
detokenised sentences, as :meth:`attnlab.data.PairTokenizer.decode` returns them.

Example:
    >>> m = translation_metrics(["The cat sat on the mat."], ["The cat sat on the mat."])
    >>> round(m["bleu"], 2), round(m["chrf"], 2)
    (100.0, 100.0)
    >>> m["bleu_signature"]
    'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MetricScore", "bleu_tokenizer", "corpus_bleu", "corpus_chrf", "translation_metrics"]


@dataclass(frozen=True)
class MetricScore:
    """A corpus score and the sacreBLEU signature that reproduces it.

    Attributes:
        score: the corpus score (0-100).
        signature: sacreBLEU's signature (tokenizer, casing, smoothing, version).
        text: sacreBLEU's one-line summary (n-gram precisions, brevity penalty).
    """

    score: float
    signature: str
    text: str

    def __str__(self) -> str:
        return f"{self.text} {self.signature}"


def bleu_tokenizer(target_lang: str) -> str:
    """sacreBLEU's tokenizer for output in ``target_lang``: ``zh`` for Chinese only."""
    return "zh" if target_lang.lower().split("-")[0] in ("zh", "cmn") else "13a"


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list[str], list[str]]:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses and references must be lists of sentences, not one string")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not references:
        raise ValueError("no sentences to score")
    return [str(h) for h in hypotheses], [str(r) for r in references]


def corpus_bleu(
    hypotheses: Sequence[str], references: Sequence[str], *, target_lang: str = "en"
) -> MetricScore:
    """sacreBLEU corpus BLEU (Papineni et al. 2002; Post 2018), one reference per sentence.

    Args:
        hypotheses: detokenised system outputs.
        references: detokenised references, aligned with ``hypotheses``.
        target_lang: output language; ``"zh"`` selects sacreBLEU's Chinese tokenizer.

    Raises:
        ValueError: different numbers of hypotheses and references, or none.
    """
    from sacrebleu.metrics import BLEU

    hyps, refs = _check(hypotheses, references)
    metric = BLEU(tokenize=bleu_tokenizer(target_lang))
    result = metric.corpus_score(hyps, [refs])
    return MetricScore(float(result.score), str(metric.get_signature()), str(result))


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> MetricScore:
    """sacreBLEU corpus chrF (Popović 2015): character n-gram F-score, beta 2."""
    from sacrebleu.metrics import CHRF

    hyps, refs = _check(hypotheses, references)
    metric = CHRF()
    result = metric.corpus_score(hyps, [refs])
    return MetricScore(float(result.score), str(metric.get_signature()), str(result))


def translation_metrics(
    hypotheses: Sequence[str], references: Sequence[str], *, target_lang: str = "en"
) -> dict[str, float | str]:
    """BLEU and chrF with their signatures: ``{"bleu", "chrf", "bleu_signature",
    "chrf_signature"}``."""
    bleu = corpus_bleu(hypotheses, references, target_lang=target_lang)
    chrf = corpus_chrf(hypotheses, references)
    return {
        "bleu": bleu.score,
        "chrf": chrf.score,
        "bleu_signature": bleu.signature,
        "chrf_signature": chrf.signature,
    }
