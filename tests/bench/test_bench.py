"""The benchmark harness and `attnlab bench` on tiny sizes (no timing assertions)."""

from __future__ import annotations

import csv

import torch

from attnlab.bench import PeakMemory, measure, run_suites
from attnlab.bench.report import check_targets, format_table
from attnlab.bench.suites import Result
from attnlab.cli.main import main


def test_peak_memory_counts_live_allocations_not_views():
    with PeakMemory() as mem:
        a = torch.zeros(1000)  # 4000 bytes
        b = a.view(10, 100)  # a view: no new storage
        c = a + 1  # 4000 more
        del c
        d = torch.ones(500)  # 2000, after c was freed
    assert mem.peak == 8000 and mem.largest == 4000 and mem.largest_shape == (1000,)
    assert b.shape == (10, 100) and d.numel() == 500


def test_measure_returns_a_positive_median():
    for clock in ("wall", "cpu"):
        assert (
            measure(lambda: torch.randn(64, 64) @ torch.randn(64, 64), repeats=3, clock=clock) > 0
        )


def test_suites_run_and_report_every_implementation():
    results = run_suites(
        ["window", "padded", "weights"],
        [64],
        weights_seqs=[64],
        padded_seqs=[48],
        flex=False,
        peaks={"fp32": 10.0},
    )
    impls = {(r.suite, r.impl) for r in results}
    assert ("window", "attnlab auto") in impls and ("padded", "sdpa + key padding mask") in impls
    for r in results:
        if r.impl.startswith("flex"):
            assert r.time_ms is None and "disabled" in r.note
        else:
            assert r.time_ms > 0 and r.gflops > 0 and r.peak_mb is not None, r
    assert "attnlab auto" in format_table(results)


def test_targets_are_checked_from_results():
    rs = [
        Result("window", 4096, "attnlab auto", 10.0, 1, 1, 1),
        Result("window", 4096, "sdpa + dense mask", 200.0, 1, 1, 1),
        Result("window", 4096, "flex (compiled)", 12.0, 1, 1, None),
    ]
    verdicts = {name: verdict for name, _, verdict in check_targets(rs)}
    assert verdicts["window W=256 N=4096: >= 13x faster than SDPA + dense mask"] == "met"
    assert verdicts["window W=256 N=4096: >= 1.6x faster than compiled flex"] == "missed"


def test_cli_writes_table_csv_plot_and_markdown(tmp_path, capsys):
    rc = main(
        ["bench", "--suite", "dense,bf16", "--seq", "32", "--no-flex", "--out", str(tmp_path)]
    )
    assert rc == 0
    assert "attnlab auto" in capsys.readouterr().out
    with open(tmp_path / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["suite"] for r in rows} == {"dense", "bf16"}
    assert (tmp_path / "bench.png").stat().st_size > 1000
    text = (tmp_path / "RESULTS.md").read_text()
    assert "attnlab bench" in text and "| dense |" in text


def test_cli_rejects_unknown_suites(capsys):
    assert main(["bench", "--suite", "nope", "--seq", "32", "--no-flex"]) == 2
    assert "unknown suite" in capsys.readouterr().err
