"""What the daemon reports about itself, and the runtime controls (``gctl``, ``gflowd``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gflow import (
    __version__,
    admin_notifications,
    admin_quotas,
    admin_reservations,
    limits,
    logs,
    notifyconfig,
    proc,
)
from gflow.config import DaemonConfig, load_daemon_config
from gflow.engine import Caller
from gflow.errors import Forbidden, InvalidInput
from gflow.executors import TmuxExecutor
from gflow.limits import MAX_COUNT, MAX_DAYS, MAX_EXPANSION, MAX_ID
from gflow.listener import connection_budget
from gflow.model import State
from gflow.reservations import Calendar
from gflow.stats import summarize

if TYPE_CHECKING:
    from gflow.daemon import Runtime

log = logging.getLogger("gflow.admin")

RESTART_ONLY = (
    "executor",
    "tcp",
    "host",
    "port",
    "system",
    "fake_gpus",
    "idle_timeout",
    "web",
    "web_port",
)


def memory_limit(config: DaemonConfig) -> int | None:
    """Host memory (MB) gflow hands out to ``--memory`` jobs: configured, else all RAM."""
    return config.memory_mb or proc.total_memory_mb()


def status(rt: Runtime) -> dict[str, Any]:
    slots = rt.engine.gpu_slots
    busy = {g for j in rt.engine.holding() for g in j.gpu_ids}
    counts: dict[str, int] = {}
    for job in rt.engine.jobs.values():
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    return {
        "pid": os.getpid(),
        "version": __version__,
        "uptime": time.time() - rt.started,
        "executor": rt.engine.executor_name,
        "slurm": rt.slurm.status.json() if rt.slurm is not None else None,
        "database": str(rt.paths.db),
        "socket": str(rt.paths.socket),
        "system": rt.system,
        "gpus_total": len(slots),
        "gpus_available": sum(
            1 for s in slots if s.allowed and not s.unmanaged and s.index not in busy
        ),
        "gpu_backend": rt.gpus.backend.name if rt.gpus.backend else None,
        "gpu_polls": rt.gpus.polls,
        "jobs": counts,
        "tcp": rt.tcp,
        "connections": {
            "open": rt.listener.open_connections(),
            "refused": rt.listener.stats.refused,
            "out_of_fds": rt.listener.stats.out_of_fds,
        },
    }


def info(rt: Runtime) -> dict[str, Any]:
    """GPUs (with the jobs and foreign processes holding them) and the daemon's status."""
    holders: dict[int, list[dict[str, Any]]] = {}
    for job in rt.engine.holding():
        for g in job.gpu_ids:
            holders.setdefault(g, []).append(
                {
                    "id": job.id,
                    "name": job.name,
                    "shared": job.shared,
                    "gpu_memory_mb": job.gpu_memory_mb,
                }
            )
    by_index = {g.index: g for g in rt.gpus.snapshot}
    now = time.time()
    calendar = Calendar(rt.engine.reservations, now)
    gpus = []
    for slot in rt.engine.gpu_slots:
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
        "status": status(rt),
        "memory_mb": rt.engine.memory_mb,
        "executor": rt.engine.executor_name,
    }


def _next_window(calendar: Calendar, gpu: int, now: float) -> dict[str, Any] | None:
    """The reservation open on ``gpu`` now, else the next one to open (None: none)."""
    windows = calendar.by_gpu.get(gpu)  # live ones, by start: the first is open or next
    return windows[0].to_json(now) if windows else None


def stats(rt: Runtime, uids: tuple[int, ...], since: float | None) -> dict[str, Any]:
    summary = summarize(rt.store.stats_rows(uids, since), time.time())
    summary["since"] = since
    return summary


