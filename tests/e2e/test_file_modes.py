"""Nobody but the daemon's user reads the daemon's files: the database holds every
submitter's environment. Jobs keep the umask of whoever started gflowd."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import EXECUTORS, Gflow

SHARED = {"tmux.conf": 0o644}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def modes_under(home: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``home`` but the tests' work directories: (kind, mode)."""
    out = {}
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if not d.startswith("work")]
        for name in dirs + files:
            path = Path(root, name)
            info = path.lstat()
            kind = (
                "dir"
                if stat.S_ISDIR(info.st_mode)
                else "sock"
                if stat.S_ISSOCK(info.st_mode)
                else "file"
            )
            out[str(path.relative_to(home))] = (kind, stat.S_IMODE(info.st_mode))
    return out


def run_some_jobs(g: Gflow) -> None:
    held = g.submit("--hold", "true")
    done = g.submit("sh", "-c", "umask > umask.txt; touch made-by-job")
    assert g.wait(done) == 0
    assert g.state(held) == "Hold"


def assert_private(found: dict[str, tuple[str, int]], *, system: bool) -> None:
    dirs = {"logs": 0o755, "run": 0o711, "tmux": 0o711} if system else {}
    for rel, (kind, mode) in found.items():
        if kind == "dir":
            want = dirs.get(rel, 0o700)
        elif kind == "sock":
            want = 0o666 if system and rel == "gflowd.sock" else 0o600
            if rel.endswith("/sock"):  # a user's own tmux socket, made by tmux for that user
                continue
        else:
            want = SHARED.get(rel, 0o600)
        assert mode == want, f"{rel} is {mode:04o}, expected {want:04o}"
    for name in ("gflow.db", "gflow.db-wal", "gflow.db-shm", "gflowd.log", "gflowd.lock"):
        assert name in found


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_file_of_a_fresh_daemon_is_private(
    make_gflow: Callable[..., Gflow], executor: str
) -> None:
    g = make_gflow(executor, GFLOW_DAEMON__TCP="1", GFLOW_DAEMON__PORT=str(free_port()))
    g.start()
    run_some_jobs(g)
    found = modes_under(g.home)
    assert "token" in found
    assert_private(found, system=False)
    assert stat.S_IMODE(g.home.stat().st_mode) == 0o700
    # the job itself kept the umask of the shell that started gflowd
    umask = os.umask(0o022)
    os.umask(umask)
    assert (g.work / "umask.txt").read_text().strip() == f"{umask:04o}"
    assert stat.S_IMODE((g.work / "made-by-job").stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(os.geteuid() != 0, reason="the system daemon needs root")
@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_file_of_a_fresh_system_daemon_is_private(
    make_gflow: Callable[..., Gflow], executor: str
) -> None:
    g = make_gflow(executor)
    g.start("--system")
    run_some_jobs(g)
    found = modes_under(g.home)
    assert_private(found, system=True)
    assert stat.S_IMODE(g.home.stat().st_mode) == 0o755


def test_doctor_finds_and_repairs_a_readable_database(gflow_process: Gflow) -> None:
    g = gflow_process
    g.submit("--hold", "true")
    g.stop()
    db = g.home / "gflow.db"
    db.chmod(0o644)
    (g.home / "gflowd.log").chmod(0o644)
    found = g.run("gflowd", "doctor", check=False)
    assert found.returncode == 1
    assert f"{db} has mode 0644; it must be 0600" in found.stdout
    fixed = g.run("gflowd", "doctor", "--repair")
    assert f"fixed: {db} has mode 0644" in fixed.stdout
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((g.home / "gflowd.log").stat().st_mode) == 0o600
    assert "no problems found" in g.run("gflowd", "doctor").stdout


def test_daemon_start_makes_its_files_private_again(gflow_process: Gflow) -> None:
    g = gflow_process
    g.stop()
    for name in ("gflow.db", "gflowd.log", "gflowd.lock"):
        (g.home / name).chmod(0o644)
    g.home.chmod(0o755)
    g.start()
    assert_private(modes_under(g.home), system=False)
    assert (
        "gflow.db has mode 0644; it must be 0600: changed to 0600"
        in (g.home / "gflowd.log").read_text()
    )


def test_daemon_refuses_a_database_it_does_not_own(gflow_process: Gflow) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the database away")
    g = gflow_process
    g.stop()
    os.chown(g.home / "gflow.db", 65534, 65534)
    done = g.run("gflowd", "up", check=False)
    assert done.returncode == 1
    assert "gflow.db belongs to uid 65534, not to gflowd's user (uid 0)" in done.stderr
    assert "chown 0" in done.stderr


def test_doctor_says_how_to_fix_each_warning(gflow_process: Gflow) -> None:
    g = gflow_process
    g.stop()
    (g.home / "run" / "999999").mkdir(parents=True)  # the run directory of no active job
    (g.home / "gflowd.sock").touch()  # a socket left behind
    found = g.run("gflowd", "doctor").stdout.splitlines()
    warnings = [line for line in found if line.startswith(" warn:")]
    assert len(warnings) == 2, found
    assert all("gflowd doctor --repair" in line for line in warnings), warnings
    g.run("gflowd", "doctor", "--repair")
    assert "no problems found" in g.run("gflowd", "doctor").stdout
