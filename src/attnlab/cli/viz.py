"""``attnlab viz (RUN_DIR | --pretrained minilm) "text" --view ... --out FILE``."""

from __future__ import annotations

import argparse

VIEWS = ("head", "model", "matrix", "rollout", "text")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "viz",
        help="draw the attention of a model on a text (HTML view or PNG/SVG/PDF figure)",
        usage="attnlab viz (RUN_DIR | --pretrained NAME) TEXT --out FILE [--view VIEW] [options]\n"
        "       attnlab viz CAPTION_RUN_DIR IMAGE [IMAGE ...] --out FILE [--beam N]\n"
        "       attnlab viz TRANSLATE_RUN_DIR TEXT --out FILE [--beam N]\n"
        "       attnlab viz IMAGE_RUN_DIR IMAGE [IMAGE ...] --out FILE [--method METHOD]",
        description="Run a trained run (RUN_DIR) or a packaged pretrained model on TEXT and "
        "write one attention view. The suffix of --out picks the kind: .html is an offline "
        "interactive view, .png/.svg/.pdf a static figure. For a caption run, give images: "
        "the view shows where each generated word looked (click a word). For a translate run, "
        "the source x target alignment of the translation of TEXT (hover a target token). "
        "For an image classification run, give images: a figure shows each image with its map "
        "by --method; the HTML view offers every method that applies (pick method, layer and "
        "head).",
        epilog='example: attnlab viz --pretrained minilm "The cat sat on the mat." '
        "--view head --out head.html",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="ARG",
        help="RUN_DIR TEXT, or only TEXT with --pretrained",
    )
    p.add_argument("--pretrained", metavar="NAME", help="packaged pretrained model, e.g. minilm")
    p.add_argument("--pair", metavar="TEXT", help="second sentence of a pair (pretrained models)")
    p.add_argument("--view", choices=VIEWS, default="head", help="what to draw (default head)")
    p.add_argument(
        "--layer", type=int, default=-1, help="layer index, negative from the end (default -1)"
    )
    p.add_argument("--head", type=int, help="head index (default: heads combined with --agg)")
    p.add_argument("--agg", choices=("mean", "max"), default="mean", help="head aggregation")
    p.add_argument("--theme", choices=("light", "dark"), default="light", help="HTML theme")
    p.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="cut longer inputs to N tokens, and say so (default: the model's limit, 512 for "
        "minilm; for a run, the length it was trained with)",
    )
    p.add_argument(
        "--beam",
        type=int,
        default=1,
        help="caption and translate runs: beam size (default 1: greedy search)",
    )
    p.add_argument(
        "--method",
        metavar="METHOD",
        help="image runs: rollout, flow, grad-rollout, attention (ViT), cbam (CBAM), gradient "
        "(any); default the first that applies",
    )
    p.add_argument("--out", required=True, metavar="FILE", help=".html, .png, .svg or .pdf")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from transformers.utils import logging as hf_logging

    from attnlab.viz.export import export
    from attnlab.viz.inspect import load_subject

    hf_logging.disable_progress_bar()

    task = None if args.pretrained or not args.inputs else _task_of(args.inputs[0])
    if task == "caption":
        return _caption(args)
    if task == "translate":
        return _translate(args)
    if task == "image":
        return _image(args)
    if args.method is not None:
        raise ValueError("--method applies to image runs only")
    want = 1 if args.pretrained else 2
    if len(args.inputs) != want:
        shape = '--pretrained NAME "TEXT"' if args.pretrained else 'RUN_DIR "TEXT"'
        raise ValueError(
            f"expected {shape}, got {len(args.inputs)} positional arguments: {args.inputs}"
        )
    run_dir = None if args.pretrained else args.inputs[0]
    if args.max_tokens is not None and args.max_tokens < 1:
        raise ValueError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    try:
        subject = load_subject(run_dir, pretrained=args.pretrained, max_tokens=args.max_tokens)
    except ValueError as e:
        raise ValueError(str(e).replace("max_tokens", "--max-tokens")) from None
    analysis = subject.analyze(args.inputs[-1], args.pair)
    if analysis.truncated is not None:
        print(f"attnlab viz: note: {analysis.truncated.message('--max-tokens')}", file=sys.stderr)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        path = export(
            analysis,
            args.view,
            args.out,
            layer=args.layer,
            head=args.head,
            agg=args.agg,
            theme=args.theme,
        )
    for w in said:  # e.g. no font for some characters: one line, no source location
        print(f"attnlab viz: warning: {w.message}", file=sys.stderr)
    if analysis.best:
        label, p = analysis.best
        print(f"prediction: {label} ({p:.3f})")
    print(f"wrote {path}")
    return 0


