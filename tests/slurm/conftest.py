"""Tests against a real Slurm: one session-scoped cluster, started here when needed.

They are skipped, with the reason, only where Slurm cannot be installed and started
(not root, no apt-get). With ``GFLOW_REQUIRE_SLURM=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import Gflow, short_home, teardown
from tests.slurm.cluster import Cluster, unavailable


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
    """What a test left in Slurm goes (jobs outlive gflowd by design)."""
    ids = sorted({s.split("_")[0] for s in g.slurm_ids().values()})  # an array at once
    for start in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[start : start + 500]], capture_output=True, check=False)


def squeue(*args: str) -> str:
    """Slurm's own view of jobs, every state (``-t all``), no header."""
    return subprocess.run(
        ["squeue", "-h", "-t", "all", *args], capture_output=True, text=True, check=True
    ).stdout
