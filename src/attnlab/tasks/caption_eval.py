"""Measuring a captioning run: decoding, exact-match and per-word accuracy, and the pointing
game on cross-attention (Zhang et al. 2016): for every correctly generated word, does the
location of maximum attention fall inside the box of the object the word names?

The attention is read through each model's cross-attention seams
(``model.attention_modules()``: the additive attention's ``WeightsTap`` of ``cnn-gru-attn``,
the cross-attention ``AttentionCore`` of each ``vit-transformer`` decoder block) with
forward hooks, so the model runs its normal path; weights of an ``AttentionCore`` are
recomputed from its queries and keys with :func:`attnlab.ops.attention_weights`.

Example:
    >>> import torch
    >>> centers = cell_centers((2, 4), (8, 8))       # cell centres (x, y) in pixels
    >>> centers[5].tolist()
    [12.0, 12.0]
    >>> hits(torch.tensor([[0.1, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0]]), torch.tensor([[8, 8, 16, 16]]), centers)
    tensor([True])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.layers.core import AttentionCore, WeightsTap
from attnlab.ops.weights import attention_weights

__all__ = [
    "cell_centers",
    "cross_attention",
    "decode",
    "encoder_attention",
    "hits",
    "pad_inputs",
    "rollout_cross",
    "score_captions",
]


def _record(modules: Sequence[tuple[str, nn.Module]], run) -> list[Tensor]:
    """Run ``run()`` and return, per module, its weights ``(B, H, Tq, Tk)`` concatenated
    over calls along the queries (a recurrent decoder calls its attention once per step)."""
    seen: list[list[Tensor]] = [[] for _ in modules]
    handles = []
    for i, (_, mod) in enumerate(modules):
        if isinstance(mod, WeightsTap):

            def tap(m, args, out, i=i):
                seen[i].append(out.detach().float())  # (B, H, Tq, Tk)

            handles.append(mod.register_forward_hook(tap))
        elif isinstance(mod, AttentionCore):

            def core(m, args, kwargs, out, i=i):
                q = args[0] if args else kwargs["q"]
                k = args[1] if len(args) > 1 else kwargs["k"]
                opts = {
                    x: kwargs[x]
                    for x in ("mask", "causal", "window", "scale", "score")
                    if x in kwargs
                }
                seen[i].append(attention_weights(q.detach(), k.detach(), **opts).float())

            handles.append(mod.register_forward_hook(core, with_kwargs=True))
        else:
            raise TypeError(
                f"cannot record {type(mod).__name__}; expected a WeightsTap or AttentionCore"
            )
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return [torch.cat(s, dim=2) for s in seen]


def cross_attention(model: nn.Module, images: Tensor, tgt_in: Tensor) -> Tensor | None:
    """Cross-attention of every word over the image cells, teacher-forced on ``tgt_in``.

    Args:
        model: a captioning preset.
        images: ``(B, C, H, W)`` in [0, 1].
        tgt_in: ``(B, T)`` input words (BOS first); row ``t`` of the result is the attention
            of the step that predicts word ``t``.

    Returns:
        ``(B, L, H, T, N)`` (layers, heads, steps, cells), or None for a model without
        attention.
    """
    mods = model.attention_modules()
    if not mods:
        return None
    maps = _record(mods, lambda: model(images, tgt_in))
    return torch.stack(maps, 1)  # (B, L, H, T, N)


def encoder_attention(model: nn.Module, images: Tensor) -> Tensor | None:
    """The encoder's self-attention ``(B, L, H, N, N)`` (None when it has none)."""
    mods = getattr(model, "encoder_attention_modules", lambda: [])()
    if not mods:
        return None
    return torch.stack(_record(mods, lambda: model.encode_images(images)), 1)


