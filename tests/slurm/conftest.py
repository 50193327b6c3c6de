"""Tests against a real Slurm: one session-scoped cluster, started here when needed.

They are skipped, with the reason, only where Slurm cannot be installed and started
(not root, no apt-get). With ``GFLOW_REQUIRE_SLURM=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers import Gflow, short_home, teardown
from tests.slurm.cluster import Cluster, unavailable

DRAIN_WAIT = 60.0
"""How long a test's cancelled Slurm jobs may take to end before the next test goes."""


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    why = unavailable() or cluster.join()
    if why is not None:
        if os.environ.get("GFLOW_REQUIRE_SLURM") == "1":
            pytest.fail(f"Slurm is required here (GFLOW_REQUIRE_SLURM=1): {why}")
        pytest.skip(f"no Slurm: {why}")
    try:
        yield cluster
    finally:
        cluster.leave()


@pytest.fixture(autouse=True)
def _cluster_to_itself(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that uses the cluster has it to itself, from before its gflowd starts to
    after its jobs are cancelled: tests on other xdist workers or in other checkouts wait
    their turn (xdist's groups cannot do it: pytest 9.2 ignores them, and other sessions
    share the cluster)."""
    if "slurm_cluster" not in request.fixturenames:
        yield
        return
    cluster: Cluster = request.getfixturevalue("slurm_cluster")
    with cluster.turn():
        yield


@pytest.fixture
def sgflow(slurm_cluster: Cluster) -> Iterator[Gflow]:
    """A gflowd with the Slurm executor, following the test cluster closely."""
    g = Gflow(short_home(), "slurm", env={"GFLOW_SLURM__POLL_INTERVAL": "0.2"})
    g.start()
    try:
        yield g
    finally:
        g.stop()
        cancel_slurm_jobs(g)
        teardown(g)


def cancel_slurm_jobs(g: Gflow) -> None:
    """What a test left in Slurm goes (jobs outlive gflowd by design), before the next
    test's turn: cancelled jobs take a moment to end and free their CPUs."""
    ids = sorted({s.split("_")[0] for s in g.slurm_ids().values()})  # an array at once
    for start in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[start : start + 500]], capture_output=True, check=False)
    deadline = time.monotonic() + DRAIN_WAIT
    while set(ids) & unfinished() and time.monotonic() < deadline:
        time.sleep(0.1)


def unfinished() -> set[str]:
    """The Slurm ids (an array's, for its tasks) of every job pending, running or ending:
    what squeue lists by default."""
    out = subprocess.run(["squeue", "-h", "-o", "%F"], capture_output=True, text=True, check=False)
    return set(out.stdout.split())


def squeue(*args: str) -> str:
    """Slurm's own view of jobs, every state (``-t all``), no header."""
    return subprocess.run(
        ["squeue", "-h", "-t", "all", *args], capture_output=True, text=True, check=True
    ).stdout
