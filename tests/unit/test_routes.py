"""Request routing by table, and what the handlers see of the daemon (``gflow.host``)."""

from __future__ import annotations

import inspect
from pathlib import Path

from gflow import listing, routes
from gflow.api import Api
from gflow.config import DaemonConfig, Paths
from gflow.deps import Clause, Dependency, DepType
from gflow.engine import Engine
from gflow.host import View
from gflow.model import State
from gflow.store import JobFilter, Store
from tests.unit.conftest import make_job


def test_every_route_and_verb_has_its_handler() -> None:
    for method, path, name in routes.ROUTES:
        assert method in ("GET", "POST") and path.startswith(("/v1/", "/metrics")), path
        assert inspect.iscoroutinefunction(getattr(Api, name)), name
    assert set(routes.JOB_VERBS) == {"cancel", "hold", "release", "update", "redo"}
    assert all(callable(verb.run) for verb in routes.ADMIN_VERBS.values())
    assert {n for n, v in routes.ADMIN_VERBS.items() if v.admins} == {
        "reload",
        "set-gpus",
        "gpu-process",
        "prune",
    }


class Shown:
    """A :class:`gflow.host.View` of an engine alone: no runtime needed to list jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.paths = engine.paths

    def tmux_socket(self, uid: int) -> str | None:
        return None


def test_a_listing_row_says_what_the_job_says(tmp_path: Path) -> None:
    """History is listed from rows read by column name: the same fields as from the job."""
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    store = Store(paths.db)
    engine = Engine(store, paths, DaemonConfig())
    engine.load()
    deps = Dependency((Clause(DepType.AFTEROK, (1,)),), on_pool=(Clause(DepType.AFTER, (2,)),))
    made = [
        make_job(1, name="a", submit_time=5.0, batch_id=1),
        make_job(
            2,
            name="b b",
            command=("sh", "-c", "exit 3"),
            workdir="/w",
            submit_time=6.0,
            batch_id=1,
            gpus=2,
        ),
        make_job(
            3,
            uid=1001,
            user="bob",
            name="c",
            command=("x",),
            submit_time=7.0,
            batch_id=2,
            deps=deps,
            project="p",
            group_id=3,
            task_id=0,
            memory_mb=512,
            time_limit=60,
            priority=40,
        ),
    ]
    with engine.guarded():
        store.insert_batch(1000, {}, 1, 2, 5.0, 1, ("true",))
        store.insert_batch(1001, {}, 3, 1, 7.0, 2, ("x",))
        engine.create(made, 8.0)
        for job in made:
            running = engine.move(job, State.RUNNING, 9.0, gpu_ids=(0, 1)[: job.gpus], pid=7)
            engine.move(running, State.FAILED, 10.0, exit_code=3, reason=None)
    view: View = Shown(engine)
    rows = store.query_rows(JobFilter())
    assert [r[0] for r in rows] == [1, 2, 3] and not engine.jobs
    for row in rows:
        job = store.get(row[0])
        assert job is not None
        for deps_too in (False, True):
            from_row = listing.row_json(row, view, deps_too)
            assert from_row == listing.compact_json(job, view, deps=deps_too)
    store.close()
