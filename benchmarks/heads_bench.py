"""CPU latency of pruned runs relative to the unpruned one, on the test split of its data.

All runs are timed in one process, in interleaved rounds (unpruned, pruned 1, pruned 2,
unpruned, ...), so load from other processes hits every model alike; the ratio of each
model's median to the unpruned model's median is the result. Both wall time and the
process's CPU time are reported (with one torch thread, CPU time is robust to a shared
machine). Accuracy on the same test set is printed next to it.

Run:
    PYTHONPATH=src python benchmarks/heads_bench.py RUN_DIR PRUNED_DIR... \
        [--threads 1] [--rounds 7] [--out benchmarks/heads]

Writes OUT.json and OUT.md (the Markdown table with the command that produced it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch


def _pass(model, objective) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for batch in objective.batches:
            objective.forward(model, batch)
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="unpruned run first, then pruned runs"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--rounds", type=int, default=7, help="timed passes per model (default 7)")
    p.add_argument("--batch-size", type=int, default=128, help="test batch size (default 128)")
    p.add_argument(
        "--out", default="benchmarks/heads", help="output stem (default benchmarks/heads)"
    )
    args = p.parse_args(argv)

    from attnlab.heads import count_parameters, head_layers
    from attnlab.heads.textrun import load_text_run, run_split, text_objective

    torch.set_num_threads(args.threads)
    runs = [load_text_run(r) for r in args.runs]
    test = run_split(runs[0], "test")
    objective = text_objective(runs[0], test, batch_size=args.batch_size)
    rows = []
    for path, run in zip(args.runs, runs, strict=True):
        heads = sum(x.num_heads for x in head_layers(run.model))
        rows.append({
            "run": path,
            "heads": heads,
            "parameters": count_parameters(run.model),
            "test_acc": objective.score(run.model),
            "wall": [],
            "cpu": [],
        })  # fmt: skip
    for run in runs:
        _pass(run.model, objective)  # warm-up
    for _ in range(args.rounds):
        for row, run in zip(rows, runs, strict=True):
            wall, cpu = _pass(run.model, objective)
            row["wall"].append(wall)
            row["cpu"].append(cpu)
    base = rows[0]
    for row in rows:
        row["wall_s"] = statistics.median(row["wall"])
        row["cpu_s"] = statistics.median(row["cpu"])
        row["wall_ratio"] = row["wall_s"] / statistics.median(base["wall"])
        row["cpu_ratio"] = row["cpu_s"] / statistics.median(base["cpu"])
        row["pruned"] = 1 - row["heads"] / base["heads"]

    command = "PYTHONPATH=src python benchmarks/heads_bench.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    result = {
        "command": command,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}",
        "test_examples": len(test),
        "rounds": args.rounds,
        "rows": rows,
    }
    lines = [
        f"# Head pruning: CPU latency on the {runs[0].config.data} test split",
        "",
        f"{len(test)} test sentences, batch {args.batch_size}, {result['machine']}; median of "
        f"{args.rounds} interleaved passes per model (one process).",
        "",
        "| run | heads | pruned | parameters | test acc | wall s | wall ratio | CPU s | CPU ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['heads']} | {r['pruned']:.1%} | {r['parameters']:,} | "
            f"{r['test_acc']:.2%} | {r['wall_s']:.3f} | {r['wall_ratio']:.3f} | "
            f"{r['cpu_s']:.3f} | {r['cpu_ratio']:.3f} |"
        )
    lines += ["", "Command:", "", "```bash", command, "```", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
