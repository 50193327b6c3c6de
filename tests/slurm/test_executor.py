"""gflow's front end on a real Slurm: the same gbatch/gqueue/gcancel, jobs run by slurmd."""

from __future__ import annotations

import subprocess
import threading

import pytest

from tests.helpers import Gflow
from tests.slurm.conftest import squeue

# The test cluster is one node with two CPUs: its tests run one at a time.
pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


def test_pipeline_with_at_gpus_exit_codes_and_the_cascade(sgflow: Gflow) -> None:
    g = sgflow
    prep = g.submit("-J", "prep", "echo prepared")
    train = g.submit(
        "-J", "train", "-g", "2", "--depends-on", "@", "echo gpus=$CUDA_VISIBLE_DEVICES"
    )
    ev = g.submit("-J", "eval", "--depends-on", "@", "exit 3")
    report = g.submit("-J", "report", "--depends-on", "@", "true")
    keep = g.submit("-J", "keep", "--depends-on", str(ev), "--no-auto-cancel", "true")
    ids = g.until(lambda: len(s := g.slurm_ids()) == 5 and s, what="all five in Slurm")
    deps = squeue("-o", "%i %E", "-j", ids[report])
    assert f"afterok:{ids[ev]}" in deps  # Slurm holds the pipeline itself
    g.until_state(report, "Cancelled")
    assert g.state(prep) == "Finished" and g.state(train) == "Finished"
    assert "gpus=0,1" in g.log(train)
    failed = g.job(ev)
    assert failed["state"] == "Failed" and failed["exit_code"] == 3
    assert g.job(report)["reason"] == f"DependencyFailed:{ev}"
    g.until(lambda: g.job(keep)["reason"] == "DependencyNeverSatisfied", what="marked never")
    assert g.state(keep) == "Queued"
    listing = g.run("gqueue", "-a", "-f", "JOBID,ST,SLURM_ID").stdout
    assert [str(report), "CA", ids[report]] in [line.split() for line in listing.splitlines()]


def test_fan_out_join_and_or(sgflow: Gflow) -> None:
    g = sgflow
    parent = g.submit("-J", "p", "true")
    kids = g.submit_many("--array", "1-3", "--depends-on", str(parent), "echo $GFLOW_ARRAY_TASK_ID")
    join = g.submit("--depends-on-all", ",".join(map(str, kids)), "true")
    bad = g.submit("exit 1")
    either = g.submit("--depends-on-any", f"{bad},{join}", "echo either")
    assert g.wait(either, timeout=90) == 0
    assert g.state(join) == "Finished" and g.state(bad) == "Failed"
    assert sorted(g.log(k).strip() for k in kids) == ["1", "2", "3"]
    assert g.state(either) == "Finished"


def test_time_limit_signal_cancel_and_scancel_behind_gflows_back(sgflow: Gflow) -> None:
    g = sgflow
    warned = g.work / "warned"
    trapped = f"trap 'touch {warned}' USR1; {g.gate('never')}"
    slow = g.submit("-t", "0:04", "--signal", "USR1@2", trapped)  # time to set its trap
    mine = g.submit(g.gate("never-either"))
    theirs = g.submit(g.gate("nor-this"))
    # slow may reach its 2 s limit before mine is seen running on a loaded machine
    started = ("Running", "Timeout")
    g.until(lambda: g.state(mine) == "Running" and g.state(slow) in started, what="running")
    g.run("gcancel", str(mine))
    g.until_state(slow, "Timeout", timeout=60)
    assert warned.exists()  # the --signal came before the time limit, through scancel
    g.until_state(mine, "Cancelled", timeout=60)
    assert g.job(mine)["reason"] == "CancelledByUser"
    subprocess.run(["scancel", g.slurm_ids()[theirs]], check=True)
    g.until_state(theirs, "Cancelled", timeout=60)
    assert g.job(theirs)["reason"] == "CancelledInSlurm"


def test_a_refused_submission_fails_with_slurms_message(sgflow: Gflow) -> None:
    g = sgflow
    job = g.submit("-g", "5", "true")
    child = g.submit("--depends-on", str(job), "true")
    g.until_state(job, "Failed")
    assert "Requested node configuration is not available" in g.job(job)["reason"]
    assert "Requested node configuration is not available" in g.log(job)
    g.until_state(child, "Cancelled")
    shown = g.run("gjob", "show", str(job)).stdout
    assert "Requested node configuration" in shown


def test_kill_9_during_a_burst_loses_nothing_and_submits_nothing_twice(sgflow: Gflow) -> None:
    g = sgflow
    done: list[int] = []

    def burst() -> None:
        for _ in range(12):
            out = g.run("gbatch", "true", check=False)
            if out.returncode == 0:
                done.append(int(out.stdout.split()[3]))

    worker = threading.Thread(target=burst)
    worker.start()
    g.until(lambda: len(done) >= 4, what="a few submissions")
    g.kill9()
    worker.join()
    g.start()
    burst()
    assert g.wait(*done, timeout=120) == 0
    ids = g.slurm_ids()
    assert sorted(ids) == sorted(done)
    assert len(set(ids.values())) == len(done)
    db = g.db()
    try:
        install = db.execute("SELECT value FROM meta WHERE key='install_id'").fetchone()[0]
    finally:
        db.close()
    mine = [c for c in squeue("-o", "%k").split() if c.startswith(f"gflow:{install}:")]
    assert len(mine) == len(set(mine)) == len(done)  # no job submitted twice
