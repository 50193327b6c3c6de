"""No client can exhaust the daemon: idle connections time out, descriptors running out
is answered and logged a bounded number of times, long requests are left alone."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
from collections.abc import Callable

import pytest

from tests.helpers import BIN, Gflow

HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: gflowd\r\n\r\n"


def connect(g: Gflow) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(g.home / "gflowd.sock"))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_one_answer(sock: socket.socket) -> bytes:
    """One HTTP answer with a Content-Length (the connection may stay open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_silent_and_slow_connections_are_closed_but_long_requests_are_not(
    make_gflow: Callable[..., Gflow],
) -> None:
    g = make_gflow("process", GFLOW_DAEMON__IDLE_TIMEOUT="0.5")
    g.start()
    job = g.submit("sh", "-c", "echo started; " + g.gate("go"))
    g.until(lambda: "started" in g.log(job), what="the job to start")
    waiter = subprocess.Popen([str(BIN / "gjob"), "wait", str(job)], env=g.env, text=True)
    follower = subprocess.Popen(
        [str(BIN / "gjob"), "log", str(job), "--follow"],
        env=g.env,
        text=True,
        stdout=subprocess.PIPE,
    )
    silent, partial, slow_body, kept_alive = (connect(g) for _ in range(4))
    partial.sendall(b"GET /v1/health HTTP/1.1\r\nHost: gflowd\r\n")
    slow_body.sendall(
        b'POST /v1/jobs HTTP/1.1\r\nHost: gflowd\r\nContent-Length: 100\r\n\r\n{"comm'
    )
    kept_alive.sendall(HEALTH)
    assert read_one_answer(kept_alive).startswith(b"HTTP/1.1 200")
    assert read_until_closed(silent) == b""
    assert read_until_closed(partial) == b""
    assert read_until_closed(slow_body).startswith(b"HTTP/1.1 408")
    assert read_until_closed(kept_alive) == b""
    for sock in (silent, partial, slow_body, kept_alive):
        sock.close()
    # gjob wait and gjob log --follow outlived all of that, and still get their answer
    assert waiter.poll() is None and follower.poll() is None
    g.open_gate("go")
    assert waiter.wait(timeout=60) == 0
    out, _ = follower.communicate(timeout=60)
    assert follower.returncode == 0 and "started" in out


def test_the_log_stays_bounded_when_file_descriptors_run_out(
    make_gflow: Callable[..., Gflow],
) -> None:
    g = make_gflow(
        "process",
        GFLOW_DAEMON__MAX_CONNECTIONS="100000",
        GFLOW_DAEMON__MAX_CONNECTIONS_PER_USER="100000",
        GFLOW_DAEMON__IDLE_TIMEOUT="300",
        GFLOW_DAEMON__LOG_MAX_MB="0.05",
        GFLOW_DAEMON__LOG_BACKUPS="1",
    )
    g.run("bash", "-c", 'ulimit -n 64 && exec "$0" up', str(BIN / "gflowd"))
    held = exhaust(g, refusals=300)
    assert held, "some connections were served before descriptors ran out"
    done = g.run("gqueue", check=False)
    assert done.returncode == 1 and "gflowd has run out of file descriptors" in done.stderr
    for sock in held:
        sock.close()
    g.until(lambda: g.run("gqueue", check=False).returncode == 0, what="gflowd to answer again")
    logs = [p for p in g.home.iterdir() if p.name.startswith("gflowd.log")]
    text = "".join(p.read_text() for p in logs)
    assert 1 <= text.count("cannot accept a connection") <= 5
    assert "Traceback" not in text
    assert sum(p.stat().st_size for p in logs) <= 2 * 0.05 * 1024 * 1024 + 4096
    # out of descriptors once more, gflowd down still stops it
    held = exhaust(g, refusals=1)
    assert g.run("gflowd", "down").stdout.strip() == "gflowd stopped."
    assert g.run("gflowd", "status", check=False).returncode == 3
    for sock in held:
        sock.close()


def exhaust(g: Gflow, refusals: int) -> list[socket.socket]:
    """Connections served and kept open until gflowd has refused ``refusals`` for want of
    file descriptors; the kept ones are returned."""
    held, refused = [], 0
    while refused < refusals:
        sock = connect(g)
        with contextlib.suppress(BrokenPipeError):  # refused before it was read
            sock.sendall(HEALTH)
        answer = read_one_answer(sock)
        if answer.startswith(b"HTTP/1.1 200"):
            held.append(sock)  # served, and kept open: one descriptor fewer for gflowd
            continue
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"gflowd has run out of file descriptors" in answer
        refused += 1
        sock.close()
    return held


def test_gflowd_raises_its_open_file_limit_but_jobs_keep_theirs(
    make_gflow: Callable[..., Gflow],
) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= 256:
        pytest.skip("the hard limit of open files leaves nothing to raise")
    g = make_gflow("process")
    g.run("bash", "-c", 'ulimit -Sn 256 && exec "$0" up', str(BIN / "gflowd"))
    pid = g.daemon_pid()
    with open(f"/proc/{pid}/limits") as fh:
        soft, hard = next(line for line in fh if line.startswith("Max open files")).split()[3:5]
    assert soft == hard and int(soft) > 256
    job = g.submit("sh", "-c", "ulimit -Sn")
    assert g.wait(job) == 0
    assert g.log(job).strip() == "256"
