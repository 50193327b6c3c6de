"""Dependencies end to end: every example of the two seed documents, through the real CLIs.

gflow's guide (``--depends-on``, ``@``/``@~N``, ``--depends-on-all/-any``, auto-cancel,
tree view, dry-run cancel, validation errors, the polling script), Moab/Torque's
``-W depend=`` types including ``before*`` with ``on:N``, and Slurm's ``-d`` forms
(``?``, ``after:ID+min``, ``aftercorr``, ``singleton``); then recovery (redo --cascade,
automatic retries). Jobs are held back by gates (files), never by sleeps.
"""

from __future__ import annotations

import itertools
import subprocess

from tests.helpers import BIN, Gflow, column, parents, refused, snapshot


def table(g: Gflow, *argv: str) -> dict[int, list[str]]:
    """``gqueue`` rows by job id (the first column)."""
    lines = g.run("gqueue", *argv).stdout.strip().splitlines()[1:]
    return {int(line.split()[0]): line.split()[1:] for line in lines}


def started_after(g: Gflow, child: int, *parents: int) -> None:
    """The child started no earlier than each parent ended (database timestamps)."""
    start = g.job(child)["start_time"]
    assert start is not None
    for p in parents:
        assert g.job(p)["end_time"] <= start + 1e-6


# ---------------------------------------------------------------- gflow's guide


def test_simple_dependency_and_linear_pipeline_with_at(gflow_process: Gflow) -> None:
    g = gflow_process
    first = g.submit("--time", "10", "-n", "collect", g.gate("go"))
    ids = [first]
    for name in ("preprocess", "train", "evaluate"):
        ids.append(g.submit("--time", "30", "--depends-on", "@", "-n", name, "true"))
    assert [parents(g, i) for i in ids[1:]] == [[ids[0]], [ids[1]], [ids[2]]]
    assert column(g, ids[1], "REASON") == "WaitingForDependency"
    assert column(g, ids[1], "DEPENDENCY") == f"afterok:{ids[0]}"
    g.open_gate("go")
    assert g.wait(ids[-1]) == 0
    assert [g.state(i) for i in ids] == ["Finished"] * 4
    for parent, child in itertools.pairwise(ids):
        started_after(g, child, parent)


def test_branching_with_recent_references(gflow_process: Gflow) -> None:
    """The seed's ``@~N``: @~1 is the second most recent submission, @~2 the third."""
    g = gflow_process
    main = g.submit("-n", "main_process", g.gate("go"))
    a = g.submit("--depends-on", "@", "-n", "analysis_a", "true")
    b = g.submit("--depends-on", "@~1", "-n", "analysis_b", "true")
    c = g.submit("--depends-on", "@~2", "-n", "analysis_c", "true")
    assert (parents(g, a), parents(g, b), parents(g, c)) == ([main], [main], [main])
    g.open_gate("go")
    assert g.wait(a, b, c) == 0


def test_join_with_depends_on_all(gflow_process: Gflow) -> None:
    g = gflow_process
    parts = [g.submit("-n", f"part{i}", g.gate(f"p{i}")) for i in (1, 2, 3)]
    merge = g.submit("--depends-on-all", "@,@~1,@~2", "-n", "merge", "true")
    assert sorted(parents(g, merge)) == parts  # three distinct parents, no duplicate
    g.open_gate("p1")
    g.open_gate("p3")
    g.until(lambda: g.state(parts[2]) == "Finished" and g.state(parts[0]) == "Finished")
    assert g.state(merge) == "Queued"
    assert column(g, merge, "DEPENDENCY") == f"afterok:{parts[1]}"
    shown = g.run("gjob", "show", str(merge)).stdout
    assert f"WaitingFor={parts[1]}" in shown
    g.open_gate("p2")
    assert g.wait(merge) == 0
    started_after(g, merge, *parts)


