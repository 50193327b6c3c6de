"""What a dependency means on a whole array, in Slurm's ``?`` lists, and when it changes.

Checked against a real Slurm's behaviour: an array's id (or a name its tasks share) is
the whole array, judged as Slurm judges one; every job of a ``?`` list is an alternative
of its own; ``gjob update`` keeps what it is not told to change and can clear a
dependency. Jobs are held back by gates (files), never by sleeps.
"""

from __future__ import annotations

import json

from tests.helpers import Gflow, column, parents, refused


def tasks(g: Gflow, *argv: str, script: str) -> list[int]:
    """Submit an array of tasks 1-3 running ``script`` (``$T`` is the task id)."""
    command = script.replace("$T", "$GFLOW_ARRAY_TASK_ID")
    return g.submit_many("--array", "1-3", *argv, "sh", "-c", command)


def gated(g: Gflow, task: int, gate: str, code: int) -> str:
    """Task ``task`` waits for ``gate`` and exits ``code``; the other tasks succeed."""
    return f'if [ "$T" = {task} ]; then {g.gate(gate, code)}; fi'


def deps_json(g: Gflow, job_id: int) -> dict[str, object]:
    return dict(json.loads(g.job(job_id)["deps"] or "{}"))


# ---------------------------------------------------------------- a whole array


def test_a_moab_name_of_an_array_means_the_whole_array(gflow_process: Gflow) -> None:
    g = gflow_process
    prep = tasks(g, "-n", "prepA", script=gated(g, 1, "t1", 1))
    child = g.submit("-W", "depend=afterok:prepA", "true")
    assert sorted(parents(g, child)) == prep
    g.until_state(prep[2], "Finished")
    assert g.state(child) == "Queued"  # task 1 still runs
    g.open_gate("t1")
    assert g.wait(child) == 125
    assert g.job(child)["reason"] == f"DependencyFailed:{prep[0]}"


def test_afternotok_on_an_array_waits_for_every_task_and_one_failure(
    gflow_process: Gflow,
) -> None:
    g = gflow_process
    prep = tasks(g, script=gated(g, 1, "t1", 1))
    child = g.submit("-d", f"afternotok:{prep[0]}", "true")
    g.until_state(prep[2], "Finished")  # a task succeeded: not a verdict yet
    assert g.state(child) == "Queued"
    assert column(g, child, "DEPENDENCY") == f"afternotok:{prep[0]}"
    g.open_gate("t1")
    assert g.wait(child) == 0


def test_depends_on_any_array_is_met_by_one_successful_task(gflow_process: Gflow) -> None:
    g = gflow_process
    prep = tasks(g, script=f'if [ "$T" = 1 ]; then exit 1; fi; {g.gate("rest")}')
    child = g.submit("--depends-on-any", str(prep[0]), "true")
    g.until_state(prep[0], "Failed")
    assert g.state(child) == "Queued"  # tasks 2 and 3 can still succeed
    g.open_gate("rest")
    assert g.wait(child) == 0


def test_aftercorr_on_a_job_that_is_not_an_array_runs_every_task_after_it(
    gflow_process: Gflow,
) -> None:
    g = gflow_process
    parent = g.submit(g.gate("go"))
    second = g.submit_many("--array", "1-3", "-d", f"aftercorr:{parent}", "true")
    assert [parents(g, s) for s in second] == [[parent]] * 3
    assert {g.state(s) for s in second} == {"Queued"}
    g.open_gate("go")
    assert g.wait(*second) == 0


# ---------------------------------------------------------------- Slurm's ? lists


def test_every_job_of_a_question_mark_list_is_its_own_alternative(
    gflow_process: Gflow,
) -> None:
    g = gflow_process
    a = g.submit("sh", "-c", "exit 1")
    b = g.submit("true")
    c = g.submit(g.gate("c"))
    job = g.submit("-d", f"afterok:{a}:{b}?afterany:{c}", "true")
    assert g.wait(job) == 0  # b succeeded: a OR b OR c, not (a AND b) OR c
    assert g.state(c) == "Running"
    g.open_gate("c")


# ---------------------------------------------------------------- references and refusals


def test_a_recent_submission_pruned_from_the_history_is_refused(gflow_process: Gflow) -> None:
    g = gflow_process
    done = g.submit("true")
    assert g.wait(done) == 0
    g.api().post("/v1/admin/prune", {"older_than_days": 0})
    message = refused(g, "gbatch", "--depends-on", "@", "true")
    assert message == f"Dependency job {done} not found (@ is job {done})"
    assert refused(g, "gbatch", "--depends-on", str(done), "true") == (
        f"Dependency job {done} not found"
    )


def test_a_fresh_daemon_says_the_dependency_is_not_found(gflow_process: Gflow) -> None:
    assert refused(gflow_process, "gbatch", "--depends-on", "1", "true") == (
        "Dependency job 1 not found"
    )


def test_a_job_name_may_start_with_a_digit_in_moab_syntax(gflow_process: Gflow) -> None:
    g = gflow_process
    prep = g.submit("-n", "7prep", "true")
    child = g.submit("-W", "depend=afterok:7prep", "true")
    assert parents(g, child) == [prep]
    assert g.wait(child) == 0


def test_the_same_before_release_counts_once(gflow_process: Gflow) -> None:
    g = gflow_process
    target = g.submit("-W", "depend=on:2", "true")
    g.submit("-W", f"depend=beforeok:{target},beforeok:{target}", "true")
    assert len(deps_json(g, target)["on_pool"]) == 1  # type: ignore[arg-type]
    other = g.submit("-W", f"depend=beforeany:{target}", "true")
    assert g.wait(other) == 0
    assert g.wait(target) == 0


