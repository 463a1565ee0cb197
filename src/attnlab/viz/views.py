"""Offline interactive attention views: one self-contained HTML file each.

The JavaScript and CSS (``viz/assets/views.js``, ``views.css``) are inlined when a view
is rendered, so a saved file opens anywhere without network access; a Content Security
Policy in the page forbids every network request. Weights travel as uint8 (relative to
each row's maximum), zlib-compressed and base64-encoded, which keeps a 2,048-token
head-averaged matrix under 5 MB. Every token and name reaches the page as JSON data
and is inserted with ``textContent``, so tokenizer or user text is never parsed as HTML.

Example:
    >>> import torch
    >>> from attnlab.viz import HeadView
    >>> w = torch.softmax(torch.randn(2, 4, 5, 5), -1)      # (L, H, T, T)
    >>> view = HeadView(w, ["the", "cat", "sat", "on", "it"])
    >>> path = view.save("head.html")                      # doctest: +SKIP
    >>> view                                   # in Jupyter this shows the live view
    HeadView(2 layers: 4x5x5, 4x5x5; 5 tokens)
"""

from __future__ import annotations

import base64
import html
import json
import zlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnlab.viz.aggregate import rollout

__all__ = [
    "HeadView",
    "MatrixView",
    "ModelView",
    "assets",
    "decode_map",
    "encode_map",
    "render_document",
]

MAX_BYTES = 5_000_000
BITS = (8, 6, 4)  # quantisation levels tried, finest first, until a page fits its budget
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src {connect}; base-uri 'none'; form-action 'none'"
)
_KINDS = ("heads", "mean", "max", "rollout")
_THEMES = ("light", "dark")


@cache
def assets() -> tuple[str, str]:
    """The view JavaScript and CSS, read from the package (``viz/assets``)."""
    root = resources.files("attnlab.viz") / "assets"
    js = (root / "views.js").read_text(encoding="utf-8")
    css = (root / "views.css").read_text(encoding="utf-8")
    if "</script" in js.lower() or "</style" in css.lower():  # would end the inline block
        raise RuntimeError("viz assets must not contain </script or </style")
    return js, css


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_document(payload: dict, *, title: str, connect: str = "'none'", body: str = "") -> str:
    """A complete HTML page that mounts ``payload`` (None: only ``body``) with the inlined assets.

    Args:
        payload: view data as built by a view's :meth:`payload`, or None.
        title: page title (escaped here).
        connect: CSP ``connect-src`` (the explorer allows ``'self'``).
        body: trusted extra HTML placed before the view (the explorer's form).
    """
    js, css = assets()
    mount = ""
    if payload is not None:
        mount = (
            '<div id="attnlab-root"></div>\n'
            f'<script type="application/json" id="attnlab-data">{_json_for_script(payload)}</script>\n'
            "<script>attnlab.mount(document.getElementById('attnlab-root'), "
            "JSON.parse(document.getElementById('attnlab-data').textContent));</script>\n"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP.format(connect=connect)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{css}\n"
        "body{margin:0;background:#fff}body:has(.attnlab-view[data-theme=dark]){background:#16181d}"
        "</style>\n"
        f"<script>{js}</script>\n</head><body>\n{body}{mount}</body></html>\n"
    )


def _as_layers(weights) -> list[np.ndarray]:
    """Weights in any accepted form as a list of ``(H, Tq, Tk)`` float32 arrays."""
    if isinstance(weights, (list, tuple)):
        layers = [_to_np(w) for w in weights]
        for i, w in enumerate(layers):
            if w.ndim != 3:
                raise ValueError(f"layer {i} must be (H, Tq, Tk), got shape {w.shape}")
        if not layers:
            raise ValueError("no attention weights given")
        return layers
    w = _to_np(weights)
    if w.ndim == 2:
        w = w[None, None]  # (1, 1, Tq, Tk)
    elif w.ndim == 3:
        w = w[None]  # (1, H, Tq, Tk)
    if w.ndim != 4:
        raise ValueError(
            f"weights must be (L, H, Tq, Tk), (H, Tq, Tk) or (Tq, Tk), got shape {w.shape}"
        )
    return list(w)


