"""Measure the visualization targets: capture overhead on MiniLM, 2,048-token view size,
and (``--api``) the explorer API: answer sizes, latency under load, server memory.

Run:  .venv/bin/python benchmarks/viz_bench.py [--tokens 128] [--repeats 30] [--browser]
      .venv/bin/python benchmarks/viz_bench.py --api-only
Prints Markdown tables; the numbers in benchmarks/viz.md come from this script.
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


def _lists_bytes(text: str) -> int:
    """Size of the answer in the former format: every weight as a JSON number (5 decimals)."""
    import json

    from attnlab.viz import load_subject

    a = load_subject(pretrained="minilm", max_tokens=256).analyze(text)
    layers = [torch.round(w.float(), decimals=5).tolist() for w in a.weights]
    return len(json.dumps({"tokens": a.tokens, "layers": layers}))


def api_cpu(n: int = 50) -> None:
    """Process CPU time per request in one thread (independent of other load on the machine):
    capture + answer, compact encoding against the former JSON numbers."""
    import json

    from attnlab.data import load_dataset
    from attnlab.viz import HeadView, load_subject

    torch.set_num_threads(1)
    texts = load_dataset("mr").texts[:n]
    subject = load_subject(pretrained="minilm", max_tokens=256)
    subject.analyze("warm up")

    def compact(t):
        a = subject.analyze(t)
        return json.dumps(HeadView.from_analysis(a, include=("heads",)).fit(2_000_000)[0])

    def former(t):
        a = subject.analyze(t)
        return json.dumps([torch.round(w.float(), decimals=5).tolist() for w in a.weights])

    out = {}
    for name, fn in (("compact", compact), ("former", former), ("compact ", compact)):
        t0 = time.process_time()
        size = sum(len(fn(t)) for t in texts)
        out[name.strip()] = ((time.process_time() - t0) / n, size / n)
    print(f"| CPU time per `api/attention` request, {n} mr sentences, 1 thread: compact answer "
          f"| {out['compact'][0] * 1e3:.1f} ms ({out['compact'][1] / 1e3:.0f} kB) | |")  # fmt: skip
    print(
        f"| same, former JSON numbers | {out['former'][0] * 1e3:.1f} ms ({out['former'][1] / 1e3:.0f} kB) | |"
    )


def api(requests: int, concurrency: int) -> None:
    """The explorer as `attnlab explore --pretrained minilm` serves it, in its own process."""
    import json
    import time

    from attnlab.data import load_dataset
    from attnlab.explore.load import ServerProcess, hammer, post

    en = " ".join(load_dataset("mr").texts[:40])[:1000]
    zh = "".join(load_dataset("zh-reviews").texts[:40])[:1000]
    short = [{"text": t} for t in load_dataset("mr").texts[:requests]]
    print("\n| explorer API (MiniLM, `attnlab explore --pretrained minilm`) | value | target |")
    print("|---|---|---|")
    before = _lists_bytes(en)
    print(
        f"| former answer, 1,000 English characters (weights as JSON numbers) | {before / 1e6:.1f} MB | |"
    )
    for workers in (2, 1):
        with ServerProcess(["--pretrained", "minilm", "--workers", str(workers)]) as server:
            post(server.url + "api/attention", {"text": "warm up"})
            if workers == 2:
                for name, text in (("English", en), ("Chinese", zh)):
                    for endpoint in ("api/attention", "api/view"):
                        _, _, body, _ = post(server.url + endpoint, {"text": text})
                        d = json.loads(body)
                        cut = d["truncated"]
                        note = f", cut {cut['total']} -> {cut['kept']} tokens" if cut else ""
                        print(f"| `{endpoint}`, 1,000 {name} characters ({len(d['tokens'])} tokens, "
                              f"{d['bits']}-bit levels{note}) | {len(body) / 1e6:.2f} MB | <= 2 MB |")  # fmt: skip
                time.sleep(1)
                idle = server.rss()
                server.watch()
                burst = hammer(server.url + "api/attention", [{"text": en}] * 8, concurrency=8)
                peak = server.peak()
                time.sleep(1)
                after = server.rss()
                print(f"| server memory idle (after one request) | {idle / 1e6:.0f} MB | |")
                print(f"| peak during 8 concurrent 1,000-character requests ({dict(burst.statuses)}) | "
                      f"{peak / 1e6:.0f} MB = {peak / idle:.2f}x idle | <= 1.5x |")  # fmt: skip
                print(
                    f"| 1 s after that burst | {after / 1e6:.0f} MB = {after / idle:.2f}x idle | back to idle |"
                )
            server.watch()
            r = hammer(server.url + "api/attention", short, concurrency=concurrency)
            peak = server.peak()
            print(f"| {requests} short requests, {concurrency} at a time, {workers} worker(s): "
                  f"statuses {dict(r.statuses)} | p50 {r.p50:.2f} s, p99 {r.p99:.2f} s, "
                  f"{requests / r.seconds:.1f} req/s, peak {peak / 1e6:.0f} MB | all answered |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--browser", action="store_true", help="also time opening the view in Chromium")
    ap.add_argument("--api", action="store_true", help="also measure the explorer API")
    ap.add_argument("--api-only", action="store_true", help="only measure the explorer API")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.api_only:
        api(args.requests, args.concurrency)
        api_cpu()
        return
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
    if args.api:
        api(args.requests, args.concurrency)
        api_cpu()


if __name__ == "__main__":
    main()
