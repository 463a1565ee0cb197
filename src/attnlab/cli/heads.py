"""``attnlab heads RUN_DIR``: importance and statistics of every attention head."""

from __future__ import annotations

import argparse

SCORES = ("gradient", "ablation", "stats")


def _scores(text: str) -> list[str]:
    vals = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in vals if v not in SCORES]
    if bad or not vals:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCORES)}; got {text!r}")
    return vals


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "heads",
        help="score every attention head of a run (importance, statistics)",
        description="Score the attention heads of a run folder on data (by default its "
        "validation split): Michel et al.'s gradient importance, ablation importance "
        "(drop one head, measure the accuracy change) and attention statistics (entropy, "
        "mean distance, attention to [CLS]/[SEP]/padding). Prints the table and writes a "
        "layer x head heatmap (PNG), an offline HTML view and heads.json into --out.",
        epilog="example: attnlab heads runs/mr-minilm --score gradient,stats --out heads/",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("--data", help="another packaged data set or file (all its rows)")
    p.add_argument(
        "--split", choices=("train", "val", "test"), default="val", help="split (default val)"
    )
    p.add_argument(
        "--score",
        type=_scores,
        default=["gradient", "stats"],
        help=f"comma-separated: {', '.join(SCORES)} (default gradient,stats)",
    )
    p.add_argument("--limit", type=int, help="use only N examples (evenly spaced)")
    p.add_argument("--batch-size", type=int, default=32, help="examples per batch (default 32)")
    p.add_argument("--sort", action="store_true", help="sort the table by the first score")
    p.add_argument(
        "--out", help="folder for heads.png, heads.html, heads.json (default RUN_DIR/heads)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from attnlab.heads.workflow import score_run

    out = Path(args.out) if args.out else Path(args.run_dir) / "heads"
    result = score_run(
        args.run_dir,
        scores=args.score,
        data=args.data,
        split=args.split,
        limit=args.limit,
        batch_size=args.batch_size,
        out_dir=out,
        threads=args.threads,
        sort=args.sort,
        log=print,
    )
    print(result.table)
    for path in result.files:
        print(f"wrote {path}")
    return 0