def test_fallback_with_depends_on_any_survives_a_failed_source(gflow_process: Gflow) -> None:
    """An OR-dependent is not cancelled when one parent fails and another may still succeed."""
    g = gflow_process
    a = g.submit("-n", "source_a", g.gate("a", code=1))
    b = g.submit("-n", "source_b", g.gate("b"))
    c = g.submit("-n", "source_c", g.gate("c", code=2))
    process = g.submit("--depends-on-any", f"{a},{b},{c}", "-n", "process", "true")
    g.open_gate("a")
    g.open_gate("c")
    g.until_state(c, "Failed")
    g.until_state(a, "Failed")
    assert g.state(process) == "Queued"
    assert column(g, process, "REASON") == "WaitingForDependency"
    g.open_gate("b")
    assert g.wait(process) == 0


def test_depends_on_any_is_cancelled_when_every_source_fails(gflow_process: Gflow) -> None:
    g = gflow_process
    a = g.submit("sh", "-c", "exit 1")
    b = g.submit("sh", "-c", "exit 1")
    process = g.submit("--depends-on-any", f"{a},{b}", "true")
    assert g.wait(process) == 125
    assert g.job(process)["reason"] in (f"DependencyFailed:{a}", f"DependencyFailed:{b}")


def test_complex_and_or_workflow_and_its_tree(gflow_process: Gflow) -> None:
    g = gflow_process
    j1 = g.submit("-n", "collect_method_a", g.gate("a"))
    j2 = g.submit("-n", "collect_method_b", g.gate("b", code=1))
    j3 = g.submit("--depends-on-any", f"{j1},{j2}", "-n", "process_data", "true")
    j4 = g.submit("--depends-on", str(j3), "-n", "preprocess_features", "true")
    j5 = g.submit("--depends-on", str(j3), "-n", "preprocess_labels", "true")
    j6 = g.submit("--depends-on-all", f"{j4},{j5}", "-n", "train", g.gate("train"))
    j7 = g.submit("--depends-on", str(j6), "-n", "evaluate", "true")
    g.open_gate("b")
    g.until_state(j2, "Failed")
    assert g.state(j3) == "Queued"
    g.open_gate("a")
    g.until_state(j6, "Running")
    tree = g.run("gqueue", "-a", "-t", "-f", "JOBID,NAME,ST").stdout.splitlines()
    assert tree[0].split() == ["JOBID", "NAME", "ST"]
    assert [line.split()[-1] for line in tree[1:]] == ["CD", "CD", "CD", "R", "PD", "CD", "F"]
    assert tree[1].startswith(f"{j1} ")
    assert tree[2].startswith(f"└─{j3} ") and f"process_data (also after {j2})" in tree[2]
    assert tree[3].startswith(f"  ├─{j4} ")
    assert tree[4].startswith(f"  │ └─{j6} ") and f"train (also after {j5})" in tree[4]
    assert tree[5].startswith(f"  │   └─{j7} ")
    assert tree[6].startswith(f"  └─{j5} ")
    assert tree[7].startswith(f"{j2} ")
    g.open_gate("train")
    assert g.wait(j7) == 0
    assert [g.state(j) for j in (j1, j2, j3, j4, j5, j6, j7)] == [
        "Finished",
        "Failed",
        *["Finished"] * 5,
    ]


def test_tree_view_of_the_seed(gflow_process: Gflow) -> None:
    g = gflow_process
    prep = g.submit("-n", "data-prep", "true")
    assert g.wait(prep) == 0
    a = g.submit("--depends-on", str(prep), "-n", "train-model-a", g.gate("go"))
    b = g.submit("--depends-on", str(prep), "-n", "train-model-b", g.gate("go"))
    ea = g.submit("--depends-on", str(a), "-n", "eval-a", "true")
    eb = g.submit("--depends-on", str(b), "-n", "eval-b", "true")
    g.until(lambda: g.state(a) == "Running" and g.state(b) == "Running")
    lines = g.run("gqueue", "-a", "-t").stdout.splitlines()
    assert lines[0].split()[:4] == ["JOBID", "NAME", "ST", "TIME"]
    body = "\n".join(lines[1:])
    assert body.splitlines()[0].startswith(f"{prep} ")
    assert body.splitlines()[1].startswith(f"├─{a} ")
    assert body.splitlines()[2].startswith(f"│ └─{ea} ")
    assert body.splitlines()[3].startswith(f"└─{b} ")
    assert body.splitlines()[4].startswith(f"  └─{eb} ")
    assert "(WaitingForDependency)" in body.splitlines()[2]
    g.open_gate("go")
    assert g.wait(ea, eb) == 0


