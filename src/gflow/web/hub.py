"""Live updates: the engine's changes, fanned out to open pages as server-sent events.

The engine calls :meth:`Hub.changed` for every job whose state or wait reason changed.
With no page open that is all that happens. Otherwise the ids of one burst (one
transaction, one scheduling pass) are collected and, once the loop is free again (the
change committed), rendered once and queued for every open page. A page that does not
read its stream fast enough has its backlog replaced by one ``reset`` event (it then
reloads what it shows), so a stuck browser costs the daemon a bounded amount of memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("gflow.web")

BACKLOG = 256 * 1024  # bytes queued for one page before it is told to reload instead
RESET = b"event: reset\ndata: {}\n\n"


def sse(event: str, data: str) -> bytes:
    """One server-sent event (``data`` must be a single line, e.g. JSON)."""
    return f"event: {event}\ndata: {data}\n\n".encode()


class Subscriber:
    """One open page's event stream."""

    def __init__(self, uid: int, digest: str) -> None:
        self.uid = uid
        self.digest = digest
        self.chunks: list[bytes] = []
        self.size = 0
        self.ready = asyncio.Event()
        self.closed = False

    def push(self, data: bytes) -> None:
        if self.size + len(data) > BACKLOG:
            self.chunks, self.size = [RESET], len(RESET)
        else:
            self.chunks.append(data)
            self.size += len(data)
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    async def next(self) -> bytes | None:
        """What is queued, once there is something; None when the stream must end."""
        await self.ready.wait()
        self.ready.clear()
        if self.closed:
            return None
        data, self.chunks, self.size = b"".join(self.chunks), [], 0
        return data


Render = Callable[[set[int], bool], bytes]


class Hub:
    def __init__(self, render: Render) -> None:
        self.render = render
        self.subscribers: set[Subscriber] = set()
        self.watchers: dict[int, set[Callable[[], None]]] = {}
        self._jobs: set[int] = set()
        self._gpus = False
        self._pending = False

    def changed(self, job_id: int | None) -> None:
        """The engine's hook: a job (None: the GPUs) changed, inside its transaction."""
        if not self.subscribers and not self.watchers:
            return
        if job_id is None:
            self._gpus = True
        else:
            self._jobs.add(job_id)
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._pending = False
        jobs, gpus = self._jobs, self._gpus
        self._jobs, self._gpus = set(), False
        for job_id in jobs:
            for wake in list(self.watchers.get(job_id, ())):
                wake()
        if not self.subscribers:
            return
        try:
            data = self.render(jobs, gpus)
        except Exception:  # a page update must never break the daemon
            log.exception("could not render a dashboard update")
            data = RESET
        for sub in self.subscribers:
            sub.push(data)

    def watch(self, job_id: int, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` whenever ``job_id`` changes; returns the function that stops it."""
        self.watchers.setdefault(job_id, set()).add(wake)

        def stop() -> None:
            wakes = self.watchers.get(job_id)
            if wakes is not None:
                wakes.discard(wake)
                if not wakes:
                    del self.watchers[job_id]

        return stop

    def drop(self, predicate: Callable[[Subscriber], bool]) -> None:
        """End the streams ``predicate`` picks (a revoked token, the daemon stopping)."""
        for sub in [s for s in self.subscribers if predicate(s)]:
            sub.close()
            self.subscribers.discard(sub)
