"""Arrays on Slurm: one ``sbatch --array`` with its throttle and ``aftercorr`` where the
tasks allow it, task by task where they do not."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import Gflow
from tests.slurm.conftest import squeue

# The test cluster is one node with two CPUs: its tests run one at a time.
pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


def scontrol(key: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", "-o", key], capture_output=True, text=True, check=True
    ).stdout


def bases(g: Gflow, ids: list[int]) -> set[str]:
    known = g.slurm_ids()
    return {known[i].split("_")[0] for i in ids if i in known}


def test_an_array_is_one_sbatch_with_its_throttle_and_aftercorr(sgflow: Gflow) -> None:
    g = sgflow
    body = f'while [ ! -e {g.work / "go"} ]; do sleep 0.02; done; test "$GFLOW_ARRAY_TASK_ID" != 3'
    parents = g.submit_many("--array", "1-4%2", "sh", "-c", body)
    kids = g.submit_many("--array", "1-4", "--dependency", f"aftercorr:{parents[0]}", "true")
    g.until(lambda: len(g.slurm_ids()) == 8, what="both arrays in Slurm")
    (first,), (second,) = bases(g, parents), bases(g, kids)
    assert "ArrayTaskThrottle=2" in scontrol(first)
    assert f"aftercorr:{first}" in squeue("-o", "%E", "-j", second)
    g.run("gctl", "set-limit", str(parents[0]), "1")
    g.until(lambda: "ArrayTaskThrottle=1" in scontrol(first), what="the throttle changed")
    g.open_gate("go")
    for task, kid in enumerate(kids, start=1):
        g.until_state(kid, "Cancelled" if task == 3 else "Finished", timeout=90)
    assert g.job(kids[2])["reason"] == f"DependencyFailed:{parents[2]}"
    assert g.job(parents[2])["exit_code"] == 1


def test_an_array_slurm_refuses_goes_task_by_task(sgflow: Gflow) -> None:
    g = sgflow
    tasks = g.submit_many("--array", "0,1000,2000", "echo task $GFLOW_ARRAY_TASK_ID")
    assert g.wait(*tasks, timeout=90) == 0  # past MaxArraySize: one sbatch per task
    assert all("_" not in s for s in g.slurm_ids().values()) and len(bases(g, tasks)) == 3
    assert [g.log(t).strip() for t in tasks] == ["task 0", "task 1000", "task 2000"]


def test_a_thousand_task_array_is_submitted_and_followed(sgflow: Gflow) -> None:
    g = sgflow
    out = g.run("gbatch", "--array", "1-1000", "true", timeout=120).stdout
    first = int(out.split()[3])
    g.until(lambda: len(g.slurm_ids()) == 1000, timeout=90, what="1000 submissions")
    g.until(
        lambda: sum(1 for j in g.queue_json("-a") if j["state"] == "Finished") >= 4,
        timeout=60,
        what="tasks finishing",
    )
    ids = g.slurm_ids().values()
    assert len(set(ids)) == 1000 and len({s.split("_")[0] for s in ids}) == 1  # one sbatch
    g.run("gcancel", f"{first}-{first + 999}", check=False)  # some have ended already
    g.until(lambda: not g.queue_json(), timeout=60, what="the rest cancelled")
    states = {j["state"] for j in g.queue_json("-a")}
    assert states <= {"Finished", "Cancelled"}
