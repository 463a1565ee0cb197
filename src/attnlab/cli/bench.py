"""``attnlab bench``: time attention implementations and write the results."""

from __future__ import annotations

import argparse

OP_SUITES = ("dense", "causal", "window", "document", "padded", "weights", "fwdbwd", "bf16")
SUITE_NAMES = (*OP_SUITES, "finetune")


def _ints(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not vals or any(v < 16 for v in vals):
        raise argparse.ArgumentTypeError(f"sequence lengths must be >= 16, got {text!r}")
    return vals


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark attention backends against SDPA, eager and FlexAttention",
        description="Time attnlab's attention backends against PyTorch SDPA (with the "
        "equivalent dense mask), a naive eager implementation and compiled FlexAttention; "
        "print a table and write CSV, PNG and RESULTS.md.",
    )
    p.add_argument(
        "--suite",
        default="all",
        help=f"comma-separated suites, or all (the attention suites): {', '.join(SUITE_NAMES)} "
        "(default all; finetune times MiniLM fine-tuning steps with attnlab vs sdpa attention)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=30,
        help="finetune: timed steps per implementation (default 30)",
    )
    p.add_argument("--batch", type=int, default=32, help="finetune: batch size (default 32)")
    p.add_argument(
        "--seq", type=_ints, default=[1024, 4096], help="sequence lengths (default 1024,4096)"
    )
    p.add_argument(
        "--weights-seq",
        type=_ints,
        default=[8192],
        help="sequence lengths of the weights suite (default 8192)",
    )
    p.add_argument(
        "--padded-seq",
        type=_ints,
        default=[2048],
        help="padded lengths of the padded suite (batch 8; default 2048)",
    )
    p.add_argument("--out", default="benchmarks", help="output folder (default benchmarks/)")
    p.add_argument("--no-flex", action="store_true", help="skip compiled FlexAttention")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time (default), or process CPU time: with --threads 1 it stays "
        "meaningful while other processes share the cores",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import platform
    import shlex
    import sys
    from pathlib import Path

    import torch

    from attnlab.bench import matmul_peak, run_suites
    from attnlab.bench.report import format_table, write_csv, write_markdown, write_plot

    suites = list(OP_SUITES) if args.suite == "all" else [s.strip() for s in args.suite.split(",")]
    unknown = [s for s in suites if s not in SUITE_NAMES]
    if unknown:
        raise ValueError(f"unknown suite(s) {unknown}; expected all or {', '.join(SUITE_NAMES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.steps < 1 or args.batch < 1:
        raise ValueError(f"--steps and --batch must be >= 1, got {args.steps} and {args.batch}")
    peaks = {"fp32": matmul_peak(torch.float32, clock=args.clock)}
    if "bf16" in suites:
        peaks["bf16"] = matmul_peak(torch.bfloat16, clock=args.clock)
    print(f"matmul peak: {', '.join(f'{k} {v:.1f} GFLOP/s' for k, v in peaks.items())}", flush=True)

    def log(r):
        note = f"  {r.note}" if r.suite == "finetune" else ""
        print(f"  {r.suite:9s} N={r.seq:<6d} {r.impl:44s} {r.time_ms:9.2f} ms{note}", flush=True)

    results = run_suites(
        suites,
        args.seq,
        weights_seqs=args.weights_seq,
        padded_seqs=args.padded_seq,
        flex=not args.no_flex,
        peaks=peaks,
        clock=args.clock,
        log=log,
        finetune={"steps": args.steps, "batch_size": args.batch},
    )
    print()
    print(format_table(results))
    write_csv(results, out / "bench.csv")
    write_plot(results, out / "bench.png")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    machine = (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"{'process CPU time' if args.clock == 'cpu' else 'wall-clock time'}"
    )
    command = (
        "attnlab " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv[1:2] == ["bench"]
        else "attnlab bench"
    )
    write_markdown(results, out / "RESULTS.md", command=command, machine=machine, peaks=peaks)
    print(f"\nwrote {out / 'bench.csv'}, {out / 'bench.png'}, {out / 'RESULTS.md'}")
    return 0
