"""The one client module: HTTP/1.1 + JSON to gflowd over its Unix socket (or, with
``GFLOW_TCP``, loopback TCP).

Deliberately tiny and stdlib-only (``_socket``; JSON through :mod:`gflow.jsontext`): every
CLI call pays for what is imported here, and users run ``gqueue`` under ``watch``.
"""

from __future__ import annotations

import _socket
import os

from gflow import jsontext
from gflow.errors import DaemonUnavailable, GflowError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from gflow.config import Paths

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~,@")
SOCKET_NAME = "gflowd.sock"
SYSTEM_SOCKET = "/run/gflow/gflowd.sock"


def default_sockets() -> list[str]:
    """Where gflowd listens, most specific first, as :func:`gflow.config.resolve_paths` says.

    Computed with ``os.path`` alone: importing ``gflow.config`` (``pathlib``,
    ``dataclasses``) would double the start-up time of every command.
    """
    home = os.environ.get("GFLOW_HOME")
    if home:
        return [os.path.join(os.path.abspath(os.path.expanduser(home)), SOCKET_NAME)]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(runtime, "gflow") if runtime else f"/tmp/gflow-{os.getuid()}"
    own = os.path.join(base, SOCKET_NAME)
    return [own] if own == SYSTEM_SOCKET else [own, SYSTEM_SOCKET]


class RemoteError(GflowError):
    """The daemon refused a request; ``status`` and ``kind`` say how."""

    def __init__(self, message: str, status: int, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _quote(text: str) -> str:
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode())


def encode_query(query: dict[str, Any]) -> str:
    parts = [f"{k}={_quote(str(v))}" for k, v in query.items() if v is not None and v != ""]
    return "?" + "&".join(parts) if parts else ""