def rollout_cross(cross: Tensor, encoder: Tensor) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020) carried through the cross-attention.

    The encoder's head-mean attention with the residual identity, ``0.5 A + 0.5 I``
    renormalised, is multiplied through its layers; each word's head- and layer-mean
    cross-attention is then sent through that product, so a word's weight lands on the
    input patches rather than on the encoder's last-layer tokens.

    Args:
        cross: ``(B, L, H, T, N)`` cross-attention.
        encoder: ``(B, L_enc, H, N, N)`` encoder self-attention.

    Returns:
        ``(B, T, N)``.
    """
    n = encoder.shape[-1]
    eye = torch.eye(n, dtype=encoder.dtype, device=encoder.device)
    roll = eye.expand(encoder.shape[0], n, n)
    for layer in encoder.unbind(1):
        a = 0.5 * layer.mean(1) + 0.5 * eye  # (B, N, N)
        a = a / a.sum(-1, keepdim=True)
        roll = a @ roll  # (B, N, N)
    return cross.mean((1, 2)) @ roll  # (B, T, N)


def cell_centers(grid: tuple[int, int], cell: tuple[int, int]) -> Tensor:
    """``(N, 2)`` pixel centre ``(x, y)`` of each cell of a row-major ``grid`` of cells of
    ``cell = (rows, columns)`` pixels."""
    gh, gw = grid
    ys = (torch.arange(gh, dtype=torch.float32) + 0.5) * cell[0]
    xs = (torch.arange(gw, dtype=torch.float32) + 0.5) * cell[1]
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], -1)  # (N, 2)


def hits(maps: Tensor, boxes: Tensor, centers: Tensor, tolerance: float = 0.0) -> Tensor:
    """Pointing game: whether each map's maximum lies inside its box.

    Args:
        maps: ``(..., K, N)`` attention over ``N`` cells.
        boxes: ``(K, 4)`` ``(x0, y0, x1, y1)`` pixel boxes (ends exclusive).
        centers: ``(N, 2)`` cell centres from :func:`cell_centers`.
        tolerance: pixels the box is grown by on every side (Zhang et al. 2016 allow 15
            on 224-pixel images).

    Returns:
        ``(..., K)`` bool.
    """
    at = centers[maps.argmax(-1)]  # (..., K, 2)
    b = boxes.to(at.dtype)
    inside_x = (at[..., 0] >= b[:, 0] - tolerance) & (at[..., 0] <= b[:, 2] + tolerance)
    inside_y = (at[..., 1] >= b[:, 1] - tolerance) & (at[..., 1] <= b[:, 3] + tolerance)
    return inside_x & inside_y


@torch.no_grad()
def decode(model: nn.Module, images: Tensor, *, max_len: int, beam: int = 1) -> list[list[int]]:
    """Generated word ids (no BOS/EOS) for ``images (B, C, H, W)``: greedy search, or beam
    search with ``beam > 1`` (:mod:`attnlab.generate`)."""
    from attnlab.generate import beam_search, greedy_search

    src = images.flatten(1)  # search takes (B, S) sources; the models unflatten them
    lengths = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
    kw = {"max_len_a": 0.0, "max_len_b": max_len + 1}
    if beam > 1:
        hyps = beam_search(model, src, lengths, beam_size=beam, length_penalty_alpha=0.0, **kw)
    else:
        hyps = greedy_search(model, src, lengths, **kw)
    return [list(h.tokens) for h in hyps]


def pad_inputs(seqs: list[list[int]], bos: int, pad: int) -> Tensor:
    """``(B, 1 + longest)`` decoder inputs: BOS, then each sequence, padded with ``pad``."""
    t = 1 + max((len(s) for s in seqs), default=0)
    out = torch.full((len(seqs), t), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : 1 + len(s)] = torch.tensor([bos, *s], dtype=torch.long)
    return out


def score_captions(
    run: Any, split: Any, *, beam: int = 1, tolerance: float = 2.0, batch_size: int = 256
) -> dict[str, Any]:
    """Exact match, per-word accuracy (by number of objects too) and pointing accuracy of
    ``run`` on a :class:`~attnlab.data.captions.CanvasSet`.

    Per-word accuracy counts the reference words generated at their position; pointing
    accuracy is measured on the correctly generated words only, per layer and head, for the
    head mean, for the best head, and for rollout where the model has an encoder with
    attention. The main ``pointing`` value is the model's attention averaged over heads
    and layers (the RNN has one of each).
    """
    model, dims = run.model, run.dims
    offset = 3  # word k has id k + 3 (0 pad, 1 bos, 2 eos)
    centers = cell_centers(model.grid, model.cell_size)
    n = len(split)
    counts = split.counts().tolist()
    exact = [False] * n
    right_words = [0] * n
    point: dict[str, list[int]] = {}  # map name -> [hits, checked]

    def add(name: str, h: Tensor) -> None:
        cur = point.setdefault(name, [0, 0])
        cur[0] += int(h.sum())
        cur[1] += int(h.numel())

    for start in range(0, n, batch_size):
        idx = list(range(start, min(n, start + batch_size)))
        images = split.images(idx).float().div(255).to(run.device)
        hyps = decode(model, images, max_len=dims.max_len, beam=beam)
        refs = [[k + offset for k in split.labels(i)] for i in idx]
        cross = enc = None
        if model.attention_modules():
            tgt_in = pad_inputs(hyps, dims.bos_id, dims.pad_id).to(run.device)
            cross = cross_attention(model, images, tgt_in).cpu()  # (B, L, H, T, N)
            enc = encoder_attention(model, images)
            roll = rollout_cross(cross, enc.cpu()) if enc is not None else None
        for j, (i, hyp, ref) in enumerate(zip(idx, hyps, refs, strict=True)):
            exact[i] = hyp == ref
            ok = [t for t in range(min(len(hyp), len(ref))) if hyp[t] == ref[t]]
            right_words[i] = len(ok)
            if cross is None or not ok:
                continue
            boxes = split.boxes[i, ok]  # (K, 4)
            c = cross[j][:, :, ok]  # (L, H, K, N)
            add("mean", hits(c.mean((0, 1)), boxes, centers, tolerance))
            for layer in range(c.shape[0]):
                add(f"L{layer}.mean", hits(c[layer].mean(0), boxes, centers, tolerance))
                for head in range(c.shape[1]):
                    add(f"L{layer}.H{head}", hits(c[layer, head], boxes, centers, tolerance))
            if roll is not None:
                add("rollout", hits(roll[j][ok], boxes, centers, tolerance))
    words = sum(counts)
    result: dict[str, Any] = {
        "n": n,
        "decoding": f"beam {beam}" if beam > 1 else "greedy",
        "exact_match": sum(exact) / max(1, n),
        "word_accuracy": sum(right_words) / max(1, words),
        "by_objects": {},
        "pointing": None,
        "pointing_tolerance": tolerance,
    }
    for k in sorted(set(counts)):
        rows = [i for i in range(n) if counts[i] == k]
        result["by_objects"][str(k)] = {
            "n": len(rows),
            "exact_match": sum(exact[i] for i in rows) / len(rows),
            "word_accuracy": sum(right_words[i] for i in rows) / max(1, k * len(rows)),
        }
    if point:
        frac = {k: h / c if c else None for k, (h, c) in point.items()}
        layers = sorted({int(k[1:].split(".")[0]) for k in point if k.startswith("L")})
        by_layer = []
        for layer in layers:
            heads = sorted(int(k.split(".H")[1]) for k in point if k.startswith(f"L{layer}.H"))
            per_head = [frac[f"L{layer}.H{h}"] for h in heads]
            best = max(range(len(per_head)), key=lambda h: per_head[h] or 0.0)
            by_layer.append(
                {"layer": layer, "mean": frac[f"L{layer}.mean"], "heads": per_head,
                 "best_head": best, "best": per_head[best]}
            )  # fmt: skip
        result["pointing"] = frac["mean"]
        result["pointing_words"] = point["mean"][1]
        result["pointing_by_layer"] = by_layer
        result["pointing_best_head"] = max((x["best"] or 0.0) for x in by_layer)
        result["pointing_rollout"] = frac.get("rollout")
    return result
