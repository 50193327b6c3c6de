"""Usage statistics over a set of jobs (pure: rows in, summary out)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gflow.states import State

Row = tuple[str, float, float | None, float | None, int]


def summarize(rows: Iterable[Row], now: float) -> dict[str, Any]:
    """Totals per state, average wait and run time, GPU-hours and success rate."""
    counts: dict[str, int] = {}
    waits: list[float] = []
    runs: list[float] = []
    gpu_hours = 0.0
    gpu_jobs = 0
    for state, submitted, started, ended, gpus in rows:
        counts[state] = counts.get(state, 0) + 1
        if started is not None:
            waits.append(started - submitted)
            took = (ended if ended is not None else now) - started
            runs.append(took)
            gpu_hours += gpus * took / 3600
        if gpus:
            gpu_jobs += 1
    finished = counts.get(State.FINISHED, 0)
    ended_total = sum(counts.get(s, 0) for s in (State.FINISHED, State.FAILED, State.TIMEOUT))
    return {
        "total_jobs": sum(counts.values()),
        "by_state": counts,
        "avg_wait_secs": sum(waits) / len(waits) if waits else None,
        "avg_runtime_secs": sum(runs) / len(runs) if runs else None,
        "total_gpu_hours": round(gpu_hours, 3),
        "jobs_with_gpus": gpu_jobs,
        "success_rate": finished / ended_total if ended_total else None,
    }
