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

    models = list_models(args.task)
    print("models:")
    width = max((len(m.name) for m in models), default=0)
    for m in models:
        print(f"  {m.name:<{width}}  [{m.task}]  {m.description}")
    print("data sets:")
    datasets = list_datasets()
    width = max(len(d.name) for d in datasets)
    for d in datasets:
        state = "installed" if dataset_installed(d.name) else f"not installed ({d.install_command})"
        print(f"  {d.name:<{width}}  {d.size:>6} examples  {state}")
    return 0