def _role(w: np.ndarray, n_tokens: int, cross: bool) -> str:
    # Until recordings state roles: a single query row is attention pooling; queries that
    # are not the key tokens (tokens_q given, or another count) are cross attention.
    tq, tk = w.shape[1:]
    if tq == 1:
        return "pool"
    return "self" if tq == tk == n_tokens and not cross else "cross"


def _to_np(w) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        w = w.detach().float().cpu().numpy()
    return np.asarray(w, dtype=np.float32)


def encode_map(m, bits: int = 8) -> dict:
    """One ``(Tq, Tk)`` map as uint8 relative to each row's maximum, zlib + base64.

    The format of the views and of the explorer's API: ``{"r": rows, "c": columns,
    "s": base64 of the ``r`` float32 (little-endian) row maxima, "d": base64 of the
    zlib-compressed ``r x c`` uint8 levels}``; a cell is ``level / 255 * row maximum``.
    ``bits < 8`` rounds the levels to ``2**bits`` steps (compresses better).

    Example:
        >>> m = torch.softmax(torch.randn(3, 5), -1)
        >>> back = decode_map(encode_map(m))
        >>> bool(abs(back - m.numpy()).max() <= m.max() / 255)
        True
    """
    if bits not in range(1, 9):
        raise ValueError(f"bits must be in 1..8, got {bits}")
    m = _to_np(m)
    if m.ndim != 2:
        raise ValueError(f"a map must be (Tq, Tk), got shape {m.shape}")
    m = np.nan_to_num(np.clip(m, 0.0, None))
    rowmax = m.max(1).astype("<f4")  # (Tq,)
    safe = np.where(rowmax > 0, rowmax, 1.0)[:, None]
    q = np.rint(m / safe * 255.0)
    if bits < 8:  # coarser levels compress better: used only when over the size budget
        step = 2 ** (8 - bits)
        q = np.minimum(np.rint(q / step) * step, 255.0)
    data = zlib.compress(q.astype(np.uint8).tobytes(), 6)
    return {
        "r": int(m.shape[0]),
        "c": int(m.shape[1]),
        "s": base64.b64encode(rowmax.tobytes()).decode("ascii"),
        "d": base64.b64encode(data).decode("ascii"),
    }


def decode_map(m: dict) -> np.ndarray:
    """The ``(r, c)`` float32 array of a map made by :func:`encode_map` (API answers)."""
    q = np.frombuffer(zlib.decompress(base64.b64decode(m["d"])), dtype=np.uint8)
    scale = np.frombuffer(base64.b64decode(m["s"]), dtype="<f4")
    return (q.reshape(int(m["r"]), int(m["c"])) * (scale[:, None] / 255.0)).astype(np.float32)


_encode = encode_map


