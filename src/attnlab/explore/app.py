"""The explorer's FastAPI app: one page and a small JSON API over a model.

Endpoints:
    ``GET /``: the page (assets inlined; the CSP allows requests to this server only).
    ``GET /api/info``: model name, kind, labels and limits.
    ``POST /api/attention`` ``{"text", "pair"?, "layers"?, "heads"?}``: the captured
    attention as nested lists, per layer ``(H, Tq, Tk)``, plus tokens and prediction.
    ``POST /api/view`` ``{"text", "pair"?}``: the encoded view payload the page draws.

Malformed requests get a 4xx with a message naming the problem; the model runs under a
lock (capture hooks are per model), so concurrent requests are served one at a time.
"""

from __future__ import annotations

import html
import threading
from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from attnlab.viz.views import HeadView, render_document

__all__ = ["create_app"]

_STYLE = """
<style>
#al-app{max-width:1100px;margin:0 auto;padding:12px;font:14px system-ui,sans-serif}
#al-app textarea,#al-app input{width:100%;box-sizing:border-box;font:inherit;padding:6px;margin:4px 0}
#al-app .al-row{display:flex;gap:8px;align-items:center;margin:6px 0}
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
    layers: list[int] | None = Field(default=None, description="layer indices to capture")
    heads: list[int] | None = Field(default=None, description="head indices to capture")


def _page(subject, max_chars: int) -> str:
    js = (resources.files("attnlab.viz") / "assets" / "explorer.js").read_text(encoding="utf-8")
    name = html.escape(f"{subject.kind}: {subject.name}")
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
<span id="al-status" class="al-note">at most {max_chars} characters</span></div>
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


def create_app(subject, *, max_chars: int = 1000) -> FastAPI:
    """The explorer app for a subject from :func:`attnlab.viz.load_subject`.

    Args:
        subject: a pretrained or run subject (has ``analyze``, ``name``, ``kind``, ``labels``).
        max_chars: longest accepted text (each of ``text`` and ``pair``).
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    app = FastAPI(title="attnlab explorer", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()
    page = _page(subject, max_chars)

    def analyze(req: AttentionRequest):
        for field, value in (("text", req.text), ("pair", req.pair)):
            if value is not None and len(value) > max_chars:
                raise HTTPException(
                    413, f"{field} has {len(value)} characters; the limit is {max_chars}"
                )
        try:
            with lock:
                return subject.analyze(req.text, req.pair, layers=req.layers, heads=req.heads)
        except (ValueError, TypeError) as e:
            raise HTTPException(400, str(e)) from None

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/info")
    def info() -> dict:
        return {
            "model": subject.name,
            "kind": subject.kind,
            "labels": subject.labels,
            "max_chars": max_chars,
            "pairs": subject.kind == "pretrained",
        }

    @app.post("/api/attention")
    def attention(req: AttentionRequest) -> dict:
        return analyze(req).to_json()

    @app.post("/api/view")
    def view(req: AttentionRequest) -> dict:
        a = analyze(req)
        return {
            "tokens": a.tokens,
            "prediction": a.prediction,
            "payload": HeadView.from_analysis(a, agg="mean").payload(),
        }

    return app
