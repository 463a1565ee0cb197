"""``attnlab`` entry point.

Each subcommand lives in ``attnlab.cli.<name>`` and provides ``add_parser(subparsers)``
(argparse only, so ``--help`` stays fast) and ``run(args) -> int``. Heavy imports
(torch, lightning, transformers) happen inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMANDS = (
    "ls",
    "data",
    "train",
    "eval",
    "predict",
    "translate",
    "caption",
    "explain",
    "report",
    "viz",
    "heads",
    "prune",
    "explore",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    from attnlab import __version__

    parser = argparse.ArgumentParser(
        prog="attnlab",
        description="Attention mechanisms for PyTorch: build, train, see and speed up.",
    )
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if importlib.util.find_spec(f"attnlab.cli.{name}") is None:
            continue
        module = importlib.import_module(f"attnlab.cli.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"attnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
