"""Benchmark harness behind ``attnlab bench``: timing, useful FLOP/s against a matmul
peak measured in the same run, peak tensor memory, and the suites comparing attnlab's
backends with PyTorch SDPA, a naive eager implementation and compiled FlexAttention."""

from attnlab.bench.harness import PeakMemory, matmul_peak, measure
from attnlab.bench.suites import SUITES, Result, run_suites

__all__ = ["SUITES", "PeakMemory", "Result", "matmul_peak", "measure", "run_suites"]
