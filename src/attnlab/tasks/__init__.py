"""Task families: each file holds one task's data, dims, metrics, evaluation and
prediction (text classification, translation, images, captions)."""
