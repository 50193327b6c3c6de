"""The test cluster: a real Slurm started by ``cluster.sh``, shared by test sessions.

Several pytest sessions may run at once on one machine and there is only one Slurm
(its ports are fixed). Each session holds a shared lock on ``users.lock`` while it uses
Slurm; the session that leaves last stops the daemons, and only if ``cluster.sh`` started
them (a Slurm that was already running is left alone). The sessions take turns on
``turn.lock``: the cluster runs two jobs at a time, and tests of two sessions sharing it
would only wait on each other's jobs until their timeouts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "cluster.sh"
RUN = Path("/run/gflow-slurm")
STARTED = RUN / "started.pids"


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
        self._turn: int | None = None

    def join(self) -> str | None:
        """None once Slurm answers; otherwise why it could not be started."""
        with _locked("mutex", fcntl.LOCK_EX):
            done = _script("start")
            if done.returncode not in (0, 3):
                return "cluster.sh start failed: " + (done.stderr or done.stdout).strip()[-400:]
            self._users = os.open(RUN / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._users, fcntl.LOCK_SH)
        self._turn = os.open(RUN / "turn.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._turn, fcntl.LOCK_EX)  # held until leave()
        return None

    def leave(self) -> None:
        if self._turn is not None:
            os.close(self._turn)
            self._turn = None
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
