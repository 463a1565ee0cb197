"""``attnlab train TASK --data ... --model ...``: train, evaluate and save a run."""

from __future__ import annotations

import argparse

from attnlab.tasks import TASKS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model of a task (" + ", ".join(TASKS) + ")",
        description="Train a model on a data set, evaluate it on the held-out test split and "
        "save the run folder (safetensors weights, config, data artifacts, metrics).",
    )
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for info in TASKS.values():
        t = tasks.add_parser(
            info.name,
            help=info.description,
            description=f"Train a {info.description} model. Settings: --set section.field=value "
            "(sections train., model., data.; `attnlab ls` lists the presets).",
            epilog=f"example: attnlab train {info.name} --data {info.default_data} --out runs/demo --report",
        )
        t.add_argument(
            "--data",
            help=f"packaged data set (attnlab data list) or a data file (default {info.default_data})",
        )
        t.add_argument("--model", help="model preset, see attnlab ls")
        t.add_argument(
            "--config",
            metavar="FILE.toml",
            help="run config file (data, model, [train], [data], [model_config]); flags override it",
        )
        t.add_argument("--epochs", type=int, help="most epochs (early stopping may end sooner)")
        t.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a setting, e.g. train.lr=1e-3, model.hidden_dim=256, data.max_len=128",
        )
        for flag in info.flags:
            if flag.const is not None:
                t.add_argument(flag.flag, dest=f"flag:{flag.setting}", action="store_const",
                               const=flag.const, help=flag.help)  # fmt: skip
            else:
                t.add_argument(
                    flag.flag, dest=f"flag:{flag.setting}", metavar="VALUE", help=flag.help
                )
        t.add_argument("--devices", type=int, help="processes (CPU) or GPUs per machine (DDP)")
        t.add_argument("--num-nodes", type=int, help="machines taking part (torchrun / SLURM)")
        t.add_argument("--precision", choices=("32", "bf16-mixed"), help="numeric precision")
        t.add_argument("--out", help="run folder (default runs/DATA-MODEL)")
        t.add_argument("--report", action="store_true", help="write RUN_DIR/report.html")
        t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
        t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        t.add_argument("--debug", action="store_true", help="show tracebacks")
        t.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from attnlab.runs import make_config, read_config_file
    from attnlab.train import fit
    from attnlab.train.distributed import env_rank

    run_fields, file_overrides = read_config_file(args.config) if args.config else ({}, [])
    if run_fields.get("task", args.task) != args.task:
        raise ValueError(f"{args.config} is a {run_fields['task']!r} config, not {args.task!r}")
    flags = [
        f"{key.removeprefix('flag:')}={value}"
        for key, value in vars(args).items()
        if key.startswith("flag:") and value is not None
    ]
    engine = [
        f"train.{name}={value}"
        for name, value in (
            ("devices", args.devices),
            ("num_nodes", args.num_nodes),
            ("precision", args.precision),
        )
        if value is not None
    ]
    data = args.data or run_fields.get("data") or TASKS[args.task].default_data
    config = make_config(
        args.task,
        data,
        args.model or run_fields.get("model"),
        overrides=[*file_overrides, *flags, *engine, *args.overrides],
        epochs=args.epochs,
    )
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.data.name).stem)
    out = args.out or f"runs/{stem}-{config.model}"
    rank0 = env_rank() == 0

    def say(line: str) -> None:
        if rank0:
            print(line, flush=True)

    say(f"training {config.model} on {config.data.name} -> {out}")
    result = fit(config, out, resume=args.resume, progress=not args.no_progress, log=say)
    if result is None:  # another process of a multi-process training
        return 0
    from attnlab.tasks import get_task

    metrics = result.metrics
    print(f"{get_task(config.task).summary({**metrics['test'], 'baseline': metrics['baseline']})} "
          f"in {result.seconds:.0f} s")  # fmt: skip
    print(f"run: {result.run_dir}")
    if args.report:
        from attnlab.viz.report import write_run_report

        print(f"report: {write_run_report(result.run_dir)}")
    return 0
