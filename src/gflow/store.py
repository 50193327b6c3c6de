"""The single source of truth: one SQLite file in WAL mode. All SQL lives here.

Writes happen inside :meth:`Store.tx` (``BEGIN IMMEDIATE`` … ``COMMIT``) and the daemon
answers a client only after the commit returned. ``synchronous=FULL`` makes every
commit durable across power loss, not just across a crash of the daemon.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.errors import StoreError
from gflow.jobrows import FIELDS, LIST_COLUMNS, command_of, decode_rows, readable, to_row
from gflow.model import ACTIVE_STATES, Job, State
from gflow.quotas import Limits, Quota
from gflow.reservations import Reservation

SCHEMA_VERSION = 8

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid INTEGER NOT NULL,
    submit_time REAL NOT NULL,
    env TEXT NOT NULL,
    first_job INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX batches_uid ON batches(uid, id);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    user TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    exit_code INTEGER,
    command TEXT NOT NULL,
    script TEXT,
    workdir TEXT NOT NULL,
    gpus INTEGER NOT NULL,
    shared INTEGER NOT NULL,
    gpu_memory_mb INTEGER,
    memory_mb INTEGER,
    time_limit INTEGER,
    priority INTEGER NOT NULL,
    begin_at REAL,
    conda_env TEXT,
    project TEXT,
    auto_close INTEGER NOT NULL,
    deps TEXT,
    dep_text TEXT,
    group_id INTEGER,
    task_id INTEGER,
    params TEXT,
    max_retries INTEGER NOT NULL,
    retry_on_timeout INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    retry_of INTEGER,
    redo_of INTEGER,
    submit_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    gpu_ids TEXT,
    pid INTEGER,
    pid_start INTEGER,
    executor TEXT,
    stop_intent TEXT,
    memory_enforcement TEXT
);
CREATE INDEX jobs_active ON jobs(state) WHERE state IN ('Queued', 'Hold', 'Running');
CREATE INDEX jobs_uid ON jobs(uid, id);
CREATE INDEX jobs_group ON jobs(group_id) WHERE group_id IS NOT NULL;
CREATE INDEX jobs_name ON jobs(uid, name);
CREATE INDEX jobs_end ON jobs(end_time);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    time REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX events_job ON events(job_id);
CREATE TABLE groups (id INTEGER PRIMARY KEY, max_concurrent INTEGER);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_SCHEMA_V2 = """
CREATE TABLE quotas (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    max_running_jobs INTEGER,
    max_running_gpus INTEGER,
    max_queued_jobs INTEGER,
    PRIMARY KEY (scope, name)
);
CREATE TABLE reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    gpu_ids TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    created REAL NOT NULL,
    cancelled REAL
);
CREATE INDEX reservations_end ON reservations(end);
"""

_SCHEMA_V3 = """
ALTER TABLE batches ADD COLUMN command TEXT;
CREATE INDEX jobs_cancelled_reason ON jobs(reason) WHERE state = 'Cancelled';
"""
"""A submission's command is stored once, with its batch (its jobs' own column holds '');
the jobs a failure cancelled are found by their reason (``gjob redo --cascade``)."""

_SCHEMA_V4 = """
ALTER TABLE jobs ADD COLUMN slurm_id TEXT;
ALTER TABLE jobs ADD COLUMN node TEXT;
"""
"""The Slurm executor: a job's Slurm job id and node."""

_SCHEMA_V5 = """
ALTER TABLE jobs ADD COLUMN signal TEXT;
"""
"""A warning signal before the time limit (``--signal``)."""

_SCHEMA_V6 = """
ALTER TABLE jobs ADD COLUMN output TEXT;
ALTER TABLE jobs ADD COLUMN error TEXT;
ALTER TABLE jobs ADD COLUMN cpus_per_task INTEGER;
"""
"""Where a job's output and errors go (``-o``, ``-e``), and its ``--cpus-per-task``."""

_SCHEMA_V7 = """
ALTER TABLE jobs ADD COLUMN mail_type TEXT;
ALTER TABLE jobs ADD COLUMN mail_user TEXT;
ALTER TABLE jobs ADD COLUMN notify_url TEXT;
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    event TEXT NOT NULL,
    job_id INTEGER,
    uid INTEGER,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    deadline REAL NOT NULL,
    last_error TEXT,
    done REAL
);
CREATE INDEX notifications_open ON notifications(state, id) WHERE state != 'delivered';
CREATE INDEX notifications_done ON notifications(done) WHERE state = 'delivered';
"""
"""Per-job mail and notification URL; the outbox of notifications, each row written in
the transaction of the change it tells of and marked delivered only once it was."""

