"""What the statistics page draws (pure: job rows in, bars out).

Rows are ``(state, submit, start, end, gpus, user, project)``, as
:meth:`gflow.store.Store.usage_rows` returns them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from gflow.states import State

Row = tuple[str, float, float | None, float | None, int, str, str | None]

WAIT_BUCKETS = (
    ("under 1 min", 60.0),
    ("1–10 min", 600.0),
    ("10–60 min", 3600.0),
    ("1–6 h", 6 * 3600.0),
    ("over 6 h", float("inf")),
)
STATE_ORDER: tuple[str, ...] = (
    State.FINISHED,
    State.FAILED,
    State.TIMEOUT,
    State.CANCELLED,
    State.RUNNING,
    State.QUEUED,
    State.HOLD,
)
MAX_BARS = 20


@dataclass(slots=True)
class Bar:
    label: str
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.parts.values())


@dataclass(slots=True)
class Chart:
    title: str
    unit: str
    bars: list[Bar]

    @property
    def top(self) -> float:
        return max((b.total for b in self.bars), default=0.0) or 1.0

    def keys(self) -> list[str]:
        seen = {k for b in self.bars for k in b.parts}
        return [k for k in STATE_ORDER if k in seen] + sorted(seen - set(STATE_ORDER))


def day_of(ts: float) -> str:
    return time.strftime("%m-%d", time.localtime(ts))


def per_day(rows: Iterable[Row], now: float, days: int) -> Chart:
    """Jobs submitted per day over the last ``days`` days, by their state now."""
    labels = [day_of(now - 86400 * d) for d in range(days - 1, -1, -1)]
    bars = {label: Bar(label) for label in labels}
    for state, submitted, *_ in rows:
        bar = bars.get(day_of(submitted))
        if bar is not None:
            bar.parts[state] = bar.parts.get(state, 0) + 1
    return Chart("Jobs submitted per day", "jobs", list(bars.values()))


def gpu_hours(rows: Iterable[Row], now: float, by: str) -> Chart:
    """GPU hours per user (``by="user"``) or per project, largest first."""
    totals: dict[str, float] = {}
    for _state, _sub, start, end, gpus, user, project in rows:
        if start is None or not gpus:
            continue
        key = user if by == "user" else (project or "(no project)")
        totals[key] = totals.get(key, 0.0) + gpus * ((end or now) - start) / 3600
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:MAX_BARS]
    bars = [Bar(k, {"GPU hours": round(v, 3)}) for k, v in ranked]
    return Chart(f"GPU hours per {by}", "GPU hours", bars)


def waits(rows: Iterable[Row]) -> Chart:
    """How long started jobs waited between submission and start."""
    counts = [0] * len(WAIT_BUCKETS)
    for _state, submitted, start, *_ in rows:
        if start is None:
            continue
        waited = start - submitted
        counts[next(i for i, (_, top) in enumerate(WAIT_BUCKETS) if waited < top)] += 1
    bars = [Bar(label, {"jobs": n}) for (label, _), n in zip(WAIT_BUCKETS, counts, strict=True)]
    return Chart("Time from submission to start", "jobs", bars)
