"""Small facts about live processes, read from /proc."""

from __future__ import annotations

import contextlib
import errno
import os
import signal


def _stat(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return []
    return data[data.rfind(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat(pid)
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def parent_pid(pid: int) -> int | None:
    fields = _stat(pid)
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def is_zombie(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] == b"Z"


def args(pid: int) -> list[str]:
    """The process's command-line arguments (empty if it is gone; an OSError if the
    system is short of file descriptors or memory to tell)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")[:-1]
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            raise
        return []


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _live(pgid: int, ppid: int | None = None) -> list[int]:
    """The live (not zombie) processes of group ``pgid`` (with ``ppid``: its children)."""
    group, parent = str(pgid).encode(), str(ppid).encode()
    found = []
    for pid in pids():
        fields = _stat(pid)
        if len(fields) < 3 or fields[0] == b"Z" or fields[2] != group:
            continue
        if ppid is None or fields[1] == parent:
            found.append(pid)
    return found


def children(pid: int) -> list[int]:
    """The live children of ``pid`` that are in the process group it leads."""
    return _live(pid, pid)


def owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def kill_leftovers(pgid: int) -> None:
    """SIGKILL what remains of an ended job's process group.

    Only when no live process has that pid any more (a zombie is fine): while any member
    of the group lives, the kernel does not hand the pid out again, so an unrelated
    process that reused it after the group emptied is never touched.
    """
    if start_time(pgid) is not None and not is_zombie(pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits), or None if it is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def total_memory_mb() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
