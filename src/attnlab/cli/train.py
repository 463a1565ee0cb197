"""``attnlab train text --data mr --model bilstm-attn``: train, evaluate, save a run."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model (text classification)",
        description="Train a model on a data set and save the run folder.",
    )
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    t = tasks.add_parser(
        "text",
        help="text classification",
        description="Train a text classifier, evaluate it on the held-out test split and "
        "save weights (safetensors), config and tokenizer in the run folder.",
        epilog="example: attnlab train text --data mr --model bilstm-attn --out runs/demo --report",
    )
    t.add_argument(
        "--data",
        help="packaged data set (attnlab data list) or a .csv/.tsv/.jsonl file (default mr)",
    )
    t.add_argument("--model", help="model preset, see attnlab ls (default bilstm-attn)")
    t.add_argument(
        "--config",
        metavar="FILE.toml",
        help="run config file (data, model, [train], [model_config]); flags override it",
    )
    t.add_argument("--epochs", type=int, help="most epochs (early stopping may end sooner)")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. train.lr=1e-3 or model.hidden_dim=256 (repeatable)",
    )
    t.add_argument("--out", help="run folder (default runs/DATA-MODEL)")
    t.add_argument("--report", action="store_true", help="write RUN_DIR/report.html")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    t.add_argument("--test-data", help="separate test file (default: test split of --data)")
    t.add_argument("--text-column", help="text column of a data file (default text)")
    t.add_argument("--label-column", help="label column of a data file (default label)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--debug", action="store_true", help="show tracebacks")
    t.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import logging
    import re
    import warnings
    from pathlib import Path

    import lightning  # noqa: F401  (sets its loggers up; quieted below)

    from attnlab.train import make_config, read_config_file, train_text

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*litlogger.*")
    run_fields, file_overrides = read_config_file(args.config) if args.config else ({}, [])

    def pick(name: str, default: str | None) -> str | None:
        value = getattr(args, name)
        return value if value is not None else run_fields.get(name, default)

    config = make_config(
        pick("data", "mr"),
        pick("model", "bilstm-attn"),
        overrides=[*file_overrides, *args.overrides],
        epochs=args.epochs,
        test_data=pick("test_data", None),
        text_column=pick("text_column", "text"),
        label_column=pick("label_column", "label"),
    )
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.data).stem)
    out = args.out or f"runs/{stem}-{config.model}"
    print(f"training {config.model} on {config.data} -> {out}", flush=True)
    result = train_text(
        config,
        out,
        report=args.report,
        resume=args.resume,
        progress=not args.no_progress,
        log=lambda s: print(s, flush=True),
    )
    m = result.metrics
    base = m["baseline"]
    print(
        f"test accuracy: {m['test_acc']:.2%}  (macro-F1 {m['test_f1']:.2%}, "
        f"{m['test_n']} examples; TF-IDF + LR baseline {base['accuracy']:.2%}) "
        f"in {result.seconds:.0f} s"
    )
    print(f"run: {result.run_dir}")
    if result.report is not None:
        print(f"report: {result.report}")
    return 0
