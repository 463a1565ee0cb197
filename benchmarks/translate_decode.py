"""Beam-search decoding speed of the translation Transformer: KV cache vs recomputing the
prefix at every step (the target: cached >= 3x uncached sentences per second).

Both runs decode the same de-en test sentences with beam 5 in batches; the cached run keeps
one KVCache per decoder block (reordered when beams are reselected) and projects the
cross-attention keys/values once per sentence, the uncached one re-runs the whole decoder
on the prefix each step. The outputs must be identical. Timing uses process CPU time by
default (meaningful with 1 thread on a shared machine); ``--clock wall`` for wall time.

Run:
    .venv/bin/python benchmarks/translate_decode.py --run runs/de-en-transformer
    .venv/bin/python benchmarks/translate_decode.py --weights run/model.pt --tokenizer run/tok
    (without --weights: the preset with random weights; outputs then run to the length cap)
Writes the result as JSON and Markdown under --out (default benchmarks/translate).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="run folder of `attnlab train translate --model transformer`")
    p.add_argument("--weights", help="state dict of a trained `transformer` (torch.save)")
    p.add_argument("--tokenizer", help="folder of a saved PairTokenizer (with --weights)")
    p.add_argument("--config", default="{}", help="model config overrides as JSON")
    p.add_argument("--sentences", type=int, default=500)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    p.add_argument("--out", default="benchmarks/translate")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    from attnlab.data import PAIR_DATASETS, PairTokenizer, load_pairs, train_pair_tokenizer
    from attnlab.generate import beam_search
    from attnlab.models import get_model
    from attnlab.models.seq2seq import TranslationDims

    info = PAIR_DATASETS["de-en"]
    splits = load_pairs("de-en").split(seed=0, test=info.test_size, val=info.val_size)
    run_ = None
    if args.run:
        from attnlab.runs import load_run

        run_ = load_run(args.run, task="translate")
        if run_.config.model != "transformer":
            raise SystemExit(f"{args.run} is a {run_.config.model} run, not a transformer run")
        tok = run_.tokenizer
    elif args.tokenizer:
        tok = PairTokenizer.load(args.tokenizer)
    else:
        tok = train_pair_tokenizer(splits.train.sources, splits.train.targets, vocab_size=4000)
    spec = get_model("transformer", task="translate")
    config = spec.config_from_dict(json.loads(args.config))
    dims = TranslationDims(tok.source_vocab_size, tok.target_vocab_size, shared_vocab=tok.joint)
    torch.manual_seed(0)
    model = spec.build(config, dims).eval() if run_ is None else run_.model.eval()
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    sources = splits.test.sources[: args.sentences]
    ids = tok.encode_source(sources)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # length-bucketed batches
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    def run(use_cache: bool) -> tuple[float, list[list[int]], int]:
        out: list[list[int]] = [[] for _ in ids]
        tokens = 0
        t0 = clock()
        for s in range(0, len(order), args.batch_size):
            rows = order[s : s + args.batch_size]
            lengths = torch.tensor([len(ids[i]) for i in rows])
            src = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
            for k, i in enumerate(rows):
                src[k, : len(ids[i])] = torch.tensor(ids[i])
            state = model.encode(src, lengths, use_cache=use_cache)
            for i, h in zip(
                rows,
                beam_search(model, src, lengths, beam_size=args.beam, state=state),
                strict=True,
            ):
                out[i] = h.tokens
                tokens += len(h.tokens) + 1
        return clock() - t0, out, tokens

    with torch.no_grad():
        run(True)  # warm-up (allocator, kernels)
        t_cached, out_cached, n_tokens = run(True)
        t_plain, out_plain, _ = run(False)
    same = out_cached == out_plain
    result = {
        "command": "python "
        + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "sentences": len(sources),
        "beam": args.beam,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "clock": args.clock,
        "trained_weights": bool(args.weights or args.run),
        "output_tokens": n_tokens,
        "cached_s": round(t_cached, 2),
        "uncached_s": round(t_plain, 2),
        "cached_sent_per_s": round(len(sources) / t_cached, 2),
        "uncached_sent_per_s": round(len(sources) / t_plain, 2),
        "speedup": round(t_plain / t_cached, 2),
        "identical_outputs": same,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decode.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    if not same:
        print("ERROR: cached and uncached outputs differ", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
