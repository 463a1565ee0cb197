"""Adapters between attnlab and other libraries, imported on demand.

- :mod:`attnlab.integrations.transformers`: attnlab as the attention implementation of
  Hugging Face models (``attn_implementation="attnlab"`` after ``register()``).
"""
