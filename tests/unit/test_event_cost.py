"""A job's end costs the daemon the same work whatever the length of the queue behind it
(counted, not timed), and jobs past the front of a long queue are still planned soon."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from gflow import commands
from gflow import engine as engine_module
from gflow.config import DaemonConfig, Paths
from gflow.engine import Caller, Engine, Exited, Started
from gflow.model import State
from gflow.protocol import SubmitRequest
from gflow.recovery import recover
from gflow.store import Store

ANN = Caller(1000, 1000, "ann")


def _engine(tmp_path: Path) -> Engine:
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    paths.run_dir.mkdir(parents=True)
    engine = Engine(Store(paths.db), paths, DaemonConfig())
    recover(engine, 100.0)
    return engine


def _submit(engine: Engine, now: float, **extra: Any) -> list[int]:
    req = SubmitRequest.from_json({"command": ["true"], "workdir": "/tmp", **extra})
    return [job.id for job in commands.submit(engine, req, ANN, now)]


def _work_of_one_end(tmp_path: Path, queued: int) -> int:
    """Python calls the end of a throttled array's running task takes, ``queued`` behind it."""
    engine = _engine(tmp_path)
    ids = _submit(engine, 100.0, array=f"1-{queued + 1}%1")
    assert list(engine.launching) == [ids[0]]
    engine.jobs_started([Started(ids[0], None, None, 100.1)], 100.1)
    calls = 0

    def count_call(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count_call)
    try:
        engine.jobs_exited([Exited(ids[0], 0, 100.2)], 100.2)
    finally:
        sys.setprofile(None)
    assert list(engine.launching) == [ids[1]]
    assert engine.reasons[ids[-1]] == "JobGroupLimit"
    return calls


def test_a_job_end_costs_the_same_with_a_longer_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "QUICK_DEPTH", 50, raising=False)
    few = _work_of_one_end(tmp_path / "a", 100)
    many = _work_of_one_end(tmp_path / "b", 2000)
    assert many < 1.5 * few, (few, many)


def test_jobs_past_the_front_of_a_long_queue_start_at_the_next_full_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "QUICK_DEPTH", 5)
    engine = _engine(tmp_path)
    first = _submit(engine, 100.0, array="1-20%1")
    second = _submit(engine, 100.0, array="1-20%1")
    assert set(engine.launching) == {first[0], second[0]}
    engine.group_limits[second[0]] = 3  # as gjob update --array-limit does, then a pass
    engine.schedule(100.1)
    engine.tick(100.1 + engine_module.FULL_EVERY)
    assert set(engine.launching) == {first[0], *second[:3]}
    assert engine.reasons[second[3]] == "JobGroupLimit"
    assert all(engine.jobs[i].state is State.QUEUED for i in second)
