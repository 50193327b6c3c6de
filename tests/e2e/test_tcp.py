"""Loopback TCP is off by default; when on, a per-user daemon wants its token."""

from __future__ import annotations

import json
import socket
import stat
from typing import Any

from tests.conftest import Gflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_get(port: int, path: str, token: str | None = None) -> tuple[int, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"null")


def test_tcp_is_off_by_default(gflow_process: Gflow) -> None:
    assert not (gflow_process.home / "token").exists()


def test_tcp_needs_the_token_file(make_gflow: Any) -> None:
    port = free_port()
    g: Gflow = make_gflow("process", GFLOW_DAEMON__TCP="1", GFLOW_DAEMON__PORT=str(port))
    g.start()
    token_file = g.home / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    status, body = tcp_get(port, "/v1/health")
    assert status == 403 and "token" in body["error"]
    assert tcp_get(port, "/v1/health", "wrong")[0] == 403
    status, body = tcp_get(port, "/v1/health", token_file.read_text().strip())
    assert status == 200 and body["pid"] > 0
