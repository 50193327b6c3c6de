"""sbatch's -o/-e file patterns, the Slurm variables of a job, and a script's header."""

from __future__ import annotations

import pytest

from gflow import directives, jobenv, jobfiles
from gflow.errors import InvalidInput
from tests.unit.conftest import make_job

NAMES = jobfiles.Names(42, "train", "ana", 40, 7, "gpu1")


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("slurm-%j.out", "/work/slurm-42.out"),
        ("logs/%x-%A_%a.out", "/work/logs/train-40_7.out"),
        ("/tmp/%u/%N-%3a-%%.log", "/tmp/ana/gpu1-007-%.log"),
        ("plain.txt", "/work/plain.txt"),
    ],
)
def test_patterns(pattern: str, path: str) -> None:
    assert jobfiles.check(pattern, "--output") == pattern
    assert jobfiles.expand(pattern, NAMES, "/work") == path


def test_outside_an_array_the_array_is_the_job() -> None:
    alone = jobfiles.Names(5, "x", "u", None, None, "h")
    assert jobfiles.expand("%A_%a", alone, "/w") == "/w/5_0"


@pytest.mark.parametrize("pattern", ["x%q", "x%", "%123j", "%s"])
def test_unknown_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput, match="%j job id"):
        jobfiles.check(pattern, "--output")


def test_array_variables() -> None:
    job = make_job(8, uid=0, user="ana", name="t", group_id=5, task_id=6, cpus_per_task=2)
    env = jobenv.variables(
        job, (1, 3), {"SLURM_ARRAY_TASK_ID": "99", "SLURM_CONF": "/c"}, jobenv.TaskRange(4, 0, 9)
    )
    assert env["SLURM_ARRAY_TASK_ID"] == env["GFLOW_ARRAY_TASK_ID"] == "6"
    assert (env["SLURM_ARRAY_TASK_STEP"], env["SLURM_ARRAY_TASK_COUNT"]) == ("3", "4")
    assert (env["SLURM_JOB_GPUS"], env["SLURM_GPUS_ON_NODE"]) == ("1,3", "2")
    assert (env["SLURM_CPUS_PER_TASK"], env["SLURM_CONF"]) == ("2", "/c")
    assert jobenv.TaskRange(3, 1, 10).step == 1
    alone = jobenv.variables(
        make_job(9, uid=0, user="ana", name="t"), (), {"SLURM_ARRAY_TASK_ID": "1"}
    )
    assert "SLURM_ARRAY_TASK_ID" not in alone and "SLURM_JOB_GPUS" not in alone


def test_header_ends_at_the_first_command() -> None:
    text = "#!/bin/bash\n\n# GFLOW -g 1\n#SBATCH -c 2 -o o.txt -H\nrun\n#SBATCH -t 5\n"
    found = directives.read(text, "x.sh")
    assert found.tokens == ["-g", "1", "--cpus-per-task=2", "--output=o.txt", "--hold"]
    assert found.ignored == []


def test_sbatch_lines_honoured_ignored_refused() -> None:
    found = directives.read("#SBATCH -N 1 --ntasks=1 -p gpu --mail-type=END\n", "x.sh")
    assert (found.tokens, found.ignored) == (["--mail-type=END"], ["-p", "gpu"])
    for line in ("#SBATCH -N 2", "#SBATCH --ntasks-per-node=4", "#SBATCH --chdir=/x"):
        with pytest.raises(InvalidInput, match=r"\(in x.sh\)"):
            directives.read(line, "x.sh")
