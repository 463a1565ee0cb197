"""Training throughput of the image presets, and attnlab's ViT beside a plain-PyTorch ViT
of the same size (nn.MultiheadAttention), fp32 and bf16 autocast, measured in the same run.

Each measurement is one optimizer step (AdamW) on a fixed random batch of 28x28 grey
images: forward, cross-entropy, backward, step. Implementations are interleaved round by
round and the median step time is kept, so a change of machine load hits all of them.

    python benchmarks/vision_bench.py --threads 2 --out benchmarks/vision.md
    python benchmarks/vision_bench.py --threads 1 --clock cpu   # robust on a shared machine
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.models import create_model, get_model
from attnlab.models.vision import ImageDims, ViTConfig

DIMS = ImageDims(1, 28, 28, 10)


class PlainBlock(nn.Module):
    """Pre-norm encoder block on ``nn.MultiheadAttention`` (the PyTorch way)."""

    def __init__(self, e: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(e)
        self.attn = nn.MultiheadAttention(e, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(e)
        hidden = round(e * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(e, hidden), nn.GELU(), nn.Linear(hidden, e))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class PlainViT(nn.Module):
    """The same network as attnlab's ``vit`` preset, written with torch.nn only."""

    def __init__(self, c: ViTConfig, dims: ImageDims) -> None:
        super().__init__()
        e = c.embed_dim
        self.input_norm = nn.BatchNorm2d(dims.channels, affine=False)
        cin = dims.channels
        self.stem = nn.Identity()
        if c.stem_channels:
            self.stem = nn.Sequential(
                nn.Conv2d(cin, c.stem_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(c.stem_channels),
                nn.ReLU(inplace=True),
            )
            cin = c.stem_channels
        self.proj = nn.Conv2d(cin, e, c.patch_size, stride=c.patch_size)
        n = (dims.height // c.patch_size) * (dims.width // c.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, e))
        self.pos = nn.Parameter(torch.randn(1, n + 1, e) * 0.02)
        self.blocks = nn.ModuleList(PlainBlock(e, c.num_heads, c.mlp_ratio) for _ in range(c.depth))
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, dims.num_classes)

    def forward(self, x):
        x = self.proj(self.stem(self.input_norm(x))).flatten(2).transpose(1, 2)  # (B, N, E)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x[:, 0]))


def _step_fn(model: nn.Module, batch: int, bf16: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--presets", default="cnn,cnn-se,cnn-cbam,vit")
    p.add_argument("--out", default=None, help="write a Markdown table here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    cases: dict[str, object] = {}
    params: dict[str, int] = {}
    for name in args.presets.split(","):
        model = create_model(name, dims=DIMS)
        for bf16 in (False, True):
            key = f"{name} {'bf16' if bf16 else 'fp32'}"
            cases[key] = _step_fn(model, args.batch, bf16)
            params[key] = sum(q.numel() for q in model.parameters())
        if name == "vit":
            plain = PlainViT(get_model("vit").default_config(), DIMS)
            for bf16 in (False, True):
                key = f"plain PyTorch ViT (nn.MultiheadAttention) {'bf16' if bf16 else 'fp32'}"
                cases[key] = _step_fn(plain, args.batch, bf16)
                params[key] = sum(q.numel() for q in plain.parameters())
    for step in cases.values():  # warm-up
        step()
        step()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(args.rounds):
        for key, step in cases.items():
            t = clock()
            for _ in range(args.steps):
                step()
            times[key].append((clock() - t) / args.steps)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)

    rate = {k: args.batch / statistics.median(v) for k, v in times.items()}
    lines = [
        "| model | params | images/s | vs fp32 of the same model |",
        "|---|---|---|---|",
    ]
    for key in cases:
        base = key.rsplit(" ", 1)[0] + " fp32"
        lines.append(
            f"| {key} | {params[key]:,} | {rate[key]:,.0f} | {rate[key] / rate[base]:.2f}x |"
        )
    summary = []
    for prec in ("fp32", "bf16"):
        a, b = f"vit {prec}", f"plain PyTorch ViT (nn.MultiheadAttention) {prec}"
        if a in rate and b in rate:
            summary.append(f"attnlab vit / plain PyTorch ViT, {prec}: {rate[a] / rate[b]:.2f}x")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    what = "wall-clock" if args.clock == "wall" else "process CPU"
    head = (
        f"Training throughput (AdamW step, batch {args.batch}, 1x28x28), {what} time, "
        f"median of {args.rounds} rounds x {args.steps} steps; {cpu}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}.\n\n"
        f"Command: `python {' '.join(sys.argv)}`\n"
    )
    text = head + "\n" + "\n".join(lines) + "\n\n" + "\n".join(f"- {s}" for s in summary) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
