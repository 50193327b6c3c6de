"""Loopback TCP is off by default; when on, clients use it only when asked, check who
listens, and sign requests with the token instead of sending it."""

from __future__ import annotations

import json
import socket
import stat
import threading
from typing import Any

from gflow.tcpauth import authorization
from tests.helpers import Gflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_get(port: int, path: str, auth: str | None = None) -> tuple[int, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"Authorization: {auth}\r\n" if auth else ""
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    return int(head_bytes.split()[1]), json.loads(body or b"null")


class Squatter:
    """A listener on a port, recording every byte it is sent."""

    def __init__(self, port: int) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.received = b""
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(10)
                while b"\r\n\r\n" not in self.received:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    self.received += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(10)


def test_tcp_is_off_by_default(gflow_process: Gflow) -> None:
    assert not (gflow_process.home / "token").exists()


def test_the_commands_work_over_tcp_when_asked_and_sign_every_request(make_gflow: Any) -> None:
    port = free_port()
    g: Gflow = make_gflow("process", GFLOW_DAEMON__TCP="1", GFLOW_DAEMON__PORT=str(port))
    g.start()
    token_file = g.home / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    status, body = tcp_get(port, "/v1/health")
    assert status == 403 and "sign each request with the token" in body["error"]
    assert tcp_get(port, "/v1/health", f"Bearer {token}")[0] == 403
    signed = authorization(token, "GET", "/v1/health", b"")
    status, body = tcp_get(port, "/v1/health", signed)
    assert status == 200 and body["tcp"] == f"127.0.0.1:{port}"
    assert tcp_get(port, "/v1/health", signed)[0] == 403  # the same request again: a replay
    g.env["GFLOW_TCP"] = "1"
    (g.home / "gflowd.sock").rename(g.home / "elsewhere.sock")  # only TCP is left
    job = g.submit("sh", "-c", "echo over tcp")
    assert g.wait(job) == 0
    assert "over tcp" in g.run("gjob", "log", str(job)).stdout
    assert f"TCP:       127.0.0.1:{port}" in g.run("gflowd", "status").stdout


def test_the_token_never_goes_to_whoever_listens_on_the_port(make_gflow: Any) -> None:
    port = free_port()
    g: Gflow = make_gflow("process", GFLOW_DAEMON__TCP="1", GFLOW_DAEMON__PORT=str(port))
    squatter = Squatter(port)  # took the port before gflowd
    try:
        g.start()
        status = g.run("gflowd", "status").stdout
        assert f"TCP:       unavailable (127.0.0.1:{port}: Address already in use)" in status
        token = (g.home / "token").read_text().strip()
        # never a fallback: with the Unix socket gone, the commands do not try TCP
        (g.home / "gflowd.sock").rename(g.home / "elsewhere.sock")
        assert g.run("gqueue", check=False).returncode == 3
        assert squatter.connections == 0
        # asked explicitly, the listener is the user's own process: it gets a signature
        g.env["GFLOW_TCP"] = "1"
        g.run("gqueue", check=False)
        assert squatter.connections == 1
        assert b"Authorization: GflowHMAC ts=" in squatter.received
        assert token.encode() not in squatter.received
    finally:
        squatter.close()
