"""What the daemon reports about itself, and the runtime controls (``gctl``, ``gflowd``).

Each function answers one request with the small :class:`gflow.host.Admin` interface;
which request reaches which function is :mod:`gflow.routes`' business.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from gflow import (
    __version__,
    admin_notifications,
    admin_quotas,
    admin_reservations,
    commands,
    limits,
)
from gflow.engine import Caller
from gflow.errors import InvalidInput
from gflow.executors import TmuxExecutor
from gflow.limits import MAX_COUNT, MAX_DAYS, MAX_EXPANSION, MAX_ID
from gflow.reservations import Calendar

if TYPE_CHECKING:
    from gflow.host import Admin

log = logging.getLogger("gflow.admin")


def status(host: Admin) -> dict[str, Any]:
    slots = host.engine.gpu_slots
    busy = {g for j in host.engine.holding() for g in j.gpu_ids}
    counts: dict[str, int] = {}
    for job in host.engine.jobs.values():
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    return {
        "pid": os.getpid(),
        "version": __version__,
        "uptime": time.time() - host.started,
        "executor": host.engine.placement.describe(host.executor.name),
        "slurm": host.slurm.status.json() if host.slurm is not None else None,
        "database": str(host.paths.db),
        "socket": str(host.paths.socket),
        "system": host.system,
        "gpus_total": len(slots),
        "gpus_available": sum(
            1 for s in slots if s.allowed and not s.unmanaged and s.index not in busy
        ),
        "gpu_backend": host.gpus.backend.name if host.gpus.backend else None,
        "gpu_polls": host.gpus.polls,
        "jobs": counts,
        "tcp": host.tcp,
        "connections": {
            "open": host.listener.open_connections(),
            "refused": host.listener.stats.refused,
            "out_of_fds": host.listener.stats.out_of_fds,
        },
    }


def info(host: Admin) -> dict[str, Any]:
    """GPUs (with the jobs and foreign processes holding them) and the daemon's status."""
    holders: dict[int, list[dict[str, Any]]] = {}
    for job in host.engine.holding():
        for g in job.gpu_ids:
            holders.setdefault(g, []).append(
                {
                    "id": job.id,
                    "name": job.name,
                    "shared": job.shared,
                    "gpu_memory_mb": job.gpu_memory_mb,
                }
            )
    by_index = {g.index: g for g in host.gpus.snapshot}
    now = time.time()
    calendar = Calendar(host.engine.reservations, now)
    gpus = []
    for slot in host.engine.gpu_slots:
        snap = by_index.get(slot.index)
        gpus.append(
            {
                "index": slot.index,
                "name": snap.name if snap else "?",
                "uuid": snap.uuid if snap else "",
                "memory_total_mib": slot.total_mib,
                "memory_used_mib": snap.memory_used_mib if snap else 0,
                "allowed": slot.allowed,
                "foreign_pids": list(slot.foreign_pids),
                "foreign_mib": slot.foreign_mib,
                "jobs": holders.get(slot.index, []),
                "reservation": _next_window(calendar, slot.index, now),
            }
        )
    return {
        "gpus": gpus,
        "status": status(host),
        "memory_mb": host.engine.memory_mb,
        "executor": host.engine.placement.describe(host.executor.name),
    }


def _next_window(calendar: Calendar, gpu: int, now: float) -> dict[str, Any] | None:
    """The reservation open on ``gpu`` now, else the next one to open (None: none)."""
    windows = calendar.by_gpu.get(gpu)  # live ones, by start: the first is open or next
    return windows[0].to_json(now) if windows else None


def quota(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl quota``: anyone lists; administrators set and remove (checked there)."""
    return admin_quotas.handle(host.engine, data, caller, time.time())


def reserve(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl reserve``: anyone lists; administrators create and cancel (checked there)."""
    return admin_reservations.handle(host.engine, data, caller, time.time())


def notifications(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl notifications``: each user their own; administrators all."""
    return admin_notifications.handle(host, data, caller)


def reload(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gflowd reload``: re-read the configuration; report what only a restart applies."""
    return {"reloaded": True, "needs_restart": host.reload()}


def set_gpus(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl set-gpus``: the GPUs gflow may hand out."""
    return host.gpus.set_allowed(data)


def gpu_process(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl gpu-process``: a foreign GPU process to ignore, or to mind again."""
    return host.gpus.ignore(data)


def prune(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl prune``: forget ended jobs older than some days (default: history_days)."""
    days = limits.number(
        data.get("older_than_days", host.config.history_days), "older_than_days", 0, MAX_DAYS
    )
    return {"removed": commands.prune(host.engine, time.time() - days * 86400)}


def set_limit(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl set-limit``: at most N running jobs of an array or sweep (0: no limit)."""
    job_id = limits.whole(data.get("job"), "job", 1, MAX_ID)
    limit = limits.whole(data.get("limit"), "limit", 0, MAX_COUNT)
    return commands.set_limit(host.engine, job_id, limit, caller, time.time())


def show_gpus(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl show-gpus``: as ``ginfo``."""
    return info(host)


async def close_sessions(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """Close the tmux sessions of the caller's ended jobs (by ids and/or states)."""
    executor = host.executor
    if not isinstance(executor, TmuxExecutor):
        return {"closed": [], "note": "the process executor has no sessions"}
    ids = data.get("ids")
    states = data.get("states") or []
    if ids is not None and not (
        isinstance(ids, list)
        and len(ids) <= MAX_EXPANSION
        and all(type(i) is int and 0 < i <= MAX_ID for i in ids)
    ):
        raise InvalidInput("ids", limits.brief(ids), "a list of job ids")
    if not (isinstance(states, list) and all(isinstance(x, str) for x in states)):
        raise InvalidInput("states", limits.brief(states), "a list of state names")
    ids = None if ids is None else set(ids)
    run_as = host.engine.identity(caller.uid)
    alive = await host.in_thread(executor.sessions, run_as)
    wanted = []
    for name in alive:
        number = name.removeprefix("gflow-")
        job = host.engine.job(int(number)) if number.isdigit() else None
        if job is None or job.is_active or job.uid != caller.uid:  # launching: Queued
            continue
        if ids is not None and job.id not in ids:
            continue
        if states and job.state.value not in states:
            continue
        wanted.append(job.id)
    for job_id in wanted:
        await host.in_thread(executor.close_session, job_id, run_as)
    return {"closed": wanted}
