"""A gate per attention head: forward pre-hooks that scale each head's output before the
output projection (Michel et al. 2019, Sec. 2: ``MHAtt(x) = sum_h xi_h Att_h(x)``).

Nothing is changed on the model: the hook reshapes the projection's input
``(B, T, H*D) -> (B, T, H, D)``, multiplies head ``h`` by its gate and reshapes back.
Fixed gates (0 = removed head) simulate pruning; gates that require grad give
``d loss / d xi_h`` per example, the importance score of Michel et al.

Example:
    >>> import torch
    >>> from attnlab.layers import MultiHeadAttention
    >>> mha = MultiHeadAttention(16, 4)
    >>> x = torch.randn(2, 5, 16)
    >>> with HeadGates(mha, [torch.tensor([1.0, 0.0, 1.0, 1.0])]):
    ...     y = mha(x)                      # head 1 switched off
    >>> y.shape
    torch.Size([2, 5, 16])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from attnlab.heads.locate import HeadLayer, head_layers

__all__ = ["HeadGates", "full_mask"]


def full_mask(layers: Sequence[HeadLayer]) -> list[Tensor]:
    """All-ones gate values, one ``(H_l,)`` tensor per layer."""
    return [torch.ones(layer.num_heads) for layer in layers]


class HeadGates:
    """Context manager installing one gate per head on every attention layer of a model.

    Args:
        model: the model (its layers are found with :func:`head_layers`), or one
            attention module.
        values: per layer, fixed gate values ``(H_l,)`` (1 keeps a head, 0 removes it);
            None: all ones.
        track: make a fresh gate of ones-times-``values`` per example on every call,
            requiring grad, so that ``d loss / d gate`` is available per example
            (:meth:`gate_grads`).

    Raises:
        ValueError: the model has no gateable attention layer, or ``values`` does not
            match its layers.
    """

    def __init__(
        self,
        model: nn.Module,
        values: Sequence[Tensor] | None = None,
        *,
        track: bool = False,
    ) -> None:
        self.layers = head_layers(model)
        if not self.layers:
            raise ValueError(
                f"{type(model).__name__} has no attention layer whose heads can be gated "
                "(attnlab MultiHeadAttention or a known transformers layout)"
            )
        if values is None:
            values = full_mask(self.layers)
        if len(values) != len(self.layers):
            raise ValueError(
                f"gate values given for {len(values)} layers, the model has {len(self.layers)}"
            )
        for i, (v, layer) in enumerate(zip(values, self.layers, strict=True)):
            if tuple(v.shape) != (layer.num_heads,):
                raise ValueError(
                    f"gate values of layer {i} ({layer.name}) have shape {tuple(v.shape)}, "
                    f"expected ({layer.num_heads},)"
                )
        self.values = [v.detach().float() for v in values]
        self.track = track
        self.calls: list[list[Tensor]] = [[] for _ in self.layers]
        self._handles: list = []

    def _hook(self, i: int):
        layer = self.layers[i]

        def pre(module, args):
            x = args[0]
            h, d = layer.num_heads, layer.head_dim
            if x.shape[-1] != h * d:
                raise ValueError(
                    f"{layer.name}: output projection input has {x.shape[-1]} features, "
                    f"expected {h} heads x {d}"
                )
            gate = self.values[i].to(device=x.device, dtype=x.dtype)
            if self.track:
                g = gate.expand(x.shape[0], h).clone().requires_grad_(True)  # (B, H)
                self.calls[i].append(g)
                shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (h, 1)
                gate = g.view(shape)  # (B, 1.., H, 1)
            else:
                gate = gate[:, None]  # (H, 1)
            y = x.unflatten(-1, (h, d)) * gate  # (B, T, H, D)
            return (y.flatten(-2), *args[1:])  # (B, T, H*D)

        return pre

    def __enter__(self) -> HeadGates:
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.out_proj.register_forward_pre_hook(self._hook(i)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def reset(self) -> None:
        """Forget the tracked gates of earlier calls."""
        for c in self.calls:
            c.clear()

    def gate_grads(self, loss: Tensor) -> list[Tensor]:
        """Per layer, ``d loss / d gate`` summed over calls: ``(B, H_l)`` per example.

        Only valid with ``track=True``; the tracked gates are then forgotten.
        A layer the loss does not reach gets zeros.
        """
        if not self.track:
            raise ValueError("gate_grads needs HeadGates(..., track=True)")
        flat = [g for c in self.calls for g in c]
        if not flat:
            raise ValueError("no gated forward pass ran since the last reset")
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
        out, k = [], 0
        for c, layer in zip(self.calls, self.layers, strict=True):
            total = None
            for g in c:
                gr = grads[k] if grads[k] is not None else torch.zeros_like(g)
                k += 1
                if total is None:
                    total = gr
                elif total.shape == gr.shape:  # the same examples through a shared layer
                    total = total + gr
                else:
                    total = torch.cat([total, gr])
            out.append(total if total is not None else torch.zeros(0, layer.num_heads))
        self.reset()
        return out
