"""Multi-head attention (Vaswani et al. 2017, Sec. 3.2.2) with GQA/MQA, cross attention,
RoPE/ALiBi and a KV cache."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from attnlab.layers.core import AttentionCore, check_role
from attnlab.layers.kv_cache import KVCache
from attnlab.layers.position import ALiBi, RotaryEmbedding
from attnlab.ops import masks as M

__all__ = ["MultiHeadAttention", "check_heads"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _kv_groups(
    num_heads: int, num_kv_heads: int | None, kv_groups: Sequence[int] | None
) -> tuple[int, ...]:
    """Query heads per key/value head, checked against ``num_heads``/``num_kv_heads``."""
    if kv_groups is None:
        hkv = num_heads if num_kv_heads is None else _positive_int("num_kv_heads", num_kv_heads)
        if num_heads % hkv:
            raise ValueError(f"num_kv_heads {hkv} does not divide num_heads {num_heads}")
        return (num_heads // hkv,) * hkv
    groups = tuple(_positive_int("kv_groups entry", g) for g in kv_groups)
    if not groups or sum(groups) != num_heads:
        raise ValueError(f"kv_groups {list(groups)} must sum to num_heads {num_heads}")
    if num_kv_heads is not None and num_kv_heads != len(groups):
        raise ValueError(
            f"num_kv_heads {num_kv_heads} differs from the {len(groups)} kv_groups {list(groups)}"
        )
    return groups


def check_heads(heads: Sequence[int], num_heads: int, where: str = "layer") -> list[int]:
    """``heads`` sorted, each in ``0..num_heads-1``, unique, at least one.

    Raises:
        TypeError: not a sequence of ints.
        ValueError: out of range, repeated, or empty (the message names ``where``).
    """
    if isinstance(heads, (str, bytes)) or not isinstance(heads, (Sequence, Tensor)):
        raise TypeError(f"heads must be a sequence of ints, got {type(heads).__name__}")
    heads = [int(h) if isinstance(h, Tensor) else h for h in heads]
    bad = [h for h in heads if isinstance(h, bool) or not isinstance(h, int)]
    if bad:
        raise TypeError(f"heads must be ints, got {bad}")
    out = [h for h in heads if not 0 <= h < num_heads]
    if out:
        raise ValueError(f"{where}: heads {out} out of range for a layer with {num_heads} heads")
    if len(set(heads)) != len(heads):
        raise ValueError(f"{where}: heads {heads} name a head twice")
    if not heads:
        raise ValueError(
            f"{where}: keeping none of its {num_heads} heads would remove the attention; "
            "keep at least one"
        )
    return sorted(heads)


def _rows(heads: Sequence[int], d: int, device: torch.device) -> Tensor:
    """Feature indices ``h*D .. h*D+D-1`` of each head, in order."""
    idx = torch.tensor(heads, device=device)[:, None] * d + torch.arange(d, device=device)
    return idx.reshape(-1)  # (len(heads) * D,)


def _shrink_linear(lin: nn.Linear, *, rows: Tensor | None = None, cols: Tensor | None = None):
    """Keep output features ``rows`` and input features ``cols`` of ``lin``, in place."""
    w = lin.weight.detach()
    if rows is not None:
        w = w.index_select(0, rows)
    if cols is not None:
        w = w.index_select(1, cols)
    lin.weight = nn.Parameter(w.contiguous(), requires_grad=lin.weight.requires_grad)
    if lin.bias is not None and rows is not None:
        bias = lin.bias.detach().index_select(0, rows)
        lin.bias = nn.Parameter(bias, requires_grad=lin.bias.requires_grad)
    lin.out_features, lin.in_features = w.shape


class MultiHeadAttention(nn.Module):
    """Multi-head attention on batch-first ``(B, T, E)`` tensors.

    ``MultiHead(Q, K, V) = Concat(head_1..head_H) W_O`` with
    ``head_h = softmax(Q W_Q^h (K W_K^g)^T / sqrt(D)) V W_V^g``, where query head ``h``
    shares key/value head ``g = h // (H / Hkv)`` (Vaswani et al. 2017, eq. 1 and
    Sec. 3.2.2; grouped-query attention, Ainslie et al. 2023; multi-query attention,
    Shazeer 2019, is ``num_kv_heads=1``).

    Attention itself runs only through ``self.core`` (an :class:`AttentionCore`), called
    with keyword arguments so visualization hooks can read ``q``, ``k`` and the mask;
    no weights are stored on the module.

    The head size ``D`` defaults to ``E / H`` but may be set apart from it (``H * D`` need
    not equal ``E``): :meth:`keep_heads` removes heads physically (Michel et al. 2019) and
    leaves ``H' * D`` input features to the output projection. Key/value groups may then
    hold different numbers of query heads (``kv_groups``).

    Args:
        embed_dim: model width E (query input and output size).
        num_heads: query heads H; must divide E unless ``head_dim`` is given.
        num_kv_heads: key/value heads Hkv (divides H). None: H (plain MHA); 1: MQA.
        head_dim: size D of each head; None: ``E / H``.
        kv_groups: query heads served by each key/value head, in head order (length
            Hkv, sum H); None: ``H / Hkv`` each. Uneven groups arise from pruning.
        kdim: key input size (cross attention); default E.
        vdim: value input size; default E.
        dropout: dropout on the attention weights (training only).
        bias: add biases to the four projections.
        position: a :class:`RotaryEmbedding` (with the head dim D), an
            :class:`ALiBi` (with ``num_heads = H``), or None.
        backend: attention backend (``"auto"``, ``"math"``, ``"sdpa"``, ...).
        role: ``"self"`` (default) or ``"cross"`` (queries attend to another sequence,
            e.g. an encoder memory); passed to the core, so recordings carry it.

    Shapes:
        ``query (B, Tq, E)``, ``key (B, Tk, kdim)``, ``value (B, Tk, vdim)`` ->
        ``(B, Tq, E)``.

    Example:
        >>> import torch
        >>> mha = MultiHeadAttention(32, 8, num_kv_heads=2)
        >>> x = torch.randn(2, 7, 32)
        >>> mha(x, causal=True).shape
        torch.Size([2, 7, 32])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        num_kv_heads: int | None = None,
        head_dim: int | None = None,
        kv_groups: Sequence[int] | None = None,
        kdim: int | None = None,
        vdim: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        position: RotaryEmbedding | ALiBi | None = None,
        backend: str = "auto",
        role: str = "self",
    ) -> None:
        super().__init__()
        check_role(role, ("self", "cross"))
        embed_dim = _positive_int("embed_dim", embed_dim)
        num_heads = _positive_int("num_heads", num_heads)
        if head_dim is None:
            if embed_dim % num_heads:
                raise ValueError(
                    f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}; "
                    "pass head_dim to size the heads apart from embed_dim"
                )
            head_dim = embed_dim // num_heads
        head_dim = _positive_int("head_dim", head_dim)
        kv_groups = _kv_groups(num_heads, num_kv_heads, kv_groups)
        num_kv_heads = len(kv_groups)
        kdim = embed_dim if kdim is None else _positive_int("kdim", kdim)
        vdim = embed_dim if vdim is None else _positive_int("vdim", vdim)
        if isinstance(dropout, bool) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if isinstance(position, RotaryEmbedding):
            if position.head_dim != head_dim:
                raise ValueError(
                    f"RotaryEmbedding head_dim {position.head_dim} differs from the "
                    f"attention head dim {head_dim}"
                )
        elif isinstance(position, ALiBi):
            if position.num_heads != num_heads:
                raise ValueError(
                    f"ALiBi has {position.num_heads} heads but the attention has {num_heads}"
                )
        elif position is not None:
            raise TypeError(
                f"position must be a RotaryEmbedding, an ALiBi or None, got "
                f"{type(position).__name__}"
            )
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim, self.kdim, self.vdim = head_dim, kdim, vdim
        self.kv_groups = kv_groups
        self.dropout = float(dropout)
        self.q_proj = nn.Linear(embed_dim, num_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(kdim, num_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(vdim, num_kv_heads * head_dim, bias=bias)
        self.out_proj = nn.Linear(num_heads * head_dim, embed_dim, bias=bias)
        self.position = position
        self.core = AttentionCore(backend=backend, role=role)

    def _check_input(self, name: str, x: Tensor, dim: int, batch: int | None) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(
                f"{name} must be (B, T, {dim}) with 3 dims, got shape {tuple(x.shape)} "
                f"with {x.dim()} dims"
            )
        if x.shape[-1] != dim:
            raise ValueError(f"{name} has {x.shape[-1]} features, expected {dim}")
        if batch is not None and x.shape[0] != batch:
            raise ValueError(f"{name} has batch size {x.shape[0]}, but query has {batch}")

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        mask: M.Mask | Tensor | None = None,
        causal: bool = False,
        window: int | tuple[int | None, int | None] | None = None,
        cache: KVCache | None = None,
        kv: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Attend from ``query`` to ``key``/``value`` (self attention when ``key`` is None).

        Args:
            query: ``(B, Tq, E)``.
            key: ``(B, Tk, kdim)``; None for self attention (``key = value = query``).
            value: ``(B, Tk, vdim)``; None means ``value = key``.
            mask: a typed mask (``M.Padding(lengths) & ...``), a bool tensor
                broadcastable to ``(B, H, Tq, Tk)`` with True = attend (key padding:
                ``(B, 1, 1, Tk)``), or a float tensor added to the scores. With a cache,
                ``Tk`` counts the cached positions too.
            causal: causal mask, bottom-right aligned (query ``i`` sees keys
                ``j <= i + Tk - Tq``).
            window: sliding window ``(left, right)`` or int, as in ``attention``.
            cache: a :class:`KVCache` (self attention only); the new keys/values are
                appended and the queries attend over all stored positions (incremental
                decoding).
            kv: keys and values already projected by :meth:`project_kv`, used instead of
                ``key``/``value`` (cross attention to a fixed memory: the memory is
                projected once per sentence, not once per decoding step).

        Returns:
            ``(B, Tq, E)``.
        """
        self._check_input("query", query, self.embed_dim, None)
        b, tq, _ = query.shape
        if kv is not None:
            if key is not None or value is not None or cache is not None:
                raise ValueError("kv replaces key, value and cache; pass kv alone")
            return self._attend_projected(query, kv, mask=mask, causal=causal, window=window)
        if key is None:
            if value is not None:
                raise ValueError("value was given without key; pass key too")
            key = value = query
        elif value is None:
            value = key
        self._check_input("key", key, self.kdim, b)
        if value is not key or self.vdim != self.kdim:
            self._check_input("value", value, self.vdim, b)
            if value.shape[1] != key.shape[1]:
                raise ValueError(f"key has {key.shape[1]} positions but value has {value.shape[1]}")
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache or None, got {type(cache).__name__}")
        if cache is not None and key is not query:
            # Appending encoder keys on every step would duplicate them.
            raise ValueError(
                "cache is for self attention (key=None): cross-attention keys do not grow"
            )

        h, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.q_proj(query).view(b, tq, h, d).transpose(1, 2)  # (B, H, Tq, D)
        tnew = key.shape[1]
        k = self.k_proj(key).view(b, tnew, hkv, d).transpose(1, 2)  # (B, Hkv, Tnew, D)
        v = self.v_proj(value).view(b, tnew, hkv, d).transpose(1, 2)  # (B, Hkv, Tnew, D)

        offset = len(cache) if cache is not None else 0
        tk = offset + tnew
        if isinstance(self.position, RotaryEmbedding):
            # Bottom-right alignment: queries are the last Tq of the Tk key positions.
            q = self.position(q, offset=tk - tq)
            k = self.position(k, offset=offset)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, Hkv, Tk, D)

        if len(set(self.kv_groups)) > 1:
            # Uneven groups (after pruning): give every query head its own copy of its
            # group's keys/values, since the attention ops need Hkv to divide H.
            reps = torch.tensor(self.kv_groups, device=k.device)
            k = k.repeat_interleave(reps, dim=1, output_size=h)  # (B, H, Tk, D)
            v = v.repeat_interleave(reps, dim=1, output_size=h)  # (B, H, Tk, D)
        if isinstance(self.position, ALiBi):
            mask = self._alibi_mask(mask, b, tq, tk, q)
        out = self.core(
            q,
            k,
            v,
            mask=mask,
            causal=causal,
            window=window,
            dropout_p=self.dropout,
        )  # (B, H, Tq, D)
        out = out.transpose(1, 2).reshape(b, tq, h * d)  # (B, Tq, H*D)
        return self.out_proj(out)

    def project_kv(self, key: Tensor, value: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Project a fixed memory once: ``key (B, Tk, kdim)``, ``value (B, Tk, vdim)``
        (default ``key``) -> ``(k, v)``, each ``(B, Hkv, Tk, D)``, for ``forward(kv=...)``.

        Example:
            >>> import torch
            >>> mha = MultiHeadAttention(16, 4).eval()
            >>> y, memory = torch.randn(2, 3, 16), torch.randn(2, 7, 16)
            >>> kv = mha.project_kv(memory)
            >>> torch.allclose(mha(y, kv=kv), mha(y, memory), atol=1e-6)
            True
        """
        self._check_input("key", key, self.kdim, None)
        if value is None:
            value = key
        self._check_input("value", value, self.vdim, key.shape[0])
        if value.shape[1] != key.shape[1]:
            raise ValueError(f"key has {key.shape[1]} positions but value has {value.shape[1]}")
        if self.position is not None:
            raise ValueError(
                "project_kv is for cross attention without positions; this layer has "
                f"{type(self.position).__name__}"
            )
        b, tk, _ = key.shape
        hkv, d = self.num_kv_heads, self.head_dim
        k = self.k_proj(key).view(b, tk, hkv, d).transpose(1, 2)  # (B, Hkv, Tk, D)
        v = self.v_proj(value).view(b, tk, hkv, d).transpose(1, 2)  # (B, Hkv, Tk, D)
        return k, v

    def _attend_projected(
        self,
        query: Tensor,
        kv: tuple[Tensor, Tensor],
        *,
        mask: M.Mask | Tensor | None,
        causal: bool,
        window: int | tuple[int | None, int | None] | None,
    ) -> Tensor:
        """Attention of ``query (B, Tq, E)`` over projected ``kv`` (see :meth:`project_kv`)."""
        if not (isinstance(kv, tuple) and len(kv) == 2):
            raise TypeError("kv must be the (k, v) pair returned by project_kv")
        k, v = kv
        b, tq, _ = query.shape
        hkv, d = self.num_kv_heads, self.head_dim
        if k.dim() != 4 or k.shape[0] != b or k.shape[1] != hkv or k.shape[3] != d:
            raise ValueError(
                f"kv keys must be (B, Hkv, Tk, D) = ({b}, {hkv}, Tk, {d}), got {tuple(k.shape)}"
            )
        if v.shape[:3] != k.shape[:3]:
            raise ValueError(f"kv values {tuple(v.shape)} do not match keys {tuple(k.shape)}")
        if self.position is not None:
            raise ValueError("kv is for cross attention; this layer has a position encoding")
        q = self.q_proj(query).view(b, tq, self.num_heads, d).transpose(1, 2)  # (B, H, Tq, D)
        out = self.core(
            q, k, v, mask=mask, causal=causal, window=window, dropout_p=self.dropout
        )  # (B, H, Tq, D)
        out = out.transpose(1, 2).reshape(b, tq, self.embed_dim)  # (B, Tq, E)
        return self.out_proj(out)

    def _alibi_mask(
        self, mask: M.Mask | Tensor | None, b: int, tq: int, tk: int, q: Tensor
    ) -> Tensor:
        """Fold the user's mask into the ALiBi bias: one float tensor (-inf = masked)."""
        assert isinstance(self.position, ALiBi)
        bias = self.position.bias(tq, tk, dtype=q.dtype, device=q.device)  # (1, H, Tq, Tk)
        if mask is None:
            return bias
        if isinstance(mask, M.Mask):
            mask.validate(b, tq, tk)
            mask = mask.dense(tq, tk, device=q.device)  # (B|1, H|1, Tq, Tk)
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask must be a typed mask, a tensor or None, got {type(mask)}")
        target = (b, self.num_heads, tq, tk)
        try:
            torch.broadcast_shapes(mask.shape, target)
        except RuntimeError:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} is not broadcastable to (B, H, Tq, Tk) = "
                f"{target}"
            ) from None
        if mask.dtype == torch.bool:
            return torch.where(mask, bias, float("-inf"))  # (B|1, H, Tq, Tk)
        if mask.dtype.is_floating_point:
            return bias + mask.to(q.dtype)
        raise TypeError(f"mask tensor must be bool or floating, got {mask.dtype}")

    @torch.no_grad()
    def keep_heads(self, heads: Sequence[int]) -> MultiHeadAttention:
        """Remove every query head not in ``heads``, physically (Michel et al. 2019).

        The rows of ``q_proj`` and the input columns of ``out_proj`` that belong to the
        removed heads are dropped, so parameters and FLOPs fall; a key/value head whose
        query heads are all gone is dropped from ``k_proj``/``v_proj`` too. The output
        equals that of the unpruned layer with the removed heads' outputs set to zero.
        ALiBi slopes of the kept heads are kept.

        Args:
            heads: indices (in the current numbering, ``0..H-1``) of the heads to keep.

        Returns:
            ``self``, now with ``len(heads)`` heads.

        Raises:
            ValueError: an index out of range or repeated, or no head kept.

        Example:
            >>> mha = MultiHeadAttention(32, 8, num_kv_heads=2)
            >>> mha.keep_heads([0, 1, 5]).kv_groups
            (2, 1)
        """
        keep = check_heads(heads, self.num_heads, type(self).__name__)
        d = self.head_dim
        group_of = [g for g, n in enumerate(self.kv_groups) for _ in range(n)]
        kv_keep = sorted({group_of[h] for h in keep})
        groups = tuple(sum(group_of[h] == g for h in keep) for g in kv_keep)
        q_rows = _rows(keep, d, self.q_proj.weight.device)
        kv_rows = _rows(kv_keep, d, self.k_proj.weight.device)
        _shrink_linear(self.q_proj, rows=q_rows)
        _shrink_linear(self.k_proj, rows=kv_rows)
        _shrink_linear(self.v_proj, rows=kv_rows)
        _shrink_linear(self.out_proj, cols=q_rows)
        if isinstance(self.position, ALiBi):
            self.position = ALiBi(len(keep), slopes=self.position.slopes[keep])
        self.num_heads, self.num_kv_heads, self.kv_groups = len(keep), len(kv_keep), groups
        return self

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.num_kv_heads != self.num_heads:
            s += f", num_kv_heads={self.num_kv_heads}"
        if self.head_dim * self.num_heads != self.embed_dim:
            s += f", head_dim={self.head_dim}"
        if len(set(self.kv_groups)) > 1:
            s += f", kv_groups={self.kv_groups}"
        if self.kdim != self.embed_dim or self.vdim != self.embed_dim:
            s += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.core.role != "self":
            s += f", role={self.core.role!r}"
        return s
