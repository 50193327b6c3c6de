"""Job logs for the dashboard: opened safely, read with the reader's rights, followed.

A log is opened without following symbolic links and must be a regular file. It is
shown only to whoever could read it from the command line (``gjob log``): its owner
(if the file's mode lets them read it) and root. Following uses inotify on the opened
file, so the daemon wakes when the job writes, never on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from inotify_simple import INotify, flags

from gflow.actions import Caller
from gflow.errors import Forbidden, NotFound

TAIL = 64 * 1024  # what a page shows of a long log at first
CHUNK = 64 * 1024


def may_read(caller: Caller, info: os.stat_result) -> bool:
    return caller.uid == 0 or (info.st_uid == caller.uid and bool(info.st_mode & stat.S_IRUSR))


def open_log(path: Path, job_id: int, caller: Caller) -> int:
    """A file descriptor on the job's log, or NotFound / Forbidden (as ``gjob log`` says)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"job {job_id} has no log yet") from None
    except OSError as exc:
        raise NotFound(f"the log of job {job_id} cannot be opened ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or not may_read(caller, info):
        os.close(fd)
        raise Forbidden(f"the log of job {job_id}: permission denied")
    return fd


def start_offset(fd: int, tail: int = TAIL) -> int:
    """Where a first look at a log starts: its last ``tail`` bytes, from a line start."""
    size = os.fstat(fd).st_size
    if size <= tail:
        return 0
    head = os.pread(fd, tail, size - tail)
    cut = head.find(b"\n")
    return size - tail + (cut + 1 if 0 <= cut < len(head) - 1 else 0)


class Watcher:
    """One inotify instance for every followed log; callbacks per watched file."""

    def __init__(self) -> None:
        self.inotify: INotify | None = None
        self.wakes: dict[int, set[Callable[[], None]]] = {}

    def watch(self, fd: int, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` when the file behind ``fd`` is written; returns the undo."""
        if self.inotify is None:
            self.inotify = INotify(nonblocking=True)
            asyncio.get_running_loop().add_reader(self.inotify.fileno(), self._read)
        mask = flags.MODIFY | flags.CLOSE_WRITE | flags.ATTRIB
        wd = self.inotify.add_watch(f"/proc/self/fd/{fd}", mask)
        self.wakes.setdefault(wd, set()).add(wake)

        def stop() -> None:
            wakes = self.wakes.get(wd)
            if wakes is None:
                return
            wakes.discard(wake)
            if not wakes:
                del self.wakes[wd]
                if self.inotify is not None:
                    with contextlib.suppress(OSError):
                        self.inotify.rm_watch(wd)
            if not self.wakes:
                self.close()

        return stop

    def _read(self) -> None:
        if self.inotify is None:
            return
        for event in self.inotify.read(timeout=0):
            for wake in list(self.wakes.get(event.wd, ())):
                wake()

    def close(self) -> None:
        if self.inotify is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self.inotify.fileno())
            self.inotify.close()
            self.inotify = None
        self.wakes.clear()
