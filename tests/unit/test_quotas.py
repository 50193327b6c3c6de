"""Quotas and GPU reservations as the pure scheduler applies them, plus their parsers,
the submission-time queue check and their storage (schema migration included)."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gflow.errors import InvalidInput, Refused
from gflow.model import Job, Reason, State
from gflow.parse import parse_duration, parse_when
from gflow.quotas import Limits, Quota, QuotaTable, check_queued, usage
from gflow.reservations import Calendar, Reservation, clash, next_changes, pick_cards
from gflow.scheduler import GpuSlot, Plan, Resources, plan, sort_key
from gflow.store import _SCHEMA_V1, SCHEMA_VERSION, Store
from tests.unit.conftest import make_job

NOW = 1_000_000.0
G24 = 24 * 1024
HOUR = 3600


def job(job_id: int, user: str = "alice", gpus: int = 0, **kw: Any) -> Job:
    return make_job(job_id, user=user, submit_time=NOW, gpus=gpus, **kw)


def running(job_id: int, user: str, gpu_ids: tuple[int, ...] = (), **kw: Any) -> Job:
    return job(
        job_id, user, len(gpu_ids), state=State.RUNNING, gpu_ids=gpu_ids, start_time=NOW, **kw
    )


def cards(n: int) -> tuple[GpuSlot, ...]:
    return tuple(GpuSlot(i, G24) for i in range(n))


def quota(scope: str, name: str = "*", **limits: int) -> Quota:
    return Quota(scope, name, Limits(**limits))


def decide(
    candidates: list[Job],
    run: list[Job] | None = None,
    gpus: int = 0,
    *,
    quotas: list[Quota] | None = None,
    windows: list[Reservation] | None = None,
    grace: float = 0.0,
) -> Plan:
    res = Resources(
        cards(gpus),
        quotas=QuotaTable(quotas or []),
        reservations=tuple(windows or []),
        stop_grace=grace,
    )
    return plan(sorted(candidates, key=sort_key), run or [], res, {}, NOW)


def started(p: Plan) -> dict[int, tuple[int, ...]]:
    return {s.job_id: s.gpu_ids for s in p.starts}


# ------------------------------------------------------------ running quotas


def test_max_running_jobs_holds_the_rest_of_that_users_jobs_with_reason_quota() -> None:
    p = decide([job(1), job(2), job(3)], quotas=[quota("user", "alice", max_running_jobs=2)])
    assert started(p) == {1: (), 2: ()}
    assert p.reasons == {3: Reason.QUOTA}


def test_running_jobs_count_against_the_limit() -> None:
    p = decide([job(2)], [running(1, "alice")], quotas=[quota("user", "alice", max_running_jobs=1)])
    assert started(p) == {}
    assert p.reasons == {2: Reason.QUOTA}


def test_max_running_gpus_counts_the_gpus_a_job_would_add() -> None:
    q = [quota("user", "alice", max_running_gpus=2)]
    run = [running(1, "alice", (0,))]
    p = decide([job(2, gpus=2), job(3, gpus=1), job(4, gpus=1)], run, gpus=4, quotas=q)
    assert started(p) == {3: (1,)}
    assert p.reasons == {2: Reason.QUOTA, 4: Reason.QUOTA}
    assert started(decide([job(5)], run, gpus=4, quotas=q)) == {5: ()}  # CPU jobs: 0 GPUs


def test_a_held_back_job_does_not_hold_back_other_users() -> None:
    # alice's high-priority 2-GPU job waits on her quota: it must not become the head job
    # whose cards bob's untimed job may not take.
    q = [quota("user", "alice", max_running_gpus=1)]
    p = decide([job(1, "alice", 2, priority=99), job(2, "bob", 2)], gpus=2, quotas=q)
    assert started(p) == {2: (0, 1)}
    assert p.reasons == {1: Reason.QUOTA}


def test_the_default_user_entry_limits_each_user_separately() -> None:
    q = [quota("default_user", max_running_jobs=1)]
    p = decide([job(1, "alice"), job(2, "alice"), job(3, "bob"), job(4, "bob")], quotas=q)
    assert started(p) == {1: (), 3: ()}
    assert p.reasons == {2: Reason.QUOTA, 4: Reason.QUOTA}


def test_a_users_own_entry_replaces_the_default_entirely() -> None:
    q = [
        quota("default_user", max_running_jobs=1),
        quota("user", "alice", max_running_gpus=8),  # says nothing of jobs: unlimited
    ]
    p = decide([job(1, "alice"), job(2, "alice"), job(3, "bob"), job(4, "bob")], quotas=q)
    assert started(p) == {1: (), 2: (), 3: ()}
    assert p.reasons == {4: Reason.QUOTA}


def test_project_quotas_cover_jobs_of_that_project_only() -> None:
    q = [quota("project", "nlp", max_running_jobs=1)]
    p = decide(
        [job(1, project="nlp"), job(2, "bob", project="nlp"), job(3, project="cv"), job(4)],
        quotas=q,
    )
    assert started(p) == {1: (), 3: (), 4: ()}
    assert p.reasons == {2: Reason.QUOTA}


def test_the_default_project_entry_applies_per_project_and_not_without_one() -> None:
    q = [quota("default_project", max_running_gpus=1)]
    jobs = [job(1, gpus=1, project="a"), job(2, gpus=1, project="a"), job(3, gpus=1)]
    jobs += [job(4, gpus=1, project="b")]
    p = decide(jobs, gpus=4, quotas=q)
    assert started(p) == {1: (0,), 3: (1,), 4: (2,)}
    assert p.reasons == {2: Reason.QUOTA}


def test_user_and_project_limits_both_apply() -> None:
    q = [quota("user", "alice", max_running_jobs=5), quota("project", "p", max_running_jobs=1)]
    p = decide([job(1, project="p"), job(2, project="p"), job(3)], quotas=q)
    assert started(p) == {1: (), 3: ()}
    assert p.reasons == {2: Reason.QUOTA}


def test_a_zero_limit_stops_a_user_and_an_empty_table_changes_nothing() -> None:
    p = decide([job(1), job(2, "bob")], quotas=[quota("user", "alice", max_running_jobs=0)])
    assert started(p) == {2: ()}
    assert started(decide([job(1), job(2)])) == {1: (), 2: ()}


# ------------------------------------------------------------ queued quotas (submission)


def test_check_queued_counts_queued_and_held_jobs_and_refuses_the_whole_submission() -> None:
    table = QuotaTable([quota("user", "alice", max_queued_jobs=3)])
    waiting = [job(1), job(2, state=State.HOLD), job(3, "bob")]
    check_queued(table, waiting, "alice", None, 1)  # 2 + 1 <= 3
    with pytest.raises(Refused, match=r"user alice .*max_queued_jobs = 3.*2 already.*adds 2"):
        check_queued(table, waiting, "alice", None, 2)
    check_queued(table, waiting, "bob", None, 100)  # no limit for bob


def test_check_queued_names_the_default_and_project_entries() -> None:
    table = QuotaTable([quota("default_user", max_queued_jobs=1)])
    with pytest.raises(Refused, match=r"user carol \(by the default_user quota\)"):
        check_queued(table, [job(1, "carol")], "carol", None, 1)
    table = QuotaTable([quota("project", "nlp", max_queued_jobs=0)])
    with pytest.raises(Refused, match="project nlp"):
        check_queued(table, [], "alice", "nlp", 1)
    check_queued(table, [], "alice", None, 1)


def test_usage_counts_running_jobs_gpus_and_queued_per_user_and_project() -> None:
    holding = [running(1, "alice", (0, 1), project="p"), running(2, "bob", (2,))]
    waiting = [job(3, project="p"), job(4, state=State.HOLD)]
    used = usage(waiting, holding)
    assert used[("user", "alice")] == [1, 2, 2]
    assert used[("project", "p")] == [1, 2, 1]
    assert used[("user", "bob")] == [1, 1, 0]


# ------------------------------------------------------------ reservations


def window(
    rid: int, user: str, gpus: tuple[int, ...], start: float, end: float, **kw: Any
) -> Reservation:
    return Reservation(rid, user, gpus, start, end, **kw)


def test_during_the_window_the_cards_go_only_to_the_reserving_user() -> None:
    w = [window(1, "bob", (0,), NOW - 10, NOW + HOUR)]
    p = decide([job(1, "alice", 1), job(2, "alice", 1)], gpus=2, windows=w)
    assert started(p) == {1: (1,)}
    assert p.reasons == {2: Reason.RESERVED}
    p = decide([job(3, "bob", 1)], [running(1, "alice", (1,))], gpus=2, windows=w)
    assert started(p) == {3: (0,)}


def test_a_time_limit_does_not_open_a_card_during_its_window() -> None:
    w = [window(1, "bob", (0,), NOW - 10, NOW + HOUR)]
    p = decide([job(1, "alice", 1, time_limit=60)], gpus=1, windows=w)
    assert p.reasons == {1: Reason.RESERVED}


def test_the_reserving_user_prefers_the_reserved_cards_during_the_window() -> None:
    w = [window(1, "bob", (2, 3), NOW - 10, NOW + HOUR)]
    p = decide([job(1, "bob", 2)], gpus=4, windows=w)
    assert started(p) == {1: (2, 3)}


def test_the_reserving_user_may_use_the_cards_before_the_window() -> None:
    w = [window(1, "bob", (0,), NOW + 60, NOW + HOUR)]
    p = decide([job(1, "bob", 1)], gpus=1, windows=w)
    assert started(p) == {1: (0,)}


def test_before_the_window_only_jobs_that_surely_end_in_time_may_use_the_card() -> None:
    w = [window(1, "bob", (0,), NOW + HOUR, NOW + 2 * HOUR)]
    untimed = decide([job(1, "alice", 1)], gpus=1, windows=w)
    assert untimed.reasons == {1: Reason.RESERVED}
    fits = decide([job(1, "alice", 1, time_limit=HOUR)], gpus=1, windows=w)
    assert started(fits) == {1: (0,)}
    too_long = decide([job(1, "alice", 1, time_limit=HOUR + 1)], gpus=1, windows=w)
    assert too_long.reasons == {1: Reason.RESERVED}
    # the time a stop may take (SIGINT, SIGTERM, SIGKILL) counts too
    tight = decide([job(1, "alice", 1, time_limit=HOUR)], gpus=1, windows=w, grace=20)
    assert tight.reasons == {1: Reason.RESERVED}


def test_other_users_take_cards_reserved_later_only_when_nothing_else_is_free() -> None:
    w = [window(1, "bob", (0,), NOW + HOUR, NOW + 2 * HOUR)]
    p = decide(
        [job(1, "alice", 1, time_limit=60), job(2, "alice", 1, time_limit=60)], gpus=2, windows=w
    )
    assert started(p) == {1: (1,), 2: (0,)}


def test_ended_and_cancelled_reservations_change_nothing() -> None:
    w = [
        window(1, "bob", (0,), NOW - HOUR, NOW),
        window(2, "bob", (1,), NOW - 10, NOW + HOUR, cancelled=NOW - 5),
    ]
    p = decide([job(1, "alice", 2)], gpus=2, windows=w)
    assert started(p) == {1: (0, 1)}


def test_busy_cards_are_waiting_for_a_gpu_not_reserved() -> None:
    w = [window(1, "bob", (0,), NOW - 10, NOW + HOUR)]
    p = decide([job(2, "alice", 1)], [running(1, "carol", (1,))], gpus=2, windows=w)
    assert p.reasons == {2: Reason.RESERVED}  # card 0 is free but reserved
    p = decide([job(3, "alice", 1)], [running(1, "carol", (0,)), running(2, "carol", (1,))], gpus=2)
    assert p.reasons == {3: Reason.GPU}


def test_a_head_kept_off_by_a_window_is_protected_until_the_window_ends() -> None:
    # alice's 2-GPU job needs card 0, reserved for bob for an hour: it waits (Reserved)
    # and protects card 1: a job that would hold card 1 past the window's end must wait,
    # one that ends before it may go.
    w = [window(1, "bob", (0,), NOW - 10, NOW + HOUR)]
    head = job(1, "alice", 2, priority=50)
    p = decide([head, job(2, "carol", 1)], gpus=2, windows=w)
    assert p.reasons == {1: Reason.RESERVED, 2: Reason.PRIORITY}
    p = decide([head, job(3, "carol", 1, time_limit=600)], gpus=2, windows=w)
    assert started(p) == {3: (1,)}


def test_calendar_earliest_steps_over_back_to_back_windows() -> None:
    w = [
        window(1, "bob", (0,), NOW + 100, NOW + 200),
        window(2, "carol", (0,), NOW + 200, NOW + 300),
        window(3, "alice", (0,), NOW + 300, NOW + 400),
    ]
    cal = Calendar(w, NOW)
    assert cal.earliest(job(1, "alice", 1), 0, NOW) == NOW + 300
    assert cal.earliest(job(1, "alice", 1, time_limit=100), 0, NOW) == NOW
    assert cal.earliest(job(1, "bob", 1), 0, NOW) == NOW + 400  # carol, then alice
    assert cal.earliest(job(1, "alice", 1), 1, NOW) == NOW
    assert cal.holder(0) is None
    assert Calendar(w, NOW + 150).holder(0) == w[0]


def test_reservation_states_overlap_and_card_picking() -> None:
    r = window(1, "bob", (0, 2), NOW + 10, NOW + 20)
    assert [r.state(t) for t in (NOW, NOW + 10, NOW + 20)] == ["upcoming", "active", "ended"]
    assert window(2, "bob", (0,), NOW, NOW + 5, cancelled=NOW).state(NOW) == "cancelled"
    assert r.overlaps(0, NOW + 19, NOW + 30) and not r.overlaps(0, NOW + 20, NOW + 30)
    assert not r.overlaps(1, NOW, NOW + 30)
    assert pick_cards([0, 1, 2, 3], 2, NOW, NOW + 15, [r]) == (1, 3)
    assert pick_cards([0, 1, 2, 3], 2, NOW + 20, NOW + 30, [r]) == (0, 1)
    assert pick_cards([0, 1, 2], 2, NOW, NOW + 15, [r]) is None
    assert clash([2], NOW, NOW + 11, [r]) == r
    assert clash([1], NOW, NOW + 11, [r]) is None
    assert next_changes([r], NOW + 15) == [NOW + 20]


# ------------------------------------------------------------ parsers


def test_parse_duration_forms() -> None:
    assert parse_duration("1h") == HOUR
    assert parse_duration("30m") == 1800
    assert parse_duration("2h30m") == 9000
    assert parse_duration("90") == 5400
    assert parse_duration("45s") == 45
    assert parse_duration("1:00:00") == HOUR
    for bad in ("0", "0m", "", "h", "1h30", "-5", "1x"):
        with pytest.raises(InvalidInput, match="duration"):
            parse_duration(bad)


def test_parse_when_takes_begin_forms_a_space_and_iso_with_a_zone() -> None:
    now = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
    assert parse_when("2026-05-01 14:00", now) == now.timestamp() + 2 * HOUR
    assert parse_when("2026-05-01T14:00:00Z", now) == now.timestamp() + 2 * HOUR
    assert parse_when("now+1h", now) == now.timestamp() + HOUR
    assert parse_when("13:00", now) == now.timestamp() + HOUR
    with pytest.raises(InvalidInput, match="start time"):
        parse_when("soon", now)


# ------------------------------------------------------------ storage


def test_a_schema_1_database_gains_the_quota_and_reservation_tables(tmp_path: Path) -> None:
    path = tmp_path / "gflow.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1 + "INSERT INTO meta VALUES ('schema_version', '1');")
    db.close()
    store = Store(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        with store.tx():
            store.put_quota(quota("user", "alice", max_running_jobs=2))
            store.put_quota(quota("default_user", max_queued_jobs=9))
            rid = store.insert_reservation("bob", (0, 2), NOW, NOW + 60, NOW - 1)
        assert sorted(store.quotas(), key=lambda q: q.scope) == [
            quota("default_user", max_queued_jobs=9),
            quota("user", "alice", max_running_jobs=2),
        ]
        made = Reservation(rid, "bob", (0, 2), NOW, NOW + 60, NOW - 1)
        assert store.reservation(rid) == made
        assert store.reservations(live_after=NOW + 60) == []
        with store.tx():
            store.cancel_reservation(rid, NOW + 5)
            assert store.delete_quota("user", "alice")
            assert not store.delete_quota("user", "alice")
        assert store.reservations(live_after=NOW) == []
        assert store.reservations()[0].cancelled == NOW + 5
    finally:
        store.close()
