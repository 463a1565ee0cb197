"""What a browser can reach: the ``Host`` and ``Origin`` checks and the body-size limit.

An ASGI middleware in front of the explorer app:

* ``Host`` must be ``127.0.0.1:PORT``, ``localhost:PORT`` or ``[::1]:PORT`` (``PORT`` is
  the port the request came in on), plus any name given in ``allowed_hosts``. A page on
  another site whose DNS name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own
  name and gets ``400``.
* ``Origin``, when a browser sends one, must be this server itself (else ``403``): a page
  on another site cannot make the model run.
* A request body over ``max_body`` bytes gets ``413`` before anything parses it: by its
  ``Content-Length`` without reading it, or as soon as the bytes read pass the limit.

Refusals are JSON ``{"detail": "..."}`` and never repeat what the client sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["Guard", "allowed_host"]

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def allowed_host(host: str, port: int | None, extra: Sequence[str] = ()) -> bool:
    """Whether a ``Host`` header names this server (a loopback name or one of ``extra``)."""
    host = host.strip().lower()
    names = [*_LOOPBACK, *(x.lower() for x in extra)]
    ok = {f"{n}:{port}" for n in names}
    if port == 80:
        ok.update(names)
    return host in ok


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: host/origin checks and a body-size limit (see the module doc).

    Args:
        app: the wrapped ASGI app.
        max_body: largest request body in bytes.
        allowed_hosts: extra host names (without port) accepted besides the loopback
            ones, for a server listening on another address.
    """

    def __init__(self, app, *, max_body: int, allowed_hosts: Sequence[str] = ()) -> None:
        if max_body < 1:
            raise ValueError(f"max_body must be >= 1, got {max_body}")
        self.app, self.max_body, self.allowed_hosts = app, int(max_body), tuple(allowed_hosts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        port = (scope.get("server") or (None, None))[1]
        host = headers.get("host", "")
        if not allowed_host(host, port, self.allowed_hosts):
            await _refuse(
                send,
                400,
                f"invalid Host header: this explorer answers to 127.0.0.1:{port} or "
                f"localhost:{port} only",
            )
            return
        origin = headers.get("origin")
        if (
            origin is not None
            and origin.lower() != f"{scope.get('scheme', 'http')}://{host}".lower()
        ):
            await _refuse(send, 403, "requests from other origins are refused")
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _refuse(send, 413, f"request body over the limit of {self.max_body:,} bytes")
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await _refuse(
                        send, 413, f"request body over the limit of {self.max_body:,} bytes"
                    )
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)
