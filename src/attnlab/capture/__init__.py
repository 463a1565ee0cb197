"""Record attention from running models, with the role of each attention.

Example:
    >>> import torch
    >>> from attnlab.capture import capture
    >>> from attnlab.layers import TransformerDecoderBlock
    >>> from attnlab.ops import masks as M
    >>> block = TransformerDecoderBlock(16, 2).eval()
    >>> y, memory = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    >>> with torch.no_grad(), capture(block) as rec:
    ...     _ = block(y, memory, memory_mask=M.Padding(torch.tensor([5, 3])))
    >>> rec.roles
    ['self', 'cross']
    >>> [tuple(w.shape) for w in rec.example(1)]   # all 5 target rows, 3 real sources
    [(2, 5, 5), (2, 5, 3)]
"""

from attnlab.capture.recorder import CaptureWarning, attention_modules, capture
from attnlab.capture.recording import Entry, Recording
from attnlab.layers.core import ROLES

__all__ = ["ROLES", "CaptureWarning", "Entry", "Recording", "attention_modules", "capture"]
