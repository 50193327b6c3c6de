"""Memory enforcement: cgroup v2 detection and job cgroups (on a stand-in directory
tree), the wrapper joining its cgroup, and the RLIMIT_DATA fallback in the job script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gflow.cgroup import CgroupMemory, detect, own_cgroup
from gflow.executors import LaunchSpec, job_script, wrapper_path, write_run_dir
from gflow.rundir import read_result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "0::/user.slice/user-1000.slice/gflow.service\n",
            "/user.slice/user-1000.slice/gflow.service",
        ),
        ("12:memory:/x\n1:name=systemd:/y\n0::/\n", "/"),
        ("12:memory:/x\n", None),
        ("0::/a/../b\n", None),
        ("", None),
    ],
)
def test_own_cgroup(text: str, expected: str | None) -> None:
    assert own_cgroup(text) == expected


def _tree(tmp_path: Path, controllers: str | None, own: str = "0::/svc\n") -> tuple[Path, Path]:
    root = tmp_path / "cg"
    (root / "svc").mkdir(parents=True)
    if controllers is not None:
        (root / "cgroup.controllers").write_text(controllers)
    (root / "svc" / "cgroup.subtree_control").write_text("memory\n")
    self_file = tmp_path / "self_cgroup"
    self_file.write_text(own)
    return root, self_file


@pytest.mark.parametrize(
    ("controllers", "own"),
    [
        (None, "0::/svc\n"),  # cgroup v1 only: no unified controllers file
        ("cpu io pids\n", "0::/svc\n"),  # v2 without the memory controller
        ("cpu memory\n", "4:memory:/svc\n"),  # not in the unified hierarchy
        ("cpu memory\n", "0::/svc\n"),  # children do not get the memory controller
    ],
)
def test_detect_falls_back_when_cgroup_v2_memory_is_unusable(
    tmp_path: Path, controllers: str | None, own: str
) -> None:
    root, self_file = _tree(tmp_path, controllers, own)
    assert detect(root, self_file) is None
    assert not (root / "svc" / "gflow-job-probe").exists()


def test_detect_on_this_machine_never_raises() -> None:
    result = detect()
    assert result is None or isinstance(result, CgroupMemory)


def test_job_cgroup_gets_its_limit_and_is_removed(tmp_path: Path) -> None:
    cg = CgroupMemory(tmp_path)
    path = cg.create(7, 512)
    assert path == tmp_path / "gflow-job-7"
    assert (path / "memory.max").read_text() == f"{512 * 1024 * 1024}\n"
    assert (path / "memory.swap.max").read_text() == "0\n"
    assert (path / "memory.oom.group").read_text() == "1\n"
    assert not cg.remove(7)  # not empty: "processes" still inside
    for child in path.iterdir():
        child.unlink()
    assert cg.remove(7)
    assert cg.remove(7)  # already gone


def test_prune_keeps_the_cgroups_of_active_jobs(tmp_path: Path) -> None:
    for name in ("gflow-job-1", "gflow-job-2", "gflowd", "other"):
        (tmp_path / name).mkdir()
    CgroupMemory(tmp_path).prune({2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gflow-job-2", "gflowd", "other"]


def test_job_script_rlimit_only_in_rlimit_mode() -> None:
    assert "ulimit -d 1048576" in job_script("true", "/", None, 1024)
    assert "ulimit" not in job_script("true", "/", None, 1024, rlimit=False)
    assert "ulimit" not in job_script("true", "/", None, None)


def _launch(tmp_path: Path, cgroup: Path | None, script: str) -> tuple[int | None, str]:
    """Run one job through the real wrapper, as the executors do."""
    run_dir = tmp_path / "run" / "1"
    log = tmp_path / "1.log"
    env = {"PATH": os.environ["PATH"]}
    spec = LaunchSpec(1, run_dir, log, env, script, memory_mb=64, cgroup=cgroup)
    write_run_dir(spec)
    argv = ["/bin/bash", str(wrapper_path()), str(run_dir), str(log), "file"]
    subprocess.run(argv, env={}, check=False, timeout=30)
    result = read_result(run_dir)
    return (result[0] if result else None), log.read_text()


def test_wrapper_joins_the_job_cgroup_before_the_command(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg" / "gflow-job-1"
    cgroup.parent.mkdir()
    code, log = _launch(tmp_path, cgroup, "#!/bin/bash\necho ran\n")
    assert code == 0
    assert log == "ran\n"
    assert (cgroup / "memory.max").read_text() == f"{64 * 1024 * 1024}\n"
    joined = (cgroup / "cgroup.procs").read_text().strip()
    assert joined == (tmp_path / "run" / "1" / "pid").read_text().strip()


def test_wrapper_fails_the_job_when_it_cannot_join(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg" / "gflow-job-1"
    cgroup.parent.mkdir()
    cgroup.mkdir()
    (cgroup / "cgroup.procs").mkdir()  # writing to it fails
    code, log = _launch(tmp_path, cgroup, "#!/bin/bash\necho ran\n")
    assert code == 1
    assert "cannot enter memory cgroup" in log
    assert "ran" not in log


def test_rlimit_fallback_stops_a_job_that_allocates_too_much(tmp_path: Path) -> None:
    script = job_script(
        "python3 -c 'bytearray(400 * 1024 * 1024)'", str(tmp_path), None, 200, rlimit=True
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "MemoryError" in done.stderr
