"""Adapters to other libraries (Hugging Face ``transformers`` module layouts, ...)."""
