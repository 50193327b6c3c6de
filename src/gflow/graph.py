"""Turning typed dependency references into job ids, and refusing cycles.

References: a job id (an array's or sweep's id means the whole group), ``@`` / ``@~N``
(the user's most recent submissions; an array submission is its whole group),
``ARRAY_TASK``, and — in Moab syntax — a job name (the user's most recent job of that
name; a name an array's tasks share means the whole array). A group stands for the
newest job of each of its tasks (a retried or redone task is its newest attempt).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from gflow.deps import (
    BEFORE_TYPES,
    Clause,
    Dependency,
    DepRequest,
    DepType,
    Evaluation,
    ParentToken,
    ParentView,
    RawClause,
    Verdict,
    evaluate,
)
from gflow.errors import Refused
from gflow.limits import MAX_PARENTS
from gflow.model import Job
from gflow.parse import RecentRef, TaskRef
from gflow.states import FINAL_STATES, State


class Lookup(Protocol):
    def job(self, job_id: int) -> Job | None: ...

    def group_tasks(self, group_id: int) -> list[int]: ...

    def array_task(self, group_id: int, task_id: int) -> int | None: ...

    def recent_submissions(self, uid: int, count: int) -> list[tuple[int, int]]: ...

    def latest_by_name(self, uid: int, name: str) -> int | None: ...

    def attempts_of(self, job_id: int) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Target:
    """What one reference stands for: job ids, and the group when it names a whole one."""

    ids: tuple[int, ...]
    group: int | None = None


def _whole_group(group_id: int, lookup: Lookup) -> Target:
    return Target(tuple(lookup.group_tasks(group_id)) or (group_id,), group_id)


def _group_or_job(job_id: int, lookup: Lookup, lead: str) -> Target:
    job = lookup.job(job_id)
    if job is None:
        raise Refused(f"{lead}job {job_id} not found")
    if job.group_id == job_id:
        return _whole_group(job_id, lookup)
    return Target((job_id,))


def _recent(ref: RecentRef, uid: int, lookup: Lookup, lead: str) -> Target:
    recent = lookup.recent_submissions(uid, ref.back + 1)
    label = "@" if ref.back == 0 else f"@~{ref.back}"
    if len(recent) <= ref.back:
        have = len(recent)
        raise Refused(
            f"{lead}{label} not found: you have {have} earlier submission"
            + ("" if have == 1 else "s")
        )
    first, count = recent[ref.back]
    job = lookup.job(first)
    if job is None:  # removed from the history: nothing is known of how it ended
        raise Refused(f"{lead}job {first} not found ({label} is job {first})")
    if job.group_id == first:
        return _whole_group(first, lookup)
    return Target(tuple(range(first, first + count)))


def _named(name: str, uid: int, lookup: Lookup, lead: str) -> Target:
    found = lookup.latest_by_name(uid, name)
    if found is None:
        raise Refused(f"{lead}job {name!r} not found (no job of yours has that name)")
    job = lookup.job(found)
    if job is not None and job.group_id is not None:
        head = lookup.job(job.group_id)
        if head is not None and head.name == name:  # the array's tasks share the name
            return _whole_group(job.group_id, lookup)
    return Target((found,))


def resolve_ref(ref: ParentToken, uid: int, lookup: Lookup, *, lead: str = "Dependency ") -> Target:
    """The job ids one reference stands for (a whole array or sweep: its group).

    A job being submitted has no id yet, so its own future id is simply not found.
    ``lead`` starts the messages ("Dependency job 5 not found"; "" for a job selector).
    """
    if isinstance(ref, bool):
        raise Refused(f"{lead}job {ref} not found")
    if isinstance(ref, int):
        return _group_or_job(ref, lookup, lead)
    if isinstance(ref, RecentRef):
        return _recent(ref, uid, lookup, lead)
    if isinstance(ref, TaskRef):
        found = lookup.array_task(ref.array_id, ref.task_id)
        if found is None:
            raise Refused(f"{lead}job {ref.array_id}_{ref.task_id} not found")
        return Target((found,))
    return _named(ref, uid, lookup, lead)


@dataclass(slots=True)
class Resolved:
    """A request over ids; ``corr`` and ``before`` still need the new jobs to be known."""

    dependency: Dependency
    corr: list[Target] = field(default_factory=list)
    before: list[tuple[DepType, int]] = field(default_factory=list)
    _tasks: dict[int, dict[int | None, int]] = field(default_factory=dict)

    def for_task(self, task_id: int | None, task_of: Callable[[int], int | None]) -> Dependency:
        """The dependency of one task: ``aftercorr`` pairs it with the same task id (a
        parent that is not an array stands for every task, as in Slurm). Each parent
        array's tasks are looked up once, however many tasks ask."""
        if not self.corr:
            return self.dependency
        extra: list[Clause] = []
        for target in self.corr:
            if target.group is None:
                extra.append(Clause(DepType.AFTEROK, target.ids))
                continue
            if target.group not in self._tasks:
                self._tasks[target.group] = {task_of(m): m for m in reversed(target.ids)}
            match = self._tasks[target.group].get(task_id)
            if match is None:
                raise Refused(f"aftercorr: array {target.group} has no task {task_id}")
            extra.append(Clause(DepType.AFTEROK, (match,)))
        return replace(self.dependency, clauses=self.dependency.clauses + tuple(extra))


