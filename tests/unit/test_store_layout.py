"""How jobs are laid out in SQLite: a submission's command once, and old files migrate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gflow.errors import StoreError
from gflow.model import Job
from gflow.store import _SCHEMA_V1, _SCHEMA_V2, SCHEMA_VERSION, Store
from tests.unit.conftest import make_job

BIG = ("python", "-c", "x" * 100_000)


def _job(job_id: int, batch: int, command: tuple[str, ...] = BIG) -> Job:
    return make_job(
        job_id, name=f"t{job_id}", command=command, workdir="/tmp", submit_time=1.0, batch_id=batch
    )


def test_an_array_stores_its_command_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "gflow.db")
    with store.tx():
        batch = store.insert_batch(1000, {}, 1, 500, 1.0, command=BIG)
        store.insert_jobs([_job(i, batch) for i in range(1, 500)])
        store.insert_jobs([_job(500, batch, ("echo", "own"))])  # a task with its own
    with store.tx():
        store.save(_job(7, batch, ("echo", "changed")))
    size = sum(len(r[0]) for r in store.db.execute("SELECT command FROM jobs"))
    assert size < 1000  # not 500 x 100 KB
    store.close()
    store = Store(tmp_path / "gflow.db")
    jobs = store.get_many(range(1, 501))
    assert jobs[1].command == jobs[499].command == BIG
    assert (jobs[7].command, jobs[500].command) == (("echo", "changed"), ("echo", "own"))
    active, broken = store.load_active()
    assert len(active) == 500 and not broken
    assert active[0].command is active[1].command  # one copy in memory too
    store.close()


def _old_database(path: Path, *extra: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        _SCHEMA_V1
        + _SCHEMA_V2
        + "INSERT INTO meta VALUES ('schema_version', '2');"
        + "INSERT INTO batches VALUES (1, 1000, 1.0, '{}', 1, 1);"
        + "".join(extra)
    )
    db.close()


def test_a_schema_2_database_migrates_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "gflow.db"
    _old_database(path)
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO jobs (id, batch_id, uid, user, name, state, command, workdir, gpus, "
        "shared, priority, auto_close, max_retries, retry_on_timeout, attempt, submit_time) "
        """VALUES (1, 1, 1000, 'ann', 'old', 'Queued', '["echo", "hi"]', '/tmp', 0, 0, 10, """
        "0, 0, 0, 0, 1.0)"
    )
    db.commit()
    db.close()
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    old = store.get(1)
    assert old is not None and old.command == ("echo", "hi")
    store.close()


def test_a_migration_that_fails_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "gflow.db"
    _old_database(path, "CREATE INDEX jobs_cancelled_reason ON jobs(name);")
    with pytest.raises(StoreError, match="jobs_cancelled_reason"):
        Store(path)
    db = sqlite3.connect(path)
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    columns = [r[1] for r in db.execute("PRAGMA table_info(batches)")]
    db.close()
    assert version == ("2",) and "command" not in columns
