"""Many experiments at once: arrays, sweeps, limits, retries, priority, delayed start, update."""

from __future__ import annotations

import time
from typing import Any

from tests.helpers import Gflow

# ------------------------------------------------------------ arrays


def test_array_tasks_get_their_ids(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many(
        "--array", "1,3,5", "-n", "arr", "sh", "-c", "echo $GFLOW_ARRAY_JOB_ID $GFLOW_ARRAY_TASK_ID"
    )
    assert len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3))
    assert g.wait(*ids) == 0
    assert [g.log(i).split() for i in ids] == [[str(ids[0]), t] for t in ("1", "3", "5")]
    assert {g.job(i)["group_id"] for i in ids} == {ids[0]}


def test_array_spec_forms(gflow_process: Gflow) -> None:
    g = gflow_process
    out = g.run("gbatch", "--dry-run", "--array", "0-20:5", "true").stdout
    assert "Would submit 5 batch jobs" in out
    assert [line.split("task ")[1].rstrip(")") for line in out.splitlines()[1:]] == [
        "0",
        "5",
        "10",
        "15",
        "20",
    ]
    bad = g.run("gbatch", "--array", "5-1", "true", check=False)
    assert bad.returncode == 2 and "array" in bad.stderr.lower()


def _overlap(g: Gflow, ids: list[int]) -> int:
    """Most jobs running at the same instant, from the database's start/end times."""
    db = g.db()
    spans = db.execute(
        f"SELECT start_time, end_time FROM jobs WHERE id IN ({','.join(map(str, ids))})"
    ).fetchall()
    db.close()
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def test_array_percent_limit_is_never_exceeded(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many("--array", "1-8%2", "sh", "-c", "sleep 0.1")
    waiting = g.queue_json("-j", ",".join(map(str, ids)))
    reasons = {j["reason"] for j in waiting if j["state"] == "Queued"}
    assert reasons <= {"JobGroupLimit", None, "Launching"}
    assert g.wait(*ids) == 0
    assert _overlap(g, ids) <= 2


def test_whole_array_is_addressed_by_its_id(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many("--hold", "--array", "1-4", "true")
    first = ids[0]
    g.run("gcancel", f"{first}_2")
    assert g.state(ids[1]) == "Cancelled"
    assert g.state(first) == "Hold"
    partly = g.run("gjob", "release", str(first), check=False)
    assert partly.returncode == 1
    assert f"job {ids[1]} is Cancelled" in partly.stderr
    assert partly.stdout.count("released") == 3
    assert g.wait(*ids) == 125
    assert [g.state(i) for i in ids] == ["Finished", "Cancelled", "Finished", "Finished"]


def test_waiting_array_tasks_fold_into_one_row(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many("--hold", "--array", "1-6", "-n", "big", "true")
    out = g.run("gqueue").stdout
    assert f"{ids[0]}-{ids[-1]}" in out and "big[1-6]" in out
    assert len(g.run("gqueue", "--expand").stdout.strip().splitlines()) == 7
    g.run("gcancel", str(ids[0]))


def test_ten_thousand_task_array_is_one_atomic_request(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many("--hold", "--array", "1-10000", "true")
    assert len(ids) == 10000
    db = g.db()
    assert db.execute("SELECT count(*), count(DISTINCT batch_id) FROM jobs").fetchone() == (
        10000,
        1,
    )
    db.close()
    g.run("gcancel", str(ids[0]))


# ------------------------------------------------------------ sweeps


def test_param_sweep_is_a_cartesian_product(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many(
        "--param",
        "lr=0.1,0.01",
        "--param",
        "bs=32:64:32",
        "--name-template",
        "run_{lr}_{bs}",
        "echo",
        "lr={lr}",
        "bs={bs}",
    )
    assert g.wait(*ids) == 0
    got = sorted((g.job(i)["name"], g.log(i).strip()) for i in ids)
    assert got == sorted(
        [
            ("run_0.1_32", "lr=0.1 bs=32"),
            ("run_0.1_64", "lr=0.1 bs=64"),
            ("run_0.01_32", "lr=0.01 bs=32"),
            ("run_0.01_64", "lr=0.01 bs=64"),
        ]
    )


def test_float_ranges_and_param_files(gflow_process: Gflow) -> None:
    g = gflow_process
    out = g.run("gbatch", "--dry-run", "--param", "x=0.1:0.3:0.1", "echo", "{x}").stdout
    assert [line.split(": ")[1].split(" (")[0] for line in out.splitlines()[1:]] == [
        "echo 0.1",
        "echo 0.2",
        "echo 0.3",
    ]
    csv = g.work / "grid.csv"
    csv.write_text("model,seed\nresnet,1\nvit,2\n")
    ids = g.submit_many(
        "--param-file",
        str(csv),
        "--max-concurrent",
        "1",
        "sh",
        "-c",
        "echo {model}-{seed}-$GFLOW_PARAM_MODEL",
    )
    assert g.wait(*ids) == 0
    assert sorted(g.log(i).strip() for i in ids) == ["resnet-1-resnet", "vit-2-vit"]
    assert _overlap(g, ids) == 1


def test_a_bad_combination_refuses_the_whole_submission(gflow_process: Gflow) -> None:
    g = gflow_process
    before = g.db().execute("SELECT count(*) FROM jobs").fetchone()[0]
    done = g.run("gbatch", "--param", "a=1,2", "echo", "{a}", "{missing}", check=False)
    assert done.returncode in (1, 2) and "missing" in done.stderr
    assert g.db().execute("SELECT count(*) FROM jobs").fetchone()[0] == before


def test_set_limit_changes_a_running_group(gflow_process: Gflow) -> None:
    g = gflow_process
    ids = g.submit_many("--array", "1-4%1", "sh", "-c", g.gate("open"))
    g.until_state(ids[0], "Running")
    out = g.run("gctl", "set-limit", str(ids[0]), "4").stdout
    assert "at most 4" in out
    g.until(lambda: all(g.state(i) == "Running" for i in ids), what="all four to run")
    g.open_gate("open")
    assert g.wait(*ids) == 0


# ------------------------------------------------------------ retries


def test_failed_job_is_retried_and_attempts_are_linked(gflow_process: Gflow) -> None:
    g = gflow_process
    counter = g.work / "tries"
    first = g.submit(
        "--max-retries", "2", "sh", "-c", f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 3 ]"
    )
    g.until(
        lambda: counter.exists() and len(counter.read_text().split()) == 3, what="three attempts"
    )
    chain = g.show(first)["attempts"]
    assert len(chain) == 3 and chain[0] == first
    assert g.wait(chain[-1]) == 0
    assert [g.state(i) for i in chain] == ["Failed", "Failed", "Finished"]
    assert g.job(chain[1])["retry_of"] == first


def test_cancel_and_timeout_are_not_retried_unless_asked(gflow_process: Gflow) -> None:
    g = gflow_process
    cancelled = g.submit("--max-retries", "3", "sleep", "300")
    g.until_state(cancelled, "Running")
    g.run("gcancel", str(cancelled))
    assert g.wait(cancelled) == 125
    timed = g.submit("--max-retries", "1", "--time", "0:01", "sleep", "300")
    assert g.wait(timed) == 124
    retried = g.submit("--max-retries", "1", "--retry-on-timeout", "--time", "0:01", "sleep", "300")
    assert g.wait(retried) == 124
    g.until(lambda: len(g.show(retried)["attempts"]) == 2, what="the timeout retry")
    db = g.db()
    assert (
        db.execute(
            "SELECT count(*) FROM jobs WHERE retry_of IN (?, ?)", (cancelled, timed)
        ).fetchone()[0]
        == 0
    )
    db.close()


# ------------------------------------------------------------ priority and begin


def test_priority_then_submission_order(make_gflow: Any) -> None:
    g: Gflow = make_gflow("process", GFLOW_DAEMON__MAX_RUNNING="1")
    g.start()
    blocker = g.submit(g.gate("go"))
    g.until_state(blocker, "Running")
    low = g.submit("-p", "5", "true")
    mid_a = g.submit("-p", "50", "true")
    mid_b = g.submit("-p", "50", "true")
    high = g.submit("--priority", "200", "true")
    g.open_gate("go")
    assert g.wait(low, mid_a, mid_b, high) == 0
    order = sorted([low, mid_a, mid_b, high], key=lambda i: g.job(i)["start_time"])
    assert order == [high, mid_a, mid_b, low]


def test_priority_can_be_updated(make_gflow: Any) -> None:
    g: Gflow = make_gflow("process", GFLOW_DAEMON__MAX_RUNNING="1")
    g.start()
    blocker = g.submit(g.gate("go"))
    g.until_state(blocker, "Running")
    first = g.submit("true")
    second = g.submit("true")
    g.run("gjob", "update", str(second), "--priority", "99")
    g.open_gate("go")
    assert g.wait(first, second) == 0
    assert g.job(second)["start_time"] < g.job(first)["start_time"]


def test_begin_time_fires_on_its_timer(gflow_process: Gflow) -> None:
    g = gflow_process
    job = g.submit("--begin", "now+2s", "true")
    row = g.job(job)
    assert row["state"] == "Queued"
    assert g.queue_json("-j", str(job))[0]["reason"] == "BeginTime"
    assert g.wait(job) == 0
    started = g.job(job)["start_time"]
    assert row["begin_at"] <= started < row["begin_at"] + 5.0  # on the timer, not a poll


def test_release_at_a_time(gflow_process: Gflow) -> None:
    g = gflow_process
    job = g.submit("--hold", "true")
    asked = time.time()
    out = g.run("gjob", "release", str(job), "--at", "now+1s").stdout
    assert "not before" in out
    assert g.wait(job) == 0
    assert g.job(job)["start_time"] >= asked + 0.9


# ------------------------------------------------------------ update and redo


def test_update_every_field_of_a_waiting_job(gflow_process: Gflow) -> None:
    g = gflow_process
    job = g.submit("--hold", "-n", "before", "echo", "old")
    g.run(
        "gjob",
        "update",
        str(job),
        "--time",
        "10",
        "--memory",
        "1G",
        "--priority",
        "42",
        "--name",
        "after",
        "--max-retries",
        "2",
        "--command",
        "echo",
        "new",
    )
    row = g.job(job)
    assert (
        row["time_limit"],
        row["memory_mb"],
        row["priority"],
        row["name"],
        row["max_retries"],
    ) == (600, 1024, 42, "after", 2)
    g.run("gjob", "release", str(job))
    assert g.wait(job) == 0
    assert g.log(job) == "new\n"
    refused = g.run("gjob", "update", str(job), "--priority", "1", check=False)
    assert refused.returncode == 1 and "Finished" in refused.stderr


def test_update_validates_like_submission(gflow_process: Gflow) -> None:
    g = gflow_process
    job = g.submit("--hold", "true")
    for argv in (["--time", "banana"], ["--priority", "300"], ["--memory", "-1G"]):
        done = g.run("gjob", "update", str(job), *argv, check=False)
        assert done.returncode == 2, argv
        assert "Traceback" not in done.stderr
    assert g.job(job)["priority"] == 10


def test_update_takes_gbatchs_option_forms(two_gpus: Gflow) -> None:
    """gjob update reads its options as gbatch does: Slurm's gpu:N, --dependency and -W;
    what it cannot change is refused with the reason, and nothing changes."""
    g = two_gpus
    parent = g.submit("true")
    job = g.submit("--hold", "-n", "plain", "true")
    g.run("gjob", "update", str(job), "--gres", "gpu:2", "--dependency", f"afterany:{parent}")
    assert (g.job(job)["gpus"], g.show(job)["dependency"]) == (2, f"afterany:{parent}")
    g.run("gjob", "update", str(job), "-G", "1", "-W", f"depend=afterok:{parent}")
    assert (g.job(job)["gpus"], g.show(job)["dependency"]) == (1, f"afterok:{parent}")
    for argv, needle in (
        (["--name", "two\nlines"], "printable"),
        (["--array", "1-3"], "the tasks of an array are made when it is submitted"),
        (["-P", "other"], "--project"),
    ):
        done = g.run("gjob", "update", str(job), *argv, check=False)
        assert done.returncode == 2 and needle in done.stderr, (argv, done.stderr)
    assert (g.job(job)["name"], g.job(job)["project"]) == ("plain", None)
    g.run("gjob", "update", str(job), "--no-auto-cancel")  # alone: only that changes
    assert (g.show(job)["dependency"], g.show(job)["auto_cancel"]) == (f"afterok:{parent}", False)


def test_redo_with_overrides(gflow_process: Gflow) -> None:
    g = gflow_process
    job = g.submit("-n", "again", "sh", "-c", "exit 4")
    assert g.wait(job) == 4
    out = g.run("gjob", "redo", str(job), "--priority", "77", "--time", "5").stdout
    new = int(out.split()[3])
    row = g.job(new)
    assert (row["name"], row["priority"], row["time_limit"], row["redo_of"]) == (
        "again",
        77,
        300,
        job,
    )
    assert g.wait(new) == 4
    running = g.submit(g.gate("x"))
    refused = g.run("gjob", "redo", str(running), check=False)
    assert refused.returncode == 1
    g.open_gate("x")
