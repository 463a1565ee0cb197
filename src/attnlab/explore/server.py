"""Run the explorer with uvicorn on a local address."""

from __future__ import annotations

import socket
import sys

__all__ = ["Explorer", "serve"]


class Explorer:
    """The explorer app bound to a socket (``port=0`` picks a free port).

    Use :meth:`run` to serve in this thread (until Ctrl+C) or :meth:`start` /
    :meth:`stop` to serve from a background thread (tests, notebooks).
    """

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 8000) -> None:
        import uvicorn

        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise ValueError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        self.host, self.port = host, self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until interrupted."""
        self.server.run(sockets=[self.sock])

    def start(self) -> Explorer:
        """Serve from a daemon thread; returns when the server accepts connections."""
        import threading
        import time

        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            time.sleep(0.01)
        raise RuntimeError("the explorer did not start within 5 s")

    def stop(self) -> None:
        """Stop a server started with :meth:`start`."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


def serve(
    subject,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_chars: int = 1000,
    workers: int = 2,
    queue: int = 64,
    max_answer: int | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> None:
    """Serve the explorer for ``subject`` until Ctrl+C, printing its URL first.

    With several workers each gets an equal share of the CPU threads, so that parallel
    requests do not oversubscribe the cores.
    """
    import os

    import torch

    from attnlab.explore.app import MAX_ANSWER, create_app

    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    app = create_app(
        subject,
        max_chars=max_chars,
        workers=workers,
        queue=queue,
        max_answer=MAX_ANSWER if max_answer is None else max_answer,
        allowed_hosts=allowed_hosts,
    )
    explorer = Explorer(app, host=host, port=port)
    print(f"attnlab explorer: {explorer.url}  (Ctrl+C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}, reachable from other machines", file=sys.stderr)
    explorer.run()
