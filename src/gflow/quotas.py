"""Quotas: how much one user, or one project, may run and keep queued. Pure rules, no I/O.

An entry belongs to a *scope*: ``user`` or ``project`` (with a name), or one of the
fallbacks ``default_user`` / ``default_project`` (name ``*``). A user's effective limits
are their own entry if there is one, else the ``default_user`` entry (the whole entry,
not field by field); projects likewise. A job without a project has no project limits.
Every limit is per user (per project): a default of 2 running jobs lets *each* user
run 2. ``None`` means unlimited.

``max_running_jobs`` and ``max_running_gpus`` are enforced by the scheduler (a job that
would exceed one waits with reason ``Quota``); ``max_queued_jobs`` (Queued + Hold) is
checked when jobs are submitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gflow.errors import Refused
from gflow.model import Job

SCOPES = ("user", "project", "default_user", "default_project")
DEFAULT_NAME = "*"
FIELDS = ("max_running_jobs", "max_running_gpus", "max_queued_jobs")


@dataclass(frozen=True, slots=True)
class Limits:
    max_running_jobs: int | None = None
    max_running_gpus: int | None = None
    max_queued_jobs: int | None = None

    def to_json(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in FIELDS}


@dataclass(frozen=True, slots=True)
class Quota:
    """One stored entry: ``scope`` and ``name`` (``*`` for the two fallbacks)."""

    scope: str
    name: str
    limits: Limits = Limits()

    @property
    def is_default(self) -> bool:
        return self.scope.startswith("default_")

    @property
    def label(self) -> str:
        """How messages name it: ``user quota 'alice'``, ``default_user quota``."""
        return f"{self.scope} quota" if self.is_default else f"{self.scope} quota '{self.name}'"


class QuotaTable:
    """All entries, with the fallback rule; cheap to build, read-only once built."""

    def __init__(self, quotas: Iterable[Quota] = ()) -> None:
        self.entries: dict[tuple[str, str], Quota] = {(q.scope, q.name): q for q in quotas}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __iter__(self) -> Iterator[Quota]:
        return iter(sorted(self.entries.values(), key=lambda q: (SCOPES.index(q.scope), q.name)))

    def effective(self, scope: str, name: str | None) -> Quota | None:
        """The entry that governs user/project ``name``: its own, else the default."""
        if name is None:
            return None
        return self.entries.get((scope, name)) or self.entries.get(
            (f"default_{scope}", DEFAULT_NAME)
        )

    def governing(self, user: str, project: str | None) -> list[tuple[tuple[str, str], Quota]]:
        """(usage key, entry) for the user and the project of a job, where limits exist."""
        found = []
        for scope, name in (("user", user), ("project", project)):
            quota = self.effective(scope, name)
            if quota is not None and name is not None:
                found.append(((scope, name), quota))
        return found


@dataclass(slots=True)
class QuotaUse:
    """Running jobs and GPUs per user and per project, during one scheduling pass."""

    table: QuotaTable
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    gpus: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, job: Job) -> None:
        for key in keys(job):
            self.jobs[key] = self.jobs.get(key, 0) + 1
            self.gpus[key] = self.gpus.get(key, 0) + job.gpus

    def blocks(self, job: Job) -> bool:
        """Would starting ``job`` put its user or project over a running limit?"""
        for key, quota in self.table.governing(job.user, job.project):
            lim = quota.limits
            if lim.max_running_jobs is not None and self.jobs.get(key, 0) >= lim.max_running_jobs:
                return True
            if (
                lim.max_running_gpus is not None
                and self.gpus.get(key, 0) + job.gpus > lim.max_running_gpus
            ):
                return True
        return False


def keys(job: Job) -> list[tuple[str, str]]:
    """The usage keys a job counts under: its user, and its project if it has one."""
    if job.project is None:
        return [("user", job.user)]
    return [("user", job.user), ("project", job.project)]


def check_queued(
    table: QuotaTable, waiting: Iterable[Job], user: str, project: str | None, adding: int
) -> None:
    """Refuse a submission of ``adding`` jobs that would pass a ``max_queued_jobs`` limit.

    ``waiting``: the Queued and Hold jobs (not those already being launched). Nothing is
    counted unless such a limit applies.
    """
    limited = [
        (key, q)
        for key, q in table.governing(user, project)
        if q.limits.max_queued_jobs is not None
    ]
    if not limited:
        return
    counts: dict[tuple[str, str], int] = {}
    for job in waiting:
        for key in keys(job):
            counts[key] = counts.get(key, 0) + 1
    for key, quota in limited:
        limit = quota.limits.max_queued_jobs
        assert limit is not None
        have = counts.get(key, 0)
        if have + adding > limit:
            whose = f"{key[0]} {key[1]}" + (f" (by the {quota.label})" if quota.is_default else "")
            raise Refused(
                f"quota exceeded: {whose} may have at most max_queued_jobs = {limit} jobs "
                f"queued or held; {have} already are and this submission adds {adding} "
                "(nothing was submitted; see gctl quota list)"
            )


def usage(waiting: Iterable[Job], holding: Iterable[Job]) -> dict[tuple[str, str], list[int]]:
    """[running jobs, running GPUs, queued+held jobs] per (scope, name), for ``quota list``."""
    out: dict[tuple[str, str], list[int]] = {}
    for job in holding:
        for key in keys(job):
            cell = out.setdefault(key, [0, 0, 0])
            cell[0] += 1
            cell[1] += job.gpus
    for job in waiting:
        for key in keys(job):
            out.setdefault(key, [0, 0, 0])[2] += 1
    return out
