"""``gflowd doctor``'s Slurm checks where Slurm cannot answer: no commands, bad settings.

(The checks against a real controller, up and down, are in tests/slurm/test_faults.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gflow.config import Paths
from gflow.doctor import check, check_slurm


def home(tmp_path: Path, config: str) -> Paths:
    (tmp_path / "gflow.toml").write_text(config)
    return Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)


@pytest.fixture(autouse=True)
def no_slurm_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_without_slurm_among_the_executors_nothing_is_checked(tmp_path: Path) -> None:
    paths = home(tmp_path, '[daemon]\nexecutor = "process"\n')
    assert check_slurm(paths) == []
    assert [f.message for f in check(paths, repair=False, daemon_running=False)][-1] == (
        "no problems found"
    )


def test_missing_commands_are_named_and_the_verdict_is_an_error(tmp_path: Path) -> None:
    paths = home(tmp_path, '[daemon]\nexecutor = "auto,slurm"\n')
    findings = check(paths, repair=False, daemon_running=False)
    errors = [f.message for f in findings if f.level == "error"]
    assert len(errors) == 1
    assert "sbatch, squeue, scontrol, scancel not found on PATH" in errors[0]
    assert "no problems found" not in [f.message for f in findings]


def test_a_bad_slurm_table_is_named(tmp_path: Path) -> None:
    paths = home(tmp_path, '[daemon]\nexecutor = "slurm"\n[slurm]\npoll_intervall = 2\n')
    (finding,) = check_slurm(paths)
    assert finding.level == "error" and "slurm.poll_intervall" in finding.message
