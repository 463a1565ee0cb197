"""Load an explorer server and watch its memory: the API load test and benchmark use this.

:class:`ServerProcess` starts ``attnlab explore`` as a child process on a free port of
127.0.0.1 and reads its resident memory from ``/proc`` (Linux); :func:`hammer` sends
requests from a thread pool with a fixed number in flight and returns the status codes,
latencies and answer sizes. Only the standard library is used, and nothing leaves the
machine.

Example:
    >>> with ServerProcess(["--pretrained", "minilm"]) as server:        # doctest: +SKIP
    ...     result = hammer(server.url + "api/attention", [{"text": "hi"}] * 200, concurrency=50)
    >>> result.statuses, round(result.p99, 2)                            # doctest: +SKIP
    (Counter({200: 200}), 1.84)
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["LoadResult", "ServerProcess", "hammer", "post"]


def post(url: str, body: dict | bytes, *, headers: dict | None = None, timeout: float = 120):
    """One POST; returns ``(status, response headers, body bytes, seconds)``."""
    parts = urlsplit(url)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(
            "POST", parts.path or "/", data, {"content-type": "application/json", **(headers or {})}
        )
        r = conn.getresponse()
        out = r.read()
        return r.status, dict(r.getheaders()), out, time.perf_counter() - t0
    finally:
        conn.close()


@dataclass
class LoadResult:
    """What :func:`hammer` saw: one entry per request."""

    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def quantile(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


def hammer(
    url: str, bodies: Sequence[dict], *, concurrency: int = 50, timeout: float = 300
) -> LoadResult:
    """POST every body to ``url`` with ``concurrency`` requests in flight at a time.

    ``statuses`` counts HTTP status codes, and failures without one by exception name
    (``"TimeoutError"`` after ``timeout`` seconds, ``"ConnectionResetError"``...)."""
    result = LoadResult()
    lock = threading.Lock()

    def one(body):
        t0 = time.perf_counter()
        try:
            status, _, out, dt = post(url, body, timeout=timeout)
        except OSError as e:  # refused, reset or timed out: counted under its name
            status, out, dt = type(e).__name__, b"", time.perf_counter() - t0
        with lock:
            result.statuses[status] += 1
            result.latencies.append(dt)
            result.sizes.append(len(out))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, bodies))
    result.seconds = time.perf_counter() - t0
    return result


def _status(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` memory field in bytes (e.g. ``VmRSS``, ``VmHWM``)."""
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    if not m:
        raise RuntimeError(f"/proc/{pid}/status has no {key}")
    return int(m.group(1)) * 1024


class ServerProcess:
    """``attnlab explore ARGS --port 0`` in a child process (a context manager).

    Attributes:
        url: the server's address, ``http://127.0.0.1:PORT/``.
        pid: its process id.
    """

    def __init__(self, args: Sequence[str], *, start_timeout: float = 180) -> None:
        self.args, self.start_timeout = list(args), start_timeout
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self._peak = 0
        self._sampling = False
        self._sampler: threading.Thread | None = None

    def __enter__(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "attnlab.cli", "explore", *self.args, "--port", "0"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        deadline = time.monotonic() + self.start_timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "http://" in line or self.proc.poll() is not None:
                break
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not m:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.__exit__()
            raise RuntimeError(f"the explorer did not start: {line!r} {err[-2000:]}")
        self.url = m.group(0)
        for _ in range(200):  # the URL is printed just before the socket is served
            try:
                conn = http.client.HTTPConnection("127.0.0.1", urlsplit(self.url).port, timeout=5)
                conn.request("GET", "/api/info")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return _status(self.pid, "VmRSS")

    def watch(self) -> None:
        """Start recording the peak resident memory (a 2 ms sampler, and the kernel's
        high-water mark reset to now where the kernel allows)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM
            self._hwm = True
        except OSError:
            self._hwm = False
        self._peak = self.rss()
        self._sampling = True

        def sample():
            while self._sampling:
                try:
                    self._peak = max(self._peak, self.rss())
                except (OSError, RuntimeError):
                    return
                time.sleep(0.002)

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def peak(self) -> int:
        """Stop recording; the peak resident memory since :meth:`watch`, in bytes."""
        self._sampling = False
        if self._sampler is not None:
            self._sampler.join()
        peak = self._peak
        if getattr(self, "_hwm", False):
            peak = max(peak, _status(self.pid, "VmHWM"))
        return peak

    def __exit__(self, *exc) -> None:
        self._sampling = False
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
