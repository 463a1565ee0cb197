"""``attnlab predict RUN_DIR "text" ...``: label, probability and most-attended tokens;
``attnlab predict IMAGE_RUN_DIR img.png ...``: label and probability of each image."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="classify texts or images with a trained run",
        usage="attnlab predict RUN_DIR TEXT [TEXT ...] [--top N] [--max-tokens N]\n"
        "       attnlab predict IMAGE_RUN_DIR IMAGE [IMAGE ...]",
        description="For each text print one line: the predicted label, its probability and "
        "the tokens the attention pooling weighted most. A text longer than the token limit "
        "is cut, and a note on stderr says so. For an image run, give image files: one line "
        "each, the file, the label and its probability; images of another size or mode are "
        "converted (noted on stderr).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `attnlab train`")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts (or image files) to classify")
    p.add_argument("--top", type=int, default=3, help="most-attended tokens shown (default 3)")
    p.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="read at most N tokens of each text (default: the length the run was trained with)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys

    from attnlab.cli.viz import _task_of
    from attnlab.runs import load_run

    if _task_of(args.run_dir) == "image":
        return _images(args)
    from attnlab.viz.inspect import check_text, run_tokenizers

    for i, text in enumerate(args.texts, 1):
        check_text(text, "text" if len(args.texts) == 1 else f"text {i}")
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise ValueError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    run_ = load_run(args.run_dir)
    if run_.task.name != "text":
        raise ValueError(f"{args.run_dir} is a {run_.task.name!r} run; predict takes text runs")
    try:
        run_.tokenizer, counter, limit = run_tokenizers(run_, args.max_tokens)
    except ValueError as e:
        raise ValueError(str(e).replace("max_tokens", "--max-tokens")) from None
    for i, text in enumerate(args.texts, 1):
        total = len(counter.encode(text).ids)
        if total > limit:
            which = "the text" if len(args.texts) == 1 else f"text {i}"
            print(
                f"attnlab predict: note: {which} has {total} tokens; only the first {limit} "
                "are read (set with --max-tokens)",
                file=sys.stderr,
            )
    for pred in run_.predict(args.texts):
        tops = ", ".join(f"{t} ({w:.2f})" for t, w in pred.top_tokens(args.top))
        print(f"{pred.label}\t{pred.probability:.3f}\t{tops}")
    return 0


def _images(args: argparse.Namespace) -> int:
    """An image run: one line per image, ``file<TAB>label<TAB>probability``."""
    import sys

    from attnlab.runs import load_run

    run_ = load_run(args.run_dir, task="image")
    for path, pred in zip(args.texts, run_.predict(args.texts), strict=True):
        for note in pred.notes:
            print(f"attnlab predict: note: {path}: {note}", file=sys.stderr)
        print(f"{path}\t{pred.label}\t{pred.probability:.3f}")
    return 0
