"""The engine across a simulated crash: what was acknowledged is kept (no processes)."""

from __future__ import annotations

from pathlib import Path

from gflow import commands
from gflow.config import DaemonConfig, Paths
from gflow.engine import Caller, Engine, Launch
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
