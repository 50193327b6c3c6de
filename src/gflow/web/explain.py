"""Why a job is where it is, in words (pure: the job and a snapshot of the machine in).

A phrase is a tuple of parts: text, or a job id (an ``int``) that a page shows as a
link to that job: ``("waits for ", 3, " to succeed")``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gflow.cli.common import memory_text
from gflow.model import Job, Reason, State
from gflow.quotas import QuotaTable

Phrase = tuple[str | int, ...]

AWAITS = {
    "afterok": "to succeed",
    "afternotok": "to fail",
    "afterany": "to end",
    "after": "to start",
}
MAX_NAMED = 5


@dataclass(frozen=True, slots=True)
class Context:
    """What the words depend on, taken once per page or event from the engine."""

    pending: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    gpus_total: int = 0
    gpus_idle: int = 0
    memory_mb: int | None = None
    memory_used_mb: int = 0
    max_running: int | None = None
    group_limits: Mapping[int, int] = field(default_factory=dict)
    quotas: QuotaTable = field(default_factory=QuotaTable)
    quota_use: Mapping[tuple[str, str], list[int]] = field(default_factory=dict)


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _jobs(ids: list[int]) -> Phrase:
    """``job 3``, ``jobs 3, 4 and 5``, ``jobs 3, 4, 5, 6, 7 and 9 more``."""
    shown, rest = ids[:MAX_NAMED], len(ids) - MAX_NAMED
    parts: list[str | int] = ["job " if len(ids) == 1 else "jobs "]
    for i, job_id in enumerate(shown):
        if i:
            parts.append(" and " if i == len(shown) - 1 and rest <= 0 else ", ")
        parts.append(job_id)
    if rest > 0:
        parts.append(f" and {rest} more")
    return tuple(parts)


def dependency(job: Job, pending: tuple[int, ...]) -> Phrase:
    """What a queued job still waits for, clause by clause."""
    awaited = set(pending)
    parts: list[str | int] = ["waits for "]
    joiner = " or " if job.deps.any_of else " and "
    first = True
    for clause in job.deps.clauses:
        left = [p for p in clause.parents if p in awaited]
        if not left:
            continue
        if not first:
            parts.append(joiner)
        first = False
        parts.extend(_jobs(left))
        parts.append(" " + AWAITS.get(clause.type.value, clause.type.value))
        if clause.delay:
            parts.append(f" (+{clause.delay // 60} min)")
    pool = [p for c in job.deps.on_pool for p in c.parents if p in awaited]
    if job.deps.on_count and (pool or first):
        parts.append(("" if first else joiner) + f"{job.deps.on_count} before-jobs")
        first = False
    if job.deps.singleton and first:
        return (f"waits until no other job of its user named {job.name!r} runs",)
    return tuple(parts) if not first else ("waits for its dependencies",)


def _quota(job: Job, ctx: Context) -> Phrase:
    for key, quota in ctx.quotas.governing(job.user, job.project):
        used = ctx.quota_use.get(key, [0, 0, 0])
        lim = quota.limits
        whose = f"{key[0]} {key[1]}"
        if lim.max_running_jobs is not None and used[0] >= lim.max_running_jobs:
            return (
                f"quota: {whose} already runs {used[0]} of at most {lim.max_running_jobs} jobs",
            )
        if lim.max_running_gpus is not None and used[1] + job.gpus > lim.max_running_gpus:
            return (
                f"quota: {whose} uses {used[1]} of at most {lim.max_running_gpus} GPUs "
                f"and this job needs {job.gpus}",
            )
    return ("held back by a quota (see gctl quota list)",)


def _gpus(job: Job, ctx: Context) -> Phrase:
    each = f" with {memory_text(job.gpu_memory_mb)} free" if job.shared else ""
    plural = "s" if job.gpus != 1 else ""
    return (f"needs {job.gpus} GPU{plural}{each}; {ctx.gpus_idle} of {ctx.gpus_total} idle",)


def _memory(job: Job, ctx: Context) -> Phrase:
    total = memory_text(ctx.memory_mb) if ctx.memory_mb else "?"
    return (
        f"needs {memory_text(job.memory_mb)} of host memory; "
        f"{memory_text(ctx.memory_used_mb)} of {total} are taken",
    )


def queued(job: Job, reason: str | None, ctx: Context) -> Phrase:
    """Why a queued job has not started."""
    if reason == Reason.DEPENDENCY:
        return dependency(job, ctx.pending.get(job.id, ()))
    if reason == Reason.GPU:
        return _gpus(job, ctx)
    if reason == Reason.MEMORY:
        return _memory(job, ctx)
    if reason == Reason.QUOTA:
        return _quota(job, ctx)
    if reason == Reason.BEGIN_TIME and job.begin_at is not None:
        return (f"starts no earlier than {when(job.begin_at)}",)
    parent = _parent_in(reason, "DependencyExitUnknown:")
    if parent is not None:
        return (
            "waits: nobody could tell whether ",
            parent,
            " succeeded (redo it, or change this job's dependency)",
        )
    if reason == Reason.GROUP_LIMIT and job.group_id is not None:
        limit = ctx.group_limits.get(job.group_id)
        return (f"its array already runs its limit of {limit} jobs at once",)
    words: dict[str, str] = {
        Reason.RESERVED: "the idle GPUs are reserved for another user",
        Reason.PRIORITY: "kept back so as not to delay a job ahead of it that waits for GPUs",
        Reason.RESOURCES: f"gflow runs at most {ctx.max_running} jobs at once",
        Reason.LAUNCHING: "starting",
        Reason.NEVER: "can never start: a job it waits for did not end as needed "
        "(update its dependency or cancel it)",
    }
    return (words.get(reason or "", reason or "waiting for its turn"),)


def _parent_in(reason: str | None, prefix: str) -> int | None:
    """The job id a reason such as ``DependencyExitUnknown:12`` names."""
    if reason is None or not reason.startswith(prefix):
        return None
    text = reason[len(prefix) :]
    return int(text) if text.isdigit() else None


def ended(state: str, reason: str | None, exit_code: int | None) -> Phrase:
    """How a job ended."""
    reason = reason or ""
    if reason.startswith("DependencyFailed:"):
        parent = reason.split(":", 1)[1]
        if parent.isdigit():
            return ("cancelled: ", int(parent), " did not end as it needed")
    if reason.startswith("SystemError:"):
        return ("could not start: " + reason.split(":", 1)[1],)
    if state == State.CANCELLED:
        return ("cancelled by a user" if reason == Reason.CANCELLED_BY_USER else "cancelled",)
    if state == State.TIMEOUT:
        return ("stopped at its time limit",)
    if reason == Reason.EXIT_UNKNOWN:
        return ("ended; its exit code could not be read, so jobs after it wait",)
    if exit_code is None:
        return ("ended without an exit code",)
    return (f"exit code {exit_code}",)


def phrase(row: Mapping[str, Any], live: Job | None, ctx: Context) -> Phrase:
    """The words for a listing row (``live``: the job in memory when it is active)."""
    state = row["state"]
    if state == State.RUNNING:
        gpus = row["gpu_ids"]
        return (f"on GPU {', '.join(map(str, gpus))}",) if gpus else ("running",)
    if state == State.HOLD:
        return ("held: release it to let it start",)
    if state == State.QUEUED and live is not None:
        return queued(live, row["reason"], ctx)
    if state == State.QUEUED:
        return ("waiting",)
    return ended(state, row["reason"], row["exit_code"])
