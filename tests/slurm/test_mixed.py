"""One gflowd with both executors: quick jobs here, long ones on the cluster, one pipeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Gflow, short_home, teardown
from tests.slurm.cluster import Cluster
from tests.slurm.conftest import cancel_slurm_jobs, squeue

# The test cluster is one node with two CPUs: its tests run one at a time.
pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


@pytest.fixture
def mixed(slurm_cluster: Cluster) -> Iterator[Gflow]:
    """Local by default (process groups); the project "big" goes to Slurm."""
    env = {"GFLOW_SLURM__POLL_INTERVAL": "0.2", "GFLOW_SLURM__PROJECTS": "big=slurm"}
    g = Gflow(short_home(), "process,slurm", env=env)
    g.start()
    try:
        yield g
    finally:
        g.stop()
        cancel_slurm_jobs(g)
        teardown(g)


def test_jobs_run_here_or_on_the_cluster_by_job_and_by_project(mixed: Gflow) -> None:
    g = mixed
    here = g.submit("-J", "prep", "echo here")
    there = g.submit("--executor", "slurm", "--depends-on", str(here), "echo there")
    project = g.submit("-P", "big", "--depends-on", str(there), "echo big")
    back = g.submit("-P", "big", "--executor", "local", "--depends-on", str(project), "true")
    assert g.wait(back, timeout=90) == 0
    assert [g.job(j)["executor"] for j in (here, there, project, back)] == [
        "process",
        "slurm",
        "slurm",
        "process",
    ]
    assert g.job(here)["slurm_id"] is None and g.job(back)["slurm_id"] is None
    assert g.job(there)["node"] == "localhost" and "there" in g.log(there)
    status = g.run("gflowd", "status").stdout
    assert "process,slurm" in status
    shown = g.run("gjob", "show", str(there)).stdout
    assert "SlurmJobId" in shown and "localhost" in shown


def test_a_waiting_job_changes_executor_and_an_unconfigured_one_waits(mixed: Gflow) -> None:
    g = mixed
    parent = g.submit("--executor", "slurm", g.gate("go"))
    moved = g.submit("--executor", "slurm", "--depends-on", str(parent), "true")
    first = g.until(lambda: g.slurm_ids().get(moved), what="the dependent held by Slurm")
    g.run("gjob", "update", str(moved), "--executor", "local")
    g.open_gate("go")
    assert g.wait(moved) == 0 and g.job(moved)["executor"] == "process"
    assert g.job(moved)["slurm_id"] is None
    assert squeue("-o", "%T", "-j", first).split() == ["CANCELLED"]  # taken back from Slurm
    stranded = g.submit("--hold", "--executor", "slurm", "true")
    g.stop()
    g.env["GFLOW_DAEMON__EXECUTOR"] = "process"
    g.start()
    refused = g.run("gbatch", "--executor", "slurm", "true", check=False)
    assert refused.returncode == 1 and "only on this machine" in refused.stderr
    g.run("gjob", "release", str(stranded))
    g.until(
        lambda: g.queue_json("-j", str(stranded))[0]["reason"] == "ExecutorNotConfigured",
        what="the job to say it has no executor",
    )
