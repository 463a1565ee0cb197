"""``attnlab eval RUN_DIR [--data ...]``: accuracy, macro-F1, per-class precision/recall/F1
and the confusion matrix of a run."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a trained run",
        description="Evaluate a run folder: on its own held-out test split by default, or on "
        "another data set or file given with --data (all of its rows).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("--data", help="packaged data set or .csv/.tsv/.jsonl file")
    p.add_argument("--text-column", help="text column of a data file (default: the run's)")
    p.add_argument("--label-column", help="label column of a data file (default: the run's)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from attnlab.data import load_data
    from attnlab.train import evaluate, load_run, load_splits
    from attnlab.viz.scores import format_per_class, per_class

    run_ = load_run(args.run_dir)
    cfg = run_.config
    if args.data is None or args.data == cfg.data:
        data = load_splits(cfg).test.relabel(run_.labels)
        where = f"{cfg.data} (test split, seed {cfg.train.seed})"
    else:
        data = load_data(
            args.data,
            text_column=args.text_column or cfg.text_column,
            label_column=args.label_column or cfg.label_column,
        ).relabel(run_.labels)
        where = f"{args.data} (all {len(data)} examples)"
    m = evaluate(run_, data)
    print(f"{cfg.model} on {where}")
    print(f"accuracy: {m['accuracy']:.2%}")
    print(f"macro-F1: {m['macro_f1']:.2%}")
    scores = per_class(data.labels, m["probs"].argmax(-1).tolist(), run_.labels)
    print("per class:")
    print("\n".join("  " + line for line in format_per_class(scores).splitlines()))
    print("confusion (rows: true, columns: predicted):")
    width = max(len(x) for x in run_.labels)
    print(" " * (width + 2) + " ".join(f"{x[:8]:>8}" for x in run_.labels))
    for name, row in zip(run_.labels, m["confusion"], strict=True):
        print(f"  {name:<{width}}" + " ".join(f"{v:>8}" for v in row))
    return 0
