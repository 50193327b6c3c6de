"""Per-job host memory limits with cgroup v2, where the daemon may use them.

When the unified hierarchy offers the ``memory`` controller and the daemon can create
child cgroups under its own cgroup (a delegated subtree, e.g. a systemd user service
with ``Delegate=yes``, or root), each job with ``--memory`` runs in
``<daemon cgroup>/gflow-job-<id>`` with ``memory.max`` set (swap off, OOM kills the
whole job). The job's wrapper moves itself there before the job's command starts.

Otherwise (cgroup v1, no delegation) :func:`detect` returns None and the job script
sets ``ulimit -d`` (RLIMIT_DATA) instead. Each job records which of the two applied.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger("gflow.cgroup")

ROOT = Path("/sys/fs/cgroup")
SELF = Path("/proc/self/cgroup")
PREFIX = "gflow-job-"
DAEMON_LEAF = "gflowd"


def own_cgroup(text: str) -> str | None:
    """The unified-hierarchy path in ``/proc/self/cgroup`` (the ``0::/path`` line)."""
    for line in text.splitlines():
        if line.startswith("0::"):
            path = line[3:].strip()
            if path.startswith("/") and ".." not in path.split("/"):
                return path
    return None


class CgroupMemory:
    """Creates and removes the jobs' cgroups under ``base`` (memory is enabled there)."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def job_dir(self, job_id: int) -> Path:
        return self.base / f"{PREFIX}{job_id}"

    def create(self, job_id: int, memory_mb: int) -> Path:
        """Make (or reuse) the job's cgroup with its limit; OSError if the kernel refuses."""
        return create_job_cgroup(self.job_dir(job_id), memory_mb)

    def remove(self, job_id: int) -> bool:
        """Remove the job's cgroup; False while processes are still leaving it."""
        try:
            self.job_dir(job_id).rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    def prune(self, keep: set[int]) -> None:
        """Remove leftover job cgroups (after a restart) of jobs not in ``keep``."""
        with contextlib.suppress(OSError):
            for child in self.base.iterdir():
                number = child.name.removeprefix(PREFIX)
                if number != child.name and number.isdigit() and int(number) not in keep:
                    self.remove(int(number))


def create_job_cgroup(path: Path, memory_mb: int) -> Path:
    path.mkdir(exist_ok=True)
    (path / "memory.max").write_text(f"{memory_mb * 1024 * 1024}\n")
    for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
        with contextlib.suppress(OSError):
            (path / name).write_text(value + "\n")
    return path


def _controllers(path: Path) -> list[str]:
    return path.read_text().split()


def _enable_memory(base: Path, root: Path) -> bool:
    """Enable ``memory`` for ``base``'s children, moving the daemon to a leaf if needed."""
    control = base / "cgroup.subtree_control"
    if "memory" in _controllers(control):
        return True
    try:
        control.write_text("+memory\n")
        return True
    except OSError as exc:
        if exc.errno != errno.EBUSY or base == root:
            return False
    # Processes in ``base`` (the daemon itself) forbid enabling controllers below it:
    # move the daemon into a leaf child, then try again; move back if that fails.
    leaf = base / DAEMON_LEAF
    leaf.mkdir(exist_ok=True)
    (leaf / "cgroup.procs").write_text(f"{os.getpid()}\n")
    try:
        control.write_text("+memory\n")
        return True
    except OSError:
        (base / "cgroup.procs").write_text(f"{os.getpid()}\n")
        with contextlib.suppress(OSError):
            leaf.rmdir()
        return False


def detect(root: Path = ROOT, self_cgroup: Path = SELF) -> CgroupMemory | None:
    """A :class:`CgroupMemory` if job cgroups with a memory limit can be made here."""
    try:
        if "memory" not in _controllers(root / "cgroup.controllers"):
            return None
        rel = own_cgroup(self_cgroup.read_text())
        if rel is None:
            return None
        base = root / rel.lstrip("/")
        if not _enable_memory(base, root):
            return None
        probe = base / f"{PREFIX}probe"
        probe.mkdir(exist_ok=True)
        try:
            usable = "memory" in _controllers(probe / "cgroup.controllers")
        finally:
            probe.rmdir()
    except OSError as exc:
        log.info("cgroup v2 memory limits unavailable (%s); using RLIMIT_DATA", exc)
        return None
    return CgroupMemory(base) if usable else None
