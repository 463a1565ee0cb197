"""``attnlab prune RUN_DIR --fraction 0.3 --out PRUNED_DIR``: remove attention heads."""

from __future__ import annotations

import argparse


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _fractions(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    if not vals:
        raise argparse.ArgumentTypeError("no fractions given")
    return vals


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prune",
        help="remove the least important attention heads of a run (Michel et al. 2019)",
        description="Prune attention heads of a run folder without retraining: score them "
        "on its validation split (gradient importance, Michel et al. 2019), remove the "
        "least important few percent at a time, re-scoring in between, and shrink the "
        "projections physically. The pruned run folder loads and predicts like any other. "
        "--curve also draws test accuracy vs fraction pruned against random orders, with "
        "parameters and latency.",
        epilog="example: attnlab prune runs/mr-minilm --fraction 0.3 --out runs/mr-minilm-p30",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("--fraction", type=_fraction, help="share of all heads to remove, e.g. 0.3")
    p.add_argument(
        "--remove",
        metavar="L:H,...",
        help="remove exactly these heads (layer:head pairs) instead of --fraction",
    )
    p.add_argument("--out", metavar="PRUNED_DIR", help="the pruned run folder to write")
    p.add_argument(
        "--method",
        choices=("gradient", "ablation", "random"),
        default="gradient",
        help="order of removal (default gradient importance)",
    )
    p.add_argument(
        "--step",
        type=_fraction,
        default=0.05,
        help="share of heads removed between re-scorings (default 0.05)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of random orders (default 0)")
    p.add_argument("--curve", metavar="DIR", help="write curve.json and curve.png into DIR")
    p.add_argument(
        "--fractions",
        type=_fractions,
        default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        help="points of the curve (default 0.1,...,0.6)",
    )
    p.add_argument(
        "--random-orders", type=int, default=3, help="random baselines on the curve (default 3)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="scoring batch size (default 32)")
    p.add_argument(
        "--limit", type=int, help="use only N validation and test examples (evenly spaced)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="latency on the curve: wall time (default) or process CPU time (robust to "
        "other processes with --threads 1)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from attnlab.heads.workflow import parse_removals, prune_run

    prune_run(
        args.run_dir,
        fraction=args.fraction,
        remove=parse_removals(args.remove) if args.remove else None,
        out_dir=args.out,
        method=args.method,
        step=args.step,
        seed=args.seed,
        curve_dir=args.curve,
        fractions=args.fractions,
        random_orders=args.random_orders,
        batch_size=args.batch_size,
        limit=args.limit,
        threads=args.threads,
        clock=args.clock,
        log=print,
    )
    return 0
