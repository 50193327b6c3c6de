"""The Slurm executor's pure half: states, sbatch flags, native dependencies, squeue output."""

from __future__ import annotations

import datetime

import pytest

from gflow.deps import Clause, Dependency, DepType, ParentView
from gflow.model import Job, State
from gflow.slurmspec import (
    SlurmSettings,
    array_dependency,
    array_spec,
    error_line,
    gflow_state,
    native_dependency,
    parse_exit_code,
    parse_squeue,
    sbatch_args,
    slurm_nice,
    slurm_time,
    unreachable,
)
from tests.unit.conftest import make_job

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("slurm", "reason", "state", "why"),
    [
        ("PENDING", "Resources", State.QUEUED, "Resources"),
        ("PENDING", "Dependency", State.QUEUED, "Dependency"),
        ("PENDING", "DependencyNeverSatisfied", State.QUEUED, "DependencyNeverSatisfied"),
        ("PENDING", "None", State.QUEUED, None),
        ("PENDING", "JobHeldUser", State.HOLD, "JobHeldUser"),
        ("PENDING", "JobHeldAdmin", State.HOLD, "JobHeldAdmin"),
        ("RUNNING", "None", State.RUNNING, None),
        ("COMPLETING", "None", State.RUNNING, None),
        ("COMPLETED", "None", State.FINISHED, None),
        ("FAILED", "NonZeroExitCode", State.FAILED, None),
        ("FAILED", "Prolog", State.FAILED, "Prolog"),
        ("TIMEOUT", "TimeLimit", State.TIMEOUT, "TimeLimit"),
        ("CANCELLED", "None", State.CANCELLED, "CancelledInSlurm"),
        ("NODE_FAIL", "None", State.FAILED, "NodeFail"),
        ("PREEMPTED", "None", State.CANCELLED, "Preempted"),
        ("OUT_OF_MEMORY", "OutOfMemory", State.FAILED, "OutOfMemory"),
        ("CANCELLED by 0", "None", State.CANCELLED, "CancelledInSlurm"),
    ],
)
def test_slurm_states_map_to_gflow_states_keeping_the_reason(
    slurm: str, reason: str, state: State, why: str | None
) -> None:
    assert gflow_state(slurm, reason) == (state, why)


def test_an_unknown_slurm_state_is_left_alone() -> None:
    assert gflow_state("SOMETHING_NEW", None) is None


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def test_squeue_lines_are_read_with_array_tasks_and_times() -> None:
    text = (
        "12|12|RUNNING|None|node1|2026-11-30T02:23:28|2026-11-30T03:23:28|gflow:ab:7\n"
        "4_3|9|FAILED|NonZeroExitCode|node2|2026-11-30T02:24:23|2026-11-30T02:24:25|(null)\n"
        "4_5|4|PENDING|Dependency||2026-12-01T00:00:00|N/A|gflow:ab:a|b\n"
        "garbage line\n"
    )
    running, failed, pending = parse_squeue(text)
    assert running.key == "12" and running.state is State.RUNNING and running.nodes == "node1"
    assert running.start == _stamp("2026-11-30T02:23:28") and running.end is None
    assert running.comment == "gflow:ab:7"
    assert failed.key == "4_3" and failed.job_id == 9 and failed.state is State.FAILED
    assert failed.end == _stamp("2026-11-30T02:24:25") and failed.comment is None
    assert pending.start is None and pending.nodes is None and pending.comment == "gflow:ab:a|b"
    assert pending.gflow_reason == "Dependency"


