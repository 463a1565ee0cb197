"""What a capture holds: one entry per call of a recorded module, each with its role.

Validity (which queries and keys are real, not padding) is derived from the mask the
attention actually used, per role: in ``self`` attention a padding key is also a padding
query; in ``cross`` and ``pool`` attention the queries come from elsewhere, so their
validity is only what the mask says about its rows. Entries are stored whole (padding
included); :meth:`Recording.example` strips the padding of one example.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from attnlab.layers.core import ATTENTION_ROLES, GATE_ROLES, check_role
from attnlab.ops import masks as M

__all__ = ["Entry", "Recording", "check_gate", "validity"]


@dataclass(frozen=True)
class Entry:
    """One recorded call (see :class:`Recording` for the fields)."""

    name: str
    role: str
    weights: Tensor
    heads: list[int]
    query_valid: Tensor | None
    key_valid: Tensor | None


@dataclass
class Recording:
    """What :func:`attnlab.capture.capture` recorded; one entry per call of a module.

    The lists below are parallel: entry ``i`` is ``names[i]``, ``roles[i]``,
    ``weights[i]``, ... (``rec[i]`` gives them as one :class:`Entry`).

    Attributes:
        weights: per role: ``self``/``cross``/``pool`` ``(B, H', Tq, Tk)`` float tensors
            (``H'`` the selected heads); ``channel-gate`` ``(B, C)``; ``spatial``
            ``(B, H, W)``. Detached, padding included.
        names: module name of each entry (a module called twice appears twice).
        roles: ``"self"``, ``"cross"``, ``"pool"``, ``"channel-gate"`` or ``"spatial"``,
            set where the attention is recorded.
        heads: head indices held by each entry (``[]`` for gates, which are not heads).
        query_valid: ``(B, Tq)`` bool, False at padding queries (None for gates).
        key_valid: ``(B, Tk)`` bool, False at padding keys (None for gates).
        tokens: per example, the input tokens without padding (set when a tokenizer
            was given and the model was called with ``input_ids``), else None.
    """

    weights: list[Tensor] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    heads: list[list[int]] = field(default_factory=list)
    query_valid: list[Tensor | None] = field(default_factory=list)
    key_valid: list[Tensor | None] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    tokens: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.weights)

    def __getitem__(self, i: int) -> Entry:
        return Entry(
            self.names[i],
            self.roles[i],
            self.weights[i],
            self.heads[i],
            self.query_valid[i],
            self.key_valid[i],
        )

    def __iter__(self) -> Iterator[Entry]:
        return (self[i] for i in range(len(self)))

    def add(self, entry: Entry) -> None:
        """Append one entry (used by the recorders)."""
        self.names.append(entry.name)
        self.roles.append(entry.role)
        self.weights.append(entry.weights)
        self.heads.append(entry.heads)
        self.query_valid.append(entry.query_valid)
        self.key_valid.append(entry.key_valid)

    def by_role(self, *roles: str) -> Recording:
        """The entries with one of ``roles``, as a new recording (tensors shared).

        Example:
            >>> rec = Recording()
            >>> rec.by_role("self", "cross").roles
            []

        Raises:
            ValueError: an unknown role.
        """
        for r in roles:
            check_role(r)
        out = Recording(tokens=self.tokens)
        for e in self:
            if e.role in roles:
                out.add(e)
        return out

    def example(self, b: int = 0) -> list[Tensor]:
        """Entry by entry, example ``b`` with its padding removed.

        Returns:
            Per entry: ``(H', Tq_b, Tk_b)`` for ``self``/``cross``/``pool`` attention
            (padding queries and keys removed; real rows are never dropped),
            ``(C,)`` for a ``channel-gate`` and ``(H, W)`` for a ``spatial`` map.
        """
        out = []
        for e in self:
            w = e.weights
            if not -w.shape[0] <= b < w.shape[0]:
                raise ValueError(f"example {b} out of range for batch size {w.shape[0]}")
            if e.role in GATE_ROLES:
                out.append(w[b])  # (C,) or (H, W)
                continue
            qv, kv = e.query_valid[b], e.key_valid[b]
            out.append(w[b][:, qv][:, :, kv])  # (H', Tq_b, Tk_b)
        return out

    def stacked(self, b: int = 0) -> Tensor:
        """Example ``b`` as one ``(L, H', T, T)`` tensor (all entries must agree in shape)."""
        maps = self.example(b)
        shapes = {tuple(m.shape) for m in maps}
        if len(shapes) != 1:
            raise ValueError(
                f"entries differ in shape {sorted(shapes)}; pick one kind with "
                f"by_role('self') or use example() instead"
            )
        return torch.stack(maps)  # (L, H', T, T)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        for lst in (
            self.weights,
            self.names,
            self.heads,
            self.query_valid,
            self.key_valid,
            self.roles,
        ):
            lst.clear()
        self.tokens = None


def _allowed_rows_keys(mask, causal, window, tq: int, tk: int, device) -> tuple[Tensor, Tensor]:
    """(rows (B|1, Tq), keys (B|1, Tk)) of a mask: rows that see some key, keys some row sees.

    For interval masks the keys are the hull of the row intervals, so nothing of size
    ``Tq x Tk`` is built.
    """
    typed, bias = M.from_args(mask, causal, window)
    rows = torch.ones(1, tq, dtype=torch.bool, device=device)
    keys = torch.ones(1, tk, dtype=torch.bool, device=device)
    iv = typed.intervals(tq, tk, device=device) if typed is not None and bias is None else None
    if iv is not None:
        lo, hi = iv  # (B|1, Tq)
        rows = lo <= hi
        kpos = torch.arange(tk, device=device)
        start = torch.where(rows, lo, torch.full_like(lo, tk)).amin(-1, keepdim=True)
        end = torch.where(rows, hi, torch.full_like(hi, -1)).amax(-1, keepdim=True)
        keys = (kpos >= start) & (kpos <= end)  # (B|1, Tk)
    elif typed is not None or bias is not None:
        allowed = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=device)
        if typed is not None:
            allowed = typed.dense(tq, tk, device=device)  # (B|1, H|1, Tq|1, Tk|1)
        if bias is not None:
            finite = bias > torch.finfo(bias.dtype).min / 2
            while finite.dim() < 4:
                finite = finite[None]
            allowed = allowed & finite  # (B|1, H|1, Tq|1, Tk|1)
        allowed = allowed.expand(-1, -1, tq, tk).any(1)  # (B|1, Tq, Tk)
        rows, keys = allowed.any(-1), allowed.any(-2)
    return rows, keys


def validity(
    mask,
    causal: bool,
    window,
    b: int,
    tq: int,
    tk: int,
    device,
    role: str,
) -> tuple[Tensor, Tensor]:
    """``(query_valid (B, Tq), key_valid (B, Tk))`` implied by an attention's mask and role.

    A key is valid when some query may attend to it; a query when its row may attend to
    something. In ``self`` attention the queries are the last ``Tq`` of the key
    positions (bottom-right, as in KV-cache decoding), so a padding key is also a padding
    query. ``cross`` and ``pool`` queries take nothing from the key padding.
    """
    check_role(role, ATTENTION_ROLES)
    rows, keys = _allowed_rows_keys(mask, causal, window, tq, tk, device)
    q_valid, k_valid = rows.expand(b, tq).clone(), keys.expand(b, tk).clone()
    if role == "self" and tq <= tk:
        q_valid &= k_valid[:, tk - tq :]
    return q_valid, k_valid


def check_gate(name: str, role: str, w: Tensor) -> None:
    """Raise unless a gate has the shape its role promises."""
    want = {"channel-gate": (2, "(B, C)"), "spatial": (3, "(B, H, W)")}[role]
    if w.dim() != want[0]:
        raise ValueError(
            f"{name} ({role}) got a tensor of shape {tuple(w.shape)}; expected {want[1]}"
        )
