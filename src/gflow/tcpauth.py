"""Loopback TCP without giving the token away.

Clients talk TCP only when asked (``GFLOW_TCP``), and then:

* before sending anything they check who listens on the port: every listening socket
  that could take the connection must belong to their own uid (their per-user daemon)
  or to root (the system daemon, which answers read requests only). The owner comes
  from the kernel's socket tables (``/proc/net/tcp`` and ``tcp6``), so another user
  who took the port first is refused before a byte goes out;
* the token itself never travels: a request carries an HMAC-SHA256 of its method,
  target, body, a timestamp and a fresh nonce, keyed by the token. The daemon checks
  the MAC, the time (within ``WINDOW`` seconds) and that the nonce is new, so a copied
  request can be neither replayed nor changed.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
import secrets
import socket
import struct
import time
from pathlib import Path

from gflow.config import Paths, load_daemon_config
from gflow.errors import DaemonUnavailable, GflowError, InvalidInput

SCHEME = "GflowHMAC"
WINDOW = 60.0
LISTEN = "0A"


# ------------------------------------------------------------ request signatures


def _mac(token: str, ts: str, nonce: str, method: str, target: str, body: bytes) -> str:
    text = "\n".join([ts, nonce, method.upper(), target, hashlib.sha256(body).hexdigest()])
    return hmac.new(token.encode(), text.encode(), hashlib.sha256).hexdigest()


def authorization(token: str, method: str, target: str, body: bytes) -> str:
    """The ``Authorization`` header value of one request, signed with ``token``."""
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    return f"{SCHEME} ts={ts}, nonce={nonce}, mac={_mac(token, ts, nonce, method, target, body)}"


def _fields(header: str) -> dict[str, str] | None:
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        return None
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    return fields if {"ts", "nonce", "mac"} <= fields.keys() else None


class Verifier:
    """Checks signed requests against the token file; remembers nonces for ``WINDOW``."""

    def __init__(self, token_file: Path) -> None:
        self.token_file = token_file
        self._seen: set[str] = set()
        self._order: collections.deque[tuple[float, str]] = collections.deque()

    def check(self, header: str, method: str, target: str, body: bytes, now: float) -> bool:
        fields = _fields(header)
        token = self._token()
        if fields is None or not token:
            return False
        ts, nonce = fields["ts"], fields["nonce"]
        if not ts.isdigit() or abs(now - int(ts)) > WINDOW or not 16 <= len(nonce) <= 64:
            return False
        want = _mac(token, ts, nonce, method, target, body)
        if not hmac.compare_digest(want, fields["mac"]):
            return False
        self._forget(now)
        if nonce in self._seen:
            return False
        self._seen.add(nonce)
        self._order.append((now, nonce))
        return True

    def _forget(self, now: float) -> None:
        while self._order and now - self._order[0][0] > 2 * WINDOW:
            self._seen.discard(self._order.popleft()[1])

    def _token(self) -> str:
        try:
            return self.token_file.read_text().strip()
        except OSError:
            return ""


# ------------------------------------------------------------ who listens


def _addr(hexaddr: str) -> str:
    """An address from the kernel's table (32-bit words in host byte order)."""
    words = [int(hexaddr[i : i + 8], 16) for i in range(0, len(hexaddr), 8)]
    raw = b"".join(struct.pack("=I", w) for w in words)
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def listeners(port: int, table_dir: str = "/proc/net") -> list[tuple[str, int]]:
    """(address, uid) of every listening TCP socket on ``port``, IPv4 and IPv6."""
    found = []
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(table_dir, name)) as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 8 or cols[3] != LISTEN:
                continue
            addr, _, hexport = cols[1].partition(":")
            if int(hexport, 16) == port:
                found.append((_addr(addr), int(cols[7])))
    return found


def listener_owners(ip: str, port: int, table_dir: str = "/proc/net") -> set[int]:
    """The uids owning a listening socket that a connection to ``ip:port`` could reach."""
    reach = {ip, "0.0.0.0", "::"}
    if ":" not in ip:
        reach.add(f"::ffff:{ip}")
    return {uid for addr, uid in listeners(port, table_dir) if addr in reach}


# ------------------------------------------------------------ the client's side


def address(spec: str, paths: Paths) -> tuple[str, int]:
    """Where ``GFLOW_TCP`` points: ``1`` for the configured daemon, or ``HOST:PORT``."""
    if spec.lower() in ("1", "yes", "true", "on"):
        cfg = load_daemon_config(paths)
        return cfg.host, cfg.tcp_port
    host, _, port = spec.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidInput("GFLOW_TCP", spec, "1 (the configured address) or HOST:PORT")
    return host.strip("[]"), int(port)


def connect(spec: str, paths: Paths, timeout: float) -> tuple[socket.socket, bool]:
    """A TCP connection to the daemon ``GFLOW_TCP`` names, once its owner is known to be
    trusted; True if requests must be signed (a per-user daemon of this user)."""
    host, port = address(spec, paths)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DaemonUnavailable(f"cannot reach gflowd at {host}:{port} ({exc})") from None
    family, _, _, _, target = infos[0]
    ip = str(target[0])
    signed = _trusted(ip, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(target)
        if _trusted(ip, port) != signed:  # the listener changed hands meanwhile
            raise Untrusted(f"the listener on {ip}:{port} changed while connecting")
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(f"cannot reach gflowd at {ip}:{port} ({exc.strerror})") from None
    except BaseException:
        sock.close()
        raise
    return sock, signed


class Untrusted(GflowError):
    """The TCP port is held by someone who is not the user's gflowd nor the system's."""


def _trusted(ip: str, port: int) -> bool:
    """Whether ``ip:port`` is this user's own daemon (True) or root's (False); else raise."""
    owners = listener_owners(ip, port)
    if not owners:
        raise DaemonUnavailable(
            f"cannot reach gflowd: nothing on this machine listens on {ip}:{port}"
        )
    me = os.getuid()
    if len(owners) == 1 and owners <= {me, 0}:
        return owners == {me}
    held = ", ".join(f"uid {uid}{_name(uid)}" for uid in sorted(owners))
    raise Untrusted(
        f"refusing to talk TCP to {ip}:{port}: it is held by {held}, not by your own "
        "gflowd or the system's; someone may have taken the port"
    )


def _name(uid: int) -> str:
    import pwd

    try:
        return f" ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return ""