async def handle(rt: Runtime, verb: str, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """One ``/v1/admin/<verb>`` request. On a system daemon most verbs are for admins."""
    if verb == "show-gpus":
        return info(rt)
    if verb == "close-sessions":
        return await close_sessions(rt, data, caller)
    if verb == "set-limit":
        return set_limit(rt, data, caller)
    if verb == "quota":  # listing is open; changes are checked there
        return admin_quotas.handle(rt.engine, data, caller, time.time())
    if verb == "reserve":
        return admin_reservations.handle(rt.engine, data, caller, time.time())
    if verb == "notifications":  # each user their own; administrators all
        return admin_notifications.handle(rt, data, caller)
    if rt.system and not caller.admin:
        raise Forbidden(f"gctl {verb} is for administrators of the system gflowd")
    if verb == "reload":
        return reload(rt)
    if verb == "set-gpus":
        return rt.gpus.set_allowed(data)
    if verb == "gpu-process":
        return rt.gpus.ignore(data)
    if verb == "prune":
        days = limits.number(
            data.get("older_than_days", rt.config.history_days), "older_than_days", 0, MAX_DAYS
        )
        return {"removed": rt.store.prune(time.time() - days * 86400, rt.engine.children)}
    raise web.HTTPNotFound(reason=f"unknown admin action {verb}")


def reload(rt: Runtime) -> dict[str, Any]:
    """Re-read the configuration; what only a restart can change is reported, not applied."""
    fresh = load_daemon_config(rt.paths)
    rt.configure_notifications(notifyconfig.load(rt.paths.config_file))
    ignored = [k for k in RESTART_ONLY if getattr(fresh, k) != getattr(rt.config, k)]
    rt.config = dataclasses.replace(fresh, **{k: getattr(rt.config, k) for k in RESTART_ONLY})
    rt.engine.config = rt.config
    rt.engine.memory_mb = memory_limit(rt.config)
    rt.gpus.apply_config(rt.config)
    rt.listener.configure(
        per_user=rt.config.max_connections_per_user,
        total=rt.config.max_connections or connection_budget(),
    )
    logs.apply(rt.config)
    rt.gpus.refresh()
    rt.drain()
    log.info("configuration reloaded%s", f" (restart needed for: {ignored})" if ignored else "")
    return {"reloaded": True, "needs_restart": ignored}


def set_limit(rt: Runtime, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``gctl set-limit``: at most N running jobs of an array or sweep (0: no limit)."""
    job_id = limits.whole(data.get("job"), "job", 1, MAX_ID)
    limit = limits.whole(data.get("limit"), "limit", 0, MAX_COUNT)
    job = rt.engine.require(job_id)
    rt.engine.check_owner(job, caller)
    if job.group_id is None:
        raise InvalidInput("job", str(job_id), "a job that belongs to an array or sweep")
    with rt.store.tx():
        rt.store.set_group_limit(job.group_id, limit or None)
    if limit:
        rt.engine.group_limits[job.group_id] = limit
    else:
        rt.engine.group_limits.pop(job.group_id, None)
    rt.engine.schedule(time.time())
    members = rt.store.group_members(job.group_id)
    return {"group": job.group_id, "limit": limit or None, "jobs": len(members)}


async def close_sessions(rt: Runtime, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """Close the tmux sessions of the caller's ended jobs (by ids and/or states)."""
    executor = rt.executor
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
    run_as = rt.engine.identity(caller.uid)
    loop = asyncio.get_running_loop()
    alive = await loop.run_in_executor(rt.pool, executor.sessions, run_as)
    wanted = []
    for name in alive:
        number = name.removeprefix("gflow-")
        job = rt.engine.job(int(number)) if number.isdigit() else None
        if job is None or job.state is State.RUNNING or job.uid != caller.uid:
            continue
        if ids is not None and job.id not in ids:
            continue
        if states and job.state.value not in states:
            continue
        wanted.append(job.id)
    for job_id in wanted:
        await loop.run_in_executor(rt.pool, executor.close_session, job_id, run_as)
    return {"closed": wanted}
