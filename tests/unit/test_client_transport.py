"""The client's HTTP over a real socket pair: what a refusing daemon sends is heard."""

from __future__ import annotations

import json
import socket

from gflow.client import _exchange
from gflow.listener import refusal


def test_a_refusal_is_heard_even_when_the_daemon_closed_on_the_unread_request() -> None:
    client, server = socket.socketpair()
    with client:
        client.sendall(b"GET /v1/health HTTP/1.1\r\nHost: gflowd\r\n\r\n")
        server.sendall(refusal("too many connections from uid 1000 (at most 2 at once)"))
        server.close()  # the request was never read: the kernel resets the connection
        status, body = _exchange(client, b"")
    assert status == 503
    assert json.loads(body)["error"].startswith("too many connections from uid 1000")


def test_a_refusal_is_heard_when_the_request_could_not_be_sent() -> None:
    client, server = socket.socketpair()
    with client:
        server.sendall(refusal("gflowd has run out of file descriptors; try again soon"))
        server.close()
        status, body = _exchange(client, b"GET /v1/health HTTP/1.1\r\n\r\n" * 100_000)
    assert status == 503 and json.loads(body)["kind"] == "busy"
