"""GPU reservations: named cards set aside for one user over a time window. Pure rules.

During a window its cards go only to jobs of the reserving user. Before the window,
another user's job may take a reserved card only if its time limit guarantees that it
ends by the time the window opens, counting the time stopping it may take (a job
without a limit never does). The reserving
user's own jobs may use the cards at any time. A job that is already running on a card
when a window opens is not stopped. A card's reservations never overlap: creating one
that would is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gflow.model import Job

UPCOMING, ACTIVE, ENDED, CANCELLED = "upcoming", "active", "ended", "cancelled"


@dataclass(frozen=True, slots=True)
class Reservation:
    id: int
    user: str
    gpu_ids: tuple[int, ...]
    start: float
    end: float
    created: float = 0.0
    cancelled: float | None = None

    def state(self, now: float) -> str:
        if self.cancelled is not None:
            return CANCELLED
        if now >= self.end:
            return ENDED
        return ACTIVE if now >= self.start else UPCOMING

    def overlaps(self, gpu: int, start: float, end: float) -> bool:
        """Does this (live) reservation hold ``gpu`` for part of [start, end)?"""
        return (
            self.cancelled is None and gpu in self.gpu_ids and self.start < end and start < self.end
        )

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.user,
            "gpu_ids": list(self.gpu_ids),
            "start": self.start,
            "end": self.end,
            "created": self.created,
            "cancelled": self.cancelled,
            "state": self.state(now),
        }


class Calendar:
    """The live reservations of each card, as one scheduling pass at ``now`` sees them.

    ``grace``: how long a job may outlive its time limit while it is being stopped
    (SIGINT, SIGTERM, SIGKILL); a job fits before a window only with that margin.
    """

    def __init__(self, reservations: Iterable[Reservation], now: float, grace: float = 0.0) -> None:
        self.now = now
        self.grace = grace
        self.by_gpu: dict[int, list[Reservation]] = {}
        for r in sorted(reservations, key=lambda r: (r.start, r.id)):
            if r.cancelled is None and r.end > now:
                for g in r.gpu_ids:
                    self.by_gpu.setdefault(g, []).append(r)

    def __bool__(self) -> bool:
        return bool(self.by_gpu)

    def earliest(self, job: Job, gpu: int, t: float) -> float:
        """The earliest time from ``t`` on that reservations let ``job`` start on ``gpu``."""
        for r in self.by_gpu.get(gpu, ()):
            if r.user == job.user or r.end <= t:
                continue
            limit = job.time_limit
            if r.start > t and limit is not None and t + limit + self.grace <= r.start:
                return t  # it ends (killed at the latest) before this window opens
            t = r.end
        return t

    def open(self, job: Job, gpu: int) -> bool:
        """May ``job`` start on ``gpu`` now, as far as reservations go?"""
        return self.earliest(job, gpu, self.now) <= self.now

    def rank(self, job: Job, gpu: int) -> int:
        """Card preference for ``job``: 0 its user's active window, 1 plain, 2 reserved by others.

        A user with an active reservation uses those cards first, and everyone else takes
        cards another user has reserved only when nothing else is free.
        """
        rank = 1
        for r in self.by_gpu.get(gpu, ()):
            if r.user != job.user:
                return 2
            if r.start <= self.now:
                rank = 0
        return rank

    def holder(self, gpu: int) -> Reservation | None:
        """The reservation whose window is open on ``gpu`` now, if any."""
        for r in self.by_gpu.get(gpu, ()):
            if r.start <= self.now < r.end:
                return r
        return None


def pick_cards(
    known: Sequence[int], count: int, start: float, end: float, existing: Iterable[Reservation]
) -> tuple[int, ...] | None:
    """``count`` cards (lowest index first) with no reservation overlapping [start, end)."""
    taken = list(existing)
    free = [g for g in sorted(known) if not any(r.overlaps(g, start, end) for r in taken)]
    return tuple(free[:count]) if len(free) >= count else None


def clash(
    gpus: Iterable[int], start: float, end: float, existing: Iterable[Reservation]
) -> Reservation | None:
    """A live reservation that holds one of ``gpus`` for part of [start, end), if any."""
    wanted = list(gpus)
    for r in existing:
        if any(r.overlaps(g, start, end) for g in wanted):
            return r
    return None


def next_changes(reservations: Iterable[Reservation], now: float) -> list[float]:
    """The window starts and ends still ahead: the moments the schedule must be re-planned."""
    moments: set[float] = set()
    for r in reservations:
        if r.cancelled is None:
            moments.update(t for t in (r.start, r.end) if t > now and not math.isinf(t))
    return sorted(moments)
