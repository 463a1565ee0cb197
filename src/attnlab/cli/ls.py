"""``attnlab ls``: list the registered model presets and the packaged data sets."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ls",
        help="list model presets and data sets",
        description="List the registered model presets (usable with `attnlab train`) and the "
        "packaged data sets.",
    )
    p.add_argument("--task", help="only presets of this task (e.g. text)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from attnlab.data import dataset_installed, list_datasets
    from attnlab.models import list_models
    from attnlab.tasks import TASKS

    if args.task is not None and args.task not in TASKS:
        raise ValueError(f"unknown task {args.task!r}; tasks: {', '.join(TASKS)}")
    models = list_models(args.task)
    width = max((len(m.name) for m in models), default=0)
    for task in TASKS.values():
        group = [m for m in models if m.task == task.name]
        if not group:
            continue
        print(f"{task.name} ({task.description}) presets:")
        for m in group:
            print(f"  {m.name:<{width}}  {_size(m):>7}  {m.description}")
    if args.task is None:
        print("data sets:")
        datasets = list_datasets()
        width = max(len(d.name) for d in datasets)
        for d in datasets:
            state = (
                "installed" if dataset_installed(d.name) else f"not installed ({d.install_command})"
            )
            print(f"  {d.name:<{width}}  {d.size:>6} examples  {state}")
    return 0


def _size(spec) -> str:
    """Parameters of the preset at its example dims, e.g. ``1.31M``."""
    try:
        n = spec.num_parameters()
    except (OSError, ValueError):  # e.g. a pretrained package that is not installed
        return "?"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.0f}k"
