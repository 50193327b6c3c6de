"""A Slurm controller gflow cannot reach, and ``gflowd doctor`` saying what is wrong."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Gflow, short_home, teardown
from tests.slurm.cluster import Cluster
from tests.slurm.conftest import cancel_slurm_jobs, squeue

# The test cluster is one node with two CPUs: its tests run one at a time.
pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


@pytest.fixture
def nowhere(slurm_cluster: Cluster, tmp_path: Path) -> Iterator[Gflow]:
    """A gflowd whose Slurm configuration names a port no controller listens on."""
    conf = tmp_path / "slurm.conf"
    text = Path("/etc/slurm/slurm.conf").read_text()
    text = text.replace("SlurmctldPort=6817", "SlurmctldPort=6899")
    conf.write_text(f"{text}\nMessageTimeout=1\nTCPTimeout=1\n")  # fail at once
    g = Gflow(
        short_home(), "slurm", env={"GFLOW_SLURM__POLL_INTERVAL": "0.2", "SLURM_CONF": str(conf)}
    )
    try:
        yield g
    finally:
        g.stop()
        cancel_slurm_jobs(g)
        teardown(g)


def test_an_unreachable_controller_is_said_and_nothing_is_lost(nowhere: Gflow) -> None:
    g = nowhere
    doctor = g.run("gflowd", "doctor", check=False)
    assert doctor.returncode == 1 and "Slurm: scontrol ping failed" in doctor.stdout
    g.start()
    job = g.submit("echo made it")
    g.until(lambda: "UNREACHABLE" in g.run("ginfo").stdout, what="ginfo to say so")
    listed = g.run("gqueue")
    assert "Slurm controller UNREACHABLE" in listed.stderr and str(job) in listed.stdout
    assert g.state(job) == "Queued"
    g.stop()
    del g.env["SLURM_CONF"]  # the controller is back
    g.start()
    assert g.wait(job, timeout=60) == 0 and "made it" in g.log(job)
    assert "UNREACHABLE" not in g.run("gqueue").stderr
    g.env["GFLOW_SLURM__PARTITION"] = "nope"
    doctor = g.run("gflowd", "doctor", check=False)
    assert "Slurm: scontrol ping answers" in doctor.stdout
    assert "sbatch --test-only failed: invalid partition specified: nope" in doctor.stdout


def test_a_marked_job_gflow_no_longer_has_is_cancelled_at_start(sgflow: Gflow) -> None:
    g = sgflow
    with g.db() as db:
        install = db.execute("SELECT value FROM meta WHERE key='install_id'").fetchone()[0]

    def held(mark: str) -> str:
        args = ["sbatch", "--parsable", "--hold", "--output=/dev/null", f"--comment={mark}"]
        done = subprocess.run([*args, "--wrap", "true"], capture_output=True, text=True)
        return done.stdout.strip()

    stray = held(f"gflow:{install}:99999")  # as if gflow's scancel had been cut short
    foreign = held("gflow:another-install:1")
    try:
        g.stop()
        g.start()
        g.until(lambda: squeue("-o", "%T", "-j", stray).split() == ["CANCELLED"], what="cancel")
        assert squeue("-o", "%T", "-j", foreign).split() == ["PENDING"]
    finally:
        subprocess.run(["scancel", stray, foreign], check=False)