def latest_attempt(job_id: int, lookup: Lookup) -> int:
    """The newest attempt of a job that failed and was retried automatically (else itself).

    A job id names the work, as in Slurm where a requeued job keeps its id: a dependent
    submitted after the retry was made waits for the retry, as one submitted before would.
    """
    job = lookup.job(job_id)
    if job is None or job.state not in (State.FAILED, State.TIMEOUT):
        return job_id
    if job.attempt >= job.max_retries:
        return job_id
    chain = lookup.attempts_of(job_id)
    return chain[-1] if chain else job_id


class _Remembered:
    """A lookup that reads each job once per resolution, the typed ids in batches when the
    lookup can (a reference is looked at for its group and again for its retries)."""

    def __init__(self, lookup: Lookup, refs: Iterable[ParentToken]) -> None:
        self.lookup = lookup
        self.seen: dict[int, Job | None] = {}
        get_many = getattr(lookup, "get_many", None)
        ids = [r for r in refs if isinstance(r, int) and not isinstance(r, bool)]
        if get_many is not None and ids:
            found = get_many(ids)
            self.seen = {i: found.get(i) for i in ids}

    def prefetch(self, ids: Sequence[int]) -> None:
        """Read these jobs in batches (the tasks of an array), if the lookup can."""
        get_many = getattr(self.lookup, "get_many", None)
        wanted = [i for i in ids if i not in self.seen]
        if get_many is not None and len(wanted) > 1:
            found = get_many(wanted)
            self.seen.update({i: found.get(i) for i in wanted})

    def job(self, job_id: int) -> Job | None:
        if job_id not in self.seen:
            self.seen[job_id] = self.lookup.job(job_id)
        return self.seen[job_id]

    def group_tasks(self, group_id: int) -> list[int]:
        return self.lookup.group_tasks(group_id)

    def array_task(self, group_id: int, task_id: int) -> int | None:
        return self.lookup.array_task(group_id, task_id)

    def recent_submissions(self, uid: int, count: int) -> list[tuple[int, int]]:
        return self.lookup.recent_submissions(uid, count)

    def latest_by_name(self, uid: int, name: str) -> int | None:
        return self.lookup.latest_by_name(uid, name)

    def attempts_of(self, job_id: int) -> list[int]:
        return self.lookup.attempts_of(job_id)


def _clauses(raw: RawClause, targets: list[Target], lookup: Lookup) -> list[Clause]:
    """One typed clause over resolved references: a clause over the plain jobs, one per
    whole group (judged as an array), or, for ``each_job``, one per job."""
    kind = DepType(raw.type)
    plain: list[int] = []
    groups: list[Clause] = []
    for target in targets:
        ids = tuple(dict.fromkeys(latest_attempt(i, lookup) for i in target.ids))
        if target.group is not None and not raw.each_job:
            groups.append(Clause(kind, ids, raw.delay, target.group))
        else:
            plain.extend(ids)
    if raw.each_job:
        return [Clause(kind, (p,), raw.delay) for p in dict.fromkeys(plain)]
    if kind is not DepType.AFTERNOTOK:  # a task also named alone adds nothing to its array
        whole = {p for g in groups for p in g.parents}
        plain = [p for p in plain if p not in whole]
    plain = list(dict.fromkeys(plain))
    return ([Clause(kind, tuple(plain), raw.delay)] if plain else []) + groups


