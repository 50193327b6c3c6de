"""``/v1/admin/reserve``: create, list, get and cancel GPU reservations (``gctl reserve``).

Anyone may list and get; creating and cancelling are for administrators (on a
per-user daemon, its own user). A request that is refused changes nothing; one that
is accepted is stored before the answer, arms timers for the window's start and end,
and re-plans at once.
"""

from __future__ import annotations

import time
from typing import Any

from gflow import limits
from gflow.engine import Caller, Engine
from gflow.errors import Conflict, Forbidden, InvalidInput, NotFound, Refused
from gflow.identity import uid_of
from gflow.limits import MAX_GPU_INDEX, MAX_GPUS, MAX_ID
from gflow.reservations import Reservation, clash, pick_cards

PAST_GRACE = 60.0  # a start this recent still counts as "now" (the client parsed it)
MAX_WINDOW = 366 * 86400.0


def handle(engine: Engine, data: dict[str, Any], caller: Caller, now: float) -> dict[str, Any]:
    action = data.get("action")
    if action == "list":
        found = engine.store.reservations(live_after=None if data.get("all") else now)
        return {"reservations": [r.to_json(now) for r in found], "now": now}
    if action not in ("get", "create", "cancel"):
        raise InvalidInput("action", limits.brief(action), "create, list, get or cancel")
    if action == "get":
        return _require(engine, data.get("id")).to_json(now)
    if not caller.admin:
        raise Forbidden(f"gctl reserve {action} is for administrators of the system gflowd")
    made = create(engine, data, now) if action == "create" else cancel(engine, data.get("id"), now)
    engine.schedule(now)
    return made.to_json(now)


def _require(engine: Engine, rid: object) -> Reservation:
    limits.whole(rid, "reservation id", 1, MAX_ID)
    assert isinstance(rid, int)
    found = engine.store.reservation(rid)
    if found is None:
        raise NotFound(f"reservation {rid} not found")
    return found


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def create(engine: Engine, data: dict[str, Any], now: float) -> Reservation:
    user = data.get("user")
    if not isinstance(user, str) or not user.strip():
        raise InvalidInput("user", limits.brief(user), "a user name")
    limits.text(user, "user", 256, line=True)
    if uid_of(user) is None:
        raise Refused(f"no user {user!r} on this machine")
    start = limits.instant(data.get("start"), "start")
    duration = limits.number(data.get("duration"), "duration", 1, MAX_WINDOW)
    end = start + duration
    if start < now - PAST_GRACE:
        raise Refused(f"the window would start in the past ({_when(start)}); start now or later")
    gpus = _cards(engine, data, start, end, now)
    with engine.store.tx():
        rid = engine.store.insert_reservation(user, gpus, start, end, now)
    made = Reservation(rid, user, gpus, start, end, now)
    engine.reservations = (*engine.reservations, made)
    engine.arm_reservations(now, made)
    return made


def _cards(
    engine: Engine, data: dict[str, Any], start: float, end: float, now: float
) -> tuple[int, ...]:
    """The cards to reserve: those named, or ``gpus`` free ones picked lowest index first."""
    count, named = data.get("gpus"), data.get("gpu_ids")
    if (count is None) == (named is None):
        raise InvalidInput("gpus", f"{count}/{named}", "either a GPU count or GPU indices")
    slots = engine.gpu_slots
    if not slots:
        raise Refused("this machine has no GPUs gflow can use")
    known = sorted(s.index for s in slots)
    existing = engine.store.reservations(live_after=now)
    if named is not None:
        if not isinstance(named, list) or not named or len(named) > MAX_GPUS:
            raise InvalidInput("gpu_ids", limits.brief(named), "a list of GPU indices")
        for g in named:
            limits.whole(g, "gpu_ids", 0, MAX_GPU_INDEX)
        bad = sorted(set(named) - set(known))
        if bad:
            have = ",".join(map(str, known))
            raise Refused(f"no GPU {','.join(map(str, bad))} on this machine (GPUs: {have})")
        gpus = tuple(sorted(set(named)))
        other = clash(gpus, start, end, existing)
        if other is not None:
            both = sorted(set(gpus) & set(other.gpu_ids))
            raise Conflict(
                f"GPU {','.join(map(str, both))} is already reserved for {other.user} from "
                f"{_when(other.start)} to {_when(other.end)} (reservation {other.id})"
            )
        return gpus
    limits.whole(count, "gpus", 1, MAX_GPUS)
    assert isinstance(count, int)
    usable = [s.index for s in slots if s.allowed]
    picked = pick_cards(usable, count, start, end, existing)
    if picked is None:
        spare = sum(1 for g in usable if clash([g], start, end, existing) is None)
        raise Refused(
            f"requested {count} GPUs but only {spare} of the {len(usable)} usable GPUs are "
            "free of reservations in that window"
        )
    return picked


def cancel(engine: Engine, rid: object, now: float) -> Reservation:
    found = _require(engine, rid)
    state = found.state(now)
    if state in ("cancelled", "ended"):
        raise Conflict(f"reservation {found.id} is already {state}")
    with engine.store.tx():
        engine.store.cancel_reservation(found.id, now)
    engine.reservations = tuple(r for r in engine.reservations if r.id != found.id)
    return Reservation(
        found.id, found.user, found.gpu_ids, found.start, found.end, found.created, now
    )
