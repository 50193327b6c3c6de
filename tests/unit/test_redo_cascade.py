"""``gjob redo --cascade`` does work linear in the jobs it redoes (counted, not timed)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from gflow import commands
from gflow.config import DaemonConfig, Paths
from gflow.engine import Caller, Engine, Exited, Started
from gflow.model import State
from gflow.protocol import SubmitRequest
from gflow.recovery import recover
from gflow.store import Store

ANN = Caller(1000, 1000, "ann")


def _failed_root_with_dependents(tmp_path: Path, fan_out: int, chain: int) -> tuple[Engine, int]:
    """A job that failed, ``fan_out`` dependents and a chain of ``chain`` after the first:
    all cancelled by its failure."""
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    paths.run_dir.mkdir(parents=True)
    engine = Engine(Store(paths.db), paths, DaemonConfig())
    recover(engine, 100.0)

    def submit(**extra: Any) -> int:
        req = SubmitRequest.from_json({"command": ["true"], "workdir": "/tmp", **extra})
        return commands.submit(engine, req, ANN, 100.0)[0].id

    root = submit()
    first = submit(array=f"1-{fan_out}", options={"depends_on": [str(root)]})
    parent = first
    for _ in range(chain):
        parent = submit(options={"depends_on": [str(parent)]})
    engine.jobs_started([Started(root, None, None, 100.0)], 100.0)
    engine.jobs_exited([Exited(root, 1, 101.0)], 101.0)
    assert not engine.jobs  # every dependent was cancelled
    return engine, root


def _work_of_redo(engine: Engine, root: int) -> tuple[int, int]:
    """Python function calls and SQLite VM steps (in hundreds) one cascading redo takes."""
    calls = steps = 0

    def count_call(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    def count_step() -> int:
        nonlocal steps
        steps += 1
        return 0

    engine.store.db.set_progress_handler(count_step, 100)
    sys.setprofile(count_call)
    try:
        out = commands.redo(engine, root, {}, ANN, 102.0, cascade=True)
    finally:
        sys.setprofile(None)
        engine.store.db.set_progress_handler(None, 0)
    assert len(out.done) == len(engine.jobs)
    return calls, steps


def test_a_cascading_redo_is_linear(tmp_path: Path) -> None:
    small = _work_of_redo(*_failed_root_with_dependents(tmp_path / "a", 100, 25))
    engine, root = _failed_root_with_dependents(tmp_path / "b", 400, 100)
    large = _work_of_redo(engine, root)
    assert len(engine.jobs) == 1 + 400 + 100
    assert all(job.state is State.QUEUED for job in engine.jobs.values())
    for few, many in zip(small, large, strict=True):  # 4x the jobs: about 4x the work
        assert many < 5 * few, (small, large)