def resolve(req: DepRequest, uid: int, lookup: Lookup, *, is_array: bool = False) -> Resolved:
    memo = _Remembered(lookup, (ref for raw in req.clauses for ref in raw.refs))
    clauses: list[Clause] = []
    corr: list[Target] = []
    before: dict[tuple[DepType, int], None] = {}  # the same release counts once toward on:N
    total = 0
    for raw in req.clauses:
        targets: list[Target] = []
        for ref in raw.refs:
            target = resolve_ref(ref, uid, memo)
            total += len(target.ids)
            if total > MAX_PARENTS:
                raise Refused(
                    f"a job may wait for at most {MAX_PARENTS} jobs (arrays count their tasks)"
                )
            memo.prefetch(target.ids)
            targets.append(target)
        if raw.type == "aftercorr":
            if not is_array:
                raise Refused("aftercorr needs an array job (--array)")
            corr.extend(
                replace(t, ids=tuple(dict.fromkeys(latest_attempt(i, memo) for i in t.ids)))
                for t in targets
            )
        elif raw.type in BEFORE_TYPES:
            kind = BEFORE_TYPES[raw.type]
            before.update(((kind, latest_attempt(i, memo)), None) for t in targets for i in t.ids)
        else:
            made = _clauses(raw, targets, memo)
            if len(made) > 1 and not raw.each_job and req.any_of:
                raise Refused(
                    "each alternative of an any-of dependency ('?') names one job or one "
                    "array (write TYPE:A?TYPE:B)"
                )
            if len(made) > 1 and raw.each_job and not req.any_of and len(req.clauses) > 1:
                raise Refused(
                    "--depends-on-any with an array cannot be combined with other "
                    "dependency options (any one task of it, or all the others?)"
                )
            clauses.extend(made)
    any_of = req.any_of or (len(req.clauses) == 1 and req.clauses[0].each_job and len(clauses) > 1)
    auto_cancel = req.auto_cancel is not False
    dep = Dependency(tuple(clauses), any_of, req.on_count, (), req.singleton, auto_cancel)
    return Resolved(dep, corr, list(before))


def check_before_target(target: Job, uid: int, admin: bool) -> None:
    """A ``before*`` clause may only release a waiting job of the same user with ``on:N``."""
    if target.uid != uid and not admin:
        raise Refused(f"before: job {target.id} belongs to {target.user}")
    if target.state not in (State.QUEUED, State.HOLD):
        raise Refused(f"before: job {target.id} is {target.state.value}, not Queued or Hold")
    if target.deps.on_count == 0:
        raise Refused(
            f"before: job {target.id} was not submitted with on:<count> (e.g. -W depend=on:1)"
        )


def find_path(
    start: Iterable[int], goal: int, parents_of: Callable[[int], Iterable[int]]
) -> list[int] | None:
    """A parent-chain from one of ``start`` to ``goal`` (depth-first), or None.

    Each job is visited once and the chain is rebuilt at the end, so a chain of any
    depth costs time linear in the jobs it crosses.
    """
    came_from: dict[int, int | None] = {}
    stack: list[int] = []
    for node in start:
        if node not in came_from:
            came_from[node] = None
            stack.append(node)
    while stack:
        node = stack.pop()
        if node == goal:
            path = [node]
            while (step := came_from[path[-1]]) is not None:
                path.append(step)
            return path[::-1]
        for parent in parents_of(node):
            if parent not in came_from:
                came_from[parent] = node
                stack.append(parent)
    return None


def check_cycle(
    child: int, parents: Sequence[int], parents_of: Callable[[int], Iterable[int]]
) -> None:
    """Refuse making ``child`` depend on ``parents`` when one of them already waits on it."""
    if child in parents:
        raise Refused("Job cannot depend on itself")
    path = find_path(parents, child, parents_of)
    if path is not None:
        raise Refused(
            f"Circular dependency detected: Job {child} depends on Job {path[0]}, "
            f"which has a path back to Job {child}"
        )


