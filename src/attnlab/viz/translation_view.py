"""The alignment of one translation: a source x target figure (the attention averaged over
layers and heads, or one layer/head) or the offline head view (every cross-attention layer
and head; hover a target token to see its source weights).

Both take a :class:`~attnlab.tasks.translate.Translation` with attention, as
:meth:`TranslateRun.alignment <attnlab.tasks.translate.TranslateRun.alignment>` returns it.

Example:
    >>> import torch
    >>> from attnlab.tasks.translate import Translation
    >>> t = Translation("Guten Morgen.", "Good morning.", ["▁Guten", "▁Morgen", ".", "[EOS]"],
    ...                 ["▁Good", "▁morning", ".", "[EOS]"], torch.rand(2, 4, 4, 4).softmax(-1))
    >>> fig = plot_translation(t)
    >>> len(fig.axes) >= 1
    True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["alignment_view", "export_alignment", "plot_translation"]


def _checked(translation):
    if translation.attention is None:
        raise ValueError(
            "this translation has no attention to draw (the gru preset has none; or it was "
            "made without alignment=True)"
        )
    return translation.attention  # (L, H, T, S)


def plot_translation(translation, *, layer: int | None = None, head: int | None = None):
    """The source x target alignment figure of ``translation``.

    Args:
        translation: a :class:`~attnlab.tasks.translate.Translation` with attention.
        layer, head: draw one decoder layer / head (default: the mean over them).
    """
    from attnlab.viz.plots import plot_alignment

    a = _checked(translation)
    a = a.mean(0) if layer is None else a[layer]
    a = a.mean(0) if head is None else a[head]  # (T, S)
    where = (
        "mean over layers and heads"
        if layer is None and head is None
        else (
            f"layer {'mean' if layer is None else layer}, head {'mean' if head is None else head}"
        )
    )
    title = f"alignment ({where})"
    return plot_alignment(a, translation.source_tokens, translation.target_tokens, title=title)


def alignment_view(translation, *, theme: str = "light"):
    """The offline head view of every cross-attention layer and head."""
    from attnlab.viz.views import HeadView

    a = _checked(translation)
    return HeadView(
        list(a.numpy()),  # per layer (H, T, S)
        translation.source_tokens,
        tokens_q=translation.target_tokens,
        roles=["cross"] * a.shape[0],
        layer_names=[f"cross-attention {i}" for i in range(a.shape[0])],
        title=f"{translation.source} → {translation.text}",
        theme=theme,
        agg="mean",
    )


def export_alignment(translation, path: str | Path, **kwargs) -> Path:
    """Write the alignment: ``.html`` the offline view, ``.png``/``.svg``/``.pdf`` a figure.

    Raises:
        ValueError: another suffix, or a translation without attention.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return alignment_view(translation).save(path)
    from attnlab.viz.plots import FORMATS, save_figure

    if suffix not in FORMATS:
        raise ValueError(
            f"cannot write an alignment as {path.name!r}; use .html, {', '.join(FORMATS)}"
        )
    import matplotlib.pyplot as plt

    fig = plot_translation(translation, **kwargs)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
