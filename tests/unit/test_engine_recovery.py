"""The engine across a simulated crash: what was acknowledged is kept (no processes)."""

from __future__ import annotations

import signal
from pathlib import Path

from gflow import commands
from gflow.config import DaemonConfig, Paths
from gflow.deps import Clause, Dependency, DepType
from gflow.engine import Caller, Engine, Exited, Launch, Signal, Started
from gflow.model import State
from gflow.protocol import SubmitRequest
from gflow.recovery import recover
from gflow.store import Store

ANN = Caller(1000, 1000, "ann")


def boot(tmp_path: Path) -> Engine:
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    paths.run_dir.mkdir(exist_ok=True)
    engine = Engine(Store(paths.db), paths, DaemonConfig())
    recover(engine, 100.0)
    return engine


def test_a_cancel_acknowledged_during_launch_survives_a_crash(tmp_path: Path) -> None:
    engine = boot(tmp_path)
    req = SubmitRequest.from_json({"command": ["true"], "workdir": "/tmp"})
    (job,) = commands.submit(engine, req, ANN, 100.0)
    assert any(isinstance(a, Launch) and a.job_id == job.id for a in engine.outbox)
    answer = commands.cancel(engine, str(job.id), ANN, 101.0)
    assert answer.done[0]["action"] == "stopping"
    engine.store.close()  # the daemon dies before the launch happens

    after = boot(tmp_path)
    row = after.store.get(job.id)
    assert row is not None
    assert (row.state, row.reason) == (State.CANCELLED, "CancelledByUser")
    assert not any(isinstance(a, Launch) for a in after.outbox)


def test_a_cancel_acknowledged_during_launch_stops_the_job_when_it_starts(
    tmp_path: Path,
) -> None:
    engine = boot(tmp_path)
    req = SubmitRequest.from_json({"command": ["true"], "workdir": "/tmp"})
    (job,) = commands.submit(engine, req, ANN, 100.0)
    commands.cancel(engine, str(job.id), ANN, 101.0)
    assert engine.next_launch(job.id, 102.0) is None  # its turn comes: it is not started
    row = engine.store.get(job.id)
    assert row is not None and row.state is State.CANCELLED


def _submit(engine: Engine, now: float, **extra: object) -> int:
    req = SubmitRequest.from_json({"command": ["true"], "workdir": "/tmp", **extra})
    return commands.submit(engine, req, ANN, now)[0].id


def test_one_jobs_bad_data_drops_no_other_jobs_events(tmp_path: Path) -> None:
    """Values no request can carry any more, as an old or damaged database may hold them:
    the job they belong to ends with a reason, and every other job's start and end is
    recorded in the same batch."""
    engine = boot(tmp_path)
    parent, broken, other = (_submit(engine, 100.0) for _ in range(3))
    child = _submit(engine, 100.0, options={"depends_on": [f"after:{parent}+1"]})
    bomb = Dependency((Clause(DepType.AFTER, (parent,), 10**400),))
    engine.jobs[child] = engine.jobs[child].replace(deps=bomb)  # judged when the parent starts
    engine.jobs[broken] = engine.jobs[broken].replace(time_limit=10**400)
    engine.outbox.clear()
    starts = [Started(i, 4000 + i, 1, 101.0) for i in (parent, broken, other)]
    engine.jobs_started(starts, 101.0)
    engine.jobs_exited([Exited(parent, 0, 102.0), Exited(other, 0, 102.0)], 102.0)

    def row(job_id: int) -> tuple[State, str | None]:
        job = engine.store.get(job_id)
        assert job is not None
        return job.state, job.reason

    assert row(parent) == row(other) == (State.FINISHED, None)
    state, reason = row(broken)
    assert state is State.CANCELLED and reason and reason.startswith("InvalidJobData:time_limit")
    assert Signal(broken, 4000 + broken, signal.SIGKILL) in engine.outbox  # it did start
    state, reason = row(child)
    assert state is State.CANCELLED
    assert reason and reason.startswith("InvalidJobData:dependency delay 1000")
    assert not engine.jobs  # memory holds what the database says


def test_recovery_ends_what_it_cannot_handle_and_starts(tmp_path: Path) -> None:
    engine = boot(tmp_path)
    good = _submit(engine, 100.0, hold=True)
    bad = _submit(engine, 100.0, hold=True)
    unreadable = _submit(engine, 100.0, hold=True)
    with engine.store.tx():
        engine.store.db.execute("UPDATE jobs SET begin_at=1e300 WHERE id=?", (bad,))
        engine.store.db.execute("UPDATE jobs SET command='[' WHERE id=?", (unreadable,))
    engine.store.close()
    after = boot(tmp_path)
    assert set(after.jobs) == {good}
    rows = dict(after.store.db.execute("SELECT id, reason FROM jobs WHERE id != ?", (good,)))
    assert rows[bad] == "InvalidJobData:begin_at 1e+300 is out of range"
    assert rows[unreadable].startswith("InvalidJobData:unreadable row (JSONDecodeError")