def test_slurm_error_messages_are_one_line_of_slurms_words() -> None:
    err = (
        "sbatch: error: invalid partition specified: nope\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )
    assert error_line(err) == "Invalid partition name specified"
    down = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    assert unreachable(down) and not unreachable(err)
    assert error_line(down) == "Unable to contact slurm controller (connect failure)"


def test_exit_codes_from_scontrol() -> None:
    assert parse_exit_code("JobId=2 JobState=FAILED ExitCode=3:0 RunTime=0") == 3
    assert parse_exit_code("JobId=2 ExitCode=0:9") == 137
    assert parse_exit_code("JobId=2 JobState=PENDING") is None


def _job(**kw: object) -> Job:
    base: dict[str, object] = {
        "name": "train",
        "command": ("python", "train.py"),
        "workdir": "/home/ann/exp",
        "submit_time": NOW,
    }
    return make_job(7, **{**base, **kw})


def test_resources_and_options_become_sbatch_flags() -> None:
    job = _job(
        gpus=2,
        time_limit=90 * 60 + 1,
        memory_mb=2048,
        priority=5,
        begin_at=NOW + 30,
        cpus_per_task=4,
    )
    settings = SlurmSettings(partition="gpu", account="lab", qos="long", sbatch_args=("-C", "a100"))
    args = sbatch_args(job, settings, mark="gflow:x:7", log_path="/s/logs/7.log", dependency="a:1")
    assert args[0] == "--parsable"
    for flag in (
        "--job-name=train",
        "--comment=gflow:x:7",
        "--chdir=/home/ann/exp",
        "--output=/s/logs/7.log",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",
        "--kill-on-invalid-dep=no",
        "--partition=gpu",
        "--account=lab",
        "--qos=long",
        "--gres=gpu:2",
        "--time=0-01:31:00",
        "--mem=2048M",
        "--cpus-per-task=4",
        "--nice=5",
        "--dependency=a:1",
    ):
        assert flag in args
    begin = next(a for a in args if a.startswith("--begin="))
    assert _stamp(begin.removeprefix("--begin=")) >= NOW + 30
    assert args[-2:] == ["-C", "a100"]


def test_a_plain_job_gets_no_resource_flags() -> None:
    args = sbatch_args(_job(), SlurmSettings(), mark="m", log_path="/l")
    assert not [
        a
        for a in args
        if a.split("=")[0] in ("--gres", "--time", "--mem", "--nice", "--cpus-per-task")
    ]
    assert not [a for a in args if a.startswith(("--partition", "--dependency", "--array"))]


def test_time_limits_round_up_to_whole_minutes_and_priority_maps_to_nice() -> None:
    assert slurm_time(1) == "0-00:01:00"
    assert slurm_time(3600) == "0-01:00:00"
    assert slurm_time(2 * 86400 + 61) == "2-00:02:00"
    assert slurm_nice(10) is None and slurm_nice(200) is None and slurm_nice(0) == 10


def test_array_specs_are_compact_with_a_throttle() -> None:
    assert array_spec([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert array_spec(list(range(1000)), 4) == "0-999%4"


# ------------------------------------------------------------------ dependencies

SIDS = {1: "101", 2: "102", 3: "103_0", 4: "104"}


def _views(**states: str) -> dict[int, ParentView]:
    out = {}
    for key, state in states.items():
        started = NOW - 10 if state in ("Running", "Finished", "Failed") else None
        ended = NOW - 5 if state in ("Finished", "Failed", "Cancelled") else None
        out[int(key.removeprefix("j"))] = ParentView(state, started, ended)
    return out


def _dep(*clauses: tuple[DepType, tuple[int, ...]], **kw: object) -> Dependency:
    return Dependency(clauses=tuple(Clause(t, ps) for t, ps in clauses), **kw)  # type: ignore[arg-type]


def test_pending_parents_in_slurm_become_native_dependencies() -> None:
    views = _views(j1="Queued", j2="Running", j4="Queued")
    dep = _dep((DepType.AFTEROK, (1, 2)), (DepType.AFTERANY, (4,)))
    assert native_dependency(dep, views, SIDS, NOW) == "afterok:101:102,afterany:104"


def test_decided_parents_are_judged_by_gflow_and_left_out() -> None:
    views = _views(j1="Finished", j2="Queued", j4="Failed")
    dep = _dep((DepType.AFTEROK, (1, 2)), (DepType.AFTERNOTOK, (4,)))
    assert native_dependency(dep, views, SIDS, NOW) == "afterok:102"
    done = _views(j1="Finished", j2="Finished")
    assert native_dependency(_dep((DepType.AFTEROK, (1, 2))), done, SIDS, NOW) == ""


def test_a_dependency_that_can_never_be_met_is_left_to_gflow() -> None:
    views = _views(j1="Failed", j2="Queued")
    assert native_dependency(_dep((DepType.AFTEROK, (1, 2))), views, SIDS, NOW) is None


def test_a_parent_not_in_slurm_makes_gflow_hold_the_job() -> None:
    views = _views(j1="Queued", j9="Queued")
    assert native_dependency(_dep((DepType.AFTEROK, (1, 9))), views, SIDS, NOW) is None


def test_any_of_becomes_slurms_question_mark_without_failed_alternatives() -> None:
    views = _views(j1="Queued", j2="Failed", j4="Running")
    dep = _dep(
        (DepType.AFTEROK, (1,)), (DepType.AFTEROK, (2,)), (DepType.AFTEROK, (4,)), any_of=True
    )
    assert native_dependency(dep, views, SIDS, NOW) == "afterok:101?afterok:104"


def test_an_any_of_alternative_needing_several_jobs_is_held_by_gflow() -> None:
    views = _views(j1="Queued", j2="Queued", j4="Queued")
    dep = _dep((DepType.AFTEROK, (1, 2)), (DepType.AFTERANY, (4,)), any_of=True)
    assert native_dependency(dep, views, SIDS, NOW) is None


def test_after_with_a_delay_and_singleton_are_native() -> None:
    views = _views(j1="Running")
    dep = Dependency(clauses=(Clause(DepType.AFTER, (1,), 300),), singleton=True)
    assert native_dependency(dep, views, SIDS, NOW) == "after:101+5,singleton"
    started = _views(j1="Running")
    assert native_dependency(_dep((DepType.AFTER, (1,))), started, SIDS, NOW) == ""


def test_moab_on_count_is_gflows_to_hold() -> None:
    views = _views(j1="Queued")
    dep = Dependency(on_count=1, on_pool=(Clause(DepType.AFTEROK, (1,)),))
    assert native_dependency(dep, views, SIDS, NOW) is None


def test_array_tasks_are_named_as_slurm_names_them() -> None:
    views = _views(j3="Queued")
    assert native_dependency(_dep((DepType.AFTERANY, (3,))), views, SIDS, NOW) == "afterany:103_0"


def test_afternotok_on_a_whole_array_is_held_by_gflow_until_decided() -> None:
    array = Dependency(clauses=(Clause(DepType.AFTERNOTOK, (1, 2), group=1),))
    running = _views(j1="Finished", j2="Running")  # one task succeeded: not decided
    assert native_dependency(array, running, SIDS, NOW) is None
    either = Dependency(
        clauses=(array.clauses[0], Clause(DepType.AFTEROK, (4,))), any_of=True
    )  # the array's alternative is still alive: Slurm cannot hold it
    assert native_dependency(either, {**running, **_views(j4="Queued")}, SIDS, NOW) is None
    ended = _views(j1="Finished", j2="Failed")
    assert native_dependency(array, ended, SIDS, NOW) == ""


def test_array_tasks_with_one_dependency_share_it() -> None:
    assert array_dependency([(1, "afterok:7"), (2, "afterok:7")]) == "afterok:7"
    assert array_dependency([(1, ""), (2, "")]) == ""


def test_each_task_after_the_same_task_of_one_slurm_array_is_aftercorr() -> None:
    tasks = [(1, "afterany:5,afterok:90_1"), (2, "afterany:5,afterok:90_2")]
    assert array_dependency(tasks) == "afterany:5,aftercorr:90"


@pytest.mark.parametrize(
    "tasks",
    [
        [(1, "afterok:90_2"), (2, "afterok:90_1")],  # not the same task id
        [(1, "afterok:90_1"), (2, "afterok:91_2")],  # two arrays
        [(1, "afterok:90_1"), (2, "afterany:90_2")],  # not afterok
        [(1, "afterok:90_1"), (2, "")],  # one parent task already done
        [(1, "afterok:90_1?afterok:5"), (2, "afterok:90_2?afterok:5")],  # an any-of
        [(1, "afterok:3"), (2, "afterok:4")],  # plain jobs
    ],
)
def test_other_differences_make_tasks_go_one_by_one(tasks: list[tuple[int, str]]) -> None:
    assert array_dependency(tasks) is None
