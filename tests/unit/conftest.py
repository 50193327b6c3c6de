"""What the unit tests share: one way to make a job, and the real engine, simulated.

``make_job`` (also the ``job_factory`` fixture) builds a :class:`~gflow.model.Job` with
plain defaults; :class:`Sim` (the ``sim`` fixture) drives the real engine over a
temporary store with an explicit clock, without processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gflow import commands
from gflow.config import DaemonConfig, Paths
from gflow.deps import DepRequest
from gflow.engine import Caller, Engine, Launch, Signal
from gflow.model import Job, State
from gflow.protocol import SubmitRequest
from gflow.store import Store


def make_job(job_id: int = 1, **fields: Any) -> Job:
    """A job as test data: ann's (uid 1000), named ``j<id>``, running ``true`` in ``/``,
    submitted at 0; ``fields`` set anything else, its state included."""
    base: dict[str, Any] = {
        "uid": 1000,
        "user": "ann",
        "name": f"j{job_id}",
        "command": ("true",),
        "workdir": "/",
        "submit_time": 0.0,
    }
    return Job(id=job_id, **{**base, **fields})


@pytest.fixture
def job_factory() -> Callable[..., Job]:
    return make_job


CALLER = Caller(os.getuid(), os.getgid(), "tester")


class Sim:
    """The real engine over a temp store; launches 'succeed' when the test says so."""

    def __init__(self, home: Path) -> None:
        paths = Paths(home / "gflow.toml", home, home)
        self.store = Store(paths.db)
        self.store.db.execute("PRAGMA synchronous=OFF")  # a simulation: no need to fsync
        self.engine = Engine(self.store, paths, DaemonConfig())
        self.engine.load()
        self.now = 1000.0
        self.launching: list[int] = []
        self.stopping: list[int] = []

    def close(self) -> None:
        self.store.close()

    def drain(self) -> None:
        for action in self.engine.outbox:
            if isinstance(action, Launch):
                self.launching.append(action.job_id)
                self.check_singleton(action.job_id)
            elif isinstance(action, Signal) and action.job_id not in self.stopping:
                self.stopping.append(action.job_id)
        self.engine.outbox.clear()

    def check_singleton(self, job_id: int) -> None:
        """A singleton is never launched while a job of the same user and name runs."""
        job = self.engine.jobs[job_id]
        if job.deps.singleton:
            for other in self.engine.jobs.values():
                if other.name == job.name and other.id != job_id:
                    assert other.state is not State.RUNNING, f"{job_id} beside {other.id}"

    def submit(
        self, dep: DepRequest, name: str = "job", retries: int = 0, caller: Caller = CALLER
    ) -> int:
        req = SubmitRequest(
            command=("true",),
            workdir="/",
            name=name,
            dependency=dep,
            max_retries=retries,
        )
        jobs = commands.submit(self.engine, req, caller, self.now)
        self.drain()
        return jobs[0].id

    def start(self, job_id: int) -> None:
        self.launching.remove(job_id)
        self.engine.job_started(job_id, 10**6 + job_id, None, self.now)
        self.drain()

    def exit(self, job_id: int, code: int | None) -> None:
        if job_id in self.stopping:
            self.stopping.remove(job_id)
        self.engine.job_exited(job_id, code, self.now)
        self.drain()

    def cancel(self, job_id: int) -> None:
        self.cancel_text(str(job_id))

    def cancel_text(self, text: str) -> None:
        """``gcancel TEXT``: waiting jobs end at once, running ones are told to stop."""
        commands.cancel(self.engine, text, CALLER, self.now)
        self.drain()

    def tick(self) -> None:
        self.engine.tick(self.now)
        self.drain()

    def job(self, job_id: int) -> Job:
        job = self.engine.job(job_id)
        assert job is not None
        return job

    def all_jobs(self) -> list[Job]:
        return sorted(
            self.store.get_many(range(1, self.store.next_job_id())).values(), key=lambda j: j.id
        )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    s = Sim(tmp_path)
    yield s
    s.close()
