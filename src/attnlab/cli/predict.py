"""``attnlab predict RUN_DIR "text" ...``: label, probability and most-attended tokens."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="classify texts with a trained run",
        description="For each text print one line: the predicted label, its probability and "
        "the tokens the attention pooling weighted most.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify")
    p.add_argument("--top", type=int, default=3, help="most-attended tokens shown (default 3)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from attnlab.train import load_run

    run_ = load_run(args.run_dir)
    for pred in run_.predict(args.texts):
        tops = ", ".join(f"{t} ({w:.2f})" for t, w in pred.top_tokens(args.top))
        print(f"{pred.label}\t{pred.probability:.3f}\t{tops}")
    return 0
