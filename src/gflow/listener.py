"""Accepting connections: no user can take the daemon's file descriptors from the others.

gflowd accepts its own connections (rather than leaving it to asyncio's server) so it
can judge each one before any HTTP is read:

* at most ``per_user`` connections at once per uid (the peer's uid from the kernel on
  the Unix socket; all TCP clients share one allowance), and at most ``total`` in all
  (root may still connect when the total is reached, to stop or repair things);
* a connection must deliver its first request within ``idle_timeout`` seconds of
  being accepted (the body included, see :meth:`Listener.deliver`), and aiohttp's
  keep-alive timeout closes one idle for as long between requests; a request that is
  being answered (``gjob wait``, a long listing) is never timed out;
* a refused connection gets a one-line HTTP 503 and is closed at once;
* when the process runs out of file descriptors, one spare descriptor is given up to
  accept and refuse the waiting connection, so the listening socket never spins and
  clients hear why.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import resource
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("gflow.listener")

ACCEPTS_PER_WAKE = 64
PAUSE = 0.5  # seconds without accepting when no descriptor is left, not even the spare
OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
TCP = -1  # the key every TCP connection is counted under

Key = int


@dataclass(slots=True)
class _Peer:
    live: set[asyncio.BaseTransport] = field(default_factory=set)
    pending: int = 0

    def count(self) -> int:
        self.live = {t for t in self.live if not t.is_closing()}
        return len(self.live) + self.pending


@dataclass(slots=True)
class Stats:
    refused: int = 0
    out_of_fds: int = 0


def refusal(message: str) -> bytes:
    """A complete HTTP 503 answer, sent without reading the request."""
    body = json.dumps({"error": message, "kind": "busy"}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def peer_uid(conn: socket.socket) -> Key:
    if conn.family != socket.AF_UNIX:
        return TCP
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


class Listener:
    """Accept on ``sockets`` for ``factory`` (the HTTP server's protocol factory)."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        *,
        per_user: int,
        total: int,
        idle_timeout: float,
    ) -> None:
        self.factory = factory
        self.per_user = per_user
        self.total = total
        self.idle_timeout = idle_timeout
        self.stats = Stats()
        self._peers: dict[Key, _Peer] = {}
        self._sockets: list[socket.socket] = []
        self._deadlines: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}
        self._spare: int | None = _open_spare()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    def configure(self, *, per_user: int, total: int) -> None:
        """New limits (a reloaded configuration); connections already open stay."""
        self.per_user = per_user
        self.total = total

    # ------------------------------------------------------------ sockets

    def serve(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sockets.append(sock)
        self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        for handle in self._deadlines.values():
            handle.cancel()
        self._deadlines.clear()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None

    def open_connections(self) -> int:
        return sum(peer.count() for peer in self._peers.values())

    # ------------------------------------------------------------ accepting

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FDS:
                    self._out_of_fds(sock, exc)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                raise
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        try:
            key = peer_uid(conn)
        except OSError:
            conn.close()
            return
        peer = self._peers.setdefault(key, _Peer())
        if peer.count() >= self.per_user:
            who = "TCP clients" if key == TCP else f"uid {key}"
            self._refuse(
                conn,
                f"too many connections from {who} (at most {self.per_user} at once); "
                "close some (gjob wait, gjob log --follow) and try again",
            )
            return
        if key != 0 and self.open_connections() >= self.total:
            self._refuse(conn, f"gflowd is serving its limit of {self.total} connections")
            return
        peer.pending += 1
        task = asyncio.ensure_future(self._connect(conn, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket, peer: _Peer) -> None:
        try:
            transport, _ = await self._loop.connect_accepted_socket(self.factory, conn)
        except OSError:
            conn.close()
            return
        finally:
            peer.pending -= 1
        peer.live.add(transport)
        self._deadlines[transport] = self._loop.call_later(
            self.idle_timeout, self._expire, transport
        )

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        """No complete request in time: close the connection."""
        self._deadlines.pop(transport, None)
        transport.close()

    def _refuse(self, conn: socket.socket, message: str) -> None:
        self.stats.refused += 1
        log.warning("refused a connection: %s", message)
        _answer(conn, refusal(message))

    def _out_of_fds(self, sock: socket.socket, exc: OSError) -> None:
        """Give up the spare descriptor to take the waiting connection and refuse it."""
        self.stats.out_of_fds += 1
        log.error("cannot accept a connection: %s; refusing it", exc.strerror)
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
            with contextlib.suppress(OSError):
                conn, _ = sock.accept()
                _answer(conn, refusal("gflowd has run out of file descriptors; try again soon"))
            self._spare = _open_spare()
        if self._spare is None:  # not even that: stop accepting for a moment
            self._loop.remove_reader(sock.fileno())
            self._loop.call_later(PAUSE, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        if sock in self._sockets:
            self._spare = self._spare if self._spare is not None else _open_spare()
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    # ------------------------------------------------------------ requests

    async def deliver(
        self, transport: asyncio.BaseTransport | None, body: Awaitable[bytes] | None
    ) -> bool:
        """Wait for a request's body within the connection's deadline; False: too late.

        Called when a request's head has arrived. Once its body is in, the deadline is
        lifted: answering may take as long as it takes (``gjob wait``)."""
        handle = self._deadlines.pop(transport, None) if transport is not None else None
        if body is None:
            if handle is not None:
                handle.cancel()
            return True
        if handle is None:
            left = self.idle_timeout
        else:
            handle.cancel()
            left = max(handle.when() - self._loop.time(), 0.0)
        try:
            await asyncio.wait_for(body, left)
        except TimeoutError:
            return False
        return True


def _answer(conn: socket.socket, data: bytes) -> None:
    """Send ``data`` and close, without waiting for the peer. What it sent already is
    read first: closing on unread data would reset the connection, and the peer could
    lose the answer."""
    with contextlib.suppress(OSError):
        conn.send(data, socket.MSG_DONTWAIT)
        conn.recv(65536, socket.MSG_DONTWAIT)
    conn.close()


def connection_budget() -> int:
    """How many connections at once the limit of open files leaves room for."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(nofile // 2, nofile - 1024)


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
