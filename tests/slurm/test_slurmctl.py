"""gflow's Slurm commands against the real test cluster: submit, follow, hold, update, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gflow.model import State
from gflow.slurmctl import Slurm, SlurmRefused, SlurmUnreachable
from gflow.slurmspec import SlurmJob
from tests.slurm.cluster import Cluster

# The test cluster is one node with two CPUs: its tests run one at a time.
pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


def until(cond: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def one(slurm: Slurm, key: str) -> SlurmJob | None:
    return next((j for j in slurm.query([key.split("_")[0]]) if j.key == key), None)


def sbatch(slurm: Slurm, tmp: Path, body: str, *extra: str) -> str:
    args = ["--parsable", f"--chdir={tmp}", f"--output={tmp}/%j.out", "--comment=gflow:t:1", *extra]
    return slurm.submit(args, f"#!/bin/bash\n{body}\n")


def test_submit_follow_and_read_the_exit_code(slurm_cluster: Cluster, tmp_path: Path) -> None:
    slurm = Slurm()
    assert slurm.missing() == []
    assert "UP" in slurm.ping()
    gate = tmp_path / "go"
    first = sbatch(
        slurm, tmp_path, f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 3", "--gres=gpu:1"
    )
    second = sbatch(slurm, tmp_path, "true", f"--dependency=afterok:{first}")
    running = until(lambda: (j := one(slurm, first)) and j.state is State.RUNNING and j, what="run")
    assert running.nodes == "localhost" and running.start is not None
    assert running.comment == "gflow:t:1"
    waiting = one(slurm, second)
    assert waiting is not None and waiting.state is State.QUEUED
    assert waiting.gflow_reason == "Dependency"
    gate.touch()
    failed = until(lambda: (j := one(slurm, first)) and j.state is State.FAILED and j, what="end")
    assert failed.end is not None and slurm.exit_code(first) == 3
    never = until(
        lambda: (j := one(slurm, second)) and j.gflow_reason == "DependencyNeverSatisfied" and j,
        what="never satisfied",
    )
    assert never.state is State.QUEUED
    slurm.cancel([second])
    until(lambda: (j := one(slurm, second)) and j.state is State.CANCELLED, what="cancel")


def test_hold_release_update_and_array_tasks(slurm_cluster: Cluster, tmp_path: Path) -> None:
    slurm = Slurm()
    array = sbatch(slurm, tmp_path, "exit $((SLURM_ARRAY_TASK_ID % 2))", "--array=0-3", "--hold")
    held = until(lambda: len(slurm.query([array])) == 4 and slurm.query([array]), what="tasks")
    assert {j.key for j in held} == {f"{array}_{i}" for i in range(4)}
    assert {j.state for j in held} == {State.HOLD}
    slurm.update(f"{array}_1", {"TimeLimit": "5"})
    slurm.release([array])

    def all_ended() -> list[SlurmJob] | None:
        tasks = slurm.query([array])
        return tasks if all(j.state is not None and j.state.is_final for j in tasks) else None

    ended = until(all_ended, what="array end")
    states = {j.key: j.state for j in ended}
    assert states[f"{array}_0"] is State.FINISHED and states[f"{array}_1"] is State.FAILED


def test_refusals_carry_slurms_message(slurm_cluster: Cluster, tmp_path: Path) -> None:
    slurm = Slurm()
    with pytest.raises(SlurmRefused, match="Invalid partition name specified"):
        sbatch(slurm, tmp_path, "true", "--partition=nope")
    with pytest.raises(SlurmRefused, match="Requested node configuration is not available"):
        sbatch(slurm, tmp_path, "true", "--gres=gpu:5")
    assert slurm.query(["999999"]) == []


def test_missing_commands_are_unreachable_not_a_traceback(tmp_path: Path) -> None:
    slurm = Slurm(bin_dir=str(tmp_path))
    assert slurm.missing() == ["sbatch", "squeue", "scontrol", "scancel"]
    with pytest.raises(SlurmUnreachable, match="sbatch not found"):
        slurm.submit([], "#!/bin/bash\n")
