"""``attnlab explore (RUN_DIR | --pretrained minilm)``: the local attention explorer."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explore",
        help="start the local web explorer for a run or a pretrained model",
        description="Start a local web server (127.0.0.1 by default) with a page to type a "
        "text, run the model and see its attention (head, model and matrix views), and a "
        "JSON API (POST /api/attention). Everything stays on this machine: only requests "
        "addressed to 127.0.0.1:PORT or localhost:PORT are answered.",
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
        "--max-tokens",
        type=int,
        metavar="N",
        help="cut longer inputs to N tokens, and say so (default: 256 for a pretrained "
        "model, the training length for a run)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="requests run at the same time (default 2)"
    )
    p.add_argument(
        "--queue",
        type=int,
        default=64,
        help="requests that may wait for a worker; more are answered 503 (default 64)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to NAME (with --host other than 127.0.0.1)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if (args.run_dir is None) == (args.pretrained is None):
        raise ValueError("give either RUN_DIR or --pretrained NAME (e.g. --pretrained minilm)")
    for name, value, lo, hi in (
        ("--max-chars", args.max_chars, 1, 100_000),
        ("--workers", args.workers, 1, 16),
        ("--queue", args.queue, 0, 1024),
        ("--max-tokens", args.max_tokens, 1, None),
    ):
        if value is not None and (value < lo or (hi is not None and value > hi)):
            bound = f"in {lo}..{hi}" if hi is not None else f"at least {lo}"
            raise ValueError(f"{name} must be {bound}, got {value}")
    from transformers.utils import logging as hf_logging

    from attnlab.explore import serve
    from attnlab.viz.inspect import load_subject

    hf_logging.disable_progress_bar()
    max_tokens = args.max_tokens
    if max_tokens is None and args.pretrained:
        max_tokens = 256  # keeps every answer of the page under its size budget
    try:
        subject = load_subject(args.run_dir, pretrained=args.pretrained, max_tokens=max_tokens)
    except ValueError as e:
        raise ValueError(str(e).replace("max_tokens", "--max-tokens")) from None
    serve(
        subject,
        host=args.host,
        port=args.port,
        max_chars=args.max_chars,
        workers=args.workers,
        queue=args.queue,
        allowed_hosts=tuple(args.allow_host),
    )
    return 0
