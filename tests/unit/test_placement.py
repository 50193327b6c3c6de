"""Where jobs run with one or both executors: the configuration's forms and a job's choice."""

from __future__ import annotations

import pytest

from gflow.errors import InvalidInput, Refused
from gflow.placement import LOCAL, SLURM, Placement


@pytest.mark.parametrize(
    ("text", "default", "local", "slurm"),
    [
        ("auto", LOCAL, "auto", False),
        ("tmux", LOCAL, "tmux", False),
        ("slurm", SLURM, None, True),
        ("auto,slurm", LOCAL, "auto", True),
        ("slurm, process", SLURM, "process", True),
        ("Slurm,TMUX", SLURM, "tmux", True),
    ],
)
def test_one_executor_or_a_local_one_and_slurm(
    text: str, default: str, local: str | None, slurm: bool
) -> None:
    p = Placement.parse(text)
    assert (p.default, p.local, p.slurm) == (default, local, slurm)
    assert p.mixed is (local is not None and slurm)


@pytest.mark.parametrize("text", ["", "pbs", "tmux,process", "slurm,slurm", "auto,,tmux"])
def test_other_executor_lists_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(InvalidInput, match="auto,slurm"):
        Placement.parse(text)


def test_a_job_asks_else_its_project_decides_else_the_default() -> None:
    p = Placement.parse("auto,slurm", {"train": "slurm", "quick": "LOCAL"})
    assert p.site_for(None, None) == LOCAL
    assert p.site_for(None, "train") == SLURM
    assert p.site_for(None, "quick") == LOCAL
    assert p.site_for(LOCAL, "train") == LOCAL
    assert p.describe("tmux") == "tmux,slurm"
    assert Placement.parse("slurm,process").describe("process") == "slurm,process"


def test_a_project_rule_must_name_an_executor_the_daemon_has() -> None:
    with pytest.raises(InvalidInput, match=r"slurm.projects.quick"):
        Placement.parse("slurm", {"quick": "local"})
    with pytest.raises(InvalidInput, match="local or slurm"):
        Placement.parse("auto,slurm", {"quick": "tmux"})


def test_a_job_asking_for_a_missing_executor_is_refused_in_words() -> None:
    with pytest.raises(Refused, match="only on this machine"):
        Placement.parse("auto").check(SLURM, None)
    with pytest.raises(Refused, match="only on a Slurm cluster"):
        Placement.parse("slurm").check(LOCAL, None)
    assert Placement.parse("slurm").check(None, None) == SLURM
