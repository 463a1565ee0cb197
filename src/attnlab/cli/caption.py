"""``attnlab caption RUN_DIR image.png ... [--beam N] [--overlay FILE]``: one caption line
per image, and where each word looked."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "caption",
        help="caption images with a trained caption run",
        description="Print one caption per image (an empty line for an image without ink). "
        "Images of another size or mode are converted, scaled to fit and padded; dark strokes "
        "on a light background are inverted; each such change is noted on stderr.",
        epilog="example: attnlab caption runs/digits-caption-cnn-gru-attn digits.png --overlay words.png",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train caption`"
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--beam", type=int, default=1, help="beam size (default 1: greedy search)")
    p.add_argument(
        "--overlay",
        metavar="FILE",
        help="also write each word's attention: a figure (.png/.svg/.pdf) or an offline view (.html)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from attnlab.runs import load_run

    if args.beam < 1:
        raise ValueError(f"--beam must be at least 1, got {args.beam}")
    run_ = load_run(args.run_dir, task="caption")
    captions = run_.caption(args.images, beam=args.beam)
    for path, cap in zip(args.images, captions, strict=True):
        for note in cap.notes:
            print(f"attnlab caption: note: {path}: {note}", file=sys.stderr)
        print(cap.text)
    if args.overlay:
        from attnlab.viz.caption_view import export_captions

        out = export_captions(captions, args.overlay, labels=[Path(p).name for p in args.images])
        print(f"wrote {out}", file=sys.stderr)
    return 0
