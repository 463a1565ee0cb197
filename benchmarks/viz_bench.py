"""Measure the visualization targets: capture overhead on MiniLM and 2,048-token view size.

Run:  .venv/bin/python benchmarks/viz_bench.py [--tokens 128] [--repeats 30] [--browser]
Prints a Markdown table; the numbers in benchmarks/viz.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def capture_overhead(tokens: int, batch: int, repeats: int) -> tuple[float, float]:
    from attnlab.models.pretrained import load_pretrained
    from attnlab.viz import capture

    model, tok = load_pretrained("minilm")
    text = " ".join(["attention"] * (tokens * 2))
    enc = tok([text] * batch, truncation=True, max_length=tokens, return_tensors="pt")
    assert enc["input_ids"].shape[1] == tokens

    def plain():
        with torch.no_grad():
            model(**enc)

    def captured():
        with torch.no_grad(), capture(model) as rec:
            model(**enc)
        assert len(rec.weights) == 6

    # interleave the two measurements so that load from other processes hits both alike
    a, b = [], []
    for _ in range(3):
        a.append(_time(plain, repeats // 3))
        b.append(_time(captured, repeats // 3))
    return min(a), min(b)


def long_matrix_view(t: int, out_dir: Path, browser: bool) -> tuple[int, int, float, float | None]:
    """A 2,048-token head-averaged layer of a random-init attnlab encoder block (near-uniform
    attention: the hardest case for compression) and of a trained-like peaked map."""
    from attnlab.layers.transformer import TransformerEncoderBlock
    from attnlab.viz import MatrixView, capture

    torch.manual_seed(0)
    block = TransformerEncoderBlock(64, 4).eval()
    x = torch.randn(1, t, 64)
    with torch.no_grad(), capture(block) as rec:
        block(x)
    w = rec.weights[0][0]  # (H, T, T)
    tokens = [f"tok{i}" for i in range(t)]
    t0 = time.perf_counter()
    path = MatrixView(w, tokens).save(out_dir / "matrix_2048.html")
    build = time.perf_counter() - t0
    peaked = torch.softmax(torch.randn(4, t, t) * 4, -1)
    path2 = MatrixView(peaked, tokens).save(out_dir / "matrix_2048_peaked.html")
    ready = None
    if browser:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                  args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            page = b.new_page()
            t0 = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("#attnlab-root[data-ready='1']", timeout=60_000)
            ready = time.perf_counter() - t0
            b.close()
    return path.stat().st_size, path2.stat().st_size, build, ready


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--browser", action="store_true", help="also time opening the view in Chromium")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    plain, captured = capture_overhead(args.tokens, args.batch, args.repeats)
    with tempfile.TemporaryDirectory() as d:
        size, size_peaked, build, ready = long_matrix_view(2048, Path(d), args.browser)
    print("| measure | value | target |")
    print("|---|---|---|")
    print(
        f"| MiniLM forward, {args.batch}x{args.tokens} tokens, no capture | {plain * 1e3:.1f} ms | |"
    )
    print(f"| same with `capture(model)` (6 layers x 12 heads) | {captured * 1e3:.1f} ms | |")
    print(f"| capture / plain | {captured / plain:.2f}x | <= 1.5x |")
    print(
        f"| matrix view, 2,048 tokens, random-init encoder layer (near-uniform) | {size / 1e6:.2f} MB | <= 5 MB |"
    )
    print(f"| matrix view, 2,048 tokens, peaked attention | {size_peaked / 1e6:.2f} MB | <= 5 MB |")
    print(f"| building + saving that view | {build:.2f} s | |")
    if ready is not None:
        print(f"| Chromium: open the 2,048-token view until drawn | {ready:.2f} s | |")


if __name__ == "__main__":
    main()
