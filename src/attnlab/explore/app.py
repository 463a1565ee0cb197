"""The explorer's FastAPI app: one page and a small JSON API over a model.

Endpoints:
    ``GET /``: the page (assets inlined; the CSP allows requests to this server only).
    ``GET /api/info``: model name, kind, labels and every limit below.
    ``POST /api/attention`` ``{"text", "pair"?, "layers"?, "heads"?}``: the captured
    attention of the requested layers and heads, each head one encoded map (see
    :func:`attnlab.viz.views.decode_map`), plus tokens, prediction and ``truncated``.
    ``POST /api/view`` ``{"text", "pair"?}``: the encoded view payload the page draws.

Answers are bounded: maps are stored as 8-bit levels relative to each row's maximum,
zlib-compressed (6 or 4 bits when that is needed to stay under ``max_answer`` bytes,
stated in ``bits``); over the budget even at 4 bits a request gets ``400`` asking for
fewer layers or heads. Texts over ``max_chars`` get ``413``; a text over the token limit
is cut and the answer's ``truncated`` says so. Request bodies over ``max_body`` bytes are
refused before parsing, only ``Host: 127.0.0.1:PORT`` / ``localhost:PORT`` is served,
and errors never repeat the input (see :mod:`attnlab.explore.guard`). Requests run on
``workers`` model replicas at once; ``queue`` more wait, beyond that ``503``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from importlib import resources

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from attnlab.explore.guard import Guard
from attnlab.explore.workers import Workers
from attnlab.viz.views import HeadView, render_document

__all__ = ["MAX_ANSWER", "AttentionRequest", "create_app"]

MAX_ANSWER = 2_000_000  # bytes of one answer
_DETAIL = 300  # longest error message sent back

_STYLE = """
<style>
#al-app{max-width:1100px;margin:0 auto;padding:12px;font:14px system-ui,"Noto Sans","DejaVu Sans",
"WenQuanYi Micro Hei","Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif}
#al-app textarea,#al-app input{width:100%;box-sizing:border-box;font:inherit;padding:6px;margin:4px 0}
#al-app .al-row{display:flex;gap:8px;align-items:center;margin:6px 0;flex-wrap:wrap}
#al-app button{font:inherit;padding:4px 10px;cursor:pointer}
#al-app button.al-tab.on{font-weight:700;text-decoration:underline}
#al-app .al-pred-row{display:flex;gap:8px;align-items:center}
#al-app .al-bar{display:inline-block;height:10px;background:#2563eb}
#al-app .al-error{color:#dc2626;font-weight:600}
#al-app .al-note{color:#6b7280}
</style>
"""


class AttentionRequest(BaseModel):
    """Body of the POST endpoints."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="the input text")
    pair: str | None = Field(default=None, description="second sentence of a pair")
    layers: list[int] | None = Field(
        default=None, max_length=64, description="layer indices to capture"
    )
    heads: list[int] | None = Field(
        default=None, max_length=64, description="head indices to capture"
    )


def _page(subject, max_chars: int) -> str:
    js = (resources.files("attnlab.viz") / "assets" / "explorer.js").read_text(encoding="utf-8")
    name = html.escape(f"{subject.kind}: {subject.name}")
    limit = getattr(subject, "max_tokens", None)
    cut = f"; longer than {limit} tokens: cut, and said so" if limit else ""
    pair = (
        '<input id="al-pair" placeholder="optional second sentence (sentence pair)" '
        f'maxlength="{max_chars}">'
        if subject.kind == "pretrained"
        else ""
    )
    body = f"""{_STYLE}<div id="al-app">
<h2>attnlab explorer <small class="al-note">{name}</small></h2>
<form id="al-form">
<textarea id="al-text" rows="3" maxlength="{max_chars}" placeholder="type a sentence">The cat sat on the mat because it was tired.</textarea>
{pair}
<div class="al-row"><button type="submit" id="al-run">run</button>
<span class="al-note">Ctrl+Enter runs</span>
<span id="al-status" class="al-note">at most {max_chars} characters{cut}</span></div>
</form>
<div id="al-prediction"></div>
<div class="al-row"><button class="al-tab on" data-view="head">head view</button>
<button class="al-tab" data-view="model">model view</button>
<button class="al-tab" data-view="matrix">matrix view</button></div>
<div id="attnlab-root"></div>
</div>
<script>{js}</script>
"""
    return render_document(None, title="attnlab explorer", connect="'self'", body=body)


def _short(message: str) -> str:
    return message if len(message) <= _DETAIL else message[: _DETAIL - 1] + "…"


