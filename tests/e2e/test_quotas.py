"""Quotas and GPU reservations end to end: ``gctl quota`` and ``gctl reserve`` against a
real daemon on fake GPUs, the jobs they hold back, and their one-line errors."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable

from tests.helpers import Gflow

MakeGflow = Callable[..., Gflow]
ME = pwd.getpwuid(os.getuid()).pw_name
OTHER = next(p.pw_name for p in pwd.getpwall() if p.pw_uid != os.getuid())


def reason(g: Gflow, job: int) -> str | None:
    rows = [j for j in g.queue_json("-a") if j["id"] == job]
    return rows[0]["reason"] if rows else None


def gpu_job(g: Gflow, gate: str, *flags: str) -> int:
    """A job that prints its CUDA_VISIBLE_DEVICES, then waits for ``gate``."""
    return g.submit(*flags, "sh", "-c", f'echo "$CUDA_VISIBLE_DEVICES"; {g.gate(gate)}')


def card(g: Gflow, job: int) -> str:
    g.until(lambda: (g.home / "logs" / f"{job}.log").exists() and g.log(job), what=f"{job}'s log")
    return g.log(job).splitlines()[0]


def gctl(g: Gflow, words: str) -> str:
    """``gctl`` with these (space-separated) arguments; its standard output."""
    return g.run("gctl", *words.split()).stdout


def refused(g: Gflow, *argv: str, code: int = 1) -> str:
    """Run a command that must fail with ``code`` and one line on stderr; return the line."""
    done = g.run(*argv, check=False)
    assert done.returncode == code, (argv, done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, (argv, done.stderr)
    return lines[0]


# ------------------------------------------------------------ quotas


def test_quota_set_list_remove_round_trip_survives_a_restart(gflow_process: Gflow) -> None:
    g = gflow_process
    out = g.run("gctl", "quota", "set", "--user", ME, "--max-running-jobs", "2").stdout
    assert out.splitlines() == [f"Updated user quota '{ME}'", "  max_running_jobs = 2"]
    g.run("gctl", "quota", "set", "--user", ME, "--max-queued-jobs", "5")  # merges
    g.run("gctl", "quota", "set", "--default-project", "--max-running-gpus", "4")
    g.submit("--hold", "true")
    g.stop()
    g.start()
    table = g.run("gctl", "quota", "list").stdout.splitlines()
    assert table[0].split() == ["SCOPE", "NAME", "JOBS", "GPUS", "QUEUED"]
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in table[1:] if line.strip()}
    assert rows[("user", ME)] == ["0/2", "0/-", "1/5"]
    assert rows[("default_user", "*")] == ["-", "-", "-"]
    assert rows[("default_project", "*")] == ["-", "4", "-"]
    assert table[-1].startswith("Cells are used/limit")
    out = g.run("gctl", "quota", "remove", "--user", ME).stdout
    assert out.strip() == f"Removed user quota override '{ME}'"
    assert f"user             {ME}" not in g.run("gctl", "quota", "list").stdout
    assert "no user quota" in refused(g, "gctl", "quota", "remove", "--user", ME)


def test_max_queued_jobs_refuses_a_whole_submission(gflow_process: Gflow) -> None:
    g = gflow_process
    g.run("gctl", "quota", "set", "--user", ME, "--max-queued-jobs", "2")
    g.submit("--hold", "true")
    line = refused(g, "gbatch", "--hold", "--array", "1-2", "true")
    assert "max_queued_jobs = 2" in line and f"user {ME}" in line
    assert len(g.queue_json("-a")) == 1  # nothing of the array was created
    g.submit("--begin", "now+1h", "true")  # Queued counts as well as Hold
    assert "max_queued_jobs" in refused(g, "gbatch", "true")


def test_max_running_jobs_holds_jobs_with_reason_quota_until_one_ends(
    gflow_process: Gflow,
) -> None:
    g = gflow_process
    g.run("gctl", "quota", "set", "--user", ME, "--max-running-jobs", "1")
    a = g.submit("sh", "-c", g.gate("a"))
    b = g.submit("sh", "-c", g.gate("b"))
    g.until_state(a, "Running")
    assert reason(g, b) == "Quota"
    assert "(Quota)" in g.run("gqueue").stdout
    g.open_gate("a")
    g.until_state(b, "Running")
    g.open_gate("b")
    assert g.wait(b) == 0


def test_a_project_over_its_gpu_quota_holds_back_nobody_else(two_gpus: Gflow) -> None:
    g = two_gpus
    g.run("gctl", "quota", "set", "--project", "nlp", "--max-running-gpus", "1")
    a = gpu_job(g, "a", "-g", "1", "-P", "nlp", "-p", "50")
    b = gpu_job(g, "b", "-g", "1", "-P", "nlp", "-p", "50")
    c = gpu_job(g, "c", "-g", "1", "-P", "cv")
    g.until_state(c, "Running")
    assert g.state(a) == "Running"
    assert reason(g, b) == "Quota"
    g.open_gate("a")
    g.until_state(b, "Running")
    g.open_gate("b")
    g.open_gate("c")
    assert g.wait(b, c) == 0


# ------------------------------------------------------------ reservations

# A short window must outlast the steps a test takes inside it, which a loaded machine
# can make slow (a daemon restart alone may take seconds): a test that finds its window
# already over tries again with one twice as long.
WINDOWS = (4, 8, 16, 32, 64)


def reserve_now(g: Gflow, seconds: int, cards: str) -> tuple[int, str]:
    """A window open from now for OTHER on ``cards`` (gctl's flag): its id, gctl's output."""
    out = gctl(g, f"reserve create --user {OTHER} {cards} --start now --duration {seconds}s")
    return int(out.split()[1]), out


def window_end(g: Gflow, rid: int) -> float:
    with g.db() as db:
        return float(db.execute("SELECT end FROM reservations WHERE id=?", (rid,)).fetchone()[0])


def still_open(g: Gflow, rid: int) -> bool:
    """Is reservation ``rid``'s window still open now (so all seen before happened in it)?"""
    return time.time() < window_end(g, rid)


def no_gpu_poll(make_gflow: MakeGflow, gpus: str) -> Gflow:
    """A daemon whose GPU poll is an hour away: only a window's own timer re-plans at its end."""
    g = make_gflow("process", GFLOW_FAKE_GPUS=gpus, GFLOW_DAEMON__GPU_POLL_INTERVAL="3600")
    g.start()
    return g


def test_a_reservation_keeps_other_jobs_off_its_card_until_the_window_ends(
    make_gflow: MakeGflow,
) -> None:
    g = no_gpu_poll(make_gflow, "2x24G")
    for seconds in WINDOWS:
        rid, out = reserve_now(g, seconds, "--gpu-spec 0")
        info = g.run("ginfo").stdout
        a = gpu_job(g, f"a{rid}", "-g", "1")
        b = gpu_job(g, f"b{rid}", "-g", "1")
        seen = card(g, a), reason(g, b), g.run("gctl", "reserve", "list").stdout.splitlines()
        if still_open(g, rid):
            break
        g.open_gate(f"a{rid}")  # the window was over before all was seen: a longer one
        g.open_gate(f"b{rid}")
        assert g.wait(a, b) == 0
    else:
        raise AssertionError(f"every window ended before its checks were done: {WINDOWS}")
    assert out.startswith(f"Reservation {rid} created: GPU 0 for {OTHER}") and "active" in out
    assert f"reserved for {OTHER} until" in info
    assert seen[:2] == ("1", "Reserved")
    listed = seen[2]
    assert listed[1].split()[:3] == [str(rid), OTHER, "0"] and listed[1].split()[-1] == "active"
    assert card(g, b) == "0"  # the window's end re-planned (no GPU poll comes)
    g.until_state(b, "Running")  # its output can come before its start is recorded
    assert g.job(b)["start_time"] >= window_end(g, rid)
    assert g.run("gctl", "reserve", "list").stdout.strip() == "No reservations found."
    row = next(r for r in gctl(g, "reserve list --all").splitlines() if r.split()[0] == str(rid))
    assert row.endswith("ended")
    assert "State:       ended" in g.run("gctl", "reserve", "get", str(rid)).stdout
    g.open_gate(f"a{rid}")
    g.open_gate(f"b{rid}")
    assert g.wait(a, b) == 0


def test_before_a_window_only_jobs_that_end_in_time_use_the_card(
    make_gflow: MakeGflow,
) -> None:
    g = make_gflow("process", GFLOW_FAKE_GPUS="1")
    g.start()
    gctl(g, f"reserve create --user {OTHER} --gpus 1 --start now+1h --duration 1h")
    untimed = gpu_job(g, "u", "-g", "1")
    assert reason(g, untimed) == "Reserved"
    short = gpu_job(g, "s", "-g", "1", "--time", "10")  # ends long before the window
    assert card(g, short) == "0"
    g.open_gate("s")
    assert g.wait(short) == 0
    assert reason(g, untimed) == "Reserved"
    out = g.run("gctl", "reserve", "cancel", "1").stdout
    assert out.startswith("Cancelled reservation 1")
    g.until_state(untimed, "Running")
    g.open_gate("u")
    assert g.wait(untimed) == 0


def test_a_reservation_survives_a_restart_and_its_end_still_releases_the_card(
    make_gflow: MakeGflow,
) -> None:
    g = no_gpu_poll(make_gflow, "1")
    for seconds in WINDOWS:
        rid, _ = reserve_now(g, seconds, "--gpus 1")
        g.stop()
        g.start()
        job = g.submit("-g", "1", "true")
        seen = gctl(g, f"reserve get {rid}"), reason(g, job)
        if still_open(g, rid):
            break
        assert g.wait(job) == 0  # the restart outlasted the window: the card is free at once
    else:
        raise AssertionError(f"every window ended before the daemon was back: {WINDOWS}")
    assert "State:       active" in seen[0]
    assert seen[1] == "Reserved"
    assert g.wait(job, timeout=seconds + 30) == 0  # only the re-armed end can release it
    assert g.job(job)["start_time"] >= window_end(g, rid)


def test_a_window_that_ends_while_the_daemon_is_down_holds_nothing_back(
    make_gflow: MakeGflow,
) -> None:
    g = no_gpu_poll(make_gflow, "1")
    rid, _ = reserve_now(g, 1, "--gpus 1")
    g.stop()
    g.until(lambda: not still_open(g, rid), what="the window to end while gflowd is down")
    g.start()
    assert gctl(g, "reserve list").strip() == "No reservations found."
    assert g.wait(g.submit("-g", "1", "true")) == 0


def test_bad_quota_and_reservation_requests_are_one_line_errors(two_gpus: Gflow) -> None:
    g = two_gpus
    for usage in (
        f"quota set --user {ME}",
        "quota set --max-running-jobs 1",
        f"quota set --user {ME} --max-running-jobs -1",
        f"quota set --user {ME} --project p --max-queued-jobs 1",
        f"reserve create --user {ME} --gpus 1 --start now --duration 0",
        f"reserve create --user {ME} --gpus 1 --start soon --duration 1h",
        f"reserve create --user {ME} --start now --duration 1h",
        "reserve cancel",
    ):
        refused(g, "gctl", *usage.split(), code=2)
    later = "--start now+1h --duration 1h"
    for request, message in (
        ("quota set --user no-such-user-x --max-running-jobs 1", "no user 'no-such-user-x'"),
        ("quota remove --project nope", "no project quota 'nope'"),
        (f"reserve create --user {ME} --gpu-spec 7 {later}", "no GPU 7 on this machine"),
        (f"reserve create --user no-such-user-x --gpus 1 {later}", "no user"),
        (f"reserve create --user {ME} --gpus 1 --start 2020-01-01 --duration 1h", "past"),
        (f"reserve create --user {ME} --gpus 3 {later}", "requested 3 GPUs"),
        ("reserve get 99", "reservation 99 not found"),
    ):
        assert message in refused(g, "gctl", *request.split()), request
    gctl(g, f"reserve create --user {ME} --gpu-spec 0,1 {later}")
    clash = refused(g, "gctl", *f"reserve create --user {OTHER} --gpu-spec 1 {later}".split())
    assert f"GPU 1 is already reserved for {ME}" in clash
    g.run("gctl", "reserve", "cancel", "1")
    assert "already cancelled" in refused(g, "gctl", "reserve", "cancel", "1")
