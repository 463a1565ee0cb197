"""``attnlab explore (RUN_DIR | --pretrained minilm)``: the local attention explorer."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explore",
        help="start the local web explorer for a run or a pretrained model",
        description="Start a local web server (127.0.0.1 by default) with a page to type a "
        "text, run the model and see its attention (head, model and matrix views), and a "
        "JSON API (POST /api/attention). Everything stays on this machine.",
        epilog="example: attnlab explore --pretrained minilm --port 8000",
    )
    p.add_argument(
        "run_dir", nargs="?", metavar="RUN_DIR", help="run folder written by `attnlab train`"
    )
    p.add_argument("--pretrained", metavar="NAME", help="packaged pretrained model, e.g. minilm")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--max-chars", type=int, default=1000, help="longest accepted text (default 1000)"
    )
    p.add_argument(
        "--max-tokens", type=int, default=256, help="truncate inputs to this many tokens"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if (args.run_dir is None) == (args.pretrained is None):
        raise ValueError("give either RUN_DIR or --pretrained NAME (e.g. --pretrained minilm)")
    from transformers.utils import logging as hf_logging

    from attnlab.explore import serve
    from attnlab.viz.inspect import load_subject

    hf_logging.disable_progress_bar()
    if args.max_chars < 1:
        raise ValueError(f"--max-chars must be >= 1, got {args.max_chars}")
    subject = load_subject(args.run_dir, pretrained=args.pretrained, max_tokens=args.max_tokens)
    serve(subject, host=args.host, port=args.port, max_chars=args.max_chars)
    return 0
