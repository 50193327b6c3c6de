"""Tests against a real Slurm: one session-scoped cluster, started here when needed.

They are skipped, with the reason, only where Slurm cannot be installed and started
(not root, no apt-get). With ``GFLOW_REQUIRE_SLURM=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

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
