"""``gflowd doctor``: check an installation and repair what can be repaired safely.

Checks never change anything. Repairs need the daemon stopped, and a damaged database
is never overwritten: the readable rows are copied into a fresh file and the original
is kept beside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gflow import modes
from gflow.config import Paths
from gflow.errors import StoreError
from gflow.model import BROKEN_END, Reason, State
from gflow.recovery import live_wrapper
from gflow.rundir import remove
from gflow.store import SCHEMA_VERSION, Store, load_active

TABLES = (
    "batches",
    "jobs",
    "events",
    "groups",
    "settings",
    "quotas",
    "reservations",
    "meta",
)


SALVAGE = " (gflowd down, then gflowd doctor --repair copies what can be read into a new one)"


@dataclass(frozen=True, slots=True)
class Finding:
    level: str
    message: str


def _readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def check(
    paths: Paths, *, repair: bool, daemon_running: bool, system: bool = False
) -> list[Finding]:
    out: list[Finding] = []
    if repair and daemon_running:
        return [Finding("error", "stop gflowd first (gflowd down): repairs need it stopped")]
    os.umask(0o077)  # a salvaged database holds every submitter's environment, as the original
    db_ok = _check_database(paths, out)
    if not db_ok and repair:
        fix = salvage(paths)
        if fix.level == "fixed":
            out = [Finding("found", f.message) if f.level == "error" else f for f in out]
        out.append(fix)
    _check_modes(paths, system, out, repair)
    if db_ok and paths.db.exists():
        _check_jobs(paths, out, repair)
    if db_ok:
        _check_run_dirs(paths, out, repair)
    if not daemon_running and paths.socket.exists():
        if repair:
            paths.socket.unlink()
            out.append(Finding("fixed", f"removed the stale socket {paths.socket}"))
        else:
            out.append(
                Finding(
                    "warn",
                    f"stale socket {paths.socket} (gflowd is not running): gflowd doctor "
                    "--repair removes it, and so does gflowd up",
                )
            )
    out += check_slurm(paths)
    if not any(f.level in ("error", "warn") for f in out):
        out.append(Finding("ok", "no problems found"))
    return out


def _check_database(paths: Paths, out: list[Finding]) -> bool:
    if not paths.db.exists():
        out.append(Finding("ok", f"no database yet at {paths.db} (gflowd up creates it)"))
        return True
    try:
        db = _readonly(paths.db)
        try:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            jobs = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        out.append(
            Finding("error", f"database {paths.db} is damaged or unreadable: {exc}{SALVAGE}")
        )
        return False
    if verdict != "ok":
        out.append(Finding("error", f"database {paths.db} is damaged: {verdict}{SALVAGE}"))
        return False
    if version is None or int(version[0]) > SCHEMA_VERSION:
        out.append(
            Finding(
                "error",
                f"database schema {version} is not one this gflow knows: a newer gflow wrote "
                "it; upgrade gflow (pip install -U gflow-scheduler)",
            )
        )
        return False
    out.append(Finding("ok", f"database {paths.db}: intact, schema {version[0]}, {jobs} jobs"))
    return True


def _check_modes(paths: Paths, system: bool, out: list[Finding], repair: bool) -> None:
    """Files other users can read (the database holds every submitter's environment)."""
    for problem in modes.audit(paths, system):
        if repair and problem.fixable:
            modes.repair(problem)
            out.append(Finding("fixed", f"{problem.message}: changed to {problem.want:04o}"))
        else:
            fix = " (gflowd doctor --repair sets it)" if problem.fixable else ""
            out.append(Finding("error", problem.message + fix))


def _check_jobs(paths: Paths, out: list[Finding], repair: bool) -> None:
    """Active jobs whose data gflowd cannot handle: on start it would end them the same way."""
    db = _readonly(paths.db)
    try:
        _, broken = load_active(db)
    finally:
        db.close()
    if not broken:
        return
    if not repair:
        for job_id, state, problem in broken:
            fate = BROKEN_END[State(state)].value.lower()
            out.append(
                Finding(
                    "error",
                    f"job {job_id} ({state}) holds data gflowd cannot handle: {problem} "
                    f"(gflowd doctor --repair marks it {fate})",
                )
            )
        return
    store = Store(paths.db)
    try:
        with store.tx():
            for job_id, state, problem in broken:
                end = BROKEN_END[State(state)]
                store.end_broken(job_id, state, end, Reason.invalid_data(problem), time.time())
                out.append(Finding("fixed", f"job {job_id}: {end.value}, {problem}"))
    finally:
        store.close()
    for job_id, _, _ in broken:  # what still runs of them is stopped, as gflowd would
        pid = live_wrapper(paths.run_dir / str(job_id))
        if pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _check_run_dirs(paths: Paths, out: list[Finding], repair: bool) -> None:
    if not paths.run_dir.is_dir():
        return
    db = _readonly(paths.db)
    try:
        active = {
            r[0]
            for r in db.execute("SELECT id FROM jobs WHERE state IN ('Queued', 'Hold', 'Running')")
        }
    finally:
        db.close()
    stale = [d for d in paths.run_dir.iterdir() if d.name.isdigit() and int(d.name) not in active]
    if not stale:
        return
    if repair:
        for d in stale:
            with contextlib.suppress(OSError):
                remove(d)
        out.append(Finding("fixed", f"removed {len(stale)} run directories of ended jobs"))
    else:
        out.append(
            Finding(
                "warn",
                f"{len(stale)} run directories of ended jobs can be removed: gflowd down, "
                "gflowd doctor --repair, gflowd up",
            )
        )


def salvage(paths: Paths) -> Finding:
    """Copy every readable row into a fresh database; keep the damaged file beside it."""
    stamp = int(time.time())
    fresh = paths.db.with_name(f"{paths.db.name}.salvage-{stamp}")
    try:
        Store(fresh).close()
    except StoreError as exc:
        return Finding("error", f"cannot create {fresh}: {exc.message}")
    copied: dict[str, int] = {}
    new = sqlite3.connect(fresh, isolation_level=None)
    try:
        new.execute("ATTACH DATABASE ? AS old", (f"file:{paths.db}?mode=ro",))
        for table in TABLES:
            copied[table] = _copy_rows(new, table)
        _keep_sequence(new)
    except sqlite3.DatabaseError as exc:
        new.close()
        return Finding("error", f"the database is too damaged to salvage: {exc}")
    new.close()
    damaged = paths.db.with_name(f"{paths.db.name}.damaged-{stamp}")
    paths.db.rename(damaged)
    for suffix in ("-wal", "-shm"):
        Path(f"{paths.db}{suffix}").unlink(missing_ok=True)
    fresh.rename(paths.db)
    summary = ", ".join(f"{n} {t}" for t, n in copied.items() if t != "meta")
    return Finding(
        "fixed", f"salvaged {summary} into a new database; the damaged file is kept as {damaged}"
    )


def _copy_rows(db: sqlite3.Connection, table: str) -> int:
    """Copy ``old.table`` in chunks by rowid, skipping chunks SQLite cannot read."""
    if table == "meta":
        db.execute("INSERT OR IGNORE INTO main.meta SELECT * FROM old.meta")
        return 0
    try:
        top = db.execute(f"SELECT max(rowid) FROM old.{table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        return 0
    copied = 0
    for low in range(0, top + 1, 500):
        try:
            cur = db.execute(
                f"INSERT OR IGNORE INTO main.{table} SELECT * FROM old.{table} "
                "WHERE rowid > ? AND rowid <= ?",
                (low, low + 500),
            )
            copied += cur.rowcount
        except sqlite3.DatabaseError:
            continue
    return copied


def _keep_sequence(db: sqlite3.Connection) -> None:
    """Job ids are never reused: carry the id counter over, whatever survived."""
    try:
        seq = db.execute("SELECT seq FROM old.sqlite_sequence WHERE name='jobs'").fetchone()
    except sqlite3.DatabaseError:
        seq = None
    top = db.execute("SELECT max(id) FROM main.jobs").fetchone()[0] or 0
    value = max(top, seq[0] if seq else 0)
    db.execute("DELETE FROM main.sqlite_sequence WHERE name='jobs'")
    db.execute("INSERT INTO main.sqlite_sequence (name, seq) VALUES ('jobs', ?)", (value,))


def check_slurm(paths: Paths) -> list[Finding]:
    """With slurm among the executors: Slurm's commands are installed and answer, and
    ``sbatch --test-only`` takes the configured partition, account, qos and flags."""
    from gflow.config import load_daemon_config, load_slurm_settings
    from gflow.errors import GflowError
    from gflow.slurmctl import Slurm, SlurmRefused, SlurmUnreachable
    from gflow.slurmspec import site_args

    try:
        if not load_daemon_config(paths).placement().slurm:
            return []
    except GflowError:
        return []  # gflowd up says what is wrong with the configuration
    try:
        settings = load_slurm_settings(paths)
    except GflowError as exc:
        return [Finding("error", f"configuration: {exc}")]
    slurm = Slurm(timeout=20)
    out: list[Finding] = []
    missing = slurm.missing()
    if missing:
        return [
            Finding(
                "error",
                f"Slurm's {', '.join(missing)} not found on PATH: install Slurm's client "
                "commands (Debian: slurm-client) with this cluster's slurm.conf",
            )
        ]
    steps: list[tuple[str, Callable[[], str]]] = [
        ("scontrol ping", slurm.ping),
        ("squeue", lambda: f"{len(slurm.jobs_of([_me()]))} job(s) of yours in Slurm"),
        (
            "sbatch --test-only",
            lambda: slurm.test_only(site_args(settings) + list(settings.sbatch_args)),
        ),
    ]
    for name, step in steps:
        try:
            out.append(Finding("ok", f"Slurm: {name} answers: {step()}"))
        except (SlurmRefused, SlurmUnreachable) as exc:
            out.append(Finding("error", f"Slurm: {name} failed: {exc.message}"))
            if isinstance(exc, SlurmUnreachable):
                break
    out.append(_shared_dir(paths, settings.shared_dir))
    return out


def _shared_dir(paths: Paths, shared: str | None) -> Finding:
    if shared is None:
        return Finding(
            "ok",
            f"Slurm jobs' run files and logs are under {paths.data_dir}: every node must "
            "see it at that path (or set slurm.shared_dir)",
        )
    if not os.path.isdir(shared):
        return Finding("error", f"slurm.shared_dir {shared} is not a directory here")
    return Finding("ok", f"Slurm jobs' run files and logs are under {shared}")


def _me() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
