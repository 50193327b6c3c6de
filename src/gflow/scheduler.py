"""The scheduling decision, with no I/O: which waiting jobs start now, on which GPUs.

Order is priority (higher first), then submission order. GPUs are handed out
exclusively (``--gpus N``) or shared by declared memory (``--shared --gpu-memory``),
never both on one card. The first GPU job that cannot start becomes the head: later
jobs may only jump ahead of it (backfill) when they cannot delay it — they end before
the head could start anyway (known time limits), or they use GPUs the head would not
need.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gflow.model import Job, Reason


@dataclass(frozen=True, slots=True)
class GpuSlot:
    """One card as the scheduler sees it."""

    index: int
    total_mib: int
    foreign_mib: int = 0
    foreign_pids: tuple[int, ...] = ()
    allowed: bool = True

    @property
    def unmanaged(self) -> bool:
        return bool(self.foreign_pids) or self.foreign_mib > 0


@dataclass(frozen=True, slots=True)
class Resources:
    gpus: tuple[GpuSlot, ...] = ()
    memory_mb: int | None = None
    max_running: int | None = None


@dataclass(frozen=True, slots=True)
class Start:
    job_id: int
    gpu_ids: tuple[int, ...]


@dataclass(slots=True)
class Plan:
    starts: list[Start] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Usage:
    """GPU and memory use by running (and just-planned) jobs."""

    exclusive: dict[int, int] = field(default_factory=dict)
    shared_mib: dict[int, int] = field(default_factory=dict)
    memory_mb: int = 0
    running: int = 0
    per_group: dict[int, int] = field(default_factory=dict)

    def add(self, job: Job, gpu_ids: Sequence[int]) -> None:
        for g in gpu_ids:
            if job.shared:
                self.shared_mib[g] = self.shared_mib.get(g, 0) + (job.gpu_memory_mb or 0)
            else:
                self.exclusive[g] = job.id
        self.memory_mb += job.memory_mb or 0
        self.running += 1
        if job.group_id is not None:
            self.per_group[job.group_id] = self.per_group.get(job.group_id, 0) + 1


def _idle(slot: GpuSlot, use: _Usage) -> bool:
    return (
        slot.allowed
        and not slot.unmanaged
        and slot.index not in use.exclusive
        and slot.index not in use.shared_mib
    )


def _shared_room(slot: GpuSlot, use: _Usage) -> int:
    if not slot.allowed or slot.index in use.exclusive:
        return -1
    return slot.total_mib - slot.foreign_mib - use.shared_mib.get(slot.index, 0)


def pick_gpus(
    job: Job, gpus: Sequence[GpuSlot], use: _Usage, strategy: str, rng: random.Random
) -> tuple[int, ...] | None:
    """The cards ``job`` would get now, or None when they are not free."""
    if job.gpus == 0:
        return ()
    if job.shared:
        need = job.gpu_memory_mb or 0
        fits = [s for s in gpus if _shared_room(s, use) >= need]
        fits.sort(key=lambda s: (-use.shared_mib.get(s.index, 0), s.index))
        chosen = fits[: job.gpus]
    else:
        free = [s for s in gpus if _idle(s, use)]
        chosen = (
            rng.sample(free, job.gpus)
            if strategy == "random" and len(free) >= job.gpus
            else free[: job.gpus]
        )
    if len(chosen) < job.gpus:
        return None
    return tuple(sorted(s.index for s in chosen))


@dataclass(slots=True)
class _Head:
    """The highest-priority GPU job that could not start, and what protects it."""

    job_id: int
    shadow: float
    extra: int


def _expected_end(job: Job) -> float:
    if job.time_limit is None or job.start_time is None:
        return math.inf
    return job.start_time + job.time_limit


def _make_head(
    job: Job, running: Sequence[Job], gpus: Sequence[GpuSlot], use: _Usage, now: float
) -> _Head | None:
    usable = [s for s in gpus if s.allowed]
    if job.gpus > len(usable):
        return None
    free = sum(1 for s in usable if _idle(s, use))
    if free >= job.gpus:
        return _Head(job.id, now, free - job.gpus)
    release: dict[int, float] = {}
    for r in running:
        for g in r.gpu_ids:
            release[g] = max(release.get(g, now), _expected_end(r))
    for when in sorted(release[g] for g in release if _frees_for_head(g, gpus)):
        if math.isinf(when):
            break
        free += 1
        if free >= job.gpus:
            return _Head(job.id, when, free - job.gpus)
    return _Head(job.id, math.inf, 0)


def _frees_for_head(index: int, gpus: Sequence[GpuSlot]) -> bool:
    return any(s.index == index and s.allowed and not s.unmanaged for s in gpus)


def _may_backfill(job: Job, gpu_ids: Sequence[int], head: _Head, use: _Usage, now: float) -> bool:
    if job.time_limit is not None and now + job.time_limit <= head.shadow:
        return True
    fresh = [g for g in gpu_ids if g not in use.shared_mib]
    return len(fresh) <= head.extra


def plan(
    candidates: Sequence[Job],
    running: Sequence[Job],
    res: Resources,
    group_limits: Mapping[int, int],
    now: float,
    *,
    strategy: str = "sequential",
    rng: random.Random | None = None,
) -> Plan:
    """Decide which ``candidates`` (runnable, best first) start now.

    ``running`` are the jobs holding resources (running or being launched).
    """
    rng = rng or random.Random()
    use = _Usage()
    for job in running:
        use.add(job, job.gpu_ids)
    out = Plan()
    head: _Head | None = None
    for job in candidates:
        if res.max_running is not None and use.running >= res.max_running:
            out.reasons[job.id] = Reason.RESOURCES
            continue
        limit = group_limits.get(job.group_id or 0)
        if limit is not None and use.per_group.get(job.group_id or 0, 0) >= limit:
            out.reasons[job.id] = Reason.GROUP_LIMIT
            continue
        if res.memory_mb is not None and use.memory_mb + (job.memory_mb or 0) > res.memory_mb:
            out.reasons[job.id] = Reason.MEMORY
            continue
        gpu_ids = pick_gpus(job, res.gpus, use, strategy, rng)
        if gpu_ids is None:
            out.reasons[job.id] = Reason.GPU
            if head is None:
                head = _make_head(job, running, res.gpus, use, now)
            continue
        if job.gpus and head is not None and not _may_backfill(job, gpu_ids, head, use, now):
            out.reasons[job.id] = Reason.PRIORITY
            continue
        if head is not None and job.gpus:
            head.extra -= len([g for g in gpu_ids if g not in use.shared_mib])
        use.add(job, gpu_ids)
        out.starts.append(Start(job.id, gpu_ids))
    return out


def sort_key(job: Job) -> tuple[int, int]:
    """Candidates are planned best first: higher priority, then older."""
    return (-job.priority, job.id)
