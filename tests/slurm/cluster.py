"""The test cluster: a real Slurm started by ``cluster.sh``, shared by test sessions.

Several pytest sessions may run at once on one machine and there is only one Slurm
(its ports are fixed). Each session holds a shared lock on ``users.lock`` while it uses
Slurm; the session that leaves last stops the daemons, and only if ``cluster.sh`` started
them (a Slurm that was already running is left alone).

The cluster runs two jobs at a time and a test counts on having it to itself, so tests
take turns on ``turn.lock`` (:meth:`Cluster.turn`): one test at a time, whichever pytest
session or xdist worker runs it (each worker is a session of its own, so a lock held for
a whole session would stall every other worker's tests until that worker ends).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "cluster.sh"
RUN = Path("/run/gflow-slurm")
STARTED = RUN / "started.pids"
TURN_WAIT = 600.0
"""How long a test waits for the tests of other sessions to hand the cluster over."""


def unavailable() -> str | None:
    """Why this machine cannot run the test cluster (None: it can)."""
    if os.geteuid() != 0:
        return "the Slurm tests start slurmctld, slurmd and munged, which needs root"
    if not Path("/usr/bin/apt-get").exists() and not Path("/usr/sbin/slurmctld").exists():
        return "Slurm is not installed and there is no apt-get to install it"
    return None


def _script(verb: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), verb], capture_output=True, text=True, timeout=600, check=False
    )


@contextlib.contextmanager
def _locked(name: str, how: int) -> Iterator[int]:
    RUN.mkdir(parents=True, exist_ok=True)
    fd = os.open(RUN / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, how)
        yield fd
    finally:
        os.close(fd)


class Cluster:
    """Start or join the test cluster; :meth:`leave` stops it if this was the last user."""

    def __init__(self) -> None:
        self._users: int | None = None

    def join(self) -> str | None:
        """None once Slurm answers; otherwise why it could not be started."""
        with _locked("mutex", fcntl.LOCK_EX):
            done = _script("start")
            if done.returncode not in (0, 3):
                return "cluster.sh start failed: " + (done.stderr or done.stdout).strip()[-400:]
            self._users = os.open(RUN / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._users, fcntl.LOCK_SH)
        return None

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """The cluster to one test alone (the lock goes with the file descriptor)."""
        RUN.mkdir(parents=True, exist_ok=True)
        fd = os.open(RUN / "turn.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + TURN_WAIT
            while not _try_lock(fd):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another test session kept Slurm for {TURN_WAIT:g}s")
                time.sleep(0.1)
            yield
        finally:
            os.close(fd)

    def leave(self) -> None:
        if self._users is None:
            return
        with _locked("mutex", fcntl.LOCK_EX):
            os.close(self._users)  # drops this session's shared lock
            self._users = None
            try:
                with _locked("users.lock", fcntl.LOCK_EX | fcntl.LOCK_NB):
                    if STARTED.exists():
                        _script("stop")
            except BlockingIOError:  # another session still uses it
                pass


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
