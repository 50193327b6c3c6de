"""Request routing, in one place: every route of the API, and every verb of
``/v1/jobs/{verb}`` and ``/v1/admin/{verb}`` with the function that answers it.

A job verb reads its JSON (:mod:`gflow.protocol`) into the arguments of one command of
:mod:`gflow.commands`; an admin verb is a runtime control of :mod:`gflow.admin`. A new
request is one line here and one function there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gflow import admin, commands, limits
from gflow.actions import Caller
from gflow.engine import Engine
from gflow.host import Admin
from gflow.protocol import selector, update_changes

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v1/health", "health"),
    ("GET", "/v1/info", "info"),
    ("POST", "/v1/jobs", "submit"),
    ("GET", "/v1/jobs", "list_jobs"),
    ("GET", "/v1/show", "show"),
    ("GET", "/v1/wait", "wait"),
    ("POST", "/v1/jobs/{verb}", "control"),
    ("POST", "/v1/admin/{verb}", "admin"),
    ("GET", "/v1/stats", "stats"),
    ("GET", "/metrics", "metrics"),
    ("POST", "/v1/shutdown", "shutdown"),
    ("POST", "/v1/web/token", "web_token"),
)
"""(method, path, the :class:`gflow.api.Api` method that answers)."""


# ------------------------------------------------------------ /v1/jobs/{verb}

JobVerb = Callable[[Engine, dict[str, Any], Caller, float], commands.Outcome]


def _cancel(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> commands.Outcome:
    dry_run = bool(data.get("dry_run"))
    return commands.cancel(engine, selector(data), caller, now, dry_run=dry_run)


def _hold(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> commands.Outcome:
    return commands.hold(engine, selector(data), caller, now)


def _release(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> commands.Outcome:
    at = data.get("at")
    at = None if at is None else limits.instant(at, "at")
    return commands.release(engine, selector(data), caller, now, at)


def _update(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> commands.Outcome:
    selected, clear = selector(data), bool(data.get("clear_deps"))
    changes = update_changes(data.get("changes"), data.get("options"), required=not clear)
    dry_run = bool(data.get("dry_run"))
    return commands.update(
        engine, selected, changes, caller, now, clear_deps=clear, dry_run=dry_run
    )


def _redo(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> commands.Outcome:
    job_id = commands.select(engine, selector(data, "id"), caller)[0]
    changes = update_changes(data.get("changes") or None, data.get("options"), required=False)
    return commands.redo(
        engine,
        job_id,
        changes,
        caller,
        now,
        cascade=bool(data.get("cascade")),
        clear_deps=bool(data.get("clear_deps")),
        again=bool(data.get("again")),
    )


JOB_VERBS: dict[str, JobVerb] = {
    "cancel": _cancel,
    "hold": _hold,
    "release": _release,
    "update": _update,
    "redo": _redo,
}


# ------------------------------------------------------------ /v1/admin/{verb}

AdminAnswer = dict[str, Any] | Awaitable[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AdminVerb:
    run: Callable[[Admin, dict[str, Any], Caller], AdminAnswer]
    admins: bool = False
    """On a system daemon, for administrators only (the others check what they change)."""


ADMIN_VERBS: dict[str, AdminVerb] = {
    "show-gpus": AdminVerb(admin.show_gpus),
    "close-sessions": AdminVerb(admin.close_sessions),
    "set-limit": AdminVerb(admin.set_limit),
    "quota": AdminVerb(admin.quota),
    "reserve": AdminVerb(admin.reserve),
    "notifications": AdminVerb(admin.notifications),
    "reload": AdminVerb(admin.reload, admins=True),
    "set-gpus": AdminVerb(admin.set_gpus, admins=True),
    "gpu-process": AdminVerb(admin.gpu_process, admins=True),
    "prune": AdminVerb(admin.prune, admins=True),
}