def _field(part) -> str:
    """A location part of a validation error: a short identifier or index, else a stand-in
    (a field name is input too, and is not repeated when it could carry anything)."""
    text = str(part)
    return text if len(text) <= 24 and text.replace("_", "").isalnum() else "(an unknown field)"


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def create_app(
    subject,
    *,
    max_chars: int = 1000,
    max_answer: int = MAX_ANSWER,
    workers: int = 2,
    queue: int = 64,
    allowed_hosts: Sequence[str] = (),
) -> FastAPI:
    """The explorer app for a subject from :func:`attnlab.viz.load_subject`.

    Args:
        subject: a pretrained or run subject (has ``analyze``, ``name``, ``kind``,
            ``labels``, ``replica``).
        max_chars: longest accepted text (each of ``text`` and ``pair``), 1..100,000.
        max_answer: largest answer in bytes (at least 10,000).
        workers: model replicas serving requests at the same time (1..16).
        queue: requests that may wait for a worker (0..1024); more get ``503``.
        allowed_hosts: host names accepted besides 127.0.0.1 / localhost / [::1].
    """
    if not 1 <= max_chars <= 100_000:
        raise ValueError(f"max_chars must be in 1..100000, got {max_chars}")
    if max_answer < 10_000:
        raise ValueError(f"max_answer must be >= 10000 bytes, got {max_answer}")
    max_body = 24 * max_chars + 4096  # text and pair, every character \u-escaped
    pool = Workers(subject, workers=workers, queue=queue)
    app = FastAPI(title="attnlab explorer", docs_url=None, redoc_url=None, openapi_url=None)
    page = _page(subject, max_chars)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # pydantic's own answer echoes the offending input; name the field and the rule only
        out = []
        for err in exc.errors()[:5]:
            loc = ".".join(_field(x) for x in err.get("loc", ()) if x != "body")
            msg = str(err.get("msg", "invalid"))
            out.append(_short(f"{loc}: {msg}" if loc else msg))
        return JSONResponse({"detail": out}, status_code=422)

    def _checked(req: AttentionRequest) -> None:
        for field, value in (("text", req.text), ("pair", req.pair)):
            if value is not None and len(value) > max_chars:
                raise HTTPException(
                    413, f"{field} has {len(value)} characters; the limit is {max_chars}"
                )

    def _answer(a, view: HeadView, extra: dict) -> tuple[dict, dict, int]:
        base = {
            "tokens": a.tokens,
            "segments": a.segments,
            "prediction": a.prediction,
            "truncated": None if a.truncated is None else a.truncated.to_json(),
            **extra,
        }
        fixed = len(_json(base)) + 64
        try:
            payload, bits, _ = view.fit(max_answer - fixed)
        except ValueError:
            raise ValueError(
                f"the answer would be over the limit of {max_answer:,} bytes even with "
                "4-bit levels; ask for fewer layers or heads"
            ) from None
        return base, payload, bits

    async def _run(req: AttentionRequest, build) -> Response:
        _checked(req)

        def work(subj) -> bytes:
            a = subj.analyze(req.text, req.pair, layers=req.layers, heads=req.heads)
            return build(a)

        try:
            body = await pool.run(work)
        except (ValueError, TypeError) as e:
            raise HTTPException(400, _short(str(e))) from None
        return Response(body, media_type="application/json")

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/info")
    def info() -> dict:
        return {
            "model": subject.name,
            "kind": subject.kind,
            "labels": subject.labels,
            "pairs": subject.kind == "pretrained",
            "max_chars": max_chars,
            "max_tokens": getattr(subject, "max_tokens", None),
            "max_body": max_body,
            "max_answer": max_answer,
            "workers": pool.workers,
            "queue": pool.queue,
            "encoding": "per map: uint8 levels relative to each row's maximum, zlib, base64",
        }

    @app.post("/api/attention")
    async def attention(req: AttentionRequest) -> Response:
        def build(a) -> bytes:
            view = HeadView.from_analysis(a, include=("heads",))
            base, payload, bits = _answer(a, view, {})
            return _json({**base, "bits": bits, "layers": payload["layers"]})

        return await _run(req, build)

    @app.post("/api/view")
    async def view(req: AttentionRequest) -> Response:
        def build(a) -> bytes:
            v = HeadView.from_analysis(a, agg="mean")
            base, payload, bits = _answer(a, v, {})
            return _json({**base, "bits": bits, "payload": payload})

        return await _run(req, build)

    app.add_middleware(Guard, max_body=max_body, allowed_hosts=allowed_hosts)
    app.state.workers = pool
    return app
