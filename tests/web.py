"""Helpers for the dashboard's tests: a daemon with ``web = true`` and plain HTTP to it.

Requests go through ``http.client`` on loopback, as a browser's would; the event stream
is read line by line from a real connection.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.helpers import Gflow


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class Board:
    """One installation's dashboard, and one user's address of it."""

    def __init__(self, g: Gflow, url: str) -> None:
        self.g = g
        self.url = url
        parts = urlsplit(url)
        self.port = int(parts.port or 0)
        self.token = parts.query.removeprefix("token=")
        self.base = f"http://127.0.0.1:{self.port}"
        self.streams: list[Stream] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """``token``: "" this user's (as a bearer), None none, else that text."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token or self.token}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=sent)
            r = conn.getresponse()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return self.request("POST", path, body=body, **kw)

    def stream(self, path: str = "/events", token: str | None = "") -> Stream:
        """An open event stream (closed by :meth:`close` at the end of the test)."""
        self.streams.append(Stream(self, path, token))
        return self.streams[-1]

    def close(self) -> None:
        for stream in self.streams:
            stream.close()


class Stream:
    """An open server-sent event stream."""

    def __init__(self, board: Board, path: str, token: str | None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{board.port}", "Accept": "text/event-stream"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or board.token}"
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def next(self) -> tuple[str, Any]:
        """The next event: its name and its decoded data."""
        event, data = "message", ""
        while True:
            line = self.response.readline().decode()
            if not line:
                raise EOFError("the event stream ended")
            line = line.rstrip("\n")
            if not line and data:
                return event, json.loads(data)
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]

    def until(self, cond: Callable[[str, Any], bool], timeout: float = 30) -> tuple[str, Any]:
        """Read events until one meets ``cond`` (each read waits at most the socket timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event, data = self.next()
            if cond(event, data):
                return event, data
        raise AssertionError("no such event")

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def job_event(job_id: int, state: str) -> Callable[[str, Any], bool]:
    """An event saying ``job_id`` is now in ``state``."""
    return lambda event, data: (
        event == "jobs" and any(item["id"] == job_id and item["state"] == state for item in data)
    )


def start_board(g: Gflow) -> Board:
    g.start()
    return Board(g, g.run("gflow", "web", "--no-browser").stdout.strip())
