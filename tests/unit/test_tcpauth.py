"""Loopback TCP: signed requests, and who listens on a port, from the kernel's tables."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gflow.config import DaemonConfig, user_port
from gflow.tcpauth import WINDOW, Verifier, authorization, listener_owners

HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def row(addr: str, port: int, state: str, uid: int) -> str:
    return f"   0: {addr}:{port:04X} 00000000:0000 {state} 0:0 00:0 0 {uid} 0 123 1\n"


def test_the_owner_of_a_listening_port_comes_from_the_kernel_tables(tmp_path: Path) -> None:
    loopback = "0100007F" if sys.byteorder == "little" else "7F000001"
    (tmp_path / "tcp").write_text(
        HEAD
        + row(loopback, 59002, "0A", 1001)  # someone else listens on the port
        + row(loopback, 59003, "0A", 1000)
        + row(loopback, 59003, "01", 1001)  # a connection, not a listener
        + row("00000000", 59004, "0A", 0)  # the wildcard address reaches loopback too
    )
    (tmp_path / "tcp6").write_text(HEAD + row("0" * 32, 59005, "0A", 1002))
    assert listener_owners("127.0.0.1", 59002, str(tmp_path)) == {1001}
    assert listener_owners("127.0.0.1", 59003, str(tmp_path)) == {1000}
    assert listener_owners("127.0.0.1", 59004, str(tmp_path)) == {0}
    assert listener_owners("127.0.0.1", 59005, str(tmp_path)) == {1002}
    assert listener_owners("127.0.0.1", 59006, str(tmp_path)) == set()


def test_a_signed_request_is_accepted_once_and_only_as_signed(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    check = Verifier(token).check
    header = authorization("s3cret", "POST", "/v1/jobs", b'{"command": ["true"]}')
    assert "s3cret" not in header
    now = float(header.split("ts=")[1].split(",")[0])
    assert not check(header, "POST", "/v1/jobs", b'{"command": ["rm"]}', now)
    assert not check(header, "POST", "/v1/jobs/cancel", b'{"command": ["true"]}', now)
    assert not check(header, "POST", "/v1/jobs", b'{"command": ["true"]}', now + WINDOW + 1)
    assert check(header, "POST", "/v1/jobs", b'{"command": ["true"]}', now)
    assert not check(header, "POST", "/v1/jobs", b'{"command": ["true"]}', now)  # a replay
    assert not check("Bearer s3cret", "GET", "/v1/health", b"", now)
    forged = authorization("guess", "GET", "/v1/health", b"")
    assert not check(forged, "GET", "/v1/health", b"", now)


@pytest.mark.parametrize(
    ("uid", "port"), [(0, 59001), (1000, 59002), (1998, 59001), (65534, 59600)]
)
def test_each_user_has_a_default_port_of_their_own(uid: int, port: int) -> None:
    assert user_port(uid) == port


def test_the_system_daemon_keeps_the_usual_port() -> None:
    assert DaemonConfig(system=True).tcp_port == 59000
    assert DaemonConfig().tcp_port == user_port(os.getuid())
    assert DaemonConfig(port=6000).tcp_port == 6000
