"""Faithfulness of the explanation methods on a trained image model, plus the figures of
docs/vision.md.

Loads a preset's weights (a ``state_dict`` saved with ``torch.save``; config overrides as
``--set key=value`` with JSON values), explains the first ``--images`` Fashion-MNIST test
images with every applicable method, and writes the deletion / insertion table (Markdown
and JSON) and, with ``--figures``, the overlay grid and the HTML view.

    python benchmarks/vision_explain.py --model vit --weights vit.pt \
        --set stem_channels=16 --set embed_dim=64 --images 500 \
        --out benchmarks/vision-faithfulness.md --figures docs/img
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from attnlab.data.image_batches import to_float
from attnlab.data.images import load_images
from attnlab.models import create_model, get_model
from attnlab.models.vision import ImageDims
from attnlab.viz.explanation import applicable_methods, explain
from attnlab.viz.perturbation import faithfulness
from attnlab.viz.image_view import ImageExplanationView
from attnlab.viz.overlay import plot_explanations
from attnlab.viz.plots import save_figure


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--set", action="append", default=[], help="config override key=JSON")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="Markdown table (a .json beside it)")
    p.add_argument("--figures", default=None, help="folder for the PNG grid and HTML view")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    spec = get_model(args.model)
    over = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    config = dataclasses.replace(spec.default_config(), **over)
    test = load_images("fashion-mnist", seed=0).test
    model = create_model(args.model, config, dims=ImageDims(*test.shape, len(test.classes)))
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    x = to_float(test.images[: args.images])
    y = test.labels[: args.images]
    with torch.no_grad():
        acc = float((model(x).argmax(-1) == y).float().mean())
    t0 = time.time()
    table = faithfulness(model, x)
    seconds = time.time() - t0
    text = (
        f"`{args.model}` ({json.dumps(over) if over else 'default config'}), first "
        f"{args.images} Fashion-MNIST test images (accuracy on them {acc:.1%}); pixels "
        f"removed / revealed 10 % at a time, removed pixels set to 0 (black); probability of "
        f"the class predicted on the intact image. {seconds:.0f} s for all methods.\n\n"
        f"Command: `python {' '.join(sys.argv)}`\n\n" + table.markdown()
    )
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(text, encoding="utf-8")
        out.with_suffix(".json").write_text(
            json.dumps(
                {"model": args.model, "config": over, "accuracy": acc, **table.to_dict()}, indent=1
            ),
            encoding="utf-8",
        )
    if args.figures:
        folder = Path(args.figures)
        folder.mkdir(parents=True, exist_ok=True)
        # one example of each of the first six classes
        idx = [int((y == c).nonzero()[0]) for c in range(6)]
        xs = x[idx]
        maps = {m: explain(model, xs, m) for m in applicable_methods(model)}
        with torch.no_grad():
            prob = torch.softmax(model(xs), -1)
        labels = [
            f"{test.classes[int(k)]} ({float(prob[i, k]):.2f})"
            for i, k in enumerate(prob.argmax(-1))
        ]
        save_figure(
            plot_explanations(xs, maps, labels=labels), folder / f"{args.model}-explanations.png"
        )
        ImageExplanationView.from_model(
            model, xs, class_names=test.classes, title=f"{args.model} on Fashion-MNIST"
        ).save(folder / f"{args.model}-explanations.html")
        print(f"wrote {folder}/{args.model}-explanations.png and .html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
