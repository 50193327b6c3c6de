"""``/v1/admin/quota``: list, set and remove quotas (``gctl quota``).

Anyone may list; setting and removing are for administrators (on a per-user daemon,
its own user). Entries are stored, so they survive restarts; a change re-plans at once.
"""

from __future__ import annotations

from typing import Any

from gflow import limits
from gflow.engine import Caller, Engine
from gflow.errors import Forbidden, InvalidInput, NotFound, Refused
from gflow.identity import uid_of
from gflow.limits import MAX_COUNT, MAX_PROJECT
from gflow.quotas import DEFAULT_NAME, FIELDS, SCOPES, Limits, Quota, QuotaTable, usage


def handle(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> dict[str, Any]:
    action = data.get("action")
    if action == "list":
        return listing(engine)
    if action not in ("set", "remove"):
        raise InvalidInput("action", limits.brief(action), "list, set or remove")
    if not caller.admin:
        raise Forbidden(f"gctl quota {action} is for administrators of the system gflowd")
    scope, name = _target(data)
    with engine.store.tx():
        if action == "set":
            result = _set(engine, scope, name, data.get("limits"))
        elif not engine.store.delete_quota(scope, name):
            raise NotFound(f"no {Quota(scope, name).label} to remove")
        else:
            result = {"removed": {"scope": scope, "name": name}}
    engine.quotas = QuotaTable(engine.store.quotas())
    engine.schedule(now)
    return result


def _target(data: dict[str, Any]) -> tuple[str, str]:
    scope, name = data.get("scope"), data.get("name")
    if scope not in SCOPES:
        raise InvalidInput(
            "scope", limits.brief(scope), "user, project, default_user or default_project"
        )
    if scope.startswith("default_"):
        return scope, DEFAULT_NAME
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(scope, limits.brief(name), f"a {scope} name")
    name = limits.text(name, scope, 256, line=True).strip()
    if scope == "user":
        if uid_of(name) is None:
            raise Refused(f"no user {name!r} on this machine")
    elif len(name) > MAX_PROJECT:
        raise InvalidInput("project", name, f"1 to {MAX_PROJECT} characters")
    return scope, name


def _set(engine: Engine, scope: str, name: str, given: object) -> dict[str, Any]:
    if not isinstance(given, dict) or not given:
        raise InvalidInput("limits", limits.brief(given), f"at least one of {', '.join(FIELDS)}")
    changes: dict[str, int | None] = {}
    for key, value in given.items():
        if key not in FIELDS:
            raise InvalidInput("limit", str(key), ", ".join(FIELDS))
        changes[key] = None if value is None else limits.whole(value, key, 0, MAX_COUNT)
    old = engine.quotas.entries.get((scope, name))
    merged = (old.limits if old else Limits()).to_json() | changes
    quota = Quota(scope, name, Limits(**merged))
    engine.store.put_quota(quota)
    return {"quota": _row(quota, None), "changed": changes}


def listing(engine: Engine) -> dict[str, Any]:
    """Every entry with its current use; the two fallbacks always (limits only)."""
    used = usage(engine.waiting_jobs(), engine.holding())
    rows = [_row(q, used.get((q.scope, q.name), [0, 0, 0])) for q in engine.quotas]
    have = {(r["scope"], r["name"]) for r in rows}
    for scope in ("default_user", "default_project"):
        if (scope, DEFAULT_NAME) not in have:
            rows.append(_row(Quota(scope, DEFAULT_NAME), None))
    return {"quotas": rows}


def _row(quota: Quota, used: list[int] | None) -> dict[str, Any]:
    """One entry; ``used`` is None for fallbacks (their use is per user or project)."""
    return {
        "scope": quota.scope,
        "name": quota.name,
        "limits": quota.limits.to_json(),
        "used": None
        if used is None or quota.is_default
        else {"jobs": used[0], "gpus": used[1], "queued": used[2]},
    }
