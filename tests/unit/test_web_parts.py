"""The dashboard's pure parts: graph layout, wait reasons in words, chart data."""

from __future__ import annotations

import itertools
import time

from hypothesis import given
from hypothesis import strategies as st

from gflow.deps import Clause, Dependency, DepType
from gflow.model import Job, Reason
from gflow.quotas import Limits, Quota, QuotaTable
from gflow.web import charts, explain
from gflow.web.layout import NODE_H, NODE_W, Edge, layout
from tests.unit.conftest import make_job


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] - b[0]) < NODE_W and abs(a[1] - b[1]) < NODE_H


@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), max_size=60))
def test_a_layout_puts_children_right_of_parents_and_never_stacks_nodes(
    pairs: list[tuple[int, int]],
) -> None:
    edges = [Edge(min(a, b), max(a, b), "afterok") for a, b in pairs if a != b]
    ids = set(range(1, 31))
    lay = layout(ids, edges)
    assert set(lay.nodes) == ids
    for e in lay.edges:
        assert lay.nodes[e.child].x > lay.nodes[e.parent].x
    spots = [(p.x, p.y) for p in lay.nodes.values()]
    assert not any(_overlap(a, b) for a, b in itertools.combinations(spots, 2))
    assert all(p.x + NODE_W <= lay.width and p.y + NODE_H <= lay.height for p in lay.nodes.values())


def test_a_thousand_job_pipeline_is_laid_out_in_columns() -> None:
    fan = [Edge(1, i, "afterok") for i in range(2, 1000)]
    tail = [Edge(i, 1000, "afterany") for i in range(2, 1000)]
    lay = layout(range(1, 1001), fan + tail)
    assert {p.column for p in lay.nodes.values()} == {0, 1, 2}
    assert lay.nodes[1000].column == 2 and len(lay.edges) == 2 * 998


def test_sweeps_remove_the_crossings_of_two_parallel_chains() -> None:
    edges = [Edge(1, 4, "afterok"), Edge(2, 3, "afterok")]
    lay = layout([1, 2, 3, 4], edges)
    assert (lay.nodes[1].y < lay.nodes[2].y) == (lay.nodes[4].y < lay.nodes[3].y)


def _job(**kw: object) -> Job:
    return make_job(9, user="alice", name="train", **kw)


def test_a_dependency_wait_names_the_parents_it_waits_for() -> None:
    deps = Dependency(
        (
            Clause(DepType.AFTEROK, (3, 4)),
            Clause(DepType.AFTERANY, (5,)),
            Clause(DepType.AFTER, (6,), 600),
        )
    )
    ctx = explain.Context(pending={9: (4, 5, 6)})
    words = explain.queued(_job(deps=deps), Reason.DEPENDENCY, ctx)
    assert words == (
        "waits for ",
        "job ",
        4,
        " to succeed",
        " and ",
        "job ",
        5,
        " to end",
        " and ",
        "job ",
        6,
        " to start",
        " (+10 min)",
    )
    many = Dependency((Clause(DepType.AFTEROK, tuple(range(10, 20))),), any_of=True)
    text = explain.queued(
        _job(deps=many), Reason.DEPENDENCY, explain.Context(pending={9: tuple(range(10, 20))})
    )
    assert text[-2:] == (" and 5 more", " to succeed")


def test_resource_waits_say_what_is_missing() -> None:
    ctx = explain.Context(
        gpus_total=4,
        gpus_idle=1,
        memory_mb=32768,
        memory_used_mb=30720,
        quotas=QuotaTable([Quota("user", "alice", Limits(max_running_gpus=2))]),
        quota_use={("user", "alice"): [1, 2, 0]},
    )
    assert explain.queued(_job(gpus=2), Reason.GPU, ctx) == ("needs 2 GPUs; 1 of 4 idle",)
    assert explain.queued(_job(memory_mb=4096), Reason.MEMORY, ctx) == (
        "needs 4G of host memory; 30G of 32G are taken",
    )
    assert "uses 2 of at most 2 GPUs" in str(explain.queued(_job(gpus=1), Reason.QUOTA, ctx)[0])
    ended = explain.ended("Cancelled", "DependencyFailed:7", None)
    assert ended == ("cancelled: ", 7, " did not end as it needed")
    assert explain.ended("Failed", None, 3) == ("exit code 3",)


def test_an_unknown_exit_code_is_said_to_hold_the_jobs_after_it() -> None:
    waiting = explain.queued(_job(), Reason.parent_exit_unknown(7), explain.Context())
    assert waiting[1] == 7 and "nobody could tell" in str(waiting[0])
    assert "could not be read" in str(explain.ended("Failed", Reason.EXIT_UNKNOWN, None)[0])


def test_charts_count_jobs_per_day_gpu_hours_and_waits() -> None:
    now = time.mktime((2026, 5, 10, 12, 0, 0, 0, 0, -1))  # noon, local time
    rows: list[charts.Row] = [
        ("Finished", now - 100, now - 50, now - 10, 2, "alice", "nlp"),
        ("Failed", now - 86400, now - 86400 + 7200, now - 3600, 0, "bob", None),
        ("Queued", now - 5, None, None, 1, "bob", None),
    ]
    per_day = charts.per_day(rows, now, 3)
    assert [b.total for b in per_day.bars] == [0, 1, 2]
    assert per_day.keys() == ["Finished", "Failed", "Queued"]
    gpu = charts.gpu_hours(rows, now, "user")
    assert [(b.label, b.total) for b in gpu.bars] == [("alice", round(2 * 40 / 3600, 3))]
    waits = charts.waits(rows)
    assert [b.total for b in waits.bars] == [1, 0, 0, 1, 0]


def test_the_hub_does_no_work_while_no_page_is_open() -> None:
    from gflow.web.hub import Hub

    rendered: list[set[int]] = []
    hub = Hub(lambda ids, gpus: rendered.append(ids) or b"")
    for job_id in range(1000):
        hub.changed(job_id)  # no event loop is needed: nothing is scheduled
    hub.changed(None)
    assert not rendered and not hub._pending and not hub._jobs


def test_a_page_that_does_not_read_gets_one_reset_instead_of_a_backlog() -> None:
    from gflow.web.hub import BACKLOG, RESET, Subscriber, sse

    slow = Subscriber(1000, "digest")
    event = sse("jobs", "x" * 1000)
    for _ in range(2 * BACKLOG // len(event)):
        slow.push(event)
    assert slow.size <= BACKLOG
    assert RESET in slow.chunks