def test_cascade_cancellation_through_several_levels(gflow_process: Gflow) -> None:
    g = gflow_process
    c = g.submit("-n", "c", g.gate("go", code=1))
    b = g.submit("--depends-on", "@", "-n", "b", "true")
    a = g.submit("--depends-on", "@", "-n", "a", "true")
    z = g.submit("--depends-on", "@", "-n", "z", "true")
    g.open_gate("go")
    assert g.wait(z) == 125
    rows = table(g, "-a", "-f", "JOBID,ST,REASON")
    assert rows[c] == ["F", "ExitCode:1"]
    assert rows[b] == ["CA", f"DependencyFailed:{c}"]
    assert rows[a] == ["CA", f"DependencyFailed:{b}"]
    assert rows[z] == ["CA", f"DependencyFailed:{a}"]
    assert all(g.job(j)["start_time"] is None for j in (a, b, z))


def test_cancelled_and_timed_out_parents_also_cascade(gflow_process: Gflow) -> None:
    g = gflow_process
    slow = g.submit("--time", "0:01", "sleep", "30")
    queued = g.submit(g.gate("never"))
    after_slow = g.submit("--depends-on", str(slow), "true")
    after_queued = g.submit("--depends-on", str(queued), "true")
    g.run("gcancel", str(queued))
    assert g.wait(after_queued) == 125
    assert g.job(after_queued)["reason"] == f"DependencyFailed:{queued}"
    assert g.wait(after_slow, timeout=40) == 125
    assert g.state(slow) == "Timeout"
    assert g.job(after_slow)["reason"] == f"DependencyFailed:{slow}"


def test_no_auto_cancel_stays_queued_and_visibly_never_satisfied(gflow_process: Gflow) -> None:
    g = gflow_process
    bad = g.submit("sh", "-c", "exit 1")
    train = g.submit("--depends-on", str(bad), "--no-auto-cancel", "-n", "train", "true")
    g.until(lambda: g.job(train)["reason"] == "DependencyNeverSatisfied")
    assert g.state(train) == "Queued"
    assert table(g, "-f", "JOBID,ST,REASON")[train] == ["PD", "DependencyNeverSatisfied"]
    assert column(g, train, "NODELIST(REASON)") == "(DependencyNeverSatisfied)"
    g.run("gcancel", str(train))
    assert g.state(train) == "Cancelled"


def test_an_already_final_parent_is_judged_at_once(gflow_process: Gflow) -> None:
    g = gflow_process
    ok = g.submit("true")
    bad = g.submit("sh", "-c", "exit 4")
    assert g.wait(ok) == 0 and g.wait(bad) == 4
    after_ok = g.submit("--depends-on", str(ok), "true")
    after_bad = g.submit("--depends-on", str(bad), "true")
    notok = g.submit("-d", f"afternotok:{bad}", "true")
    assert g.wait(after_ok, notok) == 0
    assert g.state(after_bad) == "Cancelled"
    assert g.job(after_bad)["reason"] == f"DependencyFailed:{bad}"


# ---------------------------------------------------------------- validation


