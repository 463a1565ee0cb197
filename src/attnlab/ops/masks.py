"""Typed attention masks.

Every mask here is a boolean predicate over ``(batch, head, query, key)`` with
**True = attend**. A typed mask is preferred to a dense tensor because a backend can ask
which key blocks it leaves empty (and skip them) without building the ``Tq x Tk``
matrix.

Alignment: when ``Tq != Tk`` the queries are the *last* ``Tq`` positions of the key
sequence (bottom-right alignment), so query ``i`` sits at key position
``i' = i + Tk - Tq``. This is what KV-cache decoding needs.

Example:
    >>> import torch
    >>> from attnlab.ops import masks as M
    >>> m = M.Padding(torch.tensor([3, 5])) & M.Causal()
    >>> m.dense(5, 5).shape
    torch.Size([2, 1, 5, 5])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "And",
    "Causal",
    "Custom",
    "Document",
    "Mask",
    "Or",
    "Padding",
    "Window",
    "from_args",
]


def _positions(tq: int, tk: int, device: torch.device | None) -> tuple[Tensor, Tensor]:
    """Query positions in key coordinates (Tq,) and key positions (Tk,)."""
    qpos = torch.arange(tq, device=device) + (tk - tq)
    kpos = torch.arange(tk, device=device)
    return qpos, kpos


class Mask:
    """Base class of typed masks. Subclasses implement :meth:`dense` and, when the
    allowed keys of every query row form one contiguous range, :meth:`intervals`."""

    #: Batch size the mask was built for, or None when it is the same for every example.
    batch_size: int | None = None
    #: True when the mask is only a stored dense tensor (nothing to materialise).
    is_dense_tensor: bool = False

    def dense(self, tq: int, tk: int, *, device: torch.device | None = None) -> Tensor:
        """Boolean mask of shape ``(B|1, H|1, Tq, Tk)``; True = attend."""
        iv = self.intervals(tq, tk, device=device)
        if iv is None:  # pragma: no cover - every subclass overrides one of the two
            raise NotImplementedError
        lo, hi = iv  # (B|1, Tq)
        kpos = torch.arange(tk, device=device)
        m = (kpos >= lo[..., None]) & (kpos <= hi[..., None])  # (B|1, Tq, Tk)
        return m[:, None]  # (B|1, 1, Tq, Tk)

    def intervals(
        self, tq: int, tk: int, *, device: torch.device | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """Inclusive key range ``[lo, hi]`` per query row, each ``(B|1, Tq)`` int64.

        Returns None when the allowed keys of a row need not be contiguous. A row with
        ``lo > hi`` attends to nothing.
        """
        return None

    def validate(self, batch: int, tq: int, tk: int) -> None:
        """Raise ValueError when the mask cannot apply to these sizes."""
        if self.batch_size is not None and self.batch_size not in (1, batch):
            raise ValueError(
                f"{self!r} was built for batch size {self.batch_size}, but q has batch size {batch}"
            )

    def blocks(
        self,
        tq: int,
        tk: int,
        block_q: int,
        block_k: int,
        *,
        device: torch.device | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Which ``block_q x block_k`` tiles hold allowed entries.

        Returns ``(any, full)``, both bool ``(B|1, H|1, nQ, nK)``: ``any`` is True where
        the tile has at least one allowed entry (tiles with ``any`` False can be skipped),
        ``full`` where every entry of the tile is allowed (no mask needed there).
        Partial tiles at the edges count only their real rows and columns.
        """
        nq, nk = -(-tq // block_q), -(-tk // block_k)
        iv = self.intervals(tq, tk, device=device)
        if iv is not None:
            lo, hi = iv  # (B|1, Tq)
            c0 = torch.arange(nk, device=device) * block_k  # (nK,)
            c1 = torch.clamp(c0 + block_k, max=tk) - 1
            row_any = torch.maximum(lo[..., None], c0) <= torch.minimum(hi[..., None], c1)
            row_full = (lo[..., None] <= c0) & (hi[..., None] >= c1)  # (B|1, Tq, nK)
            pad = nq * block_q - tq
            row_any = torch.nn.functional.pad(row_any, (0, 0, 0, pad), value=False)
            row_full = torch.nn.functional.pad(row_full, (0, 0, 0, pad), value=True)
            b = row_any.shape[0]
            any_ = row_any.view(b, nq, block_q, nk).any(2)  # (B|1, nQ, nK)
            full = row_full.view(b, nq, block_q, nk).all(2)
            return any_[:, None], full[:, None]
        d = self.dense(tq, tk, device=device)  # (B|1, H|1, Tq, Tk)
        pq, pk = nq * block_q - tq, nk * block_k - tk
        b, h = d.shape[:2]
        padded_any = torch.nn.functional.pad(d, (0, pk, 0, pq), value=False)
        padded_all = torch.nn.functional.pad(d, (0, pk, 0, pq), value=True)
        any_ = padded_any.view(b, h, nq, block_q, nk, block_k).any(5).any(3)
        full = padded_all.view(b, h, nq, block_q, nk, block_k).all(5).all(3)
        return any_, full

    def __and__(self, other: Mask) -> Mask:
        if not isinstance(other, Mask):
            return NotImplemented
        return And(self, other)

    def __or__(self, other: Mask) -> Mask:
        if not isinstance(other, Mask):
            return NotImplemented
        return Or(self, other)


class Causal(Mask):
    """Query ``i`` attends to keys ``j <= i + Tk - Tq`` (bottom-right aligned)."""

    def intervals(self, tq, tk, *, device=None):
        qpos, _ = _positions(tq, tk, device)
        return torch.zeros_like(qpos)[None], qpos[None]

    def __repr__(self) -> str:
        return "Causal()"


class Window(Mask):
    """Sliding window: keys ``i' - left <= j <= i' + right`` with ``i' = i + Tk - Tq``.

    Args:
        left: keys visible before the query position (None: unbounded).
        right: keys visible after it (None: unbounded). ``Window(w, 0)`` is a causal
            sliding window of ``w + 1`` keys.
    """

    def __init__(self, left: int | None, right: int | None) -> None:
        for name, val in (("left", left), ("right", right)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
                raise ValueError(f"Window {name} must be a non-negative int or None, got {val!r}")
        self.left, self.right = left, right

    def intervals(self, tq, tk, *, device=None):
        qpos, _ = _positions(tq, tk, device)
        lo = qpos - self.left if self.left is not None else torch.zeros_like(qpos)
        hi = qpos + self.right if self.right is not None else torch.full_like(qpos, tk - 1)
        return lo.clamp(min=0)[None], hi.clamp(max=tk - 1)[None]

    def __repr__(self) -> str:
        return f"Window({self.left}, {self.right})"


class Padding(Mask):
    """Key padding: example ``b`` attends only to its ``lengths[b]`` real keys.

    Args:
        lengths: int tensor ``(B,)`` (or a list) of valid key counts.
        side: where the padding sits: ``"right"`` (the real keys come first, the usual
            encoder batch) or ``"left"`` (the real keys are the last ``lengths[b]``, as in
            left-padded decoder batches).
    """

    def __init__(
        self, lengths: Tensor | list[int] | tuple[int, ...], *, side: str = "right"
    ) -> None:
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1:
            raise ValueError(f"Padding lengths must be 1-D (B,), got shape {tuple(lengths.shape)}")
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError(f"Padding lengths must be integers, got {lengths.dtype}")
        if (lengths < 0).any():
            raise ValueError(f"Padding lengths must be >= 0, got {lengths.tolist()}")
        if side not in ("right", "left"):
            raise ValueError(f"Padding side must be 'right' or 'left', got {side!r}")
        self.lengths = lengths.long()
        self.side = side
        self.batch_size = lengths.shape[0]

    def validate(self, batch, tq, tk):
        super().validate(batch, tq, tk)
        longest = int(self.lengths.max()) if self.lengths.numel() else 0
        if longest > tk:
            raise ValueError(f"Padding length {longest} exceeds the key length Tk={tk}")

    def intervals(self, tq, tk, *, device=None):
        lengths = self.lengths.to(device)
        b = lengths.shape[0]
        if self.side == "left":
            lo = (tk - lengths)[:, None].expand(b, tq)
            hi = torch.full((b, tq), tk - 1, dtype=torch.long, device=device)
            return lo, hi
        lo = torch.zeros(b, tq, dtype=torch.long, device=device)
        hi = (lengths - 1)[:, None].expand(b, tq)
        return lo, hi

    def __repr__(self) -> str:
        side = ", side='left'" if self.side == "left" else ""
        return f"Padding({self.lengths.tolist()}{side})"


class Document(Mask):
    """Attend only within the same segment (packed sequences).

    Args:
        ids: int tensor ``(B, Tk)`` of segment ids per key position. Queries take the ids
            of the last ``Tq`` key positions (bottom-right aligned) unless ``q_ids`` is given.
        q_ids: optional ``(B, Tq)`` segment ids of the queries (cross attention).
    """

    def __init__(self, ids: Tensor, q_ids: Tensor | None = None) -> None:
        ids = torch.as_tensor(ids)
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2:
            raise ValueError(f"Document ids must be (B, T), got shape {tuple(ids.shape)}")
        if ids.dtype.is_floating_point:
            raise TypeError(f"Document ids must be integers, got {ids.dtype}")
        if q_ids is not None:
            q_ids = torch.as_tensor(q_ids)
            q_ids = q_ids[None] if q_ids.dim() == 1 else q_ids
            if q_ids.dim() != 2 or q_ids.shape[0] != ids.shape[0]:
                raise ValueError(
                    f"Document q_ids must be (B, Tq) with B={ids.shape[0]}, "
                    f"got shape {tuple(q_ids.shape)}"
                )
        self.ids, self.q_ids = ids, q_ids
        self.batch_size = ids.shape[0] if ids.shape[0] > 1 else None
        # Contiguous segments (each id in a single run) make every row an interval.
        self._contiguous = q_ids is None and _runs_are_unique(ids)

    def validate(self, batch, tq, tk):
        super().validate(batch, tq, tk)
        if self.ids.shape[-1] != tk:
            raise ValueError(
                f"Document ids have length {self.ids.shape[-1]}, but the key length is Tk={tk}"
            )
        if self.q_ids is not None and self.q_ids.shape[-1] != tq:
            raise ValueError(
                f"Document q_ids have length {self.q_ids.shape[-1]}, but the query length is Tq={tq}"
            )
        if self.q_ids is None and tq > tk:
            raise ValueError(f"Document needs q_ids when Tq={tq} exceeds Tk={tk}")

    def _query_ids(self, tq: int, tk: int, device) -> Tensor:
        if self.q_ids is not None:
            return self.q_ids.to(device)
        return self.ids.to(device)[:, tk - tq :]

    def dense(self, tq, tk, *, device=None):
        kid = self.ids.to(device)
        qid = self._query_ids(tq, tk, device)
        return (qid[:, :, None] == kid[:, None, :])[:, None]  # (B, 1, Tq, Tk)

    def intervals(self, tq, tk, *, device=None):
        if not self._contiguous:
            return None
        kid = self.ids.to(device)  # (B, Tk)
        b = kid.shape[0]
        pos = torch.arange(tk, device=device).expand(b, tk)
        new_run = torch.ones_like(kid, dtype=torch.bool)
        new_run[:, 1:] = kid[:, 1:] != kid[:, :-1]
        # start of the run containing each position: cumulative max of run starts
        starts = torch.where(new_run, pos, torch.zeros_like(pos)).cummax(1).values
        end_run = torch.ones_like(new_run)
        end_run[:, :-1] = new_run[:, 1:]
        ends = torch.where(end_run, pos, torch.full_like(pos, tk)).flip(1).cummin(1).values.flip(1)
        return starts[:, tk - tq :], ends[:, tk - tq :]

    def __repr__(self) -> str:
        return f"Document(ids={tuple(self.ids.shape)})"


def _runs_are_unique(ids: Tensor) -> bool:
    """True when each segment id occupies one contiguous run in every row."""
    for row in ids:
        runs = torch.unique_consecutive(row)
        if runs.numel() != torch.unique(row).numel():
            return False
    return True


class Custom(Mask):
    """A mask from a function of positions or from a dense boolean tensor.

    Args:
        fn_or_tensor: either ``fn(q_idx, k_idx) -> bool tensor`` called with ``q_idx``
            of shape ``(Tq, 1)`` (in key coordinates, i.e. bottom-right aligned) and
            ``k_idx`` of shape ``(1, Tk)``, or a bool tensor broadcastable to
            ``(B, H, Tq, Tk)`` with True = attend.
    """

    def __init__(self, fn_or_tensor: Callable[[Tensor, Tensor], Tensor] | Tensor) -> None:
        if isinstance(fn_or_tensor, Tensor):
            if fn_or_tensor.dtype != torch.bool:
                raise TypeError(
                    f"Custom mask tensor must be bool (True = attend), got {fn_or_tensor.dtype}"
                )
            if fn_or_tensor.dim() > 4:
                raise ValueError(
                    f"Custom mask tensor has {fn_or_tensor.dim()} dims; at most 4 (B, H, Tq, Tk)"
                )
            t = fn_or_tensor
            while t.dim() < 4:
                t = t[None]
            self.tensor: Tensor | None = t
            self.fn = None
            self.batch_size = t.shape[0] if t.shape[0] > 1 else None
            self.is_dense_tensor = True
        elif callable(fn_or_tensor):
            self.tensor, self.fn = None, fn_or_tensor
        else:
            raise TypeError(f"Custom expects a callable or a bool tensor, got {type(fn_or_tensor)}")

    def validate(self, batch, tq, tk):
        super().validate(batch, tq, tk)
        if self.tensor is not None:
            t = self.tensor.shape
            if t[-2] not in (1, tq) or t[-1] not in (1, tk):
                raise ValueError(
                    f"mask of shape {tuple(t)} is not broadcastable to (B, H, Tq, Tk) = "
                    f"({batch}, H, {tq}, {tk})"
                )

    def dense(self, tq, tk, *, device=None):
        if self.tensor is not None:
            t = self.tensor
            return t.to(device).expand(t.shape[0], t.shape[1], tq, tk)
        qpos, kpos = _positions(tq, tk, device)
        out = torch.as_tensor(self.fn(qpos[:, None], kpos[None, :]), device=device)
        if out.dtype != torch.bool:
            raise TypeError(f"Custom mask function must return a bool tensor, got {out.dtype}")
        while out.dim() < 4:
            out = out[None]
        return out.expand(*out.shape[:2], tq, tk)

    def __repr__(self) -> str:
        if self.tensor is not None:
            return f"Custom(tensor{tuple(self.tensor.shape)})"
        return f"Custom({getattr(self.fn, '__name__', 'fn')})"


class _Combined(Mask):
    def __init__(self, *parts: Mask) -> None:
        flat: list[Mask] = []
        for p in parts:
            flat.extend(p.parts if type(p) is type(self) else [p])  # type: ignore[attr-defined]
        self.parts = flat
        sizes = {p.batch_size for p in flat if p.batch_size is not None}
        if len(sizes) > 1:
            raise ValueError(f"cannot combine masks built for batch sizes {sorted(sizes)}")
        self.batch_size = sizes.pop() if sizes else None

    def validate(self, batch, tq, tk):
        for p in self.parts:
            p.validate(batch, tq, tk)

    def __repr__(self) -> str:
        return f" {self._op} ".join(repr(p) for p in self.parts).join("()")


class And(_Combined):
    """Entries allowed by every part."""

    _op = "&"

    def dense(self, tq, tk, *, device=None):
        iv = self.intervals(tq, tk, device=device)
        if iv is not None:
            return super().dense(tq, tk, device=device)
        out = self.parts[0].dense(tq, tk, device=device)
        for p in self.parts[1:]:
            out = out & p.dense(tq, tk, device=device)
        return out

    def intervals(self, tq, tk, *, device=None):
        ivs = [p.intervals(tq, tk, device=device) for p in self.parts]
        if any(iv is None for iv in ivs):
            return None
        lo = ivs[0][0]
        hi = ivs[0][1]
        for a, b in ivs[1:]:
            lo, hi = torch.maximum(lo, a), torch.minimum(hi, b)
        return lo, hi


class Or(_Combined):
    """Entries allowed by any part."""

    _op = "|"

    def dense(self, tq, tk, *, device=None):
        out = self.parts[0].dense(tq, tk, device=device)
        for p in self.parts[1:]:
            out = out | p.dense(tq, tk, device=device)
        return out


def from_args(
    mask: Mask | Tensor | None,
    causal: bool = False,
    window: int | tuple[int | None, int | None] | None = None,
) -> tuple[Mask | None, Tensor | None]:
    """Normalise the ``mask``/``causal``/``window`` arguments of :func:`attention`.

    Returns ``(typed_mask, bias)``: a bool tensor becomes ``Custom(tensor)``; a float
    tensor is returned as an additive ``bias``.
    """
    parts: list[Mask] = []
    bias = None
    if isinstance(mask, Mask):
        parts.append(mask)
    elif isinstance(mask, Tensor):
        if mask.dtype == torch.bool:
            parts.append(Custom(mask))
        elif mask.dtype.is_floating_point:
            bias = mask
        else:
            raise TypeError(
                f"mask tensor must be bool (True = attend) or floating (added to the scores), "
                f"got {mask.dtype}"
            )
    elif mask is not None:
        raise TypeError(f"mask must be a typed mask, a tensor or None, got {type(mask).__name__}")
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    if causal:
        parts.append(Causal())
    if window is not None:
        if isinstance(window, int) and not isinstance(window, bool):
            parts.append(Window(window, window))
        elif isinstance(window, (tuple, list)) and len(window) == 2:
            parts.append(Window(window[0], window[1]))
        else:
            raise ValueError(f"window must be an int or a (left, right) pair, got {window!r}")
    if not parts:
        return None, bias
    return (parts[0] if len(parts) == 1 else And(*parts)), bias
