"""Property: no ``%N`` / ``--max-concurrent`` group limit (or max_running) is ever exceeded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gflow.model import Job, State, transition
from gflow.scheduler import GpuSlot, Resources, plan, sort_key
from tests.unit.conftest import make_job


def limited(job_id: int, group: int | None, gpus: int, priority: int) -> Job:
    return make_job(job_id, uid=0, user="u", group_id=group, gpus=gpus, priority=priority)


jobs_strategy = st.lists(
    st.tuples(st.sampled_from([None, 1, 2, 3]), st.integers(0, 2), st.integers(0, 255)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    specs=jobs_strategy,
    limits=st.dictionaries(st.sampled_from([1, 2, 3]), st.integers(1, 4)),
    max_running=st.none() | st.integers(1, 6),
    gpu_count=st.integers(0, 4),
    ends=st.lists(st.integers(0, 10_000), max_size=60),
)
def test_limits_hold_through_any_sequence_of_job_ends(
    specs: list[tuple[int | None, int, int]],
    limits: dict[int, int],
    max_running: int | None,
    gpu_count: int,
    ends: list[int],
) -> None:
    waiting = [limited(i + 1, g, min(n, gpu_count), p) for i, (g, n, p) in enumerate(specs)]
    res = Resources(tuple(GpuSlot(i, 24576) for i in range(gpu_count)), None, max_running)
    running: list[Job] = []
    for pick in [None, *ends]:
        if pick is not None and running:
            running.pop(pick % len(running))
        decided = plan(sorted(waiting, key=sort_key), running, res, limits, 0.0)
        started = {s.job_id: s.gpu_ids for s in decided.starts}
        for job in list(waiting):
            if job.id in started:
                waiting.remove(job)
                running.append(transition(job, State.RUNNING, 0.0, gpu_ids=started[job.id]))
        per_group: dict[int, int] = {}
        for job in running:
            if job.group_id is not None:
                per_group[job.group_id] = per_group.get(job.group_id, 0) + 1
        for group, count in per_group.items():
            assert count <= limits.get(group, count)
        if max_running is not None:
            assert len(running) <= max_running
        held = [g for job in running for g in job.gpu_ids]
        assert len(held) == len(set(held)), "a GPU was handed out twice"
        for job in waiting:
            assert job.id in decided.reasons