class _View:
    """Common machinery of the three views; see :class:`HeadView` for the arguments."""

    view = "head"
    _default_include: tuple[str, ...] = _KINDS

    def __init__(
        self,
        weights,
        tokens: Sequence[str],
        *,
        tokens_q: Sequence[str] | None = None,
        layer_names: Sequence[str] | None = None,
        heads: Sequence[Sequence[int]] | None = None,
        roles: Sequence[str] | None = None,
        segments: Sequence[int] | None = None,
        title: str | None = None,
        theme: str = "light",
        layer: int = -1,
        head: int | None = None,
        agg: str = "mean",
        include: Sequence[str] | None = None,
        query_label: str | None = None,
        prediction: dict[str, float] | None = None,
        notes: Sequence[str] = (),
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.layers = _as_layers(weights)
        self.tokens = [str(t) for t in tokens]
        self.tokens_q = None if tokens_q is None else [str(t) for t in tokens_q]
        n = len(self.layers)
        self.layer_names = (
            [str(s) for s in layer_names] if layer_names else [f"layer {i}" for i in range(n)]
        )
        if len(self.layer_names) != n:
            raise ValueError(f"{len(self.layer_names)} layer names for {n} layers")
        self.heads = (
            [list(h) for h in heads] if heads else [list(range(w.shape[0])) for w in self.layers]
        )
        for i, (w, h) in enumerate(zip(self.layers, self.heads, strict=False)):
            if len(h) != w.shape[0]:
                raise ValueError(f"layer {i} has {w.shape[0]} heads but {len(h)} head labels")
        for i, w in enumerate(self.layers):
            tq, tk = w.shape[1:]
            if tk != len(self.tokens):
                raise ValueError(
                    f"layer {i} attends over {tk} keys but {len(self.tokens)} tokens were given"
                )
            if self.tokens_q is not None and tq not in (len(self.tokens_q), len(self.tokens), 1):
                raise ValueError(
                    f"layer {i} has {tq} queries but {len(self.tokens_q)} query tokens"
                )
        self.roles = (
            [str(r) for r in roles]
            if roles is not None
            else [_role(w, len(self.tokens), self.tokens_q is not None) for w in self.layers]
        )
        if len(self.roles) != n:
            raise ValueError(f"{len(self.roles)} roles for {n} layers")
        if segments is not None:
            segments = [int(s) for s in segments]
            if len(segments) != len(self.tokens) or set(segments) - {0, 1}:
                raise ValueError(
                    f"segments must be 0/1 per token ({len(self.tokens)} tokens), got {segments}"
                )
        self.segments = segments
        if theme not in _THEMES:
            raise ValueError(f"theme must be one of {_THEMES}, got {theme!r}")
        if not -n <= layer < n:
            raise ValueError(f"layer {layer} out of range for {n} layers")
        kinds = tuple(include) if include is not None else self._default_include
        bad = set(kinds) - set(_KINDS)
        if bad or not kinds:
            raise ValueError(f"include must name some of {_KINDS}, got {list(kinds)}")
        if agg not in (*_KINDS[1:], "heads") and not (agg.startswith("h") and agg[1:].isdigit()):
            raise ValueError(
                f"agg must be 'mean', 'max', 'rollout', 'heads' or 'h<i>', got {agg!r}"
            )
        self.include, self.theme, self.layer, self.head, self.agg = (
            kinds,
            theme,
            layer % n,
            head,
            agg,
        )
        self.title = title if title is not None else f"attention · {self.view} view"
        self.query_label, self.max_bytes = query_label, int(max_bytes)
        self.prediction = (
            None if prediction is None else {str(k): float(v) for k, v in prediction.items()}
        )
        self.notes = [str(x) for x in notes]
        self.bits: int | None = None
        self._html: str | None = None

    # -- constructors ----------------------------------------------------------------
    @classmethod
    def from_recording(
        cls, rec, example: int = 0, *, tokens: Sequence[str] | None = None, **kwargs
    ):
        """A view of example ``example`` of a :class:`~attnlab.viz.Recording` (padding removed)."""
        if tokens is None:
            if rec.tokens is None:
                raise ValueError("the recording has no tokens; pass tokens=")
            tokens = rec.tokens[example]
        kwargs.setdefault("layer_names", rec.names)
        kwargs.setdefault("heads", rec.heads)
        if getattr(rec, "roles", None):
            kwargs.setdefault("roles", rec.roles)
        return cls(rec.example(example), tokens, **kwargs)

    @classmethod
    def from_analysis(cls, analysis, **kwargs):
        """A view of an :class:`~attnlab.viz.inspect.Analysis` (what ``attnlab viz`` shows):
        its layer names, roles, prediction and a note when the text was cut."""
        kwargs.setdefault("layer_names", analysis.layer_names)
        kwargs.setdefault("heads", analysis.heads)
        kwargs.setdefault("roles", analysis.roles)
        kwargs.setdefault("segments", analysis.segments)
        kwargs.setdefault("title", analysis.title)
        kwargs.setdefault("query_label", analysis.query_label)
        kwargs.setdefault("prediction", analysis.prediction)
        if analysis.truncated is not None:
            kwargs.setdefault("notes", [analysis.truncated.message()])
        return cls(analysis.weights, analysis.tokens, **kwargs)

    # -- payload ---------------------------------------------------------------------
    def _rollouts(self) -> dict[int, np.ndarray]:
        """Rollout after each self-attention layer (Abnar & Zuidema 2020), by layer index."""
        t = len(self.tokens)
        idx = [i for i, r in enumerate(self.roles) if r == "self"]
        if "rollout" not in self.include or not idx:
            return {}
        if any(self.layers[i].shape[1:] != (t, t) for i in idx):
            return {}
        means = torch.stack(
            [torch.from_numpy(self.layers[i]).mean(0, keepdim=True) for i in idx]
        )  # (L, 1, T, T)
        return dict(zip(idx, rollout(means, all_layers=True).numpy(), strict=True))

    def payload(self, bits: int = 8) -> dict:
        """The JSON data the page draws (weights encoded with ``bits`` levels per cell).

        A layer with one head holds only that head's map (a mean or max over one head
        would repeat it); rollout is offered only on self-attention layers.
        """
        rolls = self._rollouts()
        layers = []
        for i, w in enumerate(self.layers):
            maps: dict[str, dict] = {}
            single = w.shape[0] == 1
            if "heads" in self.include or single:
                for j, h in enumerate(self.heads[i]):
                    maps[f"h{h}"] = _encode(w[j], bits)
            if not single and "mean" in self.include:
                maps["mean"] = _encode(w.mean(0), bits)
            if not single and "max" in self.include:
                maps["max"] = _encode(w.max(0), bits)
            if i in rolls:
                maps["rollout"] = _encode(rolls[i], bits)
            entry = {
                "name": self.layer_names[i],
                "role": self.roles[i],
                "heads": self.heads[i] if ("heads" in self.include or single) else [],
                "tq": int(w.shape[1]),
                "tk": int(w.shape[2]),
                "maps": maps,
            }
            if self.query_label:
                entry["qlabel"] = self.query_label
            layers.append(entry)
        return {
            "view": self.view,
            "title": self.title,
            "theme": self.theme,
            "tokens": self.tokens,
            "qtokens": self.tokens_q,
            "segments": self.segments,
            "prediction": self.prediction,
            "notes": self.notes,
            "layers": layers,
            "initial": {"layer": self.layer, "head": self.head, "agg": self.agg},
        }

    def fit(self, max_bytes: int, size=None) -> tuple[dict, int, int]:
        """The finest payload whose size is at most ``max_bytes``.

        Args:
            max_bytes: the budget.
            size: payload -> size in bytes (default: its compact JSON).

        Returns:
            ``(payload, bits, size)``.

        Raises:
            ValueError: over budget even with 4-bit levels.
        """
        size = size or (lambda p: len(json.dumps(p, separators=(",", ":")).encode()))
        n = 0
        for bits in BITS:
            data = self.payload(bits)
            n = size(data)
            if n <= max_bytes:
                return data, bits, n
        raise ValueError(
            f"the {self.view} view is {n:,} bytes, over max_bytes={max_bytes:,}; "
            "show fewer layers or heads (include=('mean',)) or raise max_bytes"
        )

    def html(self) -> str:
        """The complete, self-contained HTML document.

        Raises:
            ValueError: the page would exceed ``max_bytes`` even with coarse (4-bit) levels.
        """
        if self._html is None:
            docs: dict[int, str] = {}

            def size(p: dict) -> int:
                docs[0] = render_document(p, title=self.title)
                return len(docs[0].encode("utf-8"))

            _, self.bits, _ = self.fit(self.max_bytes, size)
            self._html = docs[0]
        return self._html

    def _height(self) -> int:
        n = max(len(self.tokens), len(self.tokens_q or []))
        if self.view == "head":
            return min(2400, 140 + 20 * n)
        if self.view == "model":
            return 260 + 80 * len(self.layers)
        return 980

    def _repr_html_(self) -> str:
        # A sandboxed iframe keeps the view's script and style away from the notebook.
        doc = html.escape(self.html(), quote=True)
        return (
            f'<iframe srcdoc="{doc}" sandbox="allow-scripts" '
            f'style="width:100%;height:{self._height()}px;border:0"></iframe>'
        )

    def save(self, path: str | Path) -> Path:
        """Write the view to ``path`` (``.html``); returns the path."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"views are saved as .html, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        shapes = ", ".join(f"{w.shape[0]}x{w.shape[1]}x{w.shape[2]}" for w in self.layers[:3])
        more = ", ..." if len(self.layers) > 3 else ""
        return f"{type(self).__name__}({len(self.layers)} layers: {shapes}{more}; {len(self.tokens)} tokens)"


class HeadView(_View):
    """Tokens in two columns joined by lines weighted by attention.

    Pick the layer; click a head to see it alone (shift- or ctrl-click adds or removes
    heads, "all heads" shows every one, one colour per head) or show their mean/max or
    the rollout; hover a token to isolate it, click several to sum their attention.

    Args:
        weights: ``(L, H, Tq, Tk)``, ``(H, Tq, Tk)``, ``(Tq, Tk)`` or a list of per-layer
            ``(H, Tq, Tk)`` (layers may differ, e.g. a pooling layer with ``Tq = 1``).
        tokens: the ``Tk`` key tokens (and the queries of self-attention layers).
        tokens_q: query tokens for cross attention (target side of an alignment).
        layer_names: one label per layer.
        heads: head indices held by each layer (default ``0..H-1``).
        roles: what each layer does (``"self"``, ``"cross"``, ``"pool"``...; default:
            ``"pool"`` for a single query row, else ``"self"``). A pooling layer is drawn
            as one row; rollout is offered only over self-attention layers.
        segments: 0/1 per token for a sentence pair (enables the A→B / B→A filter).
        title: page title. theme: ``"light"`` or ``"dark"``.
        layer, head, agg: what is shown first (``layer`` default: the last, as in
            ``attnlab viz``; ``agg``: ``"mean"``, ``"max"``, ``"rollout"``, ``"heads"``
            or ``"h<i>"``).
        include: which maps to embed, from ``("heads", "mean", "max", "rollout")``
            (a layer with one head always holds just that head).
        query_label: label of a single pooled query (``Tq = 1``).
        prediction: label -> probability, shown above the view.
        notes: sentences shown above the view (e.g. that the text was cut).
        max_bytes: size budget of the page; weights are quantised more coarsely when over.
    """

    view = "head"

    def __init__(self, weights, tokens, **kwargs) -> None:
        kwargs.setdefault("agg", "heads")
        super().__init__(weights, tokens, **kwargs)


class ModelView(_View):
    """Thumbnails of every layer x head (plus the head mean); click one to enlarge it.

    Arguments as in :class:`HeadView`.
    """

    view = "model"
    _default_include = ("heads", "mean")


class MatrixView(_View):
    """A canvas heatmap with hover values, responsive up to thousands of tokens.

    Arguments as in :class:`HeadView`. By default only the head mean and max (and
    rollout) are embedded when there are more than 512 tokens; pass ``include`` to
    choose. Click a row to sum its attention (shift-click adds rows).
    """

    view = "matrix"

    def __init__(self, weights, tokens, **kwargs) -> None:
        if "include" not in kwargs and len(tokens) > 512:
            kwargs["include"] = ("mean",)
        super().__init__(weights, tokens, **kwargs)