def test_missing_self_and_malformed_dependencies_are_refused(gflow_process: Gflow) -> None:
    g = gflow_process
    one = g.submit("-H", "true")
    msg = refused(g, "gbatch", "--depends-on", "999", "true")
    assert msg == "Dependency job 999 not found"
    msg = refused(g, "gbatch", "--depends-on", str(one + 1), "true")
    assert msg == f"Dependency job {one + 1} not found"  # the id it would have got
    msg = refused(g, "gbatch", "--depends-on-all", f"{one},998", "true")
    assert "Dependency job 998 not found" in msg
    msg = refused(g, "gbatch", "-d", "afterok:abc", "true", code=2)
    assert "'abc'" in msg
    msg = refused(g, "gbatch", "-d", f"afterok:{one},afterok:{one}?afterany:{one}", "true", code=2)
    assert "all by ','" in msg
    msg = refused(g, "gbatch", "-d", f"afterfoo:{one}", "true", code=2)
    assert "'afterfoo'" in msg
    msg = refused(g, "gbatch", "-W", "depend=on:zero", "true", code=2)
    assert "'on:zero'" in msg
    msg = refused(g, "gbatch", "-W", f"depend=before:{one}", "true")
    assert "not submitted with on:<count>" in msg
    msg = refused(
        g, "gbatch", "--depends-on-any", f"{one},{one + 7}", "-d", str(one), "true", code=2
    )
    assert "any-of" in msg
    msg = refused(g, "gbatch", "-d", "aftercorr:1", "true")
    assert "aftercorr needs an array job" in msg
    msg = refused(g, "gjob", "update", str(one), "--depends-on", str(one))
    assert msg == "Job cannot depend on itself"


def test_cycle_via_update_is_refused_with_the_path(gflow_process: Gflow) -> None:
    g = gflow_process
    j1 = g.submit("-H", "-n", "job_a", "true")
    j2 = g.submit("--depends-on", str(j1), "-n", "job_b", "true")
    j3 = g.submit("--depends-on-all", f"{j1},{j2}", "-n", "job_c", "true")
    msg = refused(g, "gjob", "update", str(j1), "--depends-on", str(j3))
    assert msg == (
        f"Circular dependency detected: Job {j1} depends on Job {j3}, "
        f"which has a path back to Job {j1}"
    )
    msg = refused(g, "gjob", "update", str(j1), "--depends-on-any", f"{j2},999")
    assert "Dependency job 999 not found" in msg
    g.run("gcancel", str(j1))


def test_update_rewires_a_waiting_job(gflow_process: Gflow) -> None:
    g = gflow_process
    gate = g.submit(g.gate("go"))
    other = g.submit("true")
    child = g.submit("--depends-on", str(gate), "true")
    g.run("gjob", "update", str(child), "--depends-on", str(other))
    assert parents(g, child) == [other]
    assert g.wait(child) == 0
    g.open_gate("go")


# ---------------------------------------------------------------- gcancel --dry-run


def test_dry_run_cancel_lists_every_transitive_dependent(gflow_process: Gflow) -> None:
    g = gflow_process
    prep = g.submit("-n", "prep", g.gate("prep"))
    alt = g.submit("-n", "alt", g.gate("alt"))
    train = g.submit("--depends-on", str(prep), "-n", "train", "true")
    evaluate = g.submit("--depends-on", str(train), "-n", "eval", "true")
    keep = g.submit("--depends-on", str(train), "--no-auto-cancel", "-n", "keep", "true")
    stuck = g.submit("--depends-on", str(keep), "-n", "stuck", "true")
    either = g.submit("--depends-on-any", f"{prep},{alt}", "-n", "either", "true")
    cleanup = g.submit("-d", f"afternotok:{prep}", "-n", "cleanup", "true")
    before = snapshot(g)
    out = g.run("gcancel", "--dry-run", str(prep)).stdout
    assert snapshot(g) == before
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"Job {prep} (prep")
    assert "would cancel" in lines[0]
    listed = {int(line.split()[1]): line for line in lines[1:]}
    assert set(listed) == {train, evaluate, keep, stuck, cleanup}
    assert f"DependencyFailed:{prep}" in listed[train]
    assert f"DependencyFailed:{train}" in listed[evaluate]
    assert f"DependencyNeverSatisfied: job {train}" in listed[keep]
    assert f"waits on job {keep}, which never starts" in listed[stuck]
    assert "released" in listed[cleanup]
    assert either not in listed  # it still has a live alternative
    g.run("gcancel", str(prep))
    g.until_state(evaluate, "Cancelled")
    assert g.job(keep)["reason"] == "DependencyNeverSatisfied"
    assert g.state(either) == "Queued"
    assert g.wait(cleanup) == 0
    g.open_gate("alt")
    assert g.wait(either) == 0
    g.run("gcancel", f"{keep},{stuck}")


