"""The ``finetune`` suite of ``attnlab bench``: MiniLM fine-tuning steps with attnlab as
the model's attention implementation against PyTorch SDPA.

Two copies of the packaged MiniLM classifier (same initial weights) take turns on the
same batches of ``mr`` sentences (MiniLM tokenizer, padded to the longest of each batch,
the way fine-tuning runs): one step is forward, backward and an AdamW update. The order
alternates every round (ABBA), so drifts in machine load fall on both alike. Reported:
median step time and samples per second of each, and one step of the attnlab copy under
:func:`attnlab.capture.capture`, checking that it records every attention without
the eager path running.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F

from attnlab.bench.harness import CLOCKS
from attnlab.bench.suites import Result

__all__ = ["IMPLS", "run_finetune"]

IMPLS = ("sdpa", "attnlab")


def _batches(batch_size: int, steps: int, max_length: int, seed: int):
    from attnlab.data import load_dataset
    from attnlab.models.pretrained import load_pretrained

    data = load_dataset("mr")
    _, tok = load_pretrained("minilm")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=g).tolist()
    out = []
    for s in range(steps):
        idx = [order[(s * batch_size + i) % len(order)] for i in range(batch_size)]
        enc = tok([data.texts[i] for i in idx], padding=True, truncation=True,
                  max_length=max_length, return_tensors="pt")  # fmt: skip
        labels = torch.tensor([data.labels[i] for i in idx])
        out.append((enc["input_ids"], enc["attention_mask"].sum(1), labels))
    return out


def _models(seed: int) -> dict:
    from attnlab.models.minilm import MiniLMClassifier, MiniLMConfig

    models = {}
    for impl in IMPLS:
        torch.manual_seed(seed)
        models[impl] = MiniLMClassifier(MiniLMConfig(attn_implementation=impl), num_classes=2)
    models["attnlab"].load_state_dict(models["sdpa"].state_dict())
    return {
        impl: (m.train(), torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01))
        for impl, m in models.items()
    }


def _step(model, opt, batch) -> None:
    ids, lengths, labels = batch
    loss = F.cross_entropy(model(ids, lengths), labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _capture_check(model, opt, batch, tick) -> tuple[float, str]:
    """One training step under capture: (seconds, note) — entries and eager calls seen."""
    from transformers.models.bert import modeling_bert

    from attnlab.capture import capture

    eager_calls = []
    original = modeling_bert.eager_attention_forward

    def counting(*args, **kwargs):
        eager_calls.append(1)
        return original(*args, **kwargs)

    modeling_bert.eager_attention_forward = counting
    try:
        t0 = tick()
        with capture(model) as rec:
            _step(model, opt, batch)
        dt = tick() - t0
    finally:
        modeling_bert.eager_attention_forward = original
    roles = ", ".join(f"{rec.roles.count(r)} {r}" for r in dict.fromkeys(rec.roles))
    impl = model.encoder.config._attn_implementation
    return dt, (
        f"capture recorded {len(rec)} entries ({roles}); attn_implementation {impl!r}, "
        f"eager attention calls: {len(eager_calls)}"
    )


def run_finetune(
    *,
    steps: int = 30,
    warmup: int = 3,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 0,
    clock: str = "wall",
    log: Callable[[Result], None] = lambda r: None,
) -> list[Result]:
    """Interleaved fine-tuning steps of MiniLM with ``attnlab`` and ``sdpa`` attention.

    Returns:
        One :class:`Result` per implementation (``time_ms`` the median step; samples/s
        over all timed steps in ``extra`` and the note; ``speedup`` that over sdpa's) and
        one for the captured step.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps} and {warmup}")
    tick = CLOCKS[clock]
    batches = _batches(batch_size, warmup + steps + 1, max_length, seed)
    models = _models(seed)
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    tokens = 0
    for s, batch in enumerate(batches[:-1]):
        order = IMPLS if s % 2 == 0 else IMPLS[::-1]
        for impl in order:
            t0 = tick()
            _step(*models[impl], batch)
            if s >= warmup:
                times[impl].append(tick() - t0)
        if s >= warmup:
            tokens += int(batch[0].numel())
    base = sum(times["sdpa"])
    # same batch, back to back: the ratio of each pair cancels slow drifts in machine load
    paired = statistics.median(a / b for a, b in zip(times["sdpa"], times["attnlab"], strict=True))
    results = []
    for impl in IMPLS:
        total = sum(times[impl])
        sps = batch_size * steps / total
        note = f"{sps:.1f} samples/s"
        if impl == "attnlab":
            note += f"; median of per-batch ratios {paired:.3f}x"
        r = Result(
            "finetune",
            batch_size,
            f"minilm {impl}",
            statistics.median(times[impl]) * 1e3,
            None,
            None,
            None,
            speedup=base / total,
            note=note,
            extra={"samples_per_s": sps, "steps": steps, "padded_tokens": tokens},
        )
        log(r)
        results.append(r)
    dt, note = _capture_check(*models["attnlab"], batches[-1], tick)
    r = Result("finetune", batch_size, "minilm attnlab + capture (1 step)", dt * 1e3, None,
               None, None, note=note)  # fmt: skip
    log(r)
    results.append(r)
    return results
