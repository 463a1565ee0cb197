"""``attnlab predict RUN_DIR INPUT ...``: what a trained run predicts for each input."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained run (texts for text classifiers)",
        description="For each input print one line: the predicted label, its probability and "
        "what the model's attention weighted most.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="texts (or files, per task)")
    p.add_argument("--top", type=int, default=3, help="most-attended tokens shown (default 3)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys

    from attnlab.runs import load_run

    if args.top < 0:
        raise ValueError(f"--top must be >= 0, got {args.top}")
    run_ = load_run(args.run_dir)
    if run_.task.name != "text":
        raise ValueError(f"{args.run_dir} is a {run_.task.name!r} run; predict takes text runs")
    for pred in run_.predict(args.inputs):
        tops = ", ".join(f"{t} ({w:.2f})" for t, w in pred.top_tokens(args.top))
        print(f"{pred.label}\t{pred.probability:.3f}\t{tops}")
        if pred.truncated:
            limit = run_.tokenizer.max_len
            print(f"note: input cut to its first {limit} tokens (data.max_len)", file=sys.stderr)
    return 0