# ---------------------------------------------------------------- Moab / Torque


def test_moab_after_types_and_names(gflow_process: Gflow) -> None:
    g = gflow_process
    prep = g.submit("-n", "prep", g.gate("go"))
    fail = g.submit("-n", "fail", "sh", "-c", "exit 3")
    started = g.submit("-W", "depend=after:prep", "true")
    ok = g.submit("-W", "depend=afterok:prep", "true")
    notok = g.submit("-W", f"x=depend:afternotok:{fail}", "true")
    anyway = g.submit("-W", f"depend=afterany:prep:{fail}", "true")
    assert parents(g, ok) == [prep]
    assert g.wait(started, notok) == 0  # after: as soon as prep started
    assert g.state(prep) == "Running"
    assert g.state(ok) == "Queued" and g.state(anyway) == "Queued"
    g.open_gate("go")
    assert g.wait(ok, anyway) == 0


def test_moab_before_releases_an_on_count_job(gflow_process: Gflow) -> None:
    g = gflow_process
    target = g.submit("-W", "depend=on:2", "-n", "target", "true")
    assert column(g, target, "REASON") == "WaitingForDependency"
    first = g.submit("-W", f"depend=before:{target}", g.gate("one"))
    g.until_state(first, "Running")
    assert g.state(target) == "Queued"  # one release of two
    second = g.submit("-W", "depend=beforeok:target", g.gate("two"))
    assert sorted(parents(g, target)) == [first, second]
    assert column(g, target, "DEPENDENCY") == "on:1"
    g.open_gate("two")
    assert g.wait(target) == 0
    started_after(g, target, second)
    g.open_gate("one")
    assert g.wait(first) == 0


def test_moab_beforenotok_and_beforeany(gflow_process: Gflow) -> None:
    g = gflow_process
    on_fail = g.submit("-W", "depend=on:1", "-n", "on_fail", "true")
    on_end = g.submit("-d", "on:1", "-n", "on_end", "true")  # Moab clauses in -d too
    g.submit("-W", f"depend=beforenotok:{on_fail}", "-d", "beforeany:on_end", "false")
    assert g.wait(on_fail, on_end) == 0


def test_moab_beforeok_that_fails_cancels_its_target(gflow_process: Gflow) -> None:
    g = gflow_process
    target = g.submit("-W", "depend=on:1", "true")
    bad = g.submit("-W", f"depend=beforeok:{target}", "sh", "-c", "exit 1")
    assert g.wait(target) == 125
    assert g.job(target)["reason"] == f"DependencyFailed:{bad}"


def test_moab_before_refusals(gflow_process: Gflow) -> None:
    g = gflow_process
    plain = g.submit("-H", "true")
    done = g.submit("-W", "depend=on:1", "true")
    g.submit("-W", f"depend=before:{done}", "true")
    assert g.wait(done) == 0
    assert "was not submitted with on:<count>" in refused(
        g, "gbatch", "-W", f"depend=before:{plain}", "true"
    )
    assert "is Finished, not Queued or Hold" in refused(
        g, "gbatch", "-W", f"depend=beforeany:{done}", "true"
    )
    target = g.submit("-W", "depend=on:1", "-n", "t", "true")
    child = g.submit("--depends-on", str(target), "true")
    msg = refused(g, "gbatch", "-W", f"depend=afterok:{child},before:{target}", "true")
    assert msg.startswith("Circular dependency detected: ")
    g.run("gcancel", f"{plain},{target}")


# ---------------------------------------------------------------- Slurm


def test_slurm_question_mark_means_any(gflow_process: Gflow) -> None:
    g = gflow_process
    a = g.submit("sh", "-c", "exit 1")
    b = g.submit(g.gate("b"))
    job = g.submit("-d", f"afterok:{a}?afterok:{b}", "true")
    g.until_state(a, "Failed")
    assert g.state(job) == "Queued"
    assert column(g, job, "DEPENDENCY") == f"afterok:{b}"  # a failed: no longer awaited
    assert g.show(job)["remaining"] == f"afterok:{b}"
    g.open_gate("b")
    assert g.wait(job) == 0