_SCHEMA_V8 = """
ALTER TABLE jobs ADD COLUMN run_on TEXT;
CREATE INDEX jobs_submitting ON jobs(id) WHERE slurm_id = 'submitting';
"""
"""Where a job runs (local or slurm); the jobs whose Slurm submission was under way."""

MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1,
    2: _SCHEMA_V2,
    3: _SCHEMA_V3,
    4: _SCHEMA_V4,
    5: _SCHEMA_V5,
    6: _SCHEMA_V6,
    7: _SCHEMA_V7,
    8: _SCHEMA_V8,
}

_COLUMNS = ", ".join(FIELDS)
_INSERT = f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' for _ in FIELDS)})"
_LISTED = ", ".join(LIST_COLUMNS)
_STATE_CODE = "CASE state " + " ".join(f"WHEN '{s.value}' THEN '{s.code}'" for s in State)
LISTING_SQL: dict[str, str] = {
    **{name: name for name in LIST_COLUMNS if name not in ("deps", "batch_id")},
    "st": _STATE_CODE + " END",
    "parents": "deps",
    "session": "'gflow-' || id",
    "remaining": "'-'",
}
"""How each field of a listing row (:data:`gflow.listing.ROW_FIELDS`) is read from the
``jobs`` table by :meth:`Store.listing_page` (``parents`` as the stored dependencies,
``gpu_ids`` as stored; an unknown state reads as a NULL ``st``)."""
SORTABLE = (
    "id",
    "name",
    "user",
    "state",
    "priority",
    "gpus",
    "project",
    "submit_time",
    "start_time",
    "end_time",
)
"""The columns a listing page may be sorted by (the dashboard's queue)."""
_NOTICE_FIELDS = (
    "id",
    "created",
    "event",
    "job_id",
    "uid",
    "channel",
    "target",
    "body",
    "state",
    "attempts",
    "next_try",
    "deadline",
    "last_error",
    "done",
)
_NOTICE = ", ".join(_NOTICE_FIELDS)
NoticeRow = tuple[float, str, int | None, int | None, str, str, str, str, float, float, str | None]
"""An outbox row: created, event, job, uid, channel, target, body, state, next try,
deadline, error."""
_DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError)


class BatchCommands:
    """The command each submission shares among its jobs, read once: it never changes."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.known: dict[int, tuple[str, ...] | None] = {}

    def __call__(self, batch_id: int) -> tuple[str, ...] | None:
        if batch_id not in self.known:
            row = self.db.execute("SELECT command FROM batches WHERE id=?", (batch_id,)).fetchone()
            self.remember(batch_id, tuple(json.loads(row[0])) if row and row[0] else None)
        return self.known[batch_id]

    def remember(self, batch_id: int, command: tuple[str, ...] | None) -> None:
        if len(self.known) >= 4096:  # forget the oldest first (dicts keep their order)
            del self.known[next(iter(self.known))]
        self.known[batch_id] = command


def load_active(
    db: sqlite3.Connection, commands: BatchCommands | None = None
) -> tuple[list[Job], list[tuple[int, str, str]]]:
    """:meth:`Store.load_active` on any connection (``gflowd doctor`` reads it read-only)."""
    marks = ",".join(f"'{s.value}'" for s in ACTIVE_STATES)
    rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY id")
    return decode_rows(rows, commands or BatchCommands(db))


_RESERVATION = "id, user, gpu_ids, start, end, created, cancelled"


def _reservation(row: Sequence[Any]) -> Reservation:
    rid, user, gpus, start, end, created, cancelled = row
    return Reservation(
        rid, user, tuple(int(g) for g in gpus.split(",")), start, end, created, cancelled
    )


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What ``gqueue`` and friends ask for; every part optional."""

    states: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    uids: tuple[int, ...] = ()
    projects: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()
    since: float | None = None
    limit: int | None = None

    def matches(self, job: Job) -> bool:
        """The same test as the SQL ``WHERE`` of :meth:`Store.query`, for jobs in memory."""
        pairs = (
            (self.states, job.state.value),
            (self.ids, job.id),
            (self.names, job.name),
            (self.uids, job.uid),
            (self.projects, job.project),
            (self.groups, job.group_id),
        )
        if any(allowed and value not in allowed for allowed, value in pairs):
            return False
        return (
            self.since is None
            or job.end_time is None
            or job.submit_time >= self.since
            or job.end_time >= self.since
        )

    def pick(self, jobs: Iterable[Job]) -> list[Job]:
        """Matching jobs (given in id order), cut to ``limit`` like :meth:`Store.query`."""
        found = [j for j in jobs if self.matches(j)]
        if self.limit:
            found = found[: self.limit] if self.limit > 0 else found[self.limit :]
        return found


