"""Any job the store saves is the job it reads back: every field, every value."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gflow.deps import Clause, Dependency, DepType
from gflow.model import Job, Reason, State, StopIntent
from gflow.store import Store
from tests.unit.conftest import make_job

INT64 = 2**63 - 1
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
times = st.floats(0, 4e9, allow_nan=False)
ids = st.integers(1, INT64)
clauses = st.builds(
    Clause,
    st.sampled_from(DepType),
    st.lists(st.integers(1, 10**18), min_size=1, max_size=4).map(tuple),
    st.integers(0, 10**9),
)
dependencies = st.builds(
    Dependency,
    st.lists(clauses, max_size=3).map(tuple),
    st.booleans(),
    st.integers(0, 5),
    st.lists(clauses, max_size=2).map(tuple),
    st.booleans(),
    st.booleans(),
)
reasons = st.one_of(st.none(), st.sampled_from(Reason), texts)
FIELDS: dict[str, Any] = {
    "uid": st.integers(0, 2**32 - 2),
    "user": texts,
    "name": texts,
    "command": st.lists(texts, min_size=1, max_size=4).map(tuple),
    "workdir": texts,
    "submit_time": times,
    "state": st.sampled_from(State),
    "reason": reasons,
    "exit_code": st.one_of(st.none(), st.integers(-(2**31), 2**31)),
    "script": st.one_of(st.none(), texts),
    "gpus": st.integers(0, 1024),
    "shared": st.booleans(),
    "gpu_memory_mb": st.one_of(st.none(), st.integers(1, INT64)),
    "memory_mb": st.one_of(st.none(), st.integers(1, INT64)),
    "time_limit": st.one_of(st.none(), st.integers(1, 10**9)),
    "priority": st.integers(0, 255),
    "begin_at": st.one_of(st.none(), times),
    "conda_env": st.one_of(st.none(), texts),
    "project": st.one_of(st.none(), texts),
    "auto_close": st.booleans(),
    "deps": dependencies,
    "dep_text": st.one_of(st.none(), texts),
    "group_id": st.one_of(st.none(), ids),
    "task_id": st.one_of(st.none(), st.integers(0, INT64)),
    "params": st.one_of(st.none(), st.dictionaries(texts, texts, max_size=3)),
    "max_retries": st.integers(0, 100),
    "retry_on_timeout": st.booleans(),
    "attempt": st.integers(0, 100),
    "retry_of": st.one_of(st.none(), ids),
    "redo_of": st.one_of(st.none(), ids),
    "start_time": st.one_of(st.none(), times),
    "end_time": st.one_of(st.none(), times),
    "gpu_ids": st.lists(st.integers(0, 1023), max_size=4).map(tuple),
    "pid": st.one_of(st.none(), st.integers(1, 2**22)),
    "pid_start": st.one_of(st.none(), st.integers(0, INT64)),
    "executor": st.one_of(st.none(), st.sampled_from(["tmux", "process"])),
    "stop_intent": st.one_of(st.none(), st.sampled_from(StopIntent)),
    "memory_enforcement": st.one_of(st.none(), st.sampled_from(["cgroup", "rlimit"])),
    "slurm_id": st.one_of(st.none(), texts),
    "node": st.one_of(st.none(), texts),
    "signal": st.one_of(st.none(), st.sampled_from(["USR1@60", "B:TERM@5"])),
    "output": st.one_of(st.none(), texts),
    "error": st.one_of(st.none(), texts),
    "cpus_per_task": st.one_of(st.none(), st.integers(1, 4096)),
    "mail_type": st.one_of(st.none(), st.sampled_from(["END,FAIL", "BEGIN,END,FAIL,TIMEOUT"])),
    "mail_user": st.one_of(st.none(), texts),
    "notify_url": st.one_of(st.none(), texts),
    "run_on": st.one_of(st.none(), st.sampled_from(["local", "slurm"])),
}


def test_the_strategy_covers_every_field() -> None:
    assert set(FIELDS) == {f.name for f in dataclasses.fields(Job)} - {"id", "batch_id"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(FIELDS), st.fixed_dictionaries(FIELDS), st.booleans())
def test_a_saved_job_reads_back_equal(
    tmp_path_factory: Any, first: dict[str, Any], later: dict[str, Any], shares: bool
) -> None:
    """Inserted (its command stored with its submission or on its own), then saved
    with every field changed: each time the store gives back the very same job."""
    home: Path = tmp_path_factory.mktemp("store")
    store = Store(home / "gflow.db")
    try:
        job = make_job(1, batch_id=1, **first)
        with store.tx():
            batch = job.command if shares else ("another", "command")
            store.insert_batch(job.uid, {}, 1, 1, 0.0, 1, batch)
            store.insert_jobs([job])
        assert store.get(1) == job
        changed = dataclasses.replace(job, **later)
        with store.tx():
            store.save(changed)
        assert store.get(1) == changed
    finally:
        store.close()
