"""``attnlab report RUN_DIR``: (re)write the run's self-contained ``report.html``."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="write the HTML report of a trained run",
        description="Write RUN_DIR/report.html: metrics next to the baseline, curves, "
        "confusion matrix and test examples with their attention (no network needed to view).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from attnlab.viz.report import write_run_report

    print(f"report: {write_run_report(args.run_dir)}")
    return 0
