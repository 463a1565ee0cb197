"""``attnlab translate RUN_DIR "text" ... [--beam N] [--alignment FILE]``: one translation
line per input line, and the alignment the attention learned."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "translate",
        help="translate sentences with a trained translate run",
        description="Print one translation per input line (an empty line for an empty line). "
        "Without TEXT, lines are read from standard input. A sentence longer than the run's "
        "maximum is cut to it, with a warning on stderr.",
        epilog='example: attnlab translate runs/de-en-transformer "Ich habe heute keine Zeit." '
        "--beam 5 --alignment align.png",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train translate`"
    )
    p.add_argument(
        "texts", nargs="*", metavar="TEXT", help="sentences (default: lines of standard input)"
    )
    p.add_argument("--beam", type=int, default=1, help="beam size (default 1: greedy search)")
    p.add_argument(
        "--alignment",
        metavar="FILE",
        help="also draw the alignment of the first sentence: a figure (.png/.svg/.pdf) or an "
        "offline view (.html)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from attnlab.runs import load_run

    if args.beam < 1:
        raise ValueError(f"--beam must be at least 1, got {args.beam}")
    lines: list[str] = []
    for text in args.texts:
        lines.extend(text.split("\n"))
    if not args.texts:
        lines = [line.rstrip("\r\n") for line in sys.stdin]
    run_ = load_run(args.run_dir, task="translate")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        done = run_.translate(lines, beam=args.beam, alignment=bool(args.alignment))
    for w in said:
        print(f"attnlab translate: warning: {w.message}", file=sys.stderr)
    for t in done:
        print(t.text)
    if args.alignment:
        from attnlab.viz.translation_view import export_alignment

        first = next((t for t in done if t.source.strip()), None)
        if first is None:
            raise ValueError("--alignment needs a non-empty sentence")
        print(f"wrote {export_alignment(first, args.alignment)}", file=sys.stderr)
    return 0
