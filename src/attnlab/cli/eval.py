"""``attnlab eval RUN_DIR [--data ...]``: test metrics of a trained run."""

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
    p.add_argument("--data", help="packaged data set or data file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data setting for --data, e.g. data.text_column=review (repeatable)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from attnlab.runs import apply_overrides, load_run

    run_ = load_run(args.run_dir)
    cfg = run_.config
    seed = cfg.train.seed
    if args.data is None or args.data == cfg.data.name:
        if args.overrides:
            raise ValueError("--set needs --data naming another data set or file")
        split = run_.task.load_splits(cfg.data, seed=seed).test
        where = f"{cfg.data.name} (test split, seed {seed})"
    else:
        other = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, name=args.data))
        other = apply_overrides(other, [f"data.{o.removeprefix('data.')}" for o in args.overrides])
        split = run_.task.evaluation_data(other.data)
        where = f"{args.data} (all {len(split)} examples)"
    metrics = run_.task.evaluate(run_, split)
    print(f"{cfg.model} on {where}")
    print(run_.task.format_metrics(metrics, run_))
    return 0
