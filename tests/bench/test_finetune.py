"""The finetune suite on a tiny run (no timing assertions)."""

from __future__ import annotations

import pytest

from attnlab.bench.finetune import run_finetune
from attnlab.bench.report import check_targets, format_table


@pytest.mark.slow
def test_finetune_suite_times_both_and_captures_without_eager():
    results = run_finetune(steps=1, warmup=0, batch_size=4, max_length=32, clock="cpu")
    assert [r.impl for r in results] == [
        "minilm sdpa",
        "minilm attnlab",
        "minilm attnlab + capture (1 step)",
    ]
    assert all(r.time_ms > 0 for r in results)
    assert results[0].speedup == 1.0 and results[1].speedup > 0
    assert results[1].extra["samples_per_s"] > 0 and "samples/s" in results[1].note
    note = results[2].note
    assert "7 entries (6 self, 1 pool)" in note and "eager attention calls: 0" in note
    assert "'attnlab'" in note
    ((name, measured, verdict),) = [t for t in check_targets(results) if "finetune" in t[0]]
    assert name == "finetune MiniLM B4: attnlab >= 0.97x sdpa samples/s"
    assert verdict in ("met", "missed") and measured.endswith("x")
    assert "minilm attnlab" in format_table(results)


def test_finetune_arguments_are_checked():
    with pytest.raises(ValueError, match="steps must be >= 1 and warmup >= 0, got 0 and 3"):
        run_finetune(steps=0)
