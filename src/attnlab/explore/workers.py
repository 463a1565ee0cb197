"""Run the model for several requests at once, with a bounded queue in front.

Capture hooks are installed on the model's modules, so two requests may not capture on
the same module tree at the same time. :class:`Workers` holds ``workers`` replicas of the
subject (separate module trees over the same weights: no weight is copied) and runs each
request on a free one in a thread. Up to ``queue`` more requests wait; beyond that a
request is answered ``503`` at once with ``Retry-After: 1``. After a burst, when nothing
is running, memory the allocator kept is handed back to the system (glibc
``malloc_trim``), so the server returns to its idle size.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache
from typing import Any

import anyio.to_thread
from fastapi import HTTPException

__all__ = ["Busy", "Workers", "trim_memory"]


class Busy(HTTPException):
    """503: every worker is busy and the queue is full."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            503,
            f"busy: {limit} requests are already running or waiting; try again shortly",
            headers={"Retry-After": "1"},
        )


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def trim_memory() -> bool:
    """Return freed heap memory to the system (glibc only); True when it could."""
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True


class Workers:
    """A pool of subject replicas with a bounded wait queue.

    Args:
        subject: the subject (from :func:`attnlab.viz.load_subject`); replicas come from
            its ``replica()`` method (without one, a single worker is used).
        workers: requests run at the same time (1..16).
        queue: requests allowed to wait for a worker (0..1024); more get ``503``.
    """

    def __init__(self, subject, *, workers: int = 2, queue: int = 64) -> None:
        if not 1 <= workers <= 16:
            raise ValueError(f"workers must be in 1..16, got {workers}")
        if not 0 <= queue <= 1024:
            raise ValueError(f"queue must be in 0..1024, got {queue}")
        if not hasattr(subject, "replica"):
            workers = 1
        self.subjects = [subject] + [subject.replica() for _ in range(workers - 1)]
        self.workers, self.queue = workers, queue
        self.limit = workers + queue
        self.pending = 0
        self._sem: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(subject)`` in a worker thread on a free replica.

        Raises:
            Busy: ``workers + queue`` requests are already admitted.
        """
        if self.pending >= self.limit:
            raise Busy(self.limit)
        if self._sem is None:  # made inside the server's event loop
            self._sem = asyncio.Semaphore(self.workers)
        self.pending += 1
        try:
            async with self._sem:
                subject = self.subjects.pop()
                try:
                    return await anyio.to_thread.run_sync(fn, subject)
                finally:
                    self.subjects.append(subject)
        finally:
            self.pending -= 1
            if self.pending == 0:
                await anyio.to_thread.run_sync(trim_memory)