@dataclass(frozen=True, slots=True)
class Fate:
    """What cancelling some jobs would do to one waiting dependent.

    ``cancelled``: auto-cancelled (``DependencyFailed:<because>``); ``never``: it can never
    start but stays queued (``--no-auto-cancel``: ``DependencyNeverSatisfied``);
    ``blocked``: it waits on a job that stays queued forever (``because``);
    ``released``: its dependency would be met (``afternotok``, ``afterany``, ``after``),
    at once or, when ``at`` is set, then (``after:ID+MINUTES``).
    """

    job_id: int
    fate: str
    because: int
    at: float | None = None


def cancel_impact(
    roots: Iterable[int],
    children_of: Callable[[int], Iterable[int]],
    dependency_of: Callable[[int], Dependency],
    views_of: Callable[[Iterable[int]], dict[int, ParentView]],
    now: float,
) -> list[Fate]:
    """The waiting jobs whose fate changes, transitively, if ``roots`` were cancelled now.

    Pure: it only reads. The engine's rules are replayed on a copy of the parents' views,
    in the engine's order (waiting roots end at once, running ones when they have stopped):
    first the cancellations cascade to a fixed point (an any-of dependent with another live
    alternative is not affected, an ``afternotok`` one is released); then every job that
    waits, directly or not, on a job that stays queued forever is stranded.
    """
    root_ids = set(roots)
    live = {i: v for i, v in views_of(sorted(root_ids)).items() if v.state not in FINAL_STATES}
    overrides: dict[int, ParentView] = {}
    fates: dict[int, Fate] = {}

    def judge(child: int, extra: dict[int, ParentView]) -> Evaluation | None:
        if child in root_ids or child in fates:
            return None
        dep = dependency_of(child)
        real = views_of(dep.parents())
        if evaluate(dep, real, now).verdict is not Verdict.PENDING:
            return None  # already met or already hopeless: not this cancellation's doing
        return evaluate(dep, {**real, **extra}, now)

    stranded: list[int] = []

    def spread(work: list[int]) -> None:
        while work:
            parent = work.pop()
            for child in sorted(children_of(parent)):
                ev = judge(child, overrides)
                if ev is None:
                    continue
                if ev.verdict is Verdict.PENDING:
                    if ev.wake_at is not None and _met_in_time(
                        dependency_of(child), overrides, views_of
                    ):
                        fates[child] = Fate(child, "released", parent, ev.wake_at)
                    continue
                culprit = parent if ev.culprit is None else ev.culprit
                if ev.verdict is Verdict.SATISFIED:
                    fates[child] = Fate(child, "released", parent)
                elif dependency_of(child).auto_cancel:
                    fates[child] = Fate(child, "cancelled", culprit)
                    overrides[child] = ParentView(State.CANCELLED, None, now)
                    work.append(child)
                else:
                    fates[child] = Fate(child, "never", culprit)
                    stranded.append(child)

    # waiting roots are cancelled at once, with their cascade; running ones when they end
    for ran in (False, True):
        batch = sorted(i for i, v in live.items() if (v.start_time is not None) is ran)
        overrides.update({i: ParentView(State.CANCELLED, live[i].start_time, now) for i in batch})
        spread(batch)
    forever = dict(overrides)
    while stranded:
        parent = stranded.pop()
        forever[parent] = ParentView(None)
        for child in sorted(children_of(parent)):
            ev = judge(child, forever)
            if ev is not None and ev.verdict is Verdict.NEVER:
                fates[child] = Fate(child, "blocked", parent)
                stranded.append(child)
    return sorted(fates.values(), key=lambda f: f.job_id)


def _met_in_time(
    dep: Dependency,
    overrides: dict[int, ParentView],
    views_of: Callable[[Iterable[int]], dict[int, ParentView]],
) -> bool:
    """Whether only time is left before ``dep`` is met (an ``after:ID+MINUTES`` delay)."""
    views = {**views_of(dep.parents()), **overrides}
    return evaluate(dep, views, math.inf).verdict is Verdict.SATISFIED
