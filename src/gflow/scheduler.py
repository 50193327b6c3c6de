"""The scheduling decision, with no I/O: which waiting jobs start now, on which GPUs.

Order is priority (higher first), then submission order. GPUs are handed out
exclusively (``--gpus N``) or shared by declared memory (``--shared --gpu-memory``),
never both on one card. A card with foreign (non-gflow) processes is skipped by
exclusive jobs; shared jobs may use the memory those processes leave free.

The first GPU job that cannot start becomes the *head*, and is protected the way EASY
backfill protects it: from the time limits of the jobs holding cards, the scheduler
works out the *shadow time* (when enough cards will be free for the head at the
latest) and which cards the head may take by then. A later job may jump ahead only if
it cannot delay the head: its own time limit ends by the shadow time, or it uses only
cards the head will not need (spare cards at the shadow time, or cards the head can
never use). When a holder's end is unknown (no time limit) the shadow time is unknown
too, and only cards the head cannot use are open to others. A head that cannot start
on the cards gflow may use at all (restriction, foreign processes) protects nothing: it
waits for something outside the scheduler, and idling the machine would not help it.

Quotas (:mod:`gflow.quotas`) hold a job back, with reason ``Quota``, when starting it
would put its user or project over a running-jobs or running-GPUs limit; such a job
never becomes the head, so it holds back nobody else. Reservations
(:mod:`gflow.reservations`) close cards to other users' jobs around their windows; a
job that only reservations keep off free cards waits with reason ``Reserved``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gflow.model import Job, Reason
from gflow.quotas import QuotaTable, QuotaUse
from gflow.reservations import Calendar, Reservation


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
    quotas: QuotaTable = field(default_factory=QuotaTable)
    reservations: tuple[Reservation, ...] = ()
    stop_grace: float = 0.0  # how long a job may outlive its time limit while stopped


@dataclass(frozen=True, slots=True)
class Start:
    job_id: int
    gpu_ids: tuple[int, ...]


@dataclass(slots=True)
class Plan:
    starts: list[Start] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def expected_end(job: Job, now: float) -> float:
    """When ``job`` ends at the latest (its time limit); ``inf`` when it has none."""
    if job.time_limit is None:
        return math.inf
    started = job.start_time if job.start_time is not None else now
    return started + job.time_limit


@dataclass(slots=True)
class _Usage:
    """GPU and memory use by running (and just-planned) jobs."""

    exclusive: dict[int, int] = field(default_factory=dict)
    shared_mib: dict[int, int] = field(default_factory=dict)
    holds: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    memory_mb: int = 0
    running: int = 0
    per_group: dict[int, int] = field(default_factory=dict)
    quota: QuotaUse | None = None

    def add(self, job: Job, gpu_ids: Sequence[int], now: float) -> None:
        end = expected_end(job, now)
        mib = (job.gpu_memory_mb or 0) if job.shared else 0
        for g in gpu_ids:
            if job.shared:
                self.shared_mib[g] = self.shared_mib.get(g, 0) + mib
            else:
                self.exclusive[g] = job.id
            self.holds.setdefault(g, []).append((end, mib))
        self.memory_mb += job.memory_mb or 0
        self.running += 1
        if job.group_id is not None:
            self.per_group[job.group_id] = self.per_group.get(job.group_id, 0) + 1
        if self.quota is not None:
            self.quota.add(job)

    def busy(self, index: int) -> bool:
        return index in self.exclusive or index in self.shared_mib


def _idle(slot: GpuSlot, use: _Usage) -> bool:
    return slot.allowed and not slot.unmanaged and not use.busy(slot.index)


def _shared_room(slot: GpuSlot, use: _Usage) -> int:
    if not slot.allowed or slot.index in use.exclusive:
        return -1
    return slot.total_mib - slot.foreign_mib - use.shared_mib.get(slot.index, 0)


def _free(job: Job, gpus: Sequence[GpuSlot], use: _Usage) -> list[GpuSlot]:
    """The cards with room for ``job`` now, reservations aside."""
    if job.shared:
        need = job.gpu_memory_mb or 0
        return [s for s in gpus if _shared_room(s, use) >= need]
    return [s for s in gpus if _idle(s, use)]


def pick_gpus(
    job: Job,
    gpus: Sequence[GpuSlot],
    use: _Usage,
    strategy: str,
    rng: random.Random,
    avoid: frozenset[int] = frozenset(),
    calendar: Calendar | None = None,
) -> tuple[int, ...] | None:
    """The cards ``job`` would get now, or None when they are not free.

    Exclusive jobs take idle cards (lowest index first, or at random); shared jobs pack
    onto the fullest card that still has room. Cards in ``avoid`` (those a protected
    head job needs) are taken last; with reservations, cards reserved for the job's user
    come first and cards reserved for others last, and cards closed to it not at all.
    """
    if job.gpus == 0:
        return ()
    fits = _free(job, gpus, use)
    rank: dict[int, int] = {}
    if calendar:
        fits = [s for s in fits if calendar.open(job, s.index)]
        rank = {s.index: calendar.rank(job, s.index) for s in fits}
    if job.shared:
        fits.sort(
            key=lambda s: (
                s.index in avoid,
                rank.get(s.index, 1),
                -use.shared_mib.get(s.index, 0),
                s.index,
            )
        )
    else:
        if strategy == "random":
            rng.shuffle(fits)
        fits.sort(key=lambda s: (s.index in avoid, rank.get(s.index, 1)))
    if len(fits) < job.gpus:
        return None
    return tuple(sorted(s.index for s in fits[: job.gpus]))


@dataclass(slots=True)
class _Head:
    """The highest-priority GPU job that could not start, and what protects it."""

    job_id: int
    shadow: float
    protected: frozenset[int]
    extra: int
    lost: set[int] = field(default_factory=set)

    def admit(self, job: Job, gpu_ids: Sequence[int], now: float) -> bool:
        """May ``job`` start on ``gpu_ids`` without delaying the head? Books what it uses."""
        if job.time_limit is not None and now + job.time_limit <= self.shadow < math.inf:
            return True
        touched = {g for g in gpu_ids if g in self.protected and g not in self.lost}
        if len(touched) > self.extra:
            return False
        self.extra -= len(touched)
        self.lost |= touched
        return True


def _ready_at(
    job: Job, slot: GpuSlot, use: _Usage, now: float, calendar: Calendar | None
) -> float | None:
    """When ``slot`` could take ``job`` (time limits and reservations; None: not as things are)."""
    when = _freed_at(job, slot, use, now)
    if when is None or not calendar:
        return when
    return calendar.earliest(job, slot.index, when)


def _freed_at(job: Job, slot: GpuSlot, use: _Usage, now: float) -> float | None:
    """When ``slot`` could take ``job`` as far as time limits say (None: not as things are)."""
    if not slot.allowed:
        return None
    holds = sorted(use.holds.get(slot.index, []))
    if not job.shared:
        if slot.unmanaged:
            return None
        return max((end for end, _ in holds), default=now)
    need = job.gpu_memory_mb or 0
    room = slot.total_mib - slot.foreign_mib
    if room < need:
        return None
    if slot.index in use.exclusive:
        return max(end for end, _ in holds)
    room -= use.shared_mib.get(slot.index, 0)
    when = now
    for end, mib in holds:
        if room >= need:
            break
        room, when = room + mib, end
    return when


def _make_head(
    job: Job, gpus: Sequence[GpuSlot], use: _Usage, now: float, calendar: Calendar | None
) -> _Head | None:
    ready = {s.index: t for s in gpus if (t := _ready_at(job, s, use, now, calendar)) is not None}
    if len(ready) < job.gpus:
        return None
    shadow = sorted(ready.values())[job.gpus - 1]
    if math.isinf(shadow):
        return _Head(job.id, shadow, frozenset(ready), 0)
    protected = frozenset(g for g, t in ready.items() if t <= shadow)
    return _Head(job.id, shadow, protected, len(protected) - job.gpus)


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

    ``running`` are the jobs holding resources (running or being launched). Every
    candidate that does not start gets a reason: ``Resources`` (the running-job cap),
    ``JobGroupLimit``, ``Quota``, ``WaitingForMemory``, ``WaitingForGpu``, ``Reserved``
    (free cards exist, but reservations close them to it), or ``Priority`` (it would
    fit, but it would delay the head job).
    """
    rng = rng or random.Random()
    use = _Usage(quota=QuotaUse(res.quotas) if res.quotas else None)
    for job in running:
        use.add(job, job.gpu_ids, now)
    calendar = Calendar(res.reservations, now, res.stop_grace) if res.reservations else None
    out = Plan()
    head: _Head | None = None
    for job in candidates:
        reason = _blocked(job, use, res, group_limits)
        if reason is not None:
            out.reasons[job.id] = reason
            continue
        avoid = head.protected if head is not None else frozenset()
        gpu_ids = pick_gpus(job, res.gpus, use, strategy, rng, avoid, calendar)
        if gpu_ids is None:
            reserved = bool(calendar) and len(_free(job, res.gpus, use)) >= job.gpus
            out.reasons[job.id] = Reason.RESERVED if reserved else Reason.GPU
            if head is None:
                head = _make_head(job, res.gpus, use, now, calendar)
            continue
        if gpu_ids and head is not None and not head.admit(job, gpu_ids, now):
            out.reasons[job.id] = Reason.PRIORITY
            continue
        use.add(job, gpu_ids, now)
        out.starts.append(Start(job.id, gpu_ids))
    return out


def _blocked(job: Job, use: _Usage, res: Resources, group_limits: Mapping[int, int]) -> str | None:
    """Why ``job`` cannot start for reasons other than GPUs, or None."""
    if res.max_running is not None and use.running >= res.max_running:
        return Reason.RESOURCES
    if job.group_id is not None:
        limit = group_limits.get(job.group_id)
        if limit is not None and use.per_group.get(job.group_id, 0) >= limit:
            return Reason.GROUP_LIMIT
    if use.quota is not None and use.quota.blocks(job):
        return Reason.QUOTA
    if res.memory_mb is not None and use.memory_mb + (job.memory_mb or 0) > res.memory_mb:
        return Reason.MEMORY
    return None


def sort_key(job: Job) -> tuple[int, int]:
    """Candidates are planned best first: higher priority, then older."""
    return (-job.priority, job.id)
