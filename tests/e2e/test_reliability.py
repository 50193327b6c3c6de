"""Nothing lost under load and crashes; bad input refused cleanly; damaged storage handled.

Figures (throughput, crash counts) are printed with ``-s`` for the closing notes; the
tests assert behaviour only.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gflow.client import Client, RemoteError
from gflow.errors import DaemonUnavailable
from tests.helpers import EXECUTORS, Gflow, short_home, teardown


def client_for(g: Gflow) -> Client:
    return g.api()


def body(g: Gflow, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"command": command, "workdir": str(g.work), "env": {"PATH": "/usr/bin:/bin"}, **extra}


def job_count(g: Gflow) -> int:
    db = g.db()
    try:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
    finally:
        db.close()


# ------------------------------------------------------------ load


def test_many_concurrent_clients_lose_nothing(gflow_process: Gflow) -> None:
    g = gflow_process
    api = client_for(g)
    clients, each = 20, 50
    acked: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            try:
                answer = api.post("/v1/jobs", body(g, ["true"], hold=True))
            except Exception as exc:  # any failure is recorded and fails the test
                with lock:
                    errors.append(repr(exc))
                continue
            with lock:
                acked.extend(j["id"] for j in answer["jobs"])

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    print(
        f"\nload: {clients} clients x {each} submissions in {took:.2f}s "
        f"({len(acked) / took:.0f} acknowledged submissions/s)"
    )
    assert errors == []
    assert len(acked) == clients * each == len(set(acked))
    db = g.db()
    stored = {r[0] for r in db.execute("SELECT id FROM jobs WHERE state='Hold'")}
    db.close()
    assert stored == set(acked)


# ------------------------------------------------------------ crash loop


@pytest.mark.parametrize("executor", EXECUTORS)
def test_kill9_loop_loses_no_job_and_runs_none_twice(executor: str) -> None:
    g = Gflow(short_home(), executor)
    g.start()
    ran = g.work / "ran.txt"
    command = ["sh", "-c", f"echo $GFLOW_JOB_ID >> {ran}; sleep 0.0$(($GFLOW_JOB_ID % 5))"]
    acked: list[int] = []
    cancelled: list[int] = []
    stop = threading.Event()
    rng = random.Random(7)

    def submitter() -> None:
        api = client_for(g)
        while not stop.is_set():
            try:
                acked.extend(j["id"] for j in api.post("/v1/jobs", body(g, command))["jobs"])
            except (DaemonUnavailable, RemoteError):
                time.sleep(0.01)

    def canceller() -> None:
        api = client_for(g)
        while not stop.is_set():
            if acked:
                victim = rng.choice(acked)
                try:
                    answer = api.post("/v1/jobs/cancel", {"ids": str(victim)})
                except (DaemonUnavailable, RemoteError):
                    continue
                if answer["jobs"][0]["action"] in ("cancelled", "stopping"):
                    cancelled.append(victim)  # acknowledged: it must end Cancelled
            time.sleep(0.03)

    threads = [threading.Thread(target=submitter), threading.Thread(target=canceller)]
    for t in threads:
        t.start()
    kills = 0
    try:
        for _ in range(6):
            time.sleep(rng.uniform(0.1, 0.5))  # a random crash instant, not a wait
            g.kill9()
            kills += 1
            g.start()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert acked, "no submission was acknowledged"
    g.wait(*acked, timeout=120)
    db = g.db()
    rows = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, state, exit_code FROM jobs")}
    db.close()
    missing = [i for i in acked if i not in rows]
    assert missing == []
    stuck = {i: s for i, (s, _) in rows.items() if s in ("Queued", "Running", "Hold")}
    assert stuck == {}
    runs = [int(x) for x in ran.read_text().split()] if ran.exists() else []
    twice = sorted({i for i in runs if runs.count(i) > 1})
    assert twice == []
    finished = {i for i, (s, _) in rows.items() if s == "Finished"}
    assert finished <= set(runs)
    not_cancelled = {i: rows[i][0] for i in cancelled if rows[i][0] != "Cancelled"}
    assert not_cancelled == {}, "an acknowledged cancel was lost"
    never_started = {i for i, (s, _) in rows.items() if s == "Cancelled"} - set(runs)
    assert not (never_started & finished)
    print(
        f"\ncrash loop ({executor}): {kills} kill -9, {len(acked)} acknowledged jobs, "
        f"{len(finished)} finished, {len(cancelled)} acknowledged cancels, none lost or run twice"
    )
    teardown(g)


# ------------------------------------------------------------ bad input over HTTP


@pytest.fixture(scope="module")
def fuzz_daemon() -> Iterator[Gflow]:
    g = Gflow(short_home(), "process")
    g.start()
    yield g
    teardown(g)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "command",
    "workdir",
    "env",
    "name",
    "gpus",
    "time_limit",
    "priority",
    "dependency",
    "array",
    "params",
    "param_rows",
    "memory_mb",
    "begin_at",
    "max_retries",
    "hold",
    "project",
    "shared",
    "gpu_memory_mb",
    "name_template",
    "max_concurrent",
    "dry_run",
]


def raw_request(g: Gflow, data: bytes, path: str = "/v1/jobs") -> int:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(g.home / "gflowd.sock"))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(data)}\r\nContent-Type: application/json\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    return int(reply.split()[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))
def test_submit_fuzz_never_500_never_half_done(fuzz_daemon: Gflow, data: dict[str, Any]) -> None:
    g = fuzz_daemon
    data.setdefault("hold", True)
    before = job_count(g)
    status = raw_request(g, json.dumps(data).encode())
    assert status < 500
    if status >= 400:
        assert job_count(g) == before


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["cancel", "hold", "release", "update", "redo"]),
    st.dictionaries(
        st.sampled_from(["ids", "id", "changes", "at", "dry_run", "cascade"]), JSON, max_size=4
    ),
)
def test_control_fuzz_never_500(fuzz_daemon: Gflow, verb: str, data: dict[str, Any]) -> None:
    assert raw_request(fuzz_daemon, json.dumps(data).encode(), f"/v1/jobs/{verb}") < 500


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b"\xff\xfe",
        b'{"command": 1}',
        b'{"command": ["x"], "workdir": "relative"}',
        b'{"command": ["true"], "workdir": "/tmp", "begin_at": NaN}',
        b'{"command": ["true"], "workdir": "/tmp", "begin_at": Infinity}',
        b'{"command": ["true"], "workdir": "/tmp", "begin_at": 1e400}',
    ],
)
def test_malformed_bodies_are_refused(fuzz_daemon: Gflow, payload: bytes) -> None:
    before = job_count(fuzz_daemon)
    assert 400 <= raw_request(fuzz_daemon, payload) < 500
    assert job_count(fuzz_daemon) == before


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(
        [
            "set-limit",
            "gpu-process",
            "quota",
            "reserve",
            "close-sessions",
            "set-gpus",
            "show-gpus",
            "nonsense",
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "job",
                "limit",
                "action",
                "gpu",
                "pid",
                "ids",
                "states",
                "scope",
                "name",
                "limits",
                "user",
                "gpus",
                "start",
                "duration",
                "id",
                "all",
            ]
        ),
        JSON,
        max_size=5,
    ),
)
def test_admin_fuzz_never_500(fuzz_daemon: Gflow, verb: str, data: dict[str, Any]) -> None:
    assert raw_request(fuzz_daemon, json.dumps(data).encode(), f"/v1/admin/{verb}") < 500


def test_oversized_body_is_refused(fuzz_daemon: Gflow) -> None:
    assert raw_request(fuzz_daemon, b"x" * (65 * 1024 * 1024)) == 413


def test_empty_object_creates_nothing(fuzz_daemon: Gflow) -> None:
    before = job_count(fuzz_daemon)
    assert raw_request(fuzz_daemon, b"{}") == 400
    assert job_count(fuzz_daemon) == before


# ------------------------------------------------------------ damaged storage


def test_damaged_database_is_refused_kept_and_salvaged(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = [g.submit("--hold", "-n", f"keep{i}", "true") for i in range(30)]
    g.stop()
    db_path = g.home / "gflow.db"
    with db_path.open("r+b") as fh:
        fh.seek(4096 * 3)
        fh.write(os.urandom(4096))
    damaged = db_path.read_bytes()
    done = g.run("gflowd", "up", check=False)
    assert done.returncode == 1
    assert "gflowd doctor" in done.stderr and "Traceback" not in done.stderr
    assert db_path.read_bytes() == damaged
    assert list(g.home.glob("gflow.db.unreadable-*"))
    check = g.run("gflowd", "doctor", check=False)
    assert check.returncode == 1 and "damaged" in check.stdout
    fix = g.run("gflowd", "doctor", "--repair")
    assert "salvaged" in fix.stdout
    g.start()
    survivors = {r[0] for r in g.db().execute("SELECT id FROM jobs")}
    assert survivors and survivors <= set(ids)
    assert g.submit("true") > max(ids)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount")
def test_disk_full_refuses_submissions_and_keeps_jobs_running() -> None:
    home = short_home()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(home)],
            capture_output=True,
            check=False,
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here")
    g = Gflow(home, "process")
    try:
        g.start()
        running = g.submit("sh", "-c", g.gate("go"))
        g.until_state(running, "Running")
        filler = home / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False
        )
        done = g.run("gbatch", "true", check=False)
        assert done.returncode == 1
        assert "full" in done.stderr and "Traceback" not in done.stderr
        assert g.state(running) == "Running"
        filler.unlink()
        g.open_gate("go")
        assert g.wait(running) == 0
        assert g.wait(g.submit("true")) == 0
    finally:
        g.stop()
        subprocess.run(["umount", "-l", str(home)], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_history_can_be_pruned(gflow_process: Gflow) -> None:
    g = gflow_process
    old = g.submit("true")
    kept = g.submit("--hold", "true")
    parent = g.submit("true")
    other = g.submit(g.gate("b"))
    waiting = g.submit("--depends-on-all", f"{parent},{other}", "true")
    assert g.wait(old, parent) == 0
    answer = client_for(g).post("/v1/admin/prune", {"older_than_days": 0})
    assert answer["removed"] == 1  # the finished parent of a waiting job stays
    ids = sorted(r[0] for r in g.db().execute("SELECT id FROM jobs"))
    assert ids == [kept, parent, other, waiting]
    g.open_gate("b")
    assert g.wait(waiting) == 0
    assert g.submit("true") > waiting
