"""The runtime's periodic work, on a real store: it outlives a database that says no."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gflow.config import DaemonConfig, Paths
from gflow.daemon import Runtime
from gflow.launchspec import Inherited
from gflow.model import State
from tests.unit.conftest import make_job

DAY = 86400.0


async def _until(cond: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


def test_pruning_goes_on_after_the_database_refused_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pruning the database refuses (here: another writer holds it) is tried again;
    before, the first refusal ended the pruning for the life of the daemon."""
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    rt = Runtime(paths, DaemonConfig(executor="process", history_days=1), Inherited())
    old = time.time() - 3 * DAY
    with rt.engine.guarded():
        rt.store.insert_batch(1000, {}, 1, 1, old, 1, ("true",))
        rt.engine.create([make_job(1, batch_id=1, submit_time=old)], old)
        running = rt.engine.move(rt.engine.jobs[1], State.RUNNING, old, pid=1)
        rt.engine.move(running, State.FINISHED, old, exit_code=0)
    rt.store.db.execute("PRAGMA busy_timeout=20")
    other = sqlite3.connect(paths.db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")

    async def scenario() -> bool:
        task = asyncio.ensure_future(rt.prune_history())
        refused = await _until(lambda: task.done() or "pruning the history failed" in caplog.text)
        other.execute("ROLLBACK")
        gone = await _until(lambda: rt.store.get(1) is None)
        task.cancel()
        return refused and gone

    try:
        assert asyncio.run(scenario()), "the old job was never pruned"
    finally:
        other.close()
        rt.store.close()
        rt.pool.shutdown()
