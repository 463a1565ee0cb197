"""``attnlab explain RUN_DIR --faithfulness``: how faithful each explanation method of an
image run is (deletion and insertion curves on test images)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explain",
        help="measure the faithfulness of an image run's explanation maps",
        description="Without options, list the explanation methods that apply to an image "
        "run. With --faithfulness, remove (deletion) or reveal (insertion) the pixels of test "
        "images in the order each method ranks them, 10 %% at a time, record the probability "
        "of the predicted class, and print the area under each curve beside a random order "
        "and plain input-gradient saliency. The table is saved in RUN_DIR/faithfulness.json "
        "and shown by the run's report.",
        epilog="example: attnlab explain runs/fashion-mnist-vit --faithfulness --images 500",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="image run folder (attnlab train image)")
    p.add_argument("--faithfulness", action="store_true", help="measure deletion/insertion AUCs")
    p.add_argument(
        "--images",
        type=int,
        default=1000,
        metavar="N",
        help="test images measured, a seeded sample (default 1000; 0: the whole test split)",
    )
    p.add_argument(
        "--method",
        dest="methods",
        action="append",
        metavar="METHOD",
        help="method to measure (repeatable; default every method that applies)",
    )
    p.add_argument("--steps", type=int, default=10, help="curve points (default 10: 10 %% steps)")
    p.add_argument("--seed", type=int, default=0, help="sample and random-order seed")
    p.add_argument("--no-save", action="store_true", help="do not write RUN_DIR/faithfulness.json")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from attnlab.runs import load_run
    from attnlab.runs.folder import write_json
    from attnlab.tasks.image import FAITHFULNESS
    from attnlab.viz.perturbation import faithfulness

    run_ = load_run(args.run_dir, task="image")
    if not args.faithfulness:
        print(f"{run_.config.model}: explanation methods {', '.join(run_.methods)}")
        print(f"measure them with: attnlab explain {args.run_dir} --faithfulness")
        return 0
    if args.images < 0 or args.steps < 1:
        raise ValueError(f"--images must be >= 0 and --steps >= 1, got {args.images}, {args.steps}")
    for m in args.methods or []:
        if m not in run_.methods:
            raise ValueError(f"--method {m} does not apply; choose {', '.join(run_.methods)}")
    test = run_.task.load_splits(run_.config.data, seed=run_.config.train.seed).test
    n = len(test) if args.images == 0 else min(args.images, len(test))
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[:n]
    x = test.images[idx.sort().values].float().div(255)  # (N, C, H, W)
    start = time.perf_counter()
    table = faithfulness(run_.model, x, methods=args.methods, steps=args.steps, seed=args.seed)
    print(f"{run_.config.model} on {n} test images of {run_.config.data.name} "
          f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    print(table.markdown(), end="")
    if not args.no_save:
        out = run_.run_dir / FAITHFULNESS
        write_json(out, {**table.to_dict(), "steps": args.steps, "seed": args.seed})
        print(f"wrote {out} (attnlab report {args.run_dir} shows it)")
    return 0
