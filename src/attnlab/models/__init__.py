"""Ready models that use attention, one family per file, plus a registry of presets.

Example:
    >>> from attnlab.models import create_model, list_models
    >>> [m.name for m in list_models("text")]
    ['bilstm-attn', 'transformer', 'minilm']
    >>> [m.name for m in list_models("translate")]
    ['gru', 'gru-bahdanau', 'gru-luong', 'transformer']
"""

from __future__ import annotations

from attnlab.models.registry import MODELS, ModelSpec, create_model, get_model, list_models

__all__ = ["MODELS", "ModelSpec", "create_model", "get_model", "list_models"]
