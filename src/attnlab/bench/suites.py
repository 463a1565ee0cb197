"""The benchmark suites of ``attnlab bench``.

Each suite builds, for one sequence length, the workload (fp32, B1 H8 D64 unless said
otherwise) and the implementations to compare: attnlab (``auto`` and named backends),
PyTorch SDPA given the equivalent dense mask, a naive eager implementation, and compiled
FlexAttention where ``torch.compile`` works.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from attnlab.bench.harness import PeakMemory, attention_flops, measure
from attnlab.ops import attention, attention_weights, explain
from attnlab.ops import masks as M
from attnlab.ops.reference import reference_attention

__all__ = ["MODEL_SUITES", "SUITES", "Case", "Result", "run_suites"]

SUITES = ("dense", "causal", "window", "document", "padded", "weights", "fwdbwd", "bf16")
#: Suites that time whole models rather than one attention call (see :mod:`.finetune`).
MODEL_SUITES = ("finetune",)
HEADS, DIM, WINDOW = 8, 64, 256


@dataclass
class Case:
    """One implementation of one workload; ``fn`` None means skipped (see ``note``)."""

    impl: str
    fn: Callable[[], object] | None
    flops: float
    note: str = ""
    compiled: bool = False  # first call compiles: time it apart, skip memory tracking
    baseline: bool = False  # the row speed-ups are measured against
    group: str = ""  # speed-ups compare rows of the same group


@dataclass
class Result:
    suite: str
    seq: int
    impl: str
    time_ms: float | None
    gflops: float | None
    pct_peak: float | None
    peak_mb: float | None
    compile_s: float | None = None
    speedup: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def _qkv(b, n, dtype=torch.float32, grad=False):
    g = torch.Generator().manual_seed(n)
    return [
        torch.randn(b, HEADS, n, DIM, generator=g, dtype=torch.float32)
        .to(dtype)
        .requires_grad_(grad)
        for _ in range(3)
    ]


def _auto_note(q, k, v, **kw) -> str:
    return f"auto -> {explain(q, k, v, **kw).backend}"


class _Flex:
    """Compiled FlexAttention, or the reason it cannot run here."""

    def __init__(self, enabled: bool) -> None:
        self.fn = None
        self.why = "disabled (--no-flex)"
        if not enabled:
            return
        try:
            import torch._dynamo
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention

            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(torch._dynamo.config, name):
                    setattr(torch._dynamo.config, name, 256)
            self.create_block_mask = create_block_mask
            self.fn = torch.compile(flex_attention, dynamic=False)
            q = torch.randn(1, 1, 128, 16)
            self.fn(q, q, q)  # fails fast where compilation is unavailable
            self.why = ""
        except Exception as e:
            self.fn = None
            self.why = f"torch.compile unavailable: {type(e).__name__}: {str(e)[:120]}"

    def case(self, q, k, v, mask_mod, flops, b=None, backward=False) -> Case:
        if self.fn is None:
            return Case("flex (compiled)", None, flops, note=self.why)
        bm = None
        if mask_mod is not None:
            n = q.shape[2]
            bm = self.create_block_mask(mask_mod, b, None, n, k.shape[2], device="cpu")
        fn = self.fn
        if backward:
            g = torch.randn_like(q)

            def step():
                fn(q, k, v, block_mask=bm).backward(g)

            return Case("flex (compiled)", step, flops, compiled=True)
        return Case("flex (compiled)", lambda: fn(q, k, v, block_mask=bm), flops, compiled=True)


def _window_pairs(n: int, w: int) -> int:
    i = torch.arange(n)
    return int((torch.clamp(i, max=w) + 1).sum())


def suite_dense(n, flex):
    q, k, v = _qkv(1, n)
    fl = attention_flops(n * n, HEADS, DIM, DIM)
    return [
        Case("sdpa", lambda: F.scaled_dot_product_attention(q, k, v), fl, baseline=True),
        Case("attnlab auto", lambda: attention(q, k, v), fl, _auto_note(q, k, v)),
        Case("eager", lambda: reference_attention(q, k, v), fl),
        flex.case(q, k, v, None, fl),
    ]


def suite_causal(n, flex):
    q, k, v = _qkv(1, n)
    fl = attention_flops(n * (n + 1) / 2, HEADS, DIM, DIM)
    dense = M.Causal().dense(n, n)
    return [
        Case(
            "sdpa is_causal",
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            fl,
            baseline=True,
        ),
        Case(
            "attnlab auto",
            lambda: attention(q, k, v, causal=True),
            fl,
            _auto_note(q, k, v, causal=True),
        ),
        Case(
            "attnlab blocksparse",
            lambda: attention(q, k, v, causal=True, backend="blocksparse"),
            fl,
        ),
        Case("eager", lambda: reference_attention(q, k, v, mask=dense), fl),
        flex.case(q, k, v, lambda b, h, i, j: j <= i, fl),
    ]


def _masked_suite(q, k, v, mask, fl, flex, mask_mod, *, b=None, sdpa_mask=None, label="dense mask"):
    dense = mask.dense(q.shape[2], k.shape[2]) if sdpa_mask is None else sdpa_mask
    return [
        Case(
            f"sdpa + {label}",
            lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=dense),
            fl,
            baseline=True,
        ),
        Case(
            "attnlab auto",
            lambda: attention(q, k, v, mask=mask),
            fl,
            _auto_note(q, k, v, mask=mask),
        ),
        Case(
            "eager",
            lambda: reference_attention(q, k, v, mask=mask.dense(q.shape[2], k.shape[2])),
            fl,
        ),
        flex.case(q, k, v, mask_mod, fl, b=b),
    ]


def suite_window(n, flex):
    q, k, v = _qkv(1, n)
    mask = M.Window(WINDOW, 0)
    fl = attention_flops(_window_pairs(n, WINDOW), HEADS, DIM, DIM)
    return _masked_suite(q, k, v, mask, fl, flex, lambda b, h, i, j: (j <= i) & (i - j <= WINDOW))


def _documents(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(n + 1)
    cuts = torch.sort(torch.randperm(n - 1, generator=g)[:7] + 1).values
    ids = torch.zeros(n, dtype=torch.long)
    ids[cuts] = 1
    return ids.cumsum(0)  # (N,) 8 documents of random lengths


def suite_document(n, flex):
    q, k, v = _qkv(1, n)
    ids = _documents(n)
    mask = M.Document(ids) & M.Causal()
    lens = torch.bincount(ids).double()
    fl = attention_flops(float((lens * (lens + 1) / 2).sum()), HEADS, DIM, DIM)
    return _masked_suite(q, k, v, mask, fl, flex, lambda b, h, i, j: (ids[i] == ids[j]) & (j <= i))


def suite_padded(n, flex):
    g = torch.Generator().manual_seed(n + 2)
    lengths = torch.randint(n // 4, n + 1, (8,), generator=g)
    q, k, v = _qkv(8, n)
    mask = M.Padding(lengths)
    fl = attention_flops(float(lengths.sum()) * n, HEADS, DIM, DIM)
    keep = (torch.arange(n) < lengths[:, None])[:, None, None]  # (B, 1, 1, N) key padding
    return _masked_suite(
        q,
        k,
        v,
        mask,
        fl,
        flex,
        lambda b, h, i, j: j < lengths[b],
        b=8,
        sdpa_mask=keep,
        label="key padding mask",
    )


def suite_weights(n, flex):
    q, k, v = _qkv(1, n)
    fl = 2 * DIM * n * n  # the scores of one head
    one = [t[:, :1] for t in (q, k, v)]
    return [
        Case(
            "eager: attention(return_weights) [all heads]",
            lambda: attention(q, k, v, return_weights=True)[1][:, :1],
            fl,
            baseline=True,
        ),
        Case("eager: reference, one head", lambda: reference_attention(*one)[1], fl),
        Case(
            "attnlab attention_weights(heads=[0])", lambda: attention_weights(q, k, heads=[0]), fl
        ),
        Case(
            "sdpa forward, one head (reference time)",
            lambda: F.scaled_dot_product_attention(*one),
            2 * fl,
        ),
    ]


def suite_fwdbwd(n, flex):
    q, k, v = _qkv(1, n, grad=True)
    g = torch.randn_like(q)
    mask = M.Window(WINDOW, 0)
    dense = mask.dense(n, n)
    fl = attention_flops(_window_pairs(n, WINDOW), HEADS, DIM, DIM, backward=True)

    def step(f):
        return lambda: f().backward(g)

    return [
        Case(
            "sdpa + dense mask",
            step(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=dense)),
            fl,
            baseline=True,
        ),
        Case(
            "attnlab auto",
            step(lambda: attention(q, k, v, mask=mask)),
            fl,
            _auto_note(q, k, v, mask=mask),
        ),
        Case("eager", step(lambda: reference_attention(q, k, v, mask=dense)[0]), fl),
        flex.case(q, k, v, lambda b, h, i, j: (j <= i) & (i - j <= WINDOW), fl, backward=True),
    ]


def suite_bf16(n, flex):
    q, k, v = _qkv(1, n, dtype=torch.bfloat16)
    mask = M.Window(WINDOW, 0)
    dense = mask.dense(n, n)
    fd = attention_flops(n * n, HEADS, DIM, DIM)
    fw = attention_flops(_window_pairs(n, WINDOW), HEADS, DIM, DIM)
    return [
        Case("dense: sdpa", lambda: F.scaled_dot_product_attention(q, k, v), fd, baseline=True),
        Case("dense: attnlab auto", lambda: attention(q, k, v), fd, _auto_note(q, k, v)),
        Case(
            "window: sdpa + dense mask",
            lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=dense),
            fw,
            baseline=True,
            group="window",
        ),
        Case(
            "window: attnlab auto",
            lambda: attention(q, k, v, mask=mask),
            fw,
            _auto_note(q, k, v, mask=mask),
            group="window",
        ),
    ]


BUILDERS = {
    "dense": suite_dense,
    "causal": suite_causal,
    "window": suite_window,
    "document": suite_document,
    "padded": suite_padded,
    "weights": suite_weights,
    "fwdbwd": suite_fwdbwd,
    "bf16": suite_bf16,
}


def _run_case(suite, n, case, peak_gflops, log, clock) -> Result:
    if case.fn is None:
        return Result(suite, n, case.impl, None, None, None, None, note=case.note)
    compile_s = None
    try:
        if case.compiled:
            t0 = time.perf_counter()
            case.fn()
            compile_s = time.perf_counter() - t0
        t = measure(case.fn, clock=clock)
        if compile_s is not None:
            compile_s = max(0.0, compile_s - t)
        peak_mb = None
        if not case.compiled:
            with PeakMemory() as mem:
                case.fn()
            peak_mb = mem.peak / 2**20
    except Exception as e:
        return Result(
            suite,
            n,
            case.impl,
            None,
            None,
            None,
            None,
            note=f"failed: {type(e).__name__}: {str(e)[:100]}",
        )
    gf = case.flops / t / 1e9
    r = Result(
        suite, n, case.impl, t * 1e3, gf, 100 * gf / peak_gflops, peak_mb, compile_s, note=case.note
    )
    log(r)
    return r


def run_suites(
    suites: list[str],
    seqs: list[int],
    *,
    weights_seqs: list[int],
    padded_seqs: list[int] | None = None,
    flex: bool = True,
    peaks: dict[str, float],
    clock: str = "wall",
    log: Callable[[Result], None] = lambda r: None,
    finetune: dict | None = None,
) -> list[Result]:
    """Run ``suites`` at each sequence length (the weights suite at ``weights_seqs``, the
    padded one at ``padded_seqs``, default ``seqs``); ``peaks`` maps "fp32"/"bf16" to
    GFLOP/s. ``finetune`` holds keyword arguments of
    :func:`attnlab.bench.finetune.run_finetune` for the ``finetune`` suite."""
    lengths = {"weights": weights_seqs, "padded": padded_seqs or seqs}
    ops_only = ("weights", "bf16", *MODEL_SUITES)
    fx = _Flex(flex) if any(s not in ops_only for s in suites) else _Flex(False)
    results: list[Result] = []
    for suite in suites:
        if suite == "finetune":
            from attnlab.bench.finetune import run_finetune

            results.extend(run_finetune(clock=clock, log=log, **(finetune or {})))
            continue
        for n in lengths.get(suite, seqs):
            torch.manual_seed(n)
            cases = BUILDERS[suite](n, fx)
            peak = peaks["bf16" if suite == "bf16" else "fp32"]
            rows = [_run_case(suite, n, c, peak, log, clock) for c in cases]
            bases = {c.group: r for r, c in zip(rows, cases, strict=True) if c.baseline}
            for r, c in zip(rows, cases, strict=True):
                base = bases.get(c.group)
                if base is not None and base.time_ms and r.time_ms:
                    r.speedup = base.time_ms / r.time_ms
            results.extend(rows)
    return results
