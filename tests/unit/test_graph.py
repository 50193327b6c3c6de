"""Tests for gflow.graph (references, cycles, the impact of a cancel) and, with hypothesis,
for the whole dependency engine: random DAGs with random outcomes driven through the real
:class:`Engine` against a temporary store, without processes, with an explicit clock.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gflow import commands, graph
from gflow.deps import (
    Clause,
    Dependency,
    DepRequest,
    DepType,
    ParentView,
    RawClause,
    Verdict,
    evaluate,
)
from gflow.engine import Caller
from gflow.errors import Refused
from gflow.model import Job, Reason, State
from gflow.parse import RecentRef, TaskRef
from tests.unit.conftest import CALLER, Sim, make_job

# ---------------------------------------------------------------- references


class FakeLookup:
    """A tiny job table: 1-3 plain, 4-6 array 4 (tasks 1-3), 7 named 'prep'."""

    def __init__(self) -> None:
        self.jobs = {i: make_job(i) for i in (1, 2, 3)}
        self.jobs.update({4 + t: make_job(4 + t, group_id=4, task_id=t + 1) for t in range(3)})
        self.jobs[7] = make_job(7, name="prep")
        self.batches = [(7, 1), (4, 3), (3, 1), (2, 1), (1, 1)]

    def job(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)

    def group_tasks(self, group_id: int) -> list[int]:
        newest: dict[int | None, int] = {}
        for j in sorted(self.jobs.values(), key=lambda j: j.id):
            if j.group_id == group_id:
                newest[j.task_id] = j.id
        return sorted(newest.values())

    def array_task(self, group_id: int, task_id: int) -> int | None:
        found = [
            j.id for j in self.jobs.values() if j.group_id == group_id and j.task_id == task_id
        ]
        return max(found, default=None)

    def recent_submissions(self, uid: int, count: int) -> list[tuple[int, int]]:
        return self.batches[:count]

    def latest_by_name(self, uid: int, name: str) -> int | None:
        found = [j.id for j in self.jobs.values() if j.name == name and j.uid == uid]
        return max(found, default=None)

    def attempts_of(self, job_id: int) -> list[int]:
        first = job_id
        while (prev := self.jobs[first].retry_of) is not None:
            first = prev
        chain = [first]
        while nxt := [j.id for j in self.jobs.values() if j.retry_of == chain[-1]]:
            chain.append(nxt[0])
        return chain


@pytest.mark.parametrize(
    ("ref", "target"),
    [
        (2, graph.Target((2,))),
        (4, graph.Target((4, 5, 6), 4)),  # an array's id is the whole array
        (5, graph.Target((5,))),
        (RecentRef(0), graph.Target((7,))),  # @ = the most recent submission
        (RecentRef(1), graph.Target((4, 5, 6), 4)),  # @~1 = the second most recent: an array
        (RecentRef(2), graph.Target((3,))),
        (TaskRef(4, 2), graph.Target((5,))),
        ("prep", graph.Target((7,))),
    ],
)
def test_resolve_ref(ref: graph.ParentToken, target: graph.Target) -> None:
    assert graph.resolve_ref(ref, 1000, FakeLookup()) == target


def test_a_name_an_arrays_tasks_share_is_the_whole_array() -> None:
    lookup = FakeLookup()
    for t in range(3):
        lookup.jobs[4 + t] = make_job(4 + t, name="prepA", group_id=4, task_id=t + 1)
    assert graph.resolve_ref("prepA", 1000, lookup) == graph.Target((4, 5, 6), 4)
    lookup.jobs[6] = make_job(6, name="sweep-lr1", group_id=4, task_id=3)  # a sweep's own name
    assert graph.resolve_ref("sweep-lr1", 1000, lookup) == graph.Target((6,))


def test_a_task_named_beside_its_array_adds_nothing_but_to_afternotok() -> None:
    req = DepRequest((RawClause("afterok", (4, 5, 1)), RawClause("afternotok", (4, 5))))
    dep = graph.resolve(req, 1000, FakeLookup()).dependency
    assert dep.clauses == (
        Clause(DepType.AFTEROK, (1,)),
        Clause(DepType.AFTEROK, (4, 5, 6), group=4),
        Clause(DepType.AFTERNOTOK, (5,)),  # task 5 failed, and the array ended with a failure
        Clause(DepType.AFTERNOTOK, (4, 5, 6), group=4),
    )


def test_a_redone_or_retried_task_keeps_its_place_in_the_array() -> None:
    lookup = FakeLookup()
    lookup.jobs[9] = make_job(9, group_id=4, task_id=2, redo_of=5)
    assert graph.resolve_ref(4, 1000, lookup) == graph.Target((4, 6, 9), 4)
    assert graph.resolve_ref(TaskRef(4, 2), 1000, lookup) == graph.Target((9,))


def test_a_recent_submission_removed_from_the_history_is_not_found() -> None:
    lookup = FakeLookup()
    del lookup.jobs[7]  # pruned: how it ended is no longer known
    with pytest.raises(Refused) as err:
        graph.resolve_ref(RecentRef(0), 1000, lookup)
    assert err.value.message == "Dependency job 7 not found (@ is job 7)"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (999, "Dependency job 999 not found"),
        (8, "Dependency job 8 not found"),  # the id the job being submitted will get
        (RecentRef(5), "Dependency @~5 not found: you have 5 earlier submissions"),
        (TaskRef(4, 9), "Dependency job 4_9 not found"),
        ("nope", "Dependency job 'nope' not found (no job of yours has that name)"),
    ],
)
def test_resolve_ref_errors(ref: graph.ParentToken, message: str) -> None:
    with pytest.raises(Refused) as err:
        graph.resolve_ref(ref, 1000, FakeLookup())
    assert err.value.message == message


def test_a_name_is_looked_up_among_the_callers_jobs_only() -> None:
    with pytest.raises(Refused, match="no job of yours"):
        graph.resolve_ref("prep", 1001, FakeLookup())


def test_resolve_splits_clauses_corr_and_before() -> None:
    req = DepRequest(
        (
            RawClause("afterok", (1, 2, 1)),
            RawClause("after", (RecentRef(0),), 60),
            RawClause("aftercorr", (4,)),
            RawClause("beforeok", (3,)),
            RawClause("before", ("prep",)),
        ),
        auto_cancel=False,
        on_count=1,
    )
    resolved = graph.resolve(req, 1000, FakeLookup(), is_array=True)
    assert resolved.dependency == Dependency(
        (Clause(DepType.AFTEROK, (1, 2)), Clause(DepType.AFTER, (7,), 60)),
        on_count=1,
        auto_cancel=False,
    )
    assert resolved.corr == [graph.Target((4, 5, 6), 4)]
    assert resolved.before == [(DepType.AFTEROK, 3), (DepType.AFTER, 7)]
    task_of = {4: 1, 5: 2, 6: 3}.get
    dep = resolved.for_task(2, task_of)
    assert dep.clauses[-1] == Clause(DepType.AFTEROK, (5,))
    with pytest.raises(Refused, match="aftercorr: array 4 has no task 7"):
        resolved.for_task(7, task_of)


def test_aftercorr_looks_up_each_parent_task_once() -> None:
    req = DepRequest((RawClause("aftercorr", (4,)), RawClause("aftercorr", (1,))))
    resolved = graph.resolve(req, 1000, FakeLookup(), is_array=True)
    asked: list[int] = []

    def task_of(member: int) -> int | None:
        asked.append(member)
        return {4: 1, 5: 2, 6: 3}.get(member)

    deps = [resolved.for_task(t, task_of) for t in (1, 2, 3)]
    assert [d.clauses for d in deps] == [
        (Clause(DepType.AFTEROK, (3 + t,)), Clause(DepType.AFTEROK, (1,))) for t in (1, 2, 3)
    ]
    assert sorted(asked) == [4, 5, 6]  # not once per task asking


def test_a_retried_parent_stands_for_its_newest_attempt() -> None:
    lookup = FakeLookup()
    lookup.jobs[1] = make_job(1, state=State.FAILED, max_retries=2)
    lookup.jobs[8] = make_job(8, state=State.FAILED, max_retries=2, attempt=1, retry_of=1)
    lookup.jobs[9] = make_job(9, state=State.QUEUED, max_retries=2, attempt=2, retry_of=8)
    lookup.jobs[2] = make_job(2, state=State.FAILED, max_retries=1, attempt=1)  # no retry left
    lookup.jobs[3] = make_job(3, state=State.FINISHED, max_retries=1)
    assert [graph.latest_attempt(i, lookup) for i in (1, 8, 9, 2, 3)] == [9, 9, 9, 2, 3]
    req = DepRequest((RawClause("afterok", (1, 8, 2)),))
    assert graph.resolve(req, 1000, lookup).dependency.parents() == {9, 2}


def test_aftercorr_needs_an_array() -> None:
    req = DepRequest((RawClause("aftercorr", (4,)),))
    with pytest.raises(Refused, match="aftercorr needs an array job"):
        graph.resolve(req, 1000, FakeLookup())


def test_before_targets_must_wait_belong_to_the_user_and_count() -> None:
    ok = make_job(3, deps=Dependency(on_count=1))
    graph.check_before_target(ok, 1000, admin=False)
    graph.check_before_target(make_job(3, deps=ok.deps, state=State.HOLD), 1000, admin=False)
    with pytest.raises(Refused, match="belongs to ann"):
        graph.check_before_target(ok, 1001, admin=False)
    graph.check_before_target(ok, 1001, admin=True)
    with pytest.raises(Refused, match="job 3 is Running, not Queued or Hold"):
        graph.check_before_target(make_job(3, deps=ok.deps, state=State.RUNNING), 1000, admin=False)
    with pytest.raises(Refused, match=r"not submitted with on:<count>"):
        graph.check_before_target(make_job(3), 1000, admin=False)


# ---------------------------------------------------------------- cycles


def test_find_path_and_cycles() -> None:
    parents = {2: [1], 3: [2], 4: [1, 3], 5: []}

    def parents_of(i: int) -> list[int]:
        return parents.get(i, [])

    assert graph.find_path([4], 1, parents_of) in ([4, 1], [4, 3, 2, 1])
    assert graph.find_path([5], 1, parents_of) is None
    graph.check_cycle(5, [4], parents_of)
    with pytest.raises(Refused) as err:
        graph.check_cycle(1, [5, 3], parents_of)
    assert err.value.message == (
        "Circular dependency detected: Job 1 depends on Job 3, which has a path back to Job 1"
    )
    with pytest.raises(Refused, match=r"^Job cannot depend on itself$"):
        graph.check_cycle(2, [2], parents_of)


def test_find_path_terminates_on_a_diamond_heavy_graph() -> None:
    def parents_of(i: int) -> list[int]:  # each job waits on the two before it
        return [p for p in (i - 1, i - 2) if p >= 1]

    assert graph.find_path([300], 0, parents_of) is None
    assert graph.find_path([300], 1, parents_of) is not None


# ---------------------------------------------------------------- the impact of a cancel


@dataclass
class Table:
    """Jobs and dependencies for :func:`graph.cancel_impact`."""

    views: dict[int, ParentView]
    deps: dict[int, Dependency] = field(default_factory=dict)

    def add(self, job_id: int, dep: Dependency, state: str = "Queued") -> None:
        self.deps[job_id] = dep
        self.views[job_id] = ParentView(state)

    def children(self, parent: int) -> list[int]:
        return [c for c, d in self.deps.items() if parent in d.parents()]

    def views_of(self, ids: Iterable[int]) -> dict[int, ParentView]:
        return {i: self.views[i] for i in ids if i in self.views}

    def impact(self, *roots: int) -> dict[int, tuple[str, int]]:
        fates = graph.cancel_impact(
            roots, self.children, self.deps.__getitem__, self.views_of, 100.0
        )
        return {f.job_id: (f.fate, f.because) for f in fates}


def ok(*parents: int, auto: bool = True) -> Dependency:
    return Dependency((Clause(DepType.AFTEROK, parents),), auto_cancel=auto)


def test_impact_cascades_through_levels() -> None:
    t = Table({1: ParentView("Running", 1.0)})
    t.add(2, ok(1))
    t.add(3, ok(2))
    t.add(4, ok(3))
    assert t.impact(1) == {2: ("cancelled", 1), 3: ("cancelled", 2), 4: ("cancelled", 3)}


def test_impact_spares_an_or_dependent_with_a_live_alternative() -> None:
    t = Table({1: ParentView("Queued"), 2: ParentView("Running", 1.0)})
    either = Dependency((Clause(DepType.AFTEROK, (1,)), Clause(DepType.AFTEROK, (2,))), True)
    t.add(3, either)
    t.add(4, ok(3))
    assert t.impact(1) == {}
    assert t.impact(1, 2) == {3: ("cancelled", 2), 4: ("cancelled", 3)}


def test_impact_releases_afternotok_and_afterany_dependents() -> None:
    t = Table({1: ParentView("Queued")})
    t.add(2, Dependency((Clause(DepType.AFTERNOTOK, (1,)),)))
    t.add(3, Dependency((Clause(DepType.AFTERANY, (1,)),)))
    t.add(4, Dependency((Clause(DepType.AFTER, (1,)),)))
    t.add(5, ok(2))
    assert t.impact(1) == {2: ("released", 1), 3: ("released", 1), 4: ("released", 1)}


def test_impact_includes_a_release_after_a_delay() -> None:
    t = Table({1: ParentView("Queued")})
    t.add(2, Dependency((Clause(DepType.AFTER, (1,), 600),)))
    t.add(3, Dependency((Clause(DepType.AFTER, (1,), 600), Clause(DepType.AFTEROK, (9,)))))
    t.views[9] = ParentView("Running", 1.0)
    fates = graph.cancel_impact([1], t.children, t.deps.__getitem__, t.views_of, 100.0)
    assert fates == [graph.Fate(2, "released", 1, 700.0)]  # 3 still waits for job 9


def test_impact_strands_no_auto_cancel_jobs_and_what_waits_on_them() -> None:
    t = Table({1: ParentView("Queued")})
    t.add(2, ok(1, auto=False))
    t.add(3, Dependency((Clause(DepType.AFTERANY, (2,)),)))
    t.add(4, ok(3))
    assert t.impact(1) == {2: ("never", 1), 3: ("blocked", 2), 4: ("blocked", 3)}


def test_impact_ignores_dependents_already_decided() -> None:
    t = Table({1: ParentView("Running", 1.0), 9: ParentView("Failed", 1.0, 2.0)})
    t.add(2, Dependency((Clause(DepType.AFTER, (1,)),)))  # met when 1 started
    t.add(3, Dependency((Clause(DepType.AFTEROK, (1, 9)),), auto_cancel=False))  # hopeless
    assert t.impact(1) == {}


def test_impact_of_a_final_job_is_nothing() -> None:
    t = Table({1: ParentView("Finished", 1.0, 2.0)})
    t.add(2, ok(1))
    assert t.impact(1) == {}


# ---------------------------------------------------------------- the engine, simulated


def req(
    *clauses: tuple[str, tuple[int, ...]], any_of: bool = False, auto: bool = True, on: int = 0
) -> DepRequest:
    raw = tuple(RawClause(t, ids) for t, ids in clauses)
    return DepRequest(raw, any_of=any_of, auto_cancel=auto, on_count=on)


def test_release_is_in_the_same_pass_as_the_parents_end(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(req(("afterok", (a,))))
    assert sim.launching == [a]
    sim.start(a)
    sim.now += 1
    sim.exit(a, 0)
    assert sim.launching == [b]


def test_after_releases_when_the_parent_starts(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(req(("after", (a,))))
    sim.start(a)
    assert sim.launching == [b]


def test_after_plus_minutes_waits_on_a_timer(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(DepRequest((RawClause("after", (a,), 120),)))
    sim.start(a)
    assert sim.launching == [] and sim.engine.next_wake() == sim.now + 120
    sim.now += 119
    sim.tick()
    assert sim.launching == []
    sim.now += 1
    sim.tick()
    assert sim.launching == [b]


def test_cascade_cancel_names_the_parent(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(req(("afterok", (a,))))
    c = sim.submit(req(("afterok", (b,))))
    d = sim.submit(req(("afterany", (c,))))
    sim.start(a)
    sim.exit(a, 1)
    assert (sim.job(b).state, sim.job(b).reason) == (State.CANCELLED, "DependencyFailed:1")
    assert sim.job(c).reason == f"DependencyFailed:{b}"
    assert sim.job(d).state is State.QUEUED and sim.launching == [d]  # afterany: released


def test_no_auto_cancel_marks_and_update_clears(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(req(("afterok", (a,)), auto=False))
    sim.start(a)
    sim.exit(a, 2)
    assert (sim.job(b).state, sim.job(b).reason) == (State.QUEUED, Reason.NEVER)
    c = sim.submit(req())
    commands.update(sim.engine, str(b), {"dependency": req(("afterok", (c,)))}, CALLER, sim.now)
    sim.drain()
    assert sim.job(b).reason is None
    sim.start(c)
    sim.exit(c, 0)
    assert sim.launching == [b]


def test_update_to_a_failed_parent_cascades(sim: Sim) -> None:
    a = sim.submit(req())
    sim.start(a)
    sim.exit(a, 1)
    b = sim.submit(req(), name="b")
    c = sim.submit(req(("afterok", (b,))))
    d = sim.submit(req(("afterok", (c,))))
    commands.update(sim.engine, str(c), {"dependency": req(("afterok", (a,)))}, CALLER, sim.now)
    assert sim.job(c).reason == f"DependencyFailed:{a}"
    assert sim.job(d).reason == f"DependencyFailed:{c}"


def test_retry_repoints_waiting_dependents_but_keeps_met_after_clauses(sim: Sim) -> None:
    a = sim.submit(req(), retries=1)
    gate = sim.submit(req())
    b = sim.submit(req(("afterok", (a,))))
    c = sim.submit(req(("after", (a,)), ("afterok", (gate,))))
    sim.start(a)
    sim.start(gate)
    sim.exit(a, 1)
    retry = max(j.id for j in sim.all_jobs())
    assert sim.job(retry).retry_of == a
    assert sim.job(b).deps.parents() == {retry}
    assert sim.job(c).deps.parents() == {a, gate}  # after:a was met when a started
    assert sim.launching == [retry]
    sim.exit(gate, 0)
    assert c in sim.launching
    sim.start(retry)
    sim.exit(retry, 0)
    assert b in sim.launching


def test_singleton_waits_for_the_running_namesake(sim: Sim) -> None:
    a = sim.submit(req(), name="x")
    sim.start(a)
    b = sim.submit(DepRequest(singleton=True), name="x")
    other = sim.submit(DepRequest(singleton=True), name="y")
    assert sim.launching == [other]
    sim.exit(a, 1)
    assert sim.launching == [other, b]


def test_singleton_does_not_deadlock_with_a_namesake_that_waits_on_it(sim: Sim) -> None:
    a = sim.submit(DepRequest(on_count=1), name="x")  # waits for a before-job
    b = sim.submit(DepRequest((RawClause("before", (a,)),), singleton=True), name="x")
    assert sim.launching == [b]
    sim.start(b)
    assert sim.launching == [a]  # a is no singleton: it may run beside b


def test_redo_cascade_rewires_and_repoints(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(req(("afterok", (a,))))
    c = sim.submit(req(("afterok", (a,)), ("afterok", (b,))))
    d = sim.submit(req(("afterok", (a,)), auto=False))
    sim.start(a)
    sim.exit(a, 1)
    assert sim.job(d).reason == Reason.NEVER
    out = commands.redo(sim.engine, a, {}, CALLER, sim.now, cascade=True)
    sim.drain()
    made = {j["redo_of"]: j["id"] for j in out.done}
    assert set(made) == {a, b, c}
    assert sim.job(made[b]).deps.parents() == {made[a]}
    assert sim.job(made[c]).deps.parents() == {made[a], made[b]}
    assert sim.job(d).deps.parents() == {made[a]} and sim.job(d).reason is None
    assert sim.launching == [made[a]]
    sim.start(made[a])
    sim.exit(made[a], 0)
    assert sorted(sim.launching) == sorted([made[b], d])


def test_redo_cascade_leaves_other_users_jobs_alone(sim: Sim) -> None:
    other = Caller(CALLER.uid + 1, CALLER.gid, "other")
    a = sim.submit(req())
    theirs = sim.submit(req(("afterok", (a,))), caller=other)
    waiting = sim.submit(req(("afterok", (a,)), auto=False), caller=other)
    sim.start(a)
    sim.exit(a, 1)
    assert sim.job(theirs).reason == f"DependencyFailed:{a}"
    out = commands.redo(sim.engine, a, {}, CALLER, sim.now, cascade=True)
    assert [j["redo_of"] for j in out.done] == [a]
    assert sim.job(waiting).deps.parents() == {a}


def test_a_dry_run_names_the_parent_the_cancel_will_blame(sim: Sim) -> None:
    """A queued job cancelled with a running one ends first: its dependents are cancelled
    because of it, and the dry run says so."""
    queued = sim.submit(req(on=1, auto=False))
    running = sim.submit(req())
    child = sim.submit(req(("afterok", (running, queued))))
    sim.start(running)
    text = f"{queued},{running}"
    dry = commands.cancel(sim.engine, text, CALLER, sim.now, dry_run=True)
    assert [(j["id"], j["because"]) for j in dry.done if j.get("dependent")] == [(child, queued)]
    sim.cancel_text(text)
    sim.exit(running, None)
    assert sim.job(child).reason == f"DependencyFailed:{queued}"


def test_a_redo_with_a_begin_time_starts_when_that_time_comes(sim: Sim) -> None:
    a = sim.submit(req())
    sim.start(a)
    sim.exit(a, 1)
    out = commands.redo(sim.engine, a, {"begin_at": sim.now + 60}, CALLER, sim.now)
    sim.drain()
    assert sim.launching == [] and sim.engine.next_wake() == sim.now + 60
    sim.now += 60
    sim.tick()
    assert sim.launching == [out.done[0]["id"]]


def test_dry_run_cancel_reports_without_changing_anything(sim: Sim) -> None:
    a = sim.submit(req())
    b = sim.submit(req(("afterok", (a,))))
    c = sim.submit(req(("afternotok", (a,))))
    out = commands.cancel(sim.engine, str(a), CALLER, sim.now, dry_run=True)
    assert [(j["id"], j["fate"]) for j in out.done[1:]] == [(b, "cancelled"), (c, "released")]
    assert {sim.job(i).state for i in (a, b, c)} == {State.QUEUED}


# ---------------------------------------------------------------- random DAGs

TYPES = ("after", "afterok", "afternotok", "afterany")
BEFORE = {
    "before": "after",
    "beforeok": "afterok",
    "beforenotok": "afternotok",
    "beforeany": "afterany",
}
OUTCOMES = ("ok", "fail", "cancel")


@dataclass
class Plan:
    """One planned job: its dependency (over plan indexes) and what each attempt does."""

    clauses: list[tuple[str, tuple[int, ...], int]]
    any_of: bool
    auto_cancel: bool
    on_count: int
    before: list[tuple[str, int]]
    attempts: list[str]
    name: str = ""
    singleton: bool = False


@st.composite
def dags(draw: st.DrawFn, max_jobs: int = 12) -> list[Plan]:
    n = draw(st.integers(1, max_jobs))
    plans: list[Plan] = []
    waits_on: list[set[int]] = []  # everything each job waits on, transitively
    for i in range(n):
        clauses: list[tuple[str, tuple[int, ...], int]] = []
        if i and draw(st.booleans()):
            for _ in range(draw(st.integers(1, 3))):
                kind = draw(st.sampled_from(TYPES))
                parents = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=3, unique=True))
                delay = 60 * draw(st.sampled_from([0, 0, 0, 1, 2])) if kind == "after" else 0
                clauses.append((kind, tuple(parents), delay))
        upstream = set().union(*(waits_on[p] | {p} for _, ps, _ in clauses for p in ps))
        before: list[tuple[str, int]] = []
        targets = [t for t in range(i) if plans[t].on_count and t not in upstream]
        if targets and draw(st.booleans()):
            before.append((draw(st.sampled_from(sorted(BEFORE))), draw(st.sampled_from(targets))))
        retries = draw(st.integers(0, 1))
        plans.append(
            Plan(
                clauses=clauses,
                any_of=len(clauses) > 1 and draw(st.booleans()),
                auto_cancel=draw(st.booleans()),
                on_count=draw(st.sampled_from([0, 0, 0, 1, 2])),
                before=before,
                attempts=draw(
                    st.lists(st.sampled_from(OUTCOMES), min_size=retries + 1, max_size=retries + 1)
                ),
                name=draw(st.sampled_from(["x", "y", f"job{i}"])),
                singleton=draw(st.booleans()),
            )
        )
        waits_on.append(upstream)
        for _, target in before:  # the target now waits on this job and its upstream
            for k in range(len(waits_on)):
                if k == target or target in waits_on[k]:
                    waits_on[k] |= upstream | {i}
    return plans


# The oracle: an independent, naive statement of the decided semantics.
#   fate of a job: "ok" | "fail" | "cancel" (ended; it started) | "unstarted" (cancelled
#   before it started: dependency failed) | "stuck" (stays queued forever)


def _clause_verdict(kind: str, fates: list[str]) -> str:
    results = []
    for fate in fates:
        if fate == "stuck":
            results.append("pending")
        elif kind in ("after", "afterany"):
            results.append("yes")
        elif kind == "afterok":
            results.append("yes" if fate == "ok" else "no")
        else:
            results.append("no" if fate == "ok" else "yes")
    if "no" in results:
        return "no"
    return "yes" if all(r == "yes" for r in results) else "pending"


def _combine(verdicts: list[str], any_of: bool) -> str:
    if not verdicts:
        return "yes"
    if any_of:
        if "yes" in verdicts:
            return "yes"
        return "no" if all(v == "no" for v in verdicts) else "pending"
    if "no" in verdicts:
        return "no"
    return "yes" if all(v == "yes" for v in verdicts) else "pending"


def oracle(plans: list[Plan]) -> tuple[list[str], list[str]]:
    """(fate of the job, fate of its first attempt) for each planned job."""
    pool: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(plans))}
    for i, plan in enumerate(plans):
        for kind, target in plan.before:
            pool[target].append((BEFORE[kind], i))
    fates: dict[int, str] = {}
    first: dict[int, str] = {}

    def verdict(i: int) -> str:
        plan = plans[i]
        main = _combine(
            [_clause_verdict(k, [fate(p, k) for p in ps]) for k, ps, _ in plan.clauses],
            plan.any_of,
        )
        if main == "no" or not plan.on_count:
            return main
        got = [_clause_verdict(k, [fate(p, k)]) for k, p in pool[i]]
        if got.count("yes") >= plan.on_count:
            return main
        if len(got) >= plan.on_count and len(got) - got.count("no") < plan.on_count:
            return "no"
        return "pending"

    def fate(i: int, kind: str = "afterany") -> str:
        if i not in fates:
            v = verdict(i)
            if v == "yes":
                outcome = next((a for a in plans[i].attempts if a != "fail"), "fail")
                fates[i] = outcome
                first[i] = plans[i].attempts[0]
            elif v == "no":
                fates[i] = first[i] = "unstarted" if plans[i].auto_cancel else "stuck"
            else:
                fates[i] = first[i] = "stuck"
        if kind == "after":  # met by the first attempt's start, whatever came after
            return first[i]
        return fates[i]

    for i in range(len(plans)):
        fate(i)
    return [fates[i] for i in range(len(plans))], [first[i] for i in range(len(plans))]


def run_plans(sim: Sim, plans: list[Plan], order: st.DataObject) -> list[int]:
    ids: list[int] = []
    for plan in plans:
        raw = [RawClause(k, tuple(ids[p] for p in ps), d) for k, ps, d in plan.clauses]
        raw += [RawClause(k, (ids[t],)) for k, t in plan.before]
        dep = DepRequest(
            tuple(raw),
            plan.any_of,
            plan.on_count,
            plan.singleton,
            auto_cancel=plan.auto_cancel,
        )
        ids.append(sim.submit(dep, name=plan.name or "job", retries=len(plan.attempts) - 1))
    plan_of = {job_id: i for i, job_id in enumerate(ids)}
    attempt: dict[int, int] = {}
    running: list[int] = []
    for _ in range(10_000):
        check_no_stall(sim)
        moves = [("start", j) for j in sim.launching] + [("end", j) for j in running]
        if not moves:
            wake = sim.engine.next_wake()
            if wake is None:
                break
            sim.now = max(sim.now, wake)
            sim.tick()
            continue
        what, job_id = order.draw(st.sampled_from(moves))
        sim.now += order.draw(st.sampled_from([0, 1, 30]))
        sim.tick()
        if what == "start":
            sim.start(job_id)
            running.append(job_id)
            continue
        running.remove(job_id)
        job = sim.job(job_id)
        root = job_id
        while sim.job(root).retry_of is not None:
            root = sim.job(root).retry_of  # type: ignore[assignment]
        k = attempt.get(root, 0)
        attempt[root] = k + 1
        outcome = plans[plan_of[root]].attempts[k]
        if outcome == "cancel":
            sim.cancel(job.id)
            assert job.id in sim.stopping
            sim.exit(job.id, None)
        else:
            sim.exit(job.id, 0 if outcome == "ok" else 1)
    else:
        raise AssertionError("the simulation did not settle")
    return ids


def check_no_stall(sim: Sim) -> None:
    """Event-driven: every queued job whose dependency is met is being launched."""
    eng = sim.engine
    for job in list(eng.jobs.values()):
        if job.state is not State.QUEUED or job.deps.singleton:
            continue
        ev = evaluate(job.deps, eng.views(job.deps.parents()), sim.now)
        if ev.verdict is Verdict.SATISFIED:
            assert job.id in eng.launching, f"job {job.id} is ready but not launched"


def check_final(sim: Sim, plans: list[Plan], ids: list[int]) -> None:
    fates, firsts = oracle(plans)
    jobs = {j.id: j for j in sim.all_jobs()}
    for i, (plan, job_id) in enumerate(zip(plans, ids, strict=True)):
        job = jobs[job_id]
        expected = firsts[i]
        state = {
            "ok": State.FINISHED,
            "fail": State.FAILED,
            "cancel": State.CANCELLED,
            "unstarted": State.CANCELLED,
            "stuck": State.QUEUED,
        }[expected]
        assert job.state is state, f"job {job_id} (plan {i}): {job.state} but expected {expected}"
        if expected == "unstarted":
            assert job.start_time is None
            assert job.reason is not None and job.reason.startswith("DependencyFailed:")
            culprit = int(job.reason.split(":")[1])
            assert culprit in job.deps.parents()
            assert jobs[culprit].is_final
        if expected == "stuck":
            assert job.start_time is None
            parents = job.deps.parents()
            if job.reason == Reason.NEVER:
                assert not plan.auto_cancel
            else:  # never a silent forever-PD: it waits on something still waiting
                pool_short = len(job.deps.on_pool) < job.deps.on_count
                assert pool_short or any(not jobs[p].is_final for p in parents), (
                    f"job {job_id} queued with every parent final"
                )
        # the retry chain ends the way the plan says
        chain = [job]
        while True:
            nxt = [j for j in jobs.values() if j.retry_of == chain[-1].id]
            if not nxt:
                break
            chain.append(nxt[0])
        if expected in ("ok", "fail", "cancel"):
            assert [j.state for j in chain][-1] is {
                "ok": State.FINISHED,
                "fail": State.FAILED,
                "cancel": State.CANCELLED,
            }[fates[i]]
    assert not sim.launching
    assert all(j.state is State.QUEUED for j in sim.engine.jobs.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.data())
def test_random_dags_end_as_the_semantics_prescribe(
    plans: list[Plan], order: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as home:
        sim = Sim(Path(home))
        try:
            ids = run_plans(sim, plans, order)
            check_final(sim, plans, ids)
            # jobs that arrive after the fact are judged at once from the stored states
            late = [
                Plan([(k, (p,), 0)], False, a, 0, [], ["ok"])
                for k, p, a in order.draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(TYPES), st.integers(0, len(plans) - 1), st.booleans()
                        ),
                        max_size=4,
                    )
                )
            ]
            late_ids = run_plans_late(sim, plans, ids, late, order)
            check_late(sim, plans, ids, late, late_ids)
        finally:
            sim.close()


def run_plans_late(
    sim: Sim, plans: list[Plan], ids: list[int], late: list[Plan], order: st.DataObject
) -> list[int]:
    out = []
    for plan in late:
        ((kind, (p,), _),) = plan.clauses
        dep = DepRequest((RawClause(kind, (ids[p],)),), auto_cancel=plan.auto_cancel)
        out.append(sim.submit(dep))
    for job_id in list(sim.launching):
        sim.start(job_id)
        sim.exit(job_id, 0)
    return out


def check_late(
    sim: Sim, plans: list[Plan], ids: list[int], late: list[Plan], late_ids: list[int]
) -> None:
    fates, _ = oracle(plans)
    for plan, job_id in zip(late, late_ids, strict=True):
        ((kind, (p,), _),) = plan.clauses
        # a parent that was retried stands for its newest attempt
        newest = sim.store.attempts_of(ids[p])[-1]
        assert sim.job(job_id).deps.parents() == {newest}
        verdict = _clause_verdict(kind, [fates[p]])
        job = sim.job(job_id)
        if verdict == "yes":
            assert job.state is State.FINISHED
        elif verdict == "pending":
            assert job.state is State.QUEUED and job.reason != Reason.NEVER
        elif plan.auto_cancel:
            assert (job.state, job.reason) == (State.CANCELLED, f"DependencyFailed:{newest}")
        else:
            assert (job.state, job.reason) == (State.QUEUED, Reason.NEVER)


def test_an_on_count_job_whose_release_can_never_come_is_cancelled(sim: Sim) -> None:
    target = sim.submit(req(on=1))
    keep = sim.submit(req(on=1, auto=False))
    b = sim.submit(req(("beforeok", (target,)), ("beforeok", (keep,))))
    assert sim.job(target).deps.on_pool == (Clause(DepType.AFTEROK, (b,)),)
    sim.start(b)
    sim.exit(b, 1)
    assert (sim.job(target).state, sim.job(target).reason) == (
        State.CANCELLED,
        f"DependencyFailed:{b}",
    )
    assert (sim.job(keep).state, sim.job(keep).reason) == (State.QUEUED, Reason.NEVER)


def test_before_releases_the_target_when_it_starts(sim: Sim) -> None:
    target = sim.submit(req(on=2))
    b1 = sim.submit(req(("before", (target,))))
    b2 = sim.submit(req(("beforenotok", (target,))))
    sim.start(b1)
    sim.start(b2)
    assert sim.launching == []
    sim.exit(b2, 3)
    assert sim.launching == [target]


def submit_plans(sim: Sim, plans: list[Plan]) -> list[int]:
    ids: list[int] = []
    for plan in plans:
        raw = [RawClause(k, tuple(ids[p] for p in ps), d) for k, ps, d in plan.clauses]
        raw += [RawClause(k, (ids[t],)) for k, t in plan.before]
        dep = DepRequest(tuple(raw), plan.any_of, plan.on_count, auto_cancel=plan.auto_cancel)
        ids.append(sim.submit(dep, name=plan.name or "job"))
    return ids


def some_steps(sim: Sim, data: st.DataObject) -> None:
    """Start and end a few jobs, so that some run and some have ended; none is left
    half-launched."""
    running: list[int] = []
    for _ in range(data.draw(st.integers(0, 8))):
        moves = [("start", j) for j in sim.launching] + [("end", j) for j in running]
        if not moves:
            break
        what, job_id = data.draw(st.sampled_from(moves))
        if what == "start":
            sim.start(job_id)
            running.append(job_id)
        else:
            running.remove(job_id)
            sim.exit(job_id, data.draw(st.sampled_from([0, 1])))
    while sim.launching:  # a start may let another job start
        sim.start(sim.launching[0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(max_jobs=10), st.data())
def test_a_dry_run_cancel_predicts_what_the_cancel_does(
    plans: list[Plan], data: st.DataObject
) -> None:
    """gcancel --dry-run's fates, on random graphs, are what a real cancel then does."""
    with tempfile.TemporaryDirectory() as home:
        sim = Sim(Path(home))
        try:
            submit_plans(sim, plans)
            some_steps(sim, data)
            active = sorted(sim.engine.jobs)
            if not active:
                return
            roots = data.draw(
                st.lists(st.sampled_from(active), min_size=1, max_size=3, unique=True)
            )
            before = {j.id: (j.state, j.reason) for j in sim.all_jobs()}
            text = ",".join(map(str, roots))
            dry = commands.cancel(sim.engine, text, CALLER, sim.now, dry_run=True)
            assert {j.id: (j.state, j.reason) for j in sim.all_jobs()} == before
            fates = {d["id"]: (d["fate"], d["because"]) for d in dry.done if d.get("dependent")}
            for fate, _ in fates.values():
                event(fate)
            commands.cancel(sim.engine, text, CALLER, sim.now)
            sim.drain()
            stopped = list(sim.stopping)
            for job_id in stopped:  # the running ones stop: they end now
                sim.exit(job_id, None)
            after = {j.id: j for j in sim.all_jobs()}
            ended = set(roots) | {i for i, (f, _) in fates.items() if f == "cancelled"}
            for job_id, (fate, because) in fates.items():
                job = after[job_id]
                if fate == "cancelled" and len(stopped) > 1:  # which ends first: unknowable
                    assert job.state is State.CANCELLED and job.reason is not None
                    culprit = int(job.reason.removeprefix("DependencyFailed:"))
                    assert culprit in ended & job.deps.parents()
                elif fate == "cancelled":
                    reason = f"DependencyFailed:{because}"
                    assert (job.state, job.reason) == (State.CANCELLED, reason)
                elif fate == "never":
                    assert job.state.is_waiting and job.reason == Reason.NEVER
                elif fate == "released":  # at once, or when its after:ID+MINUTES delays end
                    views = sim.engine.views(job.deps.parents())
                    ev = evaluate(job.deps, views, sim.now)
                    for _ in job.deps.clauses:  # each delay ends in turn
                        if ev.wake_at is None:
                            break
                        ev = evaluate(job.deps, views, ev.wake_at)
                    assert job.state.is_waiting and ev.verdict is Verdict.SATISFIED
                else:
                    assert fate == "blocked" and job.state.is_waiting, (job_id, fate)
            for job_id, job in after.items():
                if job_id not in fates and job_id not in roots:
                    assert (job.state, job.reason == Reason.NEVER) == (
                        before[job_id][0],
                        before[job_id][1] == Reason.NEVER,
                    ), f"job {job_id} changed, unpredicted"
        finally:
            sim.close()