def test_slurm_comma_means_all_and_types_mix(gflow_process: Gflow) -> None:
    g = gflow_process
    a = g.submit(g.gate("a", code=5))
    b = g.submit("true")
    job = g.submit("--dependency", f"afternotok:{a},afterany:{b}", "true")
    g.until_state(b, "Finished")
    assert column(g, job, "DEPENDENCY") == f"afternotok:{a}"
    g.open_gate("a")
    assert g.wait(job) == 0


def test_slurm_after_plus_minutes_is_accepted_and_waits(gflow_process: Gflow) -> None:
    g = gflow_process
    parent = g.submit(g.gate("go"))
    g.until_state(parent, "Running")
    child = g.submit("-d", f"after:{parent}+1", "true")
    assert column(g, child, "DEPENDENCY") == f"after:{parent}+1"
    assert column(g, child, "REASON") == "WaitingForDependency"
    assert g.state(child) == "Queued"  # its parent started less than a minute ago
    g.run("gcancel", str(child))
    g.open_gate("go")


def test_slurm_aftercorr_pairs_array_tasks(gflow_process: Gflow) -> None:
    g = gflow_process
    first = g.submit_many(
        "--array", "1-3", "-n", "stage1", "sh", "-c", "exit $((GFLOW_ARRAY_TASK_ID == 2))"
    )
    second = g.submit_many("--array", "1-3", "-d", f"aftercorr:{first[0]}", "-n", "stage2", "true")
    assert [parents(g, s) for s in second] == [[f] for f in first]
    g.wait(*second)
    assert [g.state(s) for s in second] == ["Finished", "Cancelled", "Finished"]
    assert g.job(second[1])["reason"] == f"DependencyFailed:{first[1]}"
    whole = g.submit("--depends-on", str(first[0]), "true")  # the array's id = all tasks
    assert sorted(parents(g, whole)) == first
    assert g.wait(whole) == 125


def test_slurm_singleton_waits_for_the_namesake(gflow_process: Gflow) -> None:
    g = gflow_process
    first = g.submit("-n", "nightly", g.gate("go"))
    g.until_state(first, "Running")
    second = g.submit("-n", "nightly", "-d", "singleton", "true")
    other = g.submit("-n", "weekly", "-d", "singleton", "true")
    assert g.wait(other) == 0
    assert g.state(second) == "Queued"
    assert table(g, "-f", "JOBID,ST,DEPENDENCY,REASON")[second] == [
        "PD",
        "singleton",
        "WaitingForDependency",
    ]
    g.open_gate("go")
    assert g.wait(second) == 0
    started_after(g, second, first)


def test_plain_ids_in_slurm_form_mean_afterok(gflow_process: Gflow) -> None:
    g = gflow_process
    bad = g.submit("sh", "-c", "exit 1")
    job = g.submit("--dependency", str(bad), "true")
    assert g.wait(job) == 125


def test_script_directive_dependency(gflow_process: Gflow) -> None:
    g = gflow_process
    parent = g.submit(g.gate("go"))
    script = g.work / "job.sh"
    script.write_text(f"#!/bin/bash\n# GFLOW --depends-on={parent}\n#SBATCH -d afterany:{parent}\n")
    child = g.submit(str(script))
    assert sorted(parents(g, child)) == [parent, parent]
    assert g.state(child) == "Queued"
    g.open_gate("go")
    assert g.wait(child) == 0


# ---------------------------------------------------------------- recovery