def _task_of(run_dir: str) -> str | None:
    """The task a run folder's ``config.json`` names (None: not readable as a run)."""
    import json
    from pathlib import Path

    try:
        meta = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("task") if isinstance(meta, dict) else None


def _caption(args: argparse.Namespace) -> int:
    """A caption run on images: each generated word's attention (figure or HTML view)."""
    import sys
    from pathlib import Path

    from attnlab.runs import load_run
    from attnlab.viz.caption_view import export_captions

    images = args.inputs[1:]
    if not images:
        raise ValueError("expected CAPTION_RUN_DIR IMAGE [IMAGE ...]: give at least one image")
    if args.beam < 1:
        raise ValueError(f"--beam must be at least 1, got {args.beam}")
    run_ = load_run(args.inputs[0], task="caption")
    captions = run_.caption(images, beam=args.beam)
    for path, cap in zip(images, captions, strict=True):
        for note in cap.notes:
            print(f"attnlab viz: note: {path}: {note}", file=sys.stderr)
        print(f"{Path(path).name}: {cap.text}")
    out = export_captions(captions, args.out, labels=[Path(p).name for p in images])
    print(f"wrote {out}")
    return 0


def _translate(args: argparse.Namespace) -> int:
    """A translate run on a sentence: the source x target alignment (figure or HTML view)."""
    import sys
    import warnings

    from attnlab.runs import load_run
    from attnlab.viz.translation_view import export_alignment

    if len(args.inputs) != 2:
        raise ValueError(
            f'expected TRANSLATE_RUN_DIR "TEXT", got {len(args.inputs)} positional arguments'
        )
    if args.beam < 1:
        raise ValueError(f"--beam must be at least 1, got {args.beam}")
    text = args.inputs[1]
    if not text.strip():
        raise ValueError("TEXT is empty: give a sentence to translate")
    run_ = load_run(args.inputs[0], task="translate")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        t = run_.alignment(text, beam=args.beam)
        path = export_alignment(t, args.out)
    for w in said:
        print(f"attnlab viz: warning: {w.message}", file=sys.stderr)
    print(f"translation: {t.text}")
    print(f"wrote {path}")
    return 0


def _image(args: argparse.Namespace) -> int:
    """An image-classification run on images: explanation maps (figure or HTML view)."""
    import sys
    from pathlib import Path

    from attnlab.runs import load_run
    from attnlab.viz.image_view import export_explanations

    images = args.inputs[1:]
    if not images:
        raise ValueError("expected IMAGE_RUN_DIR IMAGE [IMAGE ...]: give at least one image")
    run_ = load_run(args.inputs[0], task="image")
    if args.method is not None and args.method not in run_.methods:
        raise ValueError(
            f"--method {args.method} does not apply to a {run_.config.model} run; "
            f"choose {', '.join(run_.methods)}"
        )
    x, notes = run_.prepare(images)
    preds = run_.predict(x)
    labels = []
    for path, n, pred in zip(images, notes, preds, strict=True):
        for note in n:
            print(f"attnlab viz: note: {path}: {note}", file=sys.stderr)
        print(f"{Path(path).name}: {pred.label} ({pred.probability:.3f})")
        labels.append(f"{Path(path).name}: {pred.label} ({pred.probability:.2f})")
    out = export_explanations(
        run_.model, x, args.out, method=args.method, class_names=run_.classes, labels=labels
    )
    print(f"wrote {out}")
    return 0
