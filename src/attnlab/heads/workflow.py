"""What ``attnlab heads`` and ``attnlab prune`` do with a text run folder.

Example:
    >>> result = score_run("runs/mr-minilm", scores=["gradient"], out_dir="heads/")  # doctest: +SKIP
    >>> print(result.table)                                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from attnlab.heads.curve import pruned_copy, pruning_curve, time_forward
from attnlab.heads.importance import HeadScores, ablation_importance, gradient_importance
from attnlab.heads.locate import count_parameters, head_layers
from attnlab.heads.prune import (
    PruningOrder,
    heads_to_remove,
    importance_order,
    random_order,
)
from attnlab.heads.report import format_table, plot_curve, plot_head_scores, save_html
from attnlab.heads.stats import head_statistics
from attnlab.heads.textrun import (
    load_text_run,
    run_split,
    save_pruned_run,
    special_tokens,
    text_objective,
)

__all__ = ["ScoreResult", "parse_removals", "prune_run", "score_run"]


@dataclass
class ScoreResult:
    """Scores of every head, the printed table and the files written."""

    scores: dict[str, HeadScores]
    table: str
    files: list[Path] = field(default_factory=list)


def _load(run_dir, threads: int | None):
    if threads:
        torch.set_num_threads(threads)
    run = load_text_run(run_dir)
    layers = head_layers(run.model)
    if not layers:
        raise ValueError(
            f"{run_dir} (model {run.config.model}) has no attention layers whose heads can be "
            "scored or pruned (attnlab MultiHeadAttention or a known transformers layout)"
        )
    return run, layers


def score_run(
    run_dir: str | Path,
    *,
    scores: Sequence[str] = ("gradient", "stats"),
    data: str | None = None,
    split: str = "val",
    limit: int | None = None,
    batch_size: int = 32,
    out_dir: str | Path | None = None,
    threads: int | None = None,
    sort: bool = False,
    log: Callable[[str], None] = print,
) -> ScoreResult:
    """Score every head of a text run: ``"gradient"``, ``"ablation"`` and/or ``"stats"``.

    Writes ``heads.json``, ``heads.png`` and ``heads.html`` into ``out_dir`` when given.

    Raises:
        ValueError: a run without attention layers, an unknown score.
    """
    unknown = set(scores) - {"gradient", "ablation", "stats"}
    if unknown or not scores:
        raise ValueError(f"scores must be some of gradient, ablation, stats; got {list(scores)}")
    run, layers = _load(run_dir, threads)
    ds = run_split(run, split, data=data, limit=limit)
    where = data or f"{run.config.data.name} ({split} split)"
    log(
        f"{run.config.model}: {sum(x.num_heads for x in layers)} heads in {len(layers)} "
        f"layers, scored on {where}, {len(ds)} examples"
    )
    obj = text_objective(run, ds, batch_size=batch_size)
    out: dict[str, HeadScores] = {}
    if "gradient" in scores:
        out["gradient"] = gradient_importance(run.model, obj)
    if "ablation" in scores:
        ab = ablation_importance(run.model, obj)
        log(f"ablation: accuracy with every head {ab.baseline:.4f}")
        out["ablation"] = ab
    if "stats" in scores:
        out.update(head_statistics(run.model, obj, special=special_tokens(run)))
    table = format_table(out, sort_by=next(iter(out)) if sort else None)
    result = ScoreResult(out, table)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        title = f"{run.config.model} on {where}"
        doc = {"run": str(run_dir), "data": where, "examples": len(ds)}
        doc["scores"] = {k: v.to_dict() for k, v in out.items()}
        path = out_dir / "heads.json"
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        fig = plot_head_scores(out, title=title)
        fig.savefig(out_dir / "heads.png", dpi=120)
        save_html(out, out_dir / "heads.html", title=f"attention heads: {title}")
        result.files = [path, out_dir / "heads.png", out_dir / "heads.html"]
    return result


def parse_removals(text: str) -> list[tuple[int, int]]:
    """``"0:3,2:11"`` -> ``[(0, 3), (2, 11)]`` (layer:head pairs).

    Raises:
        ValueError: malformed text.
    """
    pairs = []
    for item in text.split(","):
        layer, sep, head = item.strip().partition(":")
        if not sep or not layer.strip().isdigit() or not head.strip().isdigit():
            raise ValueError(f"heads to remove must look like LAYER:HEAD,... got {item!r}")
        pairs.append((int(layer), int(head)))
    return pairs


def prune_run(
    run_dir: str | Path,
    *,
    fraction: float | None = None,
    remove: Sequence[tuple[int, int]] | None = None,
    out_dir: str | Path | None = None,
    method: str = "gradient",
    step: float = 0.05,
    seed: int = 0,
    curve_dir: str | Path | None = None,
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    random_orders: int = 3,
    batch_size: int = 32,
    limit: int | None = None,
    threads: int | None = None,
    clock: str = "wall",
    log: Callable[[str], None] = print,
) -> dict:
    """Prune a text run: by importance (scored on its validation split), at random, or the
    heads listed in ``remove``; report test accuracy; save the pruned run folder.

    Args:
        run_dir: the run folder.
        fraction: share of heads to remove (with ``method``).
        remove: explicit ``(layer, head)`` pairs to remove instead.
        out_dir: the pruned run folder to write (must not exist).
        method: ``"gradient"``, ``"ablation"`` or ``"random"``.
        step: share of heads removed between two re-scorings.
        seed: seed of the random order.
        curve_dir: also write ``curve.json``/``curve.png``: test accuracy vs fraction for
            the order and ``random_orders`` random orders, with parameters and latency.
        fractions: the points of the curve.
        random_orders: random baselines of the curve.
        batch_size: examples per scoring batch.
        limit: use only ``limit`` validation and test examples, evenly spaced (quick runs).
        threads: torch CPU threads.
        clock: latency of the curve in ``"wall"`` time or process ``"cpu"`` time (with
            ``threads=1``, robust to other processes on the machine).
        log: progress lines.

    Returns:
        The summary written as the pruned run's ``metrics.json``, plus ``curve`` when
        drawn.

    Raises:
        ValueError: a bad fraction (more heads than can go), bad removals (out of range,
            a layer left without heads), nothing to do, or no attention layers.
    """
    if fraction is None and remove is None and curve_dir is None:
        raise ValueError("give --fraction or --remove (with --out), or --curve")
    if fraction is not None and remove is not None:
        raise ValueError("give either a fraction or heads to remove, not both")
    if out_dir is not None and fraction is None and remove is None:
        raise ValueError("--out needs --fraction or --remove")
    if out_dir is None and (fraction is not None or remove is not None):
        raise ValueError("--fraction and --remove need --out PRUNED_DIR for the pruned run")
    if method not in ("gradient", "ablation", "random"):
        raise ValueError(f"method must be gradient, ablation or random, got {method!r}")
    run, layers = _load(run_dir, threads)
    num_heads = [x.num_heads for x in layers]
    wanted = [f for f in (fraction, *(fractions if curve_dir else ())) if f is not None]
    for f in wanted:
        heads_to_remove(num_heads, f)  # refuse bad fractions before any work
    if remove is not None:
        remove = [(int(a), int(b)) for a, b in remove]
        if len(set(remove)) != len(remove) or not remove:
            raise ValueError(f"heads to remove must be distinct and at least one, got {remove}")
        explicit = PruningOrder([x.name for x in layers], num_heads, list(remove), "explicit")
        explicit.kept()  # refuses out-of-range heads and emptied layers
    val = text_objective(run, run_split(run, "val", limit=limit), batch_size=batch_size)
    test_data = run_split(run, "test", limit=limit)
    test = text_objective(run, test_data, batch_size=128)
    top = max(wanted, default=0.0)
    if method == "random":
        order = random_order(run.model, fraction=top, seed=seed)
    elif top > 0:
        order = importance_order(run.model, val, fraction=top, step=step, method=method, log=log)
    else:
        order = PruningOrder([x.name for x in layers], num_heads, [], method)
    summary: dict = {}
    if out_dir is not None:
        chosen = explicit if remove is not None else order
        n = len(remove) if remove is not None else order.count(fraction)
        pruned = pruned_copy(run.model, chosen, n)
        kept = chosen.kept(n)
        summary = {
            "pruned_from": str(run_dir),
            "method": chosen.method,
            "heads_removed": n,
            "heads_total": chosen.total,
            "fraction_pruned": n / chosen.total,
            "removed": [list(p) for p in chosen.removed[:n]],
            "kept_heads": kept,
            "val_acc_before": val.score(run.model),
            "val_acc": val.score(pruned),
            "test_acc_before": test.score(run.model),
            "test_acc": test.score(pruned),
            "parameters_before": count_parameters(run.model),
            "parameters": count_parameters(pruned),
        }
        save_pruned_run(run, pruned, kept, out_dir, metrics=summary)
        log(
            f"pruned {n}/{chosen.total} heads ({n / chosen.total:.1%}): test accuracy "
            f"{summary['test_acc_before']:.4f} -> {summary['test_acc']:.4f}, parameters "
            f"{summary['parameters_before']:,} -> {summary['parameters']:,}"
        )
        log(f"wrote {out_dir}")
    if curve_dir is not None:
        baselines = [
            random_order(run.model, fraction=top, seed=seed + 1 + i) for i in range(random_orders)
        ]
        curve = pruning_curve(
            run.model,
            order,
            test.metric,
            fractions,
            baselines=baselines,
            latency=lambda m: time_forward(m, test, clock=clock),
            metric_name="test accuracy",
            log=log,
        )
        curve["run"] = str(run_dir)
        curve["latency"] = {
            "clock": clock,
            "threads": torch.get_num_threads(),
            "examples": len(test_data),
            "batch_size": 128,
        }
        curve_dir = Path(curve_dir)
        curve_dir.mkdir(parents=True, exist_ok=True)
        (curve_dir / "curve.json").write_text(json.dumps(curve, indent=2) + "\n", encoding="utf-8")
        fig = plot_curve(
            curve, title=f"{run.config.model} on {run.config.data.name}: pruning heads"
        )
        fig.savefig(curve_dir / "curve.png", dpi=120)
        log(f"wrote {curve_dir / 'curve.json'} and {curve_dir / 'curve.png'}")
        summary["curve"] = curve
    return summary
