"""A job's run directory and log: made safely by the daemon, read without following links.

``run/<id>/`` is created by the daemon, filled while it is still the daemon's own
(every file made with ``O_CREAT|O_EXCL|O_NOFOLLOW``, owned and moded through its file
descriptor) and handed to the job's user last. From then on the user controls it, so
the daemon only ever touches it relative to a directory file descriptor, never
following a link and never opening anything but a regular file: a root daemon must
not be made to chown, write or read a file the user points it at.

The wrapper's ``pid`` and ``result`` are created at their final size before the job
starts, filled with spaces, and the wrapper overwrites them in place: writing a few
bytes into space already allocated works on a full disk, so a job that succeeds while
the disk is full is still recorded as a success. A value counts once its newline is
written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_LOG = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

Owner = tuple[int, int]

RESERVED = {"pid": " " * 16, "result": " " * 16}
"""The files the wrapper writes, made beforehand at their final size."""


def create(
    run_dir: Path, files: Mapping[str, str], owner: Owner | None, *, user_files: frozenset[str]
) -> None:
    """A fresh ``run_dir`` holding ``files``; those named in ``user_files`` (and then the
    directory itself) are given to ``owner``. Anything left from before is removed."""
    remove(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    os.mkdir(run_dir, 0o700)
    dfd = os.open(run_dir, _DIR)
    try:
        for name, text in files.items():
            _new_file(dfd, name, text.encode(), owner if name in user_files else None)
        if owner is not None:
            os.fchown(dfd, *owner)
    finally:
        os.close(dfd)


def _new_file(dfd: int, name: str, data: bytes, owner: Owner | None) -> None:
    fd = os.open(name, _NEW, 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)


def open_log(path: Path, owner: Owner | None) -> None:
    """Create the job's log (or keep the one an interrupted launch made), private to its
    owner. The logs directory is the daemon's, but a link or a special file found there
    is refused rather than followed."""
    dfd = os.open(path.parent, _DIR)
    try:
        fd = os.open(path.name, _LOG, 0o600, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def remove(run_dir: Path) -> None:
    """Delete a run directory if there is one; links inside are removed, never followed."""
    assert shutil.rmtree.avoids_symlink_attacks
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(run_dir)


def read_small(run_dir: Path, name: str, limit: int = 64) -> tuple[str, float] | None:
    """A short file of a run directory the job's user may have tampered with, and its
    modification time: only a regular file, never through a link, ``limit`` bytes at most.
    None when it is missing or is not such a file; an OSError when the system is short of
    file descriptors or memory (the file may well be there: ask again later)."""
    try:
        dfd = os.open(run_dir, _DIR)
    except OSError as exc:
        _raise_shortage(exc)
        return None
    try:
        fd = os.open(name, _READ, dir_fd=dfd)
    except OSError as exc:
        _raise_shortage(exc)
        return None
    finally:
        os.close(dfd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        return os.read(fd, limit).decode(errors="replace"), info.st_mtime
    except OSError as exc:
        _raise_shortage(exc)
        return None
    finally:
        os.close(fd)


def _raise_shortage(exc: OSError) -> None:
    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        raise exc


def read_result(run_dir: Path) -> tuple[int, float] | None:
    """The exit code the wrapper wrote, and when; None if it has not written one."""
    got = read_small(run_dir, "result")
    value = _first_line(got[0]) if got is not None else None
    if got is None or value is None or not value.lstrip("-").isdigit():
        return None
    return int(value), got[1]


def _first_line(text: str) -> str | None:
    """The value written over a reserved file: its first line, once the newline is there."""
    line, newline, _ = text.partition("\n")
    return line.strip() if newline else None


def read_gpus(run_dir: Path) -> tuple[int, ...]:
    got = read_small(run_dir, "gpus")
    return tuple(int(x) for x in got[0].strip().split(",") if x.isdigit()) if got else ()


def read_pid(run_dir: Path) -> int | None:
    got = read_small(run_dir, "pid")
    value = _first_line(got[0]) if got is not None else None
    return int(value) if value is not None and value.isdigit() else None


def pid_time(run_dir: Path) -> float | None:
    """When the wrapper wrote its pid (the job's start), if it has (and can be told)."""
    try:
        got = read_small(run_dir, "pid")
    except OSError:
        return None
    written = got is not None and (_first_line(got[0]) or "").isdigit()
    return got[1] if got is not None and written else None
