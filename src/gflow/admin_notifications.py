"""``/v1/admin/notifications``: the outbox as ``gctl notifications`` shows it, and retries.

A user sees and retries the notifications of their own jobs; an administrator (on a
per-user daemon, its user) sees all of them. A URL is shown without its path, which
may hold a token (a chat webhook's secret); the configured webhooks' URLs only to
administrators.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from gflow import limits, notices
from gflow.engine import Caller
from gflow.errors import InvalidInput, NotFound
from gflow.limits import MAX_EXPANSION, MAX_ID

if TYPE_CHECKING:
    from gflow.host import Admin

STATES = ("pending", "failed", "delivered")
MAX_LISTED = 10_000


def handle(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    action = data.get("action", "list")
    if action == "list":
        return listing(host, data, caller)
    if action == "retry":
        return retry(host, data, caller)
    raise InvalidInput("action", limits.brief(action), "list or retry")


def listing(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    states = data.get("states", ["pending", "failed"])
    if not isinstance(states, list) or not states or not set(states) <= set(STATES):
        raise InvalidInput("states", limits.brief(states), f"some of {', '.join(STATES)}")
    limit = limits.whole(data.get("limit", 100), "limit", 1, MAX_LISTED)
    uid = None if caller.admin else caller.uid
    rows = host.engine.store.list_notifications(uid, states, limit)
    return {
        "notifications": [_row(r, caller) for r in rows],
        "counts": host.engine.store.notification_counts() if caller.admin else None,
    }


def retry(host: Admin, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """Try failed notifications again now, with a fresh ``retry_for`` (``ids``: these,
    also ones still waiting for their next try; else every failed one)."""
    ids = data.get("ids")
    if ids is not None and not (
        isinstance(ids, list)
        and 0 < len(ids) <= MAX_EXPANSION
        and all(type(i) is int and 0 < i <= MAX_ID for i in ids)
    ):
        raise InvalidInput("ids", limits.brief(ids), "a list of notification ids")
    now = time.time()
    uid = None if caller.admin else caller.uid
    rows = host.engine.store.retry_notifications(ids, uid, now, now + host.notify_conf.retry_for)
    if ids is not None and not rows:
        raise NotFound("no such notification of yours that is failed or waiting")
    host.deliveries.add(rows)
    return {"retried": [r[0] for r in rows]}


def _row(row: dict[str, Any], caller: Caller) -> dict[str, Any]:
    body = json.loads(row["body"])
    return {
        "id": row["id"],
        "event": row["event"],
        "job": row["job_id"],
        "channel": row["channel"],
        "target": _target(row, caller),
        "state": row["state"],
        "attempts": row["attempts"],
        "created": row["created"],
        "next_try": row["next_try"] if row["state"] == "pending" else None,
        "deadline": row["deadline"],
        "last_error": row["last_error"],
        "text": body.get("text"),
    }


def _target(row: dict[str, Any], caller: Caller) -> str:
    if row["channel"] == notices.MAIL:
        return str(row["target"])
    if row["channel"] == notices.WEBHOOK and not caller.admin:
        return "(a configured webhook)"
    return notices.shown_url(row["target"])
