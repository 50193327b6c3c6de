"""Small facts about live processes, read from /proc."""

from __future__ import annotations

import os


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


def cmdline_has(pid: int, arg: str) -> bool:
    """True if ``arg`` is one of the process's command-line arguments, exactly."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return arg.encode() in fh.read().split(b"\0")
    except OSError:
        return False


def find_by_arg(arg: str) -> int | None:
    """A live (non-zombie) process that has ``arg`` among its arguments."""
    for name in os.listdir("/proc"):
        if name.isdigit() and cmdline_has(int(name), arg) and not is_zombie(int(name)):
            return int(name)
    return None


def is_same_process(pid: int, recorded_start: int | None, marker: str) -> bool:
    """True if ``pid`` is still the process gflow started (guards against PID reuse)."""
    started = start_time(pid)
    if started is None or is_zombie(pid):
        return False
    if recorded_start is not None:
        return started == recorded_start
    return cmdline_has(pid, marker)


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits), or None if it is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def reap(pid: int) -> int | None:
    """Collect a child's exit status if it is our child; the shell-style code or None."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    return (
        os.waitstatus_to_exitcode(status)
        if not os.WIFSIGNALED(status)
        else 128 + os.WTERMSIG(status)
    )


def total_memory_mb() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
