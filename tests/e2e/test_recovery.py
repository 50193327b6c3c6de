"""Nothing is lost when gflowd dies: kill -9, restart, and the jobs are where they were."""

from __future__ import annotations

import json
import sqlite3

from tests.helpers import Gflow


def test_kill9_while_a_job_runs_and_another_is_held(gflow: Gflow) -> None:
    running = gflow.submit("-n", "long", "sh", "-c", gflow.gate("go", 7))
    held = gflow.submit("--hold", "-n", "held", "true")
    queued = gflow.submit("--depends-on", str(running), "true")
    gflow.until_state(running, "Running")
    pid = gflow.job(running)["pid"]
    gflow.kill9()

    gflow.start()
    assert gflow.state(running) == "Running"
    assert gflow.job(running)["pid"] == pid
    assert gflow.state(held) == "Hold"
    assert gflow.state(queued) == "Queued"
    gflow.open_gate("go")
    assert gflow.wait(running) == 7
    assert gflow.job(running)["exit_code"] == 7
    assert gflow.state(queued) == "Cancelled"
    assert gflow.job(queued)["reason"] == f"DependencyFailed:{running}"
    gflow.run("gjob", "release", str(held))
    assert gflow.wait(held) == 0


def test_job_that_ends_while_the_daemon_is_down_is_settled(gflow: Gflow) -> None:
    job = gflow.submit(gflow.gate("end"))
    child = gflow.submit("--depends-on", str(job), "echo", "after")
    gflow.until_state(job, "Running")
    gflow.kill9()
    gflow.open_gate("end")
    result = gflow.home / "run" / str(job) / "result"
    gflow.until(result.exists, what="the wrapper to write its result")

    gflow.start()
    assert gflow.wait(job) == 0
    row = gflow.job(job)
    assert (row["state"], row["exit_code"]) == ("Finished", 0)
    assert abs(row["end_time"] - result.stat().st_mtime) < 0.01
    assert gflow.wait(child) == 0
    assert gflow.log(child) == "after\n"


def test_acknowledged_submissions_survive_kill9(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = [g.submit("--hold", "true") for _ in range(20)]
    g.kill9()
    g.start()
    rows = g.db().execute("SELECT id, state FROM jobs ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ids
    assert {r[1] for r in rows} == {"Hold"}
    new = g.submit("true")
    assert new == ids[-1] + 1


def test_timeout_still_fires_after_a_restart(gflow: Gflow) -> None:
    job = gflow.submit("--time", "0:02", "sleep", "300")
    gflow.until_state(job, "Running")
    gflow.kill9()
    gflow.start()
    assert gflow.wait(job) == 124
    assert gflow.state(job) == "Timeout"


def test_second_daemon_is_refused(gflow: Gflow) -> None:
    pid = gflow.daemon_pid()
    done = gflow.run("gflowd", "up")  # exit 0: what was asked for is true
    assert done.stdout == f"gflowd is already running (pid {pid}).\n"
    assert gflow.daemon_pid() == pid
    second = gflow.run("gflowd", "up", "--foreground", check=False)  # the lock refuses it
    assert second.returncode == 1
    assert "already running" in second.stderr


def test_clients_say_when_the_daemon_is_down(gflow: Gflow) -> None:
    gflow.stop()
    done = gflow.run("gqueue", check=False)
    assert done.returncode == 3
    assert "gflowd up" in done.stderr
    assert "Traceback" not in done.stderr
    status = gflow.run("gflowd", "status", check=False)
    assert status.returncode == 3
    assert "Not running" in status.stdout


def test_stop_leaves_jobs_running(gflow: Gflow) -> None:
    job = gflow.submit(gflow.gate("done"))
    gflow.until_state(job, "Running")
    gflow.stop()
    gflow.open_gate("done")
    gflow.start()
    assert gflow.wait(job) == 0
    assert gflow.state(job) == "Finished"


def _plant(g: Gflow, sql: str, *args: object) -> None:
    """Write the database behind gflow's back, as a damaged or hand-edited file would be."""
    db = sqlite3.connect(g.home / "gflow.db")
    try:
        with db:
            db.execute(sql, args)
    finally:
        db.close()


def test_a_job_with_bad_data_in_the_database_harms_no_other_job(gflow: Gflow) -> None:
    g = gflow
    parent = g.submit("-n", "parent", g.gate("parent"))
    other = g.submit("-n", "other", g.gate("other"))
    child = g.submit("-d", f"after:{parent}+1", "-n", "child", "true")
    g.until_state(parent, "Running")
    g.until_state(other, "Running")
    g.stop()  # jobs keep running
    clauses = [["after", [parent], 10**400]]
    bomb = json.dumps({"clauses": clauses, "any_of": False, "on_count": 0, "on_pool": []})
    _plant(g, "UPDATE jobs SET deps=? WHERE id=?", bomb, child)

    g.start()  # the time bomb of an old request: it used to stop every start-up
    assert g.state(child) == "Cancelled"
    assert g.job(child)["reason"].startswith("InvalidJobData:dependency delay 1000")
    g.open_gate("parent")
    g.open_gate("other")
    assert g.wait(parent, other) == 0
    g.stop()

    _plant(g, "UPDATE jobs SET state='Hold', begin_at=1e300, end_time=NULL WHERE id=?", other)
    checked = g.run("gflowd", "doctor", check=False)
    assert checked.returncode == 1, checked.stdout
    assert f"job {other} (Hold) holds data gflowd cannot handle: begin_at" in checked.stdout
    repaired = g.run("gflowd", "doctor", "--repair")
    assert f"job {other}: Cancelled, begin_at" in repaired.stdout
    assert "no problems found" in g.run("gflowd", "doctor").stdout
    g.start()
    assert g.state(other) == "Cancelled" and g.state(parent) == "Finished"
