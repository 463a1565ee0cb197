"""Adapters between attnlab and other libraries, imported on demand.

- :mod:`attnlab.integrations.transformers`: attnlab as the attention implementation of
  Hugging Face models (``attn_implementation="attnlab"`` after ``register()``).
- :mod:`attnlab.integrations.hf_heads`: the attention heads of Hugging Face layouts, found
  and shrunk for head pruning.
"""