def test_redo_cascade_recreates_the_auto_cancelled_chain(gflow_process: Gflow) -> None:
    g = gflow_process
    flag = g.work / "fixed"
    a = g.submit("-n", "prep", "test", "-e", str(flag))
    b = g.submit("--depends-on", "@", "-n", "train", "true")
    c = g.submit("--depends-on", "@", "-n", "eval", "true")
    waiting = g.submit("--depends-on", str(a), "--no-auto-cancel", "-n", "report", "true")
    assert g.wait(c) == 125
    g.until(lambda: g.job(waiting)["reason"] == "DependencyNeverSatisfied")
    flag.touch()
    out = g.run("gjob", "redo", str(a), "--cascade").stdout.strip().splitlines()
    new = [int(line.split()[3]) for line in out]
    assert [line.split()[-1] for line in out] == [str(a), str(b), str(c)]
    assert parents(g, new[1]) == [new[0]] and parents(g, new[2]) == [new[1]]
    assert parents(g, waiting) == [new[0]]
    assert g.wait(*new, waiting) == 0
    assert g.job(new[1])["redo_of"] == b


def flaky(g: Gflow, gate: str | None = None) -> list[str]:
    """A command that fails on its first run and succeeds on the next (after ``gate``)."""
    marker = g.work / "tried"
    wait = f"while [ ! -e {g.work / gate} ]; do sleep 0.02; done; " if gate else ""
    return ["sh", "-c", f"{wait}if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1"]


def retry_of(g: Gflow, job_id: int) -> int:
    db = g.db()
    try:
        row = db.execute("SELECT id FROM jobs WHERE retry_of=?", (job_id,)).fetchone()
    finally:
        db.close()
    assert row is not None, f"job {job_id} has no retry"
    return int(row[0])


def test_retry_repoints_the_waiting_dependent(gflow_process: Gflow) -> None:
    g = gflow_process
    first = g.submit("--max-retries", "2", "-n", "flaky", *flaky(g, gate="go"))
    child = g.submit("--depends-on", str(first), "-n", "child", "true")
    assert parents(g, child) == [first]
    g.open_gate("go")
    assert g.wait(child) == 0
    retry = retry_of(g, first)
    assert (g.state(first), g.state(retry)) == ("Failed", "Finished")
    assert parents(g, child) == [retry]
    started_after(g, child, retry)


def test_a_dependent_submitted_after_the_retry_waits_for_it(gflow_process: Gflow) -> None:
    g = gflow_process
    first = g.submit("--max-retries", "1", "-n", "flaky", *flaky(g))
    g.until(lambda: g.db().execute("SELECT 1 FROM jobs WHERE retry_of=?", (first,)).fetchone())
    child = g.submit("--depends-on", "@", "-n", "child", "true")
    assert parents(g, child) == [retry_of(g, first)]
    assert g.wait(child) == 0


# ---------------------------------------------------------------- waiting from scripts


def test_gjob_wait_exit_status_follows_the_job(gflow_process: Gflow) -> None:
    g = gflow_process
    ok = g.submit("true")
    bad = g.submit("sh", "-c", "exit 3")
    cancelled = g.submit("--depends-on", str(bad), "true")
    assert g.wait(ok) == 0
    assert g.wait(bad) == 3
    assert g.wait(cancelled) == 125


CONDITIONAL = """
while [ "$(gqueue -j {job} -f ST | tail -n 1)" = "R" ]; do
    sleep 0.05
done
STATUS=$(gqueue -j {job} -f ST | tail -n 1)
if [ "$STATUS" = "CD" ]; then
    echo "Job {job} succeeded, submitting next job"
    gbatch true
else
    echo "Job {job} failed with status: $STATUS"
    exit 1
fi
"""


def test_the_seeds_conditional_polling_script(gflow_process: Gflow) -> None:
    g = gflow_process
    for code, expected in ((0, "CD"), (1, "F")):
        job = g.submit(g.gate(f"go{code}", code=code))
        g.until_state(job, "Running")
        script = subprocess.Popen(
            ["bash", "-c", CONDITIONAL.format(job=job)],
            env={**g.env, "PATH": f"{BIN}:/usr/bin:/bin"},
            cwd=g.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        g.open_gate(f"go{code}")
        out, err = script.communicate(timeout=60)
        if expected == "CD":
            assert script.returncode == 0, err
            assert out.splitlines()[0] == f"Job {job} succeeded, submitting next job"
            assert out.splitlines()[1].startswith("Submitted batch job")
        else:
            assert script.returncode == 1
            assert out.strip() == f"Job {job} failed with status: F"
