"""Who may read an installation's files: the modes gflowd gives them, checked and repaired.

The database (with its ``-wal`` and ``-shm``) holds every submitter's whole environment,
so it and every other file the daemon keeps (its log and rotated logs, lock, token,
salvaged copies of the database) are private to the daemon's user: mode 0600. The
directories are private too (0700) for a per-user daemon; a system daemon's are
readable by all and writable by root only, because users read their own job logs
(each 0600 and owned by its user) from them. ``tmux.conf`` (0644) and the system
socket (0666, every request identified by the kernel) are meant to be shared and are
not checked here.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gflow.config import Paths

PRIVATE = 0o600


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    mode: int
    want: int
    fixable: bool
    message: str


def dir_modes(paths: Paths, system: bool) -> dict[Path, int]:
    """The directories of an installation and the mode each must have."""
    return {
        paths.data_dir: 0o755 if system else 0o700,
        paths.runtime_dir: 0o755 if system else 0o700,
        paths.logs_dir: 0o755 if system else 0o700,
        paths.run_dir: 0o711 if system else 0o700,
    }


def private_files(paths: Paths) -> list[Path]:
    """The daemon's own files that exist now; each must be 0600."""
    found = [paths.db, paths.lock_file, paths.daemon_log, paths.token_file]
    found += [Path(f"{paths.db}{suffix}") for suffix in ("-wal", "-shm", "-journal")]
    for pattern in (f"{paths.db.name}.*", f"{paths.daemon_log.name}.*"):
        found += sorted(paths.data_dir.glob(pattern))
    return [p for p in dict.fromkeys(found) if os.path.lexists(p)]


def audit(paths: Paths, system: bool, owner: int | None = None) -> list[Problem]:
    """Every file or directory whose mode or owner is not what it must be."""
    owner = os.getuid() if owner is None else owner
    wanted = {p: m for p, m in dir_modes(paths, system).items() if os.path.lexists(p)}
    wanted.update({p: PRIVATE for p in private_files(paths)})
    problems = []
    for path, want in wanted.items():
        problem = _judge(path, os.lstat(path), want, owner)
        if problem is not None:
            problems.append(problem)
    return problems


def _judge(path: Path, info: os.stat_result, want: int, owner: int) -> Problem | None:
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return Problem(
            path,
            mode,
            want,
            False,
            f"{path} is a symbolic link; gflow expects a file: put the file itself there",
        )
    if info.st_uid != owner:
        return Problem(
            path,
            mode,
            want,
            False,
            f"{path} belongs to uid {info.st_uid}, not to gflowd's user (uid {owner}): "
            f"give it back with: chown {owner} {path}",
        )
    if mode == want:
        return None
    return Problem(path, mode, want, True, f"{path} has mode {mode:04o}; it must be {want:04o}")


def repair(problem: Problem) -> None:
    """Give a file the mode it must have (never through a symbolic link)."""
    if not problem.fixable:
        raise ValueError(problem.message)
    fd = os.open(problem.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.fchmod(fd, problem.want)
    finally:
        os.close(fd)