class Client:
    def __init__(
        self,
        paths: Paths | None = None,
        config: str | None = None,
        timeout: float = 60.0,
        *,
        fallback: bool = True,
    ) -> None:
        self._paths = paths
        self.config = config
        self.timeout = timeout
        self.fallback = fallback
        """Whether the system daemon is tried when the user's own is not there."""

    @property
    def paths(self) -> Paths:
        if self._paths is None:
            from gflow.config import resolve_paths

            self._paths = resolve_paths(self.config)
        return self._paths

    def _sockets(self) -> list[str]:
        if self._paths is None:
            return default_sockets()
        own = str(self._paths.socket)
        fallback = self.fallback and not os.environ.get("GFLOW_HOME") and own != SYSTEM_SOCKET
        return [own, SYSTEM_SOCKET] if fallback else [own]

    def connect(self) -> tuple[_socket.socket, bool]:
        """A connection to gflowd, and whether its requests must be signed (TCP only).

        TCP only when ``GFLOW_TCP`` asks for it, never as a fallback: whoever listens
        on a port is checked first (:mod:`gflow.tcpauth`)."""
        tcp = os.environ.get("GFLOW_TCP", "").strip()
        if tcp and tcp != "0":
            from gflow import tcpauth

            return tcpauth.connect(tcp, self.paths, self.timeout)
        errors = []
        for path in self._sockets():
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(path)
                return sock, False
            except OSError as exc:
                sock.close()
                errors.append(f"{path}: {exc.strerror or exc}")
        raise DaemonUnavailable("cannot reach gflowd (" + "; ".join(errors[:1]) + ")")

    def _sign(self, method: str, target: str, payload: bytes) -> str:
        from gflow import tcpauth

        try:
            token = self.paths.token_file.read_text().strip()
        except OSError as exc:
            raise GflowError(
                f"cannot sign the request: no token at {self.paths.token_file} "
                f"({exc.strerror}); gflowd makes it when it starts with tcp = true"
            ) from None
        return tcpauth.authorization(token, method, target, payload)

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """Send one request; return the decoded JSON or raise :class:`RemoteError`."""
        sock, signed = self.connect()
        try:
            return self.exchange(sock, signed, method, path, body, query)
        finally:
            sock.close()

    def exchange(
        self,
        sock: _socket.socket,
        signed: bool,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """One request over a connection :meth:`connect` made (the caller closes it)."""
        try:
            status, answer = _exchange(sock, self.frame(method, path, body, query, signed))
        except OSError as exc:
            raise DaemonUnavailable(f"lost the connection to gflowd ({exc})") from exc
        return decode(status, answer)

    def frame(
        self, method: str, path: str, body: Any, query: dict[str, Any] | None, signed: bool
    ) -> bytes:
        """The bytes of one request (signed when it goes over TCP)."""
        payload = b"" if body is None else jsontext.dumps(body).encode()
        target = f"{path}{encode_query(query or {})}"
        head = [
            f"{method} {target} HTTP/1.1",
            "Host: gflowd",
            "Connection: close",
            f"Content-Length: {len(payload)}",
        ]
        if body is not None:
            head.append("Content-Type: application/json")
        if signed:
            head.append(f"Authorization: {self._sign(method, target, payload)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def stream(self, path: str, **query: Any) -> Iterator[bytes]:
        """The body of a GET, piece by piece as it arrives (a long listing)."""
        sock, signed = self.connect()
        try:
            try:
                head, rest = _send_and_read_head(sock, self.frame("GET", path, None, query, signed))
            except OSError as exc:
                raise DaemonUnavailable(f"lost the connection to gflowd ({exc})") from exc
            status, headers = _parse_head(head)
            if status >= 400 or headers.get("transfer-encoding") != "chunked":
                body = rest + _read_rest(sock)
                if headers.get("transfer-encoding") == "chunked":
                    body = _dechunk(body)
                decode(status, body)  # raises the refusal
                yield body
                return
            yield from _chunks(sock, rest)
        finally:
            sock.close()

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)


def _exchange(sock: _socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send a request and read the answer; a daemon that refused the connection (too
    many at once) may have answered and closed before the request was sent."""
    try:
        sock.sendall(request)
    except OSError as exc:
        try:
            return _read_response(sock)
        except (OSError, DaemonUnavailable):
            raise exc from None
    return _read_response(sock)


def decode(status: int, data: bytes) -> Any:
    """The JSON of an answer, or :class:`RemoteError` for a refusal."""
    try:
        decoded = jsontext.loads(data) if data else None
    except ValueError:
        decoded = None
    if status >= 400:
        if isinstance(decoded, dict) and "error" in decoded:
            raise RemoteError(str(decoded["error"]), status, str(decoded.get("kind", "")))
        raise RemoteError(f"gflowd answered HTTP {status}", status, "http")
    return decoded


def _read_response(sock: _socket.socket) -> tuple[int, bytes]:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # a refusal is followed by a reset if we had sent
            if not chunks:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    return parse_response(b"".join(chunks))


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """The status and body of a whole HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status, headers = _parse_head(head)
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return status, body


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise DaemonUnavailable("gflowd sent a malformed answer") from None
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers


def _send_and_read_head(sock: _socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """As :func:`_exchange`: a daemon that refused the connection may have answered."""
    try:
        sock.sendall(request)
    except OSError as exc:
        try:
            return _read_head(sock)
        except (OSError, DaemonUnavailable):
            raise exc from None
    return _read_head(sock)


def _read_head(sock: _socket.socket) -> tuple[bytes, bytes]:
    """The head of an answer, and what came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise DaemonUnavailable("gflowd closed the connection without answering")
        data += chunk
        if len(data) > 1 << 20:
            raise DaemonUnavailable("gflowd sent a malformed answer")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_rest(sock: _socket.socket) -> bytes:
    """Whatever comes until the daemon closes (a reset after a refusal ends it too)."""
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _chunks(sock: _socket.socket, data: bytes) -> Iterator[bytes]:
    """Undo chunked transfer encoding while the chunks arrive."""
    while True:
        eol = data.find(b"\r\n")
        while eol < 0:
            more = sock.recv(65536)
            if not more:
                raise DaemonUnavailable("gflowd's answer was cut short")
            data += more
            eol = data.find(b"\r\n")
        try:
            size = int(data[:eol].split(b";")[0] or b"0", 16)
        except ValueError:
            raise DaemonUnavailable("gflowd sent a malformed answer") from None
        if size == 0:
            return
        end = eol + 2 + size
        while len(data) < end + 2:
            more = sock.recv(max(65536, end + 2 - len(data)))
            if not more:
                raise DaemonUnavailable("gflowd's answer was cut short")
            data += more
        yield data[eol + 2 : end]
        data = data[end + 2 :]


def _dechunk(data: bytes) -> bytes:
    """Undo chunked transfer encoding (by offsets: a long listing has many chunks)."""
    out = []
    pos = 0
    while pos < len(data):
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            break
        size = int(data[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2
    return b"".join(out)
