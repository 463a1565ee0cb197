"""Tables, CSV, plot and the Markdown summary of a benchmark run."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

from attnlab.bench.suites import Result

__all__ = ["check_targets", "format_table", "write_csv", "write_markdown", "write_plot"]

COLUMNS = (
    "suite",
    "seq",
    "impl",
    "time_ms",
    "gflops",
    "pct_peak",
    "peak_mb",
    "compile_s",
    "speedup",
    "note",
)


def _fmt(v, nd=1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def format_table(results: list[Result], markdown: bool = False) -> str:
    """A fixed-width (or Markdown) table of the results."""
    head = [
        "suite",
        "N",
        "implementation",
        "median ms",
        "GFLOP/s",
        "% peak",
        "peak MiB",
        "compile s",
        "speed-up",
        "note",
    ]
    rows = [
        [
            r.suite,
            str(r.seq),
            r.impl,
            _fmt(r.time_ms, 2),
            _fmt(r.gflops),
            _fmt(r.pct_peak),
            _fmt(r.peak_mb),
            _fmt(r.compile_s),
            _fmt(r.speedup, 2) + ("x" if r.speedup else ""),
            r.note,
        ]
        for r in results
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
    )


def write_csv(results: list[Result], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in results:
            d = asdict(r)
            w.writerow({c: d[c] for c in COLUMNS})


def write_plot(results: list[Result], path: Path) -> None:
    """Median time per implementation, one panel per suite (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(r.suite for r in results))
    cols = min(4, len(suites))
    rows = -(-len(suites) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, suite in zip(axes.flat, suites, strict=False):
        rs = [r for r in results if r.suite == suite and r.time_ms]
        seqs = sorted({r.seq for r in rs})
        impls = list(dict.fromkeys(r.impl for r in rs))
        width = 0.8 / max(1, len(impls))
        for i, impl in enumerate(impls):
            ys = [next((r.time_ms for r in rs if r.impl == impl and r.seq == n), 0) for n in seqs]
            xs = [j + i * width for j in range(len(seqs))]
            ax.bar(xs, ys, width, label=impl[:34])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(seqs))], [str(n) for n in seqs])
        ax.set_yscale("log")
        ax.set_title(suite)
        ax.set_xlabel("batch size" if suite == "finetune" else "sequence length")
        ax.set_ylabel("median ms")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(suites) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _get(results, suite, seq, impl):
    return next((r for r in results if r.suite == suite and r.seq == seq and r.impl == impl), None)


def check_targets(results: list[Result]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the issue's targets that this run measured."""
    out: list[tuple[str, str, str]] = []

    def ratio(a, b):
        return a.time_ms / b.time_ms if a and b and a.time_ms and b.time_ms else None

    def add(name, value, ok, fmt):
        if value is not None:
            out.append((name, fmt.format(value), "met" if ok(value) else "missed"))

    r = ratio(_get(results, "dense", 4096, "sdpa"), _get(results, "dense", 4096, "attnlab auto"))
    add("dense N=4096: auto >= 0.97x SDPA throughput", r, lambda x: x >= 0.97, "{:.2f}x")
    r = ratio(_get(results, "causal", 4096, "attnlab auto"), _get(results, "dense", 4096, "sdpa"))
    add("causal N=4096: auto <= 0.55x dense SDPA time", r, lambda x: x <= 0.55, "{:.2f}x")
    w = _get(results, "window", 4096, "attnlab auto")
    if w and w.time_ms:
        add("window W=256 N=4096: auto <= 20 ms", w.time_ms, lambda x: x <= 20, "{:.1f} ms")
    r = ratio(_get(results, "window", 4096, "flex (compiled)"), w)
    add("window W=256 N=4096: >= 1.6x faster than compiled flex", r, lambda x: x >= 1.6, "{:.1f}x")
    r = ratio(_get(results, "window", 4096, "sdpa + dense mask"), w)
    add(
        "window W=256 N=4096: >= 13x faster than SDPA + dense mask", r, lambda x: x >= 13, "{:.1f}x"
    )
    r = ratio(
        _get(results, "padded", 2048, "sdpa + key padding mask"),
        _get(results, "padded", 2048, "attnlab auto"),
    )
    add(
        "padded B8 N=2048: >= 1.6x faster than SDPA + padding mask",
        r,
        lambda x: x >= 1.6,
        "{:.2f}x",
    )
    r = ratio(
        _get(results, "fwdbwd", 4096, "sdpa + dense mask"),
        _get(results, "fwdbwd", 4096, "attnlab auto"),
    )
    add(
        "fwd+bwd window W=256 N=4096: >= 5x faster than SDPA + dense mask",
        r,
        lambda x: x >= 5,
        "{:.1f}x",
    )
    ours = _get(results, "weights", 8192, "attnlab attention_weights(heads=[0])")
    eager = _get(results, "weights", 8192, "eager: attention(return_weights) [all heads]")
    sd = _get(results, "weights", 8192, "sdpa forward, one head (reference time)")
    if ours and eager and ours.peak_mb and eager.peak_mb:
        add(
            "weights 1 head N=8192: peak memory <= 1/8 eager",
            ours.peak_mb / eager.peak_mb,
            lambda x: x <= 0.125,
            "{:.3f}x",
        )
    r = ratio(ours, sd)
    add(
        "weights 1 head N=8192: time <= 2x SDPA forward of the head", r, lambda x: x <= 2, "{:.2f}x"
    )
    for batch in sorted({r.seq for r in results if r.suite == "finetune"}):
        ours = _get(results, "finetune", batch, "minilm attnlab")
        r = ours.speedup if ours else None  # samples/s against sdpa
        add(
            f"finetune MiniLM B{batch}: attnlab >= 0.97x sdpa samples/s",
            r,
            lambda x: x >= 0.97,
            "{:.3f}x",
        )
    return out


def _describe(results: list[Result]) -> str:
    text = ""
    if any(r.suite != "finetune" for r in results):
        text += (
            " fp32, B1 H8 D64 unless the suite says otherwise (padded: B8, lengths uniform in "
            "[N/4, N]; window: causal sliding window of 256 keys; document: 8 packed documents, "
            "causal). Times are medians; GFLOP/s count only the allowed (query, key) pairs; "
            "peak MiB is the tensor memory aten ops allocate (``attnlab.bench.PeakMemory``; "
            "scratch inside fused kernels is not visible). Speed-up is against the suite's "
            "first row."
        )
    if any(r.suite == "finetune" for r in results):
        text += (
            " finetune: MiniLM fine-tuning steps (forward, backward, AdamW; lr 1e-4, dropout "
            "on) on batches of `mr` sentences (MiniLM tokenizer, padded to the longest of each "
            "batch), the attnlab and sdpa copies starting from the same weights and taking "
            "turns on the same batches (ABBA) in one process; N is the batch size, the time "
            "is the median step, samples/s count all timed steps and speed-up is samples/s "
            "against sdpa; the note also gives the median over batches of the sdpa/attnlab "
            "step-time ratio (each pair ran back to back, so slow load drifts cancel). The "
            "last row is one step of the attnlab copy under `attnlab.capture.capture`."
        )
    return text


def write_markdown(
    results: list[Result], path: Path, *, command: str, machine: str, peaks: dict
) -> None:
    lines = [
        "# attnlab benchmark results",
        "",
        "Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {machine}. Matmul peak measured in this run: "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items())
        + "."
        + _describe(results),
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in check_targets(results)]
    lines += [
        "",
        "## All results",
        "",
        format_table(results, markdown=True),
        "",
        "![plot](bench.png)",
        "",
    ]
    path.write_text("\n".join(lines))
