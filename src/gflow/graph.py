"""Turning typed dependency references into job ids, and refusing cycles.

References: a job id (an array's or sweep's id means all of its tasks), ``@`` / ``@~N``
(the user's most recent submissions), ``ARRAY_TASK``, and — in Moab syntax — a job
name (the user's most recent job of that name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gflow.deps import BEFORE_TYPES, Clause, Dependency, DepRequest, DepType, ParentToken
from gflow.errors import Refused
from gflow.model import Job, State
from gflow.parse import RecentRef, TaskRef


class Lookup(Protocol):
    def job(self, job_id: int) -> Job | None: ...

    def group_members(self, group_id: int) -> list[int]: ...

    def recent_submissions(self, uid: int, count: int) -> list[tuple[int, int]]: ...

    def latest_by_name(self, uid: int, name: str) -> int | None: ...


def _group_or_job(job_id: int, lookup: Lookup) -> list[int]:
    job = lookup.job(job_id)
    if job is None:
        raise Refused(f"Dependency job {job_id} not found")
    if job.group_id == job_id:
        members = lookup.group_members(job_id)
        if len(members) > 1:
            return members
    return [job_id]


def resolve_ref(
    ref: ParentToken, uid: int, lookup: Lookup, *, next_id: int | None = None
) -> list[int]:
    """The job ids one reference stands for (several for a whole array or sweep)."""
    if isinstance(ref, bool):
        raise Refused(f"Dependency job {ref} not found")
    if isinstance(ref, int):
        if next_id is not None and ref == next_id:
            raise Refused("Job cannot depend on itself")
        return _group_or_job(ref, lookup)
    if isinstance(ref, RecentRef):
        recent = lookup.recent_submissions(uid, ref.back + 1)
        if len(recent) <= ref.back:
            label = "@" if ref.back == 0 else f"@~{ref.back}"
            have = len(recent)
            raise Refused(
                f"Dependency {label} not found: you have {have} earlier submission"
                + ("" if have == 1 else "s")
            )
        first, count = recent[ref.back]
        return list(range(first, first + count))
    if isinstance(ref, TaskRef):
        for member in lookup.group_members(ref.array_id):
            job = lookup.job(member)
            if job is not None and job.task_id == ref.task_id:
                return [member]
        raise Refused(f"Dependency job {ref.array_id}_{ref.task_id} not found")
    found = lookup.latest_by_name(uid, ref)
    if found is None:
        raise Refused(f"Dependency job {ref!r} not found (no job of yours has that name)")
    return [found]


@dataclass(slots=True)
class Resolved:
    """A request over ids; ``corr`` and ``before`` still need the new jobs to be known."""

    dependency: Dependency
    corr: list[list[int]] = field(default_factory=list)
    before: list[tuple[DepType, int]] = field(default_factory=list)

    def for_task(self, task_id: int | None, task_of: Callable[[int], int | None]) -> Dependency:
        """The dependency of one task: ``aftercorr`` pairs it with the same task id."""
        if not self.corr:
            return self.dependency
        extra: list[Clause] = []
        for members in self.corr:
            match = [m for m in members if task_of(m) == task_id]
            if not match:
                raise Refused(f"aftercorr: array {members[0]} has no task {task_id}")
            extra.append(Clause(DepType.AFTEROK, (match[0],)))
        dep = self.dependency
        return Dependency(
            dep.clauses + tuple(extra),
            dep.any_of,
            dep.on_count,
            dep.on_pool,
            dep.singleton,
            dep.auto_cancel,
        )


def resolve(
    req: DepRequest, uid: int, lookup: Lookup, *, next_id: int | None = None, is_array: bool = False
) -> Resolved:
    clauses: list[Clause] = []
    corr: list[list[int]] = []
    before: list[tuple[DepType, int]] = []
    for raw in req.clauses:
        ids: list[int] = []
        for ref in raw.refs:
            ids.extend(resolve_ref(ref, uid, lookup, next_id=next_id))
        ids = list(dict.fromkeys(ids))
        if raw.type == "aftercorr":
            if not is_array:
                raise Refused("aftercorr needs an array job (--array)")
            corr.append(ids)
        elif raw.type in BEFORE_TYPES:
            before.extend((BEFORE_TYPES[raw.type], target) for target in ids)
        else:
            clauses.append(Clause(DepType(raw.type), tuple(ids), raw.delay))
    dep = Dependency(tuple(clauses), req.any_of, req.on_count, (), req.singleton, req.auto_cancel)
    return Resolved(dep, corr, before)


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
    """A parent-chain from one of ``start`` to ``goal`` (depth-first), or None."""
    stack: list[tuple[int, list[int]]] = [(s, [s]) for s in start]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((p, [*path, p]) for p in parents_of(node))
    return None


def check_cycle(
    child: int, parents: Sequence[int], parents_of: Callable[[int], Iterable[int]]
) -> None:
    """Refuse making ``child`` depend on ``parents`` when one of them already waits on it."""
    if child in parents:
        raise Refused("Job cannot depend on itself")
    for parent in parents:
        path = find_path([parent], child, parents_of)
        if path is not None:
            raise Refused(
                f"Circular dependency detected: Job {child} depends on Job {parent}, "
                f"which has a path back to Job {child}"
            )