def test_kill_on_invalid_dep_is_slurms_auto_cancel(gflow_process: Gflow) -> None:
    g = gflow_process
    bad = g.submit("sh", "-c", "exit 1")
    kept = g.submit("-d", str(bad), "--kill-on-invalid-dep=no", "true")
    killed = g.submit("-d", str(bad), "--kill-on-invalid-dep", "yes", "true")
    assert g.wait(killed) == 125
    g.until(lambda: g.job(kept)["reason"] == "DependencyNeverSatisfied")
    script = g.work / "job.sh"
    script.write_text(f"#!/bin/sh\n#SBATCH --dependency={bad} --kill-on-invalid-dep=no\ntrue\n")
    directive = g.submit(str(script))
    g.until(lambda: g.job(directive)["reason"] == "DependencyNeverSatisfied")
    message = refused(g, "gbatch", "--kill-on-invalid-dep=maybe", "true", code=2)
    assert "--kill-on-invalid-dep" in message and "yes" in message


# ---------------------------------------------------------------- changing a dependency


def test_update_of_the_dependency_keeps_no_auto_cancel(gflow_process: Gflow) -> None:
    g = gflow_process
    gate = g.submit(g.gate("go"))
    bad = g.submit("sh", "-c", "exit 1")
    child = g.submit("--no-auto-cancel", "-d", str(gate), "true")
    g.run("gjob", "update", str(child), "-d", str(bad))
    assert parents(g, child) == [bad]
    assert deps_json(g, child)["auto_cancel"] is False
    g.until(lambda: g.job(child)["reason"] == "DependencyNeverSatisfied")
    assert g.state(child) == "Queued"
    g.run("gjob", "update", str(child), "--kill-on-invalid-dep=yes")  # only that changes
    assert g.wait(child) == 125
    g.open_gate("go")


def test_a_dependency_can_be_cleared(gflow_process: Gflow) -> None:
    g = gflow_process
    gate = g.submit(g.gate("go"))
    children = [g.submit("-d", str(gate), "true") for _ in range(3)]
    g.run("gjob", "update", str(children[0]), "-d", "")
    g.run("gjob", "update", str(children[1]), "--dependency", "0")
    g.run("gjob", "update", str(children[2]), "--clear-deps")
    assert g.wait(*children) == 0
    assert [parents(g, c) for c in children] == [[], [], []]
    assert g.state(gate) == "Running"
    g.open_gate("go")


def test_dry_run_cancel_names_a_release_after_a_delay(gflow_process: Gflow) -> None:
    g = gflow_process
    parent = g.submit("-H", "true")
    child = g.submit("-d", f"after:{parent}+10", "true")
    out = g.run("gcancel", "--dry-run", str(parent)).stdout
    assert f"dependent {child} " in out
    assert f"would be released 10 min later (after:{parent}+10)" in out


# ---------------------------------------------------------------- redo


def test_a_redone_array_task_keeps_its_task_id_and_its_place(gflow_process: Gflow) -> None:
    g = gflow_process
    marker = g.work / "t2-tried"
    script = f'echo "task $T"; [ "$T" = 2 ] && [ ! -e {marker} ] && touch {marker} && exit 1'
    script += "; true"
    array = tasks(g, "-n", "redo-arr", script=script)
    assert g.wait(*array) == 1
    out = g.run("gjob", "redo", str(array[1])).stdout
    again = int(out.split()[3])
    assert g.wait(again) == 0
    assert g.log(again) == "task 2\n"
    row = g.job(again)
    assert (row["group_id"], row["task_id"], row["redo_of"]) == (array[0], 2, array[1])
    after = g.submit("-d", f"afterok:{array[0]}", "true")  # the array: its newest attempts
    assert sorted(parents(g, after)) == [array[0], array[2], again]
    assert g.wait(after) == 0


def test_a_cascading_redo_keeps_the_task_ids_of_the_tasks_it_redoes(gflow_process: Gflow) -> None:
    g = gflow_process
    marker = g.work / "a2-tried"
    first = tasks(g, script=f'[ "$T" = 2 ] && [ ! -e {marker} ] && touch {marker} && exit 1; true')
    second = tasks(g, "-d", f"aftercorr:{first[0]}", script='echo "b $T"')
    assert g.wait(*second) == 125  # task 2 of the second array was cancelled with its pair
    out = g.run("gjob", "redo", str(first[1]), "--cascade").stdout.splitlines()
    redone = [int(line.split()[3]) for line in out]
    assert g.wait(*redone) == 0
    rows = [g.job(r) for r in redone]
    assert [(r["group_id"], r["task_id"]) for r in rows] == [(first[0], 2), (second[0], 2)]
    assert g.log(redone[1]) == "b 2\n"


def test_a_second_cascading_redo_says_what_was_redone(gflow_process: Gflow) -> None:
    g = gflow_process
    root = g.submit("sh", "-c", "exit 1")
    child = g.submit("-d", str(root), "true")
    assert g.wait(child) == 125
    first = g.run("gjob", "redo", str(root), "--cascade").stdout.split("\n")
    redone = [int(line.split()[3]) for line in first if line]
    assert g.wait(*redone) == 1  # the root fails again: its dependent is cancelled again
    message = refused(g, "gjob", "redo", str(root), "--cascade")
    assert message == (
        f"already redone: job {root} as job {redone[0]}, job {child} as job {redone[1]}; "
        f"nothing was submitted (gjob redo {root} --cascade --again makes another set)"
    )
    more = g.run("gjob", "redo", str(root), "--cascade", "--again").stdout
    assert more.count("as a redo of job") == 2