class Store:
    """The jobs database. Not thread-safe: the daemon uses it from its event loop only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._depth = 0
        self._savepoints = 0
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        self.commands = BatchCommands(self.db)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
            verdict = self.db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        if verdict != "ok":
            self.db.close()
            raise StoreError(f"database {path} failed its integrity check ({verdict})")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA optimize")
        self.db.close()

    # ------------------------------------------------------------ schema

    def schema_version(self) -> int:
        row = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if row is None:
            return 0
        got = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(got[0]) if got else 0

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema {current}, newer than this gflow "
                f"({SCHEMA_VERSION}); upgrade gflow"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.tx():
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),)
                )

    # ------------------------------------------------------------ transactions

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One atomic write; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"database unavailable: {exc}") from exc
        self._depth = 1
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.commands.known.clear()  # a batch written here may be gone
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"database write failed: {exc}") from exc
            raise
        finally:
            self._depth = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Part of the current transaction that can be undone alone (one job's event).

        A write the database refuses (disk full, I/O error) is a :class:`StoreError` for
        the whole transaction; data it cannot take (an integer too large, a wrong type)
        undoes this part only and is raised as it is.
        """
        assert self._depth, "a savepoint lives inside a transaction"
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException as exc:
            if self.db.in_transaction:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, _DATA_ERRORS):
                raise StoreError(f"database write failed: {exc}") from exc
            raise
        self.db.execute(f"RELEASE {name}")

    # ------------------------------------------------------------ jobs

    def install_id(self) -> str:
        """This installation's random id (made once), which marks its jobs in a cluster."""
        row = self.db.execute("SELECT value FROM meta WHERE key='install_id'").fetchone()
        if row is not None:
            return str(row[0])
        import secrets

        value = secrets.token_hex(6)
        with self.tx():
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('install_id', ?)", (value,))
        return self.install_id()

    def next_job_id(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='jobs'").fetchone()
        return (int(row[0]) if row else 0) + 1

    def next_batch_id(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='batches'").fetchone()
        return (int(row[0]) if row else 0) + 1

    def insert_batch(
        self,
        uid: int,
        env: dict[str, str],
        first_job: int,
        count: int,
        now: float,
        batch_id: int | None = None,
        command: tuple[str, ...] | None = None,
    ) -> int:
        """One submission: its environment, and the command its jobs share (stored once)."""
        cur = self.db.execute(
            "INSERT INTO batches (id, uid, submit_time, env, first_job, count, command) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                batch_id,
                uid,
                now,
                json.dumps(env),
                first_job,
                count,
                None if command is None else json.dumps(list(command)),
            ),
        )
        assert cur.lastrowid is not None
        self.commands.remember(cur.lastrowid, command)
        return cur.lastrowid

    def _row(self, job: Job) -> tuple[Any, ...]:
        shared = self.commands(job.batch_id)
        return to_row(job, shared is not None and (shared is job.command or shared == job.command))

    def insert_jobs(self, jobs: Iterable[Job]) -> None:
        self.db.executemany(_INSERT, (self._row(j) for j in jobs))

    def save(self, job: Job) -> None:
        """Write every field of an existing job."""
        sets = ", ".join(f"{name}=?" for name in FIELDS[1:])
        self.db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*self._row(job)[1:], job.id))

    def record_event(
        self, job_id: int, old: State | None, new: State, reason: str | None, now: float
    ) -> None:
        self.db.execute(
            "INSERT INTO events (job_id, time, from_state, to_state, reason) VALUES (?,?,?,?,?)",
            (job_id, now, old.value if old else None, new.value, reason),
        )

    def record_events(
        self, rows: Iterable[tuple[int, State | None, State, str | None]], now: float
    ) -> None:
        self.db.executemany(
            "INSERT INTO events (job_id, time, from_state, to_state, reason) VALUES (?,?,?,?,?)",
            [(i, now, old.value if old else None, new.value, why) for i, old, new, why in rows],
        )

    def cancelled_because(self, reasons: list[str]) -> list[Job]:
        """The jobs cancelled with one of these reasons (``DependencyFailed:<id>``), by id."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE state = 'Cancelled' "
            "AND reason IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(reasons),),
        )
        found = (readable(row, self.commands) for row in rows.fetchall())
        return [job for job in found if job is not None]

    def redone(self, ids: list[int]) -> dict[int, int]:
        """The newest redo of each of these jobs that has one (``gjob redo``)."""
        rows = self.db.execute(
            "SELECT redo_of, max(id) FROM jobs WHERE redo_of IN (SELECT value FROM json_each(?)) "
            "GROUP BY redo_of",
            (json.dumps(ids),),
        )
        return {int(old): int(new) for old, new in rows}

    def attempts_of(self, job_id: int) -> list[int]:
        """Every attempt in ``job_id``'s retry chain (first attempt first)."""
        rows = self.db.execute(
            """
            WITH RECURSIVE up(id, prev) AS (
                SELECT id, retry_of FROM jobs WHERE id = ?
                UNION SELECT j.id, j.retry_of FROM jobs j JOIN up ON j.id = up.prev
            ),
            down(id) AS (
                SELECT id FROM up WHERE prev IS NULL
                UNION SELECT j.id FROM jobs j JOIN down ON j.retry_of = down.id
            )
            SELECT id FROM down ORDER BY id
            """,
            (job_id,),
        )
        return [int(r[0]) for r in rows]

    def events_of(self, job_id: int) -> list[tuple[float, str | None, str, str | None]]:
        return self.db.execute(
            "SELECT time, from_state, to_state, reason FROM events WHERE job_id=? ORDER BY id",
            (job_id,),
        ).fetchall()

    def get(self, job_id: int) -> Job | None:
        """The job, or None if there is none (or its row cannot be read)."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return readable(row, self.commands) if row else None

    def get_many(self, ids: Iterable[int]) -> dict[int, Job]:
        wanted = list(dict.fromkeys(ids))
        found: dict[int, Job] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            for row in self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id IN ({marks})", chunk):
                job = readable(row, self.commands)
                if job is not None:
                    found[job.id] = job
        return found

    def ended_while_submitting(self) -> list[Job]:
        """Ended jobs whose Slurm submission was under way (cancelled during ``sbatch``)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE slurm_id = 'submitting' AND state IN "
            "('Finished', 'Failed', 'Cancelled', 'Timeout')"
        )
        return [j for row in rows if (j := readable(row, self.commands)) is not None]

    def load_active(self) -> tuple[list[Job], list[tuple[int, str, str]]]:
        """The active jobs, and (id, state, why) of active rows the engine cannot handle."""
        return load_active(self.db, self.commands)

    def end_broken(self, job_id: int, old: str, new: State, reason: str, now: float) -> None:
        """End a job whose data cannot be handled, writing only its state, reason and end."""
        self.db.execute(
            "UPDATE jobs SET state=?, reason=?, end_time=?, stop_intent=NULL WHERE id=?",
            (new.value, reason, now, job_id),
        )
        self.db.execute(
            "INSERT INTO events (job_id, time, from_state, to_state, reason) VALUES (?,?,?,?,?)",
            (job_id, now, old, new.value, reason),
        )

    def state_of(self, job_id: int) -> str | None:
        row = self.db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def query_page(self, flt: JobFilter, after: int, size: int) -> list[tuple[int, Job | None]]:
        """Up to ``size`` matching jobs with ids above ``after``, in id order, by id (None:
        a row that cannot be read)."""
        where, args = self._where(flt, after)
        sql = f"SELECT {_COLUMNS} FROM jobs{where} ORDER BY id LIMIT ?"
        rows = self.db.execute(sql, [*args, size]).fetchall()
        return [(row[0], readable(row, self.commands)) for row in rows]

    def fitting(self, flt: JobFilter, after: int, size: int, budget: int) -> int:
        """How many of the next ``size`` matching jobs above ``after`` (in id order) hold
        at most ``budget`` characters of command text together, one at least: a page of
        jobs with large commands is cut short before any of them is read."""
        where, args = self._where(flt, after)
        sql = f"SELECT length(command), batch_id FROM jobs{where} ORDER BY id LIMIT ?"
        rows = self.db.execute(sql, [*args, size]).fetchall()
        lengths = self._command_lengths({batch for length, batch in rows if not length})
        total = 0
        for count, (length, batch) in enumerate(rows):
            total += length or lengths.get(batch, 0)
            if total > budget:
                return max(1, count)
        return len(rows)

    def _command_lengths(self, batches: set[int]) -> dict[int, int]:
        """The length of each of these submissions' shared command, in characters."""
        if not batches:
            return {}
        found = self.db.execute(
            "SELECT id, length(command) FROM batches WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(batches)),),
        )
        return {int(batch): int(length or 0) for batch, length in found}

    def start_of_last(self, flt: JobFilter, count: int) -> int:
        """The id below which :meth:`query_page` must start to list the last ``count`` jobs."""
        where, args = self._where(flt)
        row = self.db.execute(
            f"SELECT id FROM jobs{where} ORDER BY id DESC LIMIT 1 OFFSET ?", [*args, count - 1]
        ).fetchone()
        return 0 if row is None else int(row[0]) - 1

    def widest(self, flt: JobFilter) -> dict[str, int]:
        """The longest id and name among the jobs ``flt`` matches, in characters (a long
        listing lays out its columns with them before it has read every row)."""
        where, args = self._where(flt)
        sql = f"SELECT max(id), max(length(name)) FROM jobs{where}"
        top, name = self.db.execute(sql, args).fetchone()
        return {"JOBID": len(str(top or 0)), "NAME": int(name or 0)}

    @staticmethod
    def _where(flt: JobFilter, after: int | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        for column, values in (
            ("state", flt.states),
            ("id", flt.ids),
            ("name", flt.names),
            ("uid", flt.uids),
            ("project", flt.projects),
            ("group_id", flt.groups),
        ):
            if values:  # one parameter however long the list: SQLite caps their number
                clauses.append(f"{column} IN (SELECT value FROM json_each(?))")
                args.append(json.dumps(list(values)))
        if flt.since is not None:
            clauses.append("(submit_time >= ? OR end_time >= ? OR end_time IS NULL)")
            args.extend([flt.since, flt.since])
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def query_rows(self, flt: JobFilter, after: int = 0, size: int = 2000) -> list[tuple[Any, ...]]:
        """One page of listing rows, ids above ``after``, in id order: the
        :data:`LIST_COLUMNS` but the last, with the command as a tuple (None: unreadable).

        Paging keeps no statement open between pages, so the daemon can list a long
        history in slices while it goes on handling events.
        """
        where, args = self._where(flt, after)
        sql = f"SELECT {_LISTED} FROM jobs{where} ORDER BY id LIMIT ?"
        rows = self.db.execute(sql, [*args, size]).fetchall()
        return [(*row[:-2], self._listed_command(row[-2], row[-1])) for row in rows]

    def listing_page(
        self, fields: Sequence[str], flt: JobFilter, after: int, size: int
    ) -> list[tuple[Any, ...]]:
        """Up to ``size`` matching jobs above ``after`` in id order, each as its id, then
        its ``fields`` (:data:`LISTING_SQL`; the command decoded, None if unreadable).

        Only the fields asked for are read: a listing of the history costs what it shows.
        """
        where, args = self._where(flt, after)
        columns = ["id", *(LISTING_SQL[f] for f in fields)]
        command = fields.index("command") + 1 if "command" in fields else 0
        if command:
            columns.append("batch_id")
        sql = f"SELECT {', '.join(columns)} FROM jobs{where} ORDER BY id LIMIT ?"
        rows = self.db.execute(sql, [*args, size]).fetchall()
        if not command:
            return rows
        return [
            (*row[:command], self._listed_command(row[command], row[-1]), *row[command + 1 : -1])
            for row in rows
        ]

    def _listed_command(self, text: str, batch_id: int) -> tuple[str, ...] | None:
        try:
            return command_of(text, batch_id, self.commands)
        except Exception:  # a damaged row: listed without its command
            return None

    def page(
        self,
        flt: JobFilter,
        *,
        name_part: str | None = None,
        order: str = "id",
        descending: bool = True,
        offset: int = 0,
        size: int = 50,
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One page of listing rows (as :meth:`query_rows`) in any :data:`SORTABLE` order,
        and how many rows match."""
        if order not in SORTABLE:
            raise ValueError(f"cannot sort by {order}")
        where, args = self._where(flt)
        if name_part:
            escaped = name_part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where = (where + " AND" if where else " WHERE") + " name LIKE ? ESCAPE '\\'"
            args = [*args, f"%{escaped}%"]
        way = "DESC" if descending else "ASC"
        sql = f"SELECT {_LISTED} FROM jobs{where} ORDER BY {order} {way}, id {way} LIMIT ? OFFSET ?"
        rows = self.db.execute(sql, [*args, size, offset]).fetchall()
        total = self.db.execute(f"SELECT count(*) FROM jobs{where}", args).fetchone()[0]
        return [(*row[:-2], self._listed_command(row[-2], row[-1])) for row in rows], int(total)

    def with_deps_from(self, first: int) -> list[tuple[int, str]]:
        """(id, dependency JSON) of every job from ``first`` on that has a dependency."""
        rows = self.db.execute(
            "SELECT id, deps FROM jobs WHERE id >= ? AND deps IS NOT NULL ORDER BY id", (first,)
        )
        return [(int(i), str(d)) for i, d in rows]

    def usage_rows(
        self, uids: Sequence[int] = (), since: float | None = None
    ) -> list[tuple[str, float, float | None, float | None, int, str, str | None]]:
        """(state, submit, start, end, gpus, user, project) of the jobs a statistics page
        covers."""
        where, args = self._where(JobFilter(uids=tuple(uids), since=since))
        return self.db.execute(
            "SELECT state, submit_time, start_time, end_time, gpus, user, project "
            f"FROM jobs{where}",
            args,
        ).fetchall()

    def task_range(self, group_id: int) -> tuple[int, int, int] | None:
        """How many task ids the array ``group_id`` has, its first and its last."""
        row = self.db.execute(
            "SELECT count(DISTINCT task_id), min(task_id), max(task_id) FROM jobs "
            "WHERE group_id=? AND task_id IS NOT NULL",
            (group_id,),
        ).fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row and row[0] else None

    def group_members(self, group_id: int) -> list[int]:
        rows = self.db.execute("SELECT id FROM jobs WHERE group_id=? ORDER BY id", (group_id,))
        return [r[0] for r in rows]

    def group_tasks(self, group_id: int) -> list[int]:
        """The newest job of each task of an array or sweep (a retry or a redo of a task
        keeps its place), in id order."""
        rows = self.db.execute(
            "SELECT max(id) FROM jobs WHERE group_id=? GROUP BY task_id ORDER BY 1", (group_id,)
        )
        return [r[0] for r in rows]

    def array_task(self, group_id: int, task_id: int) -> int | None:
        """The newest job of one task of an array or sweep, if there is one."""
        row = self.db.execute(
            "SELECT max(id) FROM jobs WHERE group_id=? AND task_id=?", (group_id, task_id)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def latest_by_name(self, uid: int, name: str) -> int | None:
        row = self.db.execute(
            "SELECT max(id) FROM jobs WHERE uid=? AND name=?", (uid, name)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def recent_batches(self, uid: int, count: int) -> list[tuple[int, int]]:
        """(first job id, job count) of the user's ``count`` most recent submissions."""
        rows = self.db.execute(
            "SELECT first_job, count FROM batches WHERE uid=? ORDER BY id DESC LIMIT ?",
            (uid, count),
        )
        return [(int(a), int(b)) for a, b in rows]

    def batch_env(self, batch_id: int) -> dict[str, str]:
        row = self.db.execute("SELECT env FROM batches WHERE id=?", (batch_id,)).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def stats_rows(
        self, uids: Sequence[int] = (), since: float | None = None
    ) -> list[tuple[str, float, float | None, float | None, int]]:
        where, args = self._where(JobFilter(uids=tuple(uids), since=since))
        return self.db.execute(
            f"SELECT state, submit_time, start_time, end_time, gpus FROM jobs{where}", args
        ).fetchall()

    def prune(self, before: float, keep: Iterable[int] = ()) -> int:
        """Delete final jobs that ended before ``before``, except ``keep`` (the parents that
        waiting jobs still judge their dependencies by)."""
        with self.tx():
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS keep (id INTEGER PRIMARY KEY)")
            self.db.execute("DELETE FROM keep")
            self.db.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((i,) for i in keep))
            marks = ",".join(f"'{s.value}'" for s in ACTIVE_STATES)
            cur = self.db.execute(
                f"DELETE FROM jobs WHERE state NOT IN ({marks}) AND end_time < ? "
                "AND id NOT IN (SELECT id FROM keep)",
                (before,),
            )
            self.db.execute("DELETE FROM events WHERE job_id NOT IN (SELECT id FROM jobs)")
            self.db.execute(
                "DELETE FROM batches WHERE id NOT IN (SELECT DISTINCT batch_id FROM jobs) "
                "AND id NOT IN (SELECT id FROM batches ORDER BY id DESC LIMIT 100)"
            )
            return cur.rowcount

    # ------------------------------------------------------------ groups and settings

    def group_limits(self) -> dict[int, int]:
        rows = self.db.execute("SELECT id, max_concurrent FROM groups WHERE max_concurrent > 0")
        return {int(a): int(b) for a, b in rows}

    def set_group_limit(self, group_id: int, limit: int | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO groups VALUES (?, ?)", (group_id, limit))

    def setting(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_setting(self, key: str, value: Any) -> None:
        if value is None:
            self.db.execute("DELETE FROM settings WHERE key=?", (key,))
        else:
            self.db.execute(
                "INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value))
            )

    # ------------------------------------------------------------ quotas and reservations

    def quotas(self) -> list[Quota]:
        rows = self.db.execute(
            "SELECT scope, name, max_running_jobs, max_running_gpus, max_queued_jobs FROM quotas"
        )
        return [Quota(scope, name, Limits(a, b, c)) for scope, name, a, b, c in rows]

    def put_quota(self, quota: Quota) -> None:
        lim = quota.limits
        self.db.execute(
            "INSERT OR REPLACE INTO quotas VALUES (?, ?, ?, ?, ?)",
            (
                quota.scope,
                quota.name,
                lim.max_running_jobs,
                lim.max_running_gpus,
                lim.max_queued_jobs,
            ),
        )

    def delete_quota(self, scope: str, name: str) -> bool:
        cur = self.db.execute("DELETE FROM quotas WHERE scope=? AND name=?", (scope, name))
        return cur.rowcount > 0

    def reservations(self, *, live_after: float | None = None) -> list[Reservation]:
        """All reservations by id; with ``live_after``, only uncancelled ones ending later."""
        if live_after is None:
            rows = self.db.execute(f"SELECT {_RESERVATION} FROM reservations ORDER BY id")
        else:
            rows = self.db.execute(
                f"SELECT {_RESERVATION} FROM reservations "
                "WHERE cancelled IS NULL AND end > ? ORDER BY id",
                (live_after,),
            )
        return [_reservation(row) for row in rows]

    def reservation(self, reservation_id: int) -> Reservation | None:
        row = self.db.execute(
            f"SELECT {_RESERVATION} FROM reservations WHERE id=?", (reservation_id,)
        ).fetchone()
        return _reservation(row) if row else None

    def insert_reservation(
        self, user: str, gpu_ids: Sequence[int], start: float, end: float, now: float
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO reservations (user, gpu_ids, start, end, created) VALUES (?,?,?,?,?)",
            (user, ",".join(map(str, gpu_ids)), start, end, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def cancel_reservation(self, reservation_id: int, now: float) -> None:
        self.db.execute("UPDATE reservations SET cancelled=? WHERE id=?", (now, reservation_id))

    # ------------------------------------------------------------ notifications

    def add_notifications(self, rows: Iterable[NoticeRow]) -> None:
        """Outbox rows, inside the transaction of the change they tell of."""
        self.db.executemany(
            "INSERT INTO notifications (created, event, job_id, uid, channel, target, body, "
            "state, next_try, deadline, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )

    def pending_notifications(self, after: int) -> list[tuple[int, str, str, float, int | None]]:
        """(id, channel, target, next try, uid) of every pending notification above
        ``after``."""
        return self.db.execute(
            "SELECT id, channel, target, next_try, uid FROM notifications "
            "WHERE state = 'pending' AND id > ? ORDER BY id",
            (after,),
        ).fetchall()

    def notification(self, notice_id: int) -> dict[str, Any] | None:
        cur = self.db.execute(f"SELECT {_NOTICE} FROM notifications WHERE id=?", (notice_id,))
        row = cur.fetchone()
        return None if row is None else dict(zip(_NOTICE_FIELDS, row, strict=True))

    def settle_notifications(
        self,
        delivered: Sequence[tuple[int, int, float]],
        retried: Sequence[tuple[int, int, float, str]],
        failed: Sequence[tuple[int, int, float, str]],
    ) -> None:
        """Record delivery outcomes: (id, attempts, when) delivered; (id, attempts, next
        try, error) to try again; (id, attempts, when, error) given up."""
        with self.tx():
            self.db.executemany(
                "UPDATE notifications SET state='delivered', attempts=?, done=?, "
                "last_error=NULL WHERE id=? AND state='pending'",
                [(a, when, i) for i, a, when in delivered],
            )
            self.db.executemany(
                "UPDATE notifications SET attempts=?, next_try=?, last_error=? "
                "WHERE id=? AND state='pending'",
                [(a, at, err, i) for i, a, at, err in retried],
            )
            self.db.executemany(
                "UPDATE notifications SET state='failed', attempts=?, done=?, last_error=? "
                "WHERE id=? AND state='pending'",
                [(a, when, err, i) for i, a, when, err in failed],
            )

    def list_notifications(
        self, uid: int | None, states: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` notifications in these states (of ``uid``'s jobs, if given),
        oldest first."""
        where = "state IN (SELECT value FROM json_each(?))"
        args: list[Any] = [json.dumps(list(states))]
        if uid is not None:
            where += " AND uid = ?"
            args.append(uid)
        rows = self.db.execute(
            f"SELECT {_NOTICE} FROM notifications WHERE {where} ORDER BY id DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
        return [dict(zip(_NOTICE_FIELDS, row, strict=True)) for row in reversed(rows)]

    def retry_notifications(
        self, ids: Sequence[int] | None, uid: int | None, now: float, deadline: float
    ) -> list[tuple[int, str, str, float, int | None]]:
        """Make failed (or waiting) notifications due now, with a fresh deadline: these
        ids, else all failed ones; only ``uid``'s when given. The rows, as
        :meth:`pending_notifications` gives them."""
        where = "state != 'delivered'" if ids is not None else "state = 'failed'"
        args: list[Any] = []
        if ids is not None:
            where += " AND id IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(list(ids)))
        if uid is not None:
            where += " AND uid = ?"
            args.append(uid)
        with self.tx():
            chosen = [
                int(r[0])
                for r in self.db.execute(f"SELECT id FROM notifications WHERE {where}", args)
            ]
            self.db.executemany(
                "UPDATE notifications SET state='pending', next_try=?, deadline=?, done=NULL "
                "WHERE id=?",
                [(now, deadline, i) for i in chosen],
            )
        return self.db.execute(
            "SELECT id, channel, target, next_try, uid FROM notifications "
            "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(chosen),),
        ).fetchall()

    def notification_counts(self) -> dict[str, int]:
        """How many notifications are pending and failed."""
        rows = self.db.execute(
            "SELECT state, count(*) FROM notifications WHERE state != 'delivered' GROUP BY state"
        )
        return {str(state): int(n) for state, n in rows}

    def prune_notifications(self, delivered_before: float, failed_before: float) -> None:
        """Forget notifications delivered, or given up, before these times."""
        with self.tx():
            self.db.execute(
                "DELETE FROM notifications WHERE (state='delivered' AND done < ?) "
                "OR (state='failed' AND created < ?)",
                (delivered_before, failed_before),
            )

    # ------------------------------------------------------------ health

    def integrity_check(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


def open_store(path: Path) -> Store:
    """Open the database; a file SQLite cannot read is copied aside, never overwritten."""
    try:
        return Store(path)
    except StoreError as exc:
        if not path.exists():
            raise
        backup = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        for suffix in ("", "-wal"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                shutil.copy2(source, f"{backup}{suffix}")
        raise StoreError(
            f"{exc.message}. A copy was saved as {backup}; the original is untouched. "
            "Run 'gflowd doctor' to check it, 'gflowd doctor --repair' to salvage what is readable"
        ) from exc
