"""The job lifecycle end to end, with both executors: run, exit codes, logs, env, limits."""

from __future__ import annotations

import os

from tests.helpers import Gflow, alive


def test_job_runs_and_finishes(gflow: Gflow) -> None:
    job = gflow.submit("-n", "hello", "echo", "hello world")
    assert gflow.wait(job) == 0
    row = gflow.job(job)
    assert row["state"] == "Finished"
    assert row["exit_code"] == 0
    assert row["start_time"] <= row["end_time"]
    assert gflow.log(job) == "hello world\n"
    assert row["executor"] == gflow.executor


def test_exit_code_is_recorded(gflow: Gflow) -> None:
    job = gflow.submit("sh", "-c", "echo failing >&2; exit 3")
    assert gflow.wait(job) == 3
    row = gflow.job(job)
    assert (row["state"], row["exit_code"]) == ("Failed", 3)
    assert gflow.log(job) == "failing\n"
    out = gflow.run("gqueue", "-j", str(job), "-f", "ST").stdout.strip().splitlines()
    assert out[-1] == "F"


def test_output_larger_than_a_pipe_buffer(gflow: Gflow) -> None:
    job = gflow.submit("python3", "-c", "import sys; sys.stdout.write('x' * 1_000_000 + '\\n')")
    assert gflow.wait(job) == 0
    assert len(gflow.log(job)) == 1_000_001


def test_environment_and_directory(gflow: Gflow) -> None:
    sub = gflow.work / "sub dir"
    sub.mkdir()
    gflow.env["MY_SETTING"] = "kept value"
    job = gflow.submit(
        "-n",
        "envjob",
        "sh",
        "-c",
        'echo "$PWD|$GFLOW_JOB_ID|$GFLOW_JOB_NAME|$MY_SETTING|$TMUX"',
        cwd=sub,
    )
    assert gflow.wait(job) == 0
    assert gflow.log(job).strip() == f"{sub}|{job}|envjob|kept value|"


GFLOW_SET = ("GFLOW_", "SLURM_", "CUDA_")  # the variables gflow gives every job


def test_a_job_gets_its_own_environment_and_nothing_of_the_executor(gflow: Gflow) -> None:
    """Under tmux too, a job sees only the environment it was submitted with and gflow's
    variables: nothing of the tmux server (TMUX, TERM, SHELL...), as with a process."""
    gflow.env.pop("TERM", None)
    gflow.env.pop("SHELL", None)
    program = gflow.submit("env")
    script = gflow.submit("env; :")
    for job in (program, script):
        assert gflow.wait(job) == 0
        names = {line.partition("=")[0] for line in gflow.log(job).splitlines()}
        extra = {n for n in names - set(gflow.env) if not n.startswith(GFLOW_SET)}
        assert extra <= {"PWD", "SHLVL", "_"}, (job, extra)


def test_a_launch_makes_few_files_and_the_job_inherits_as_before(gflow: Gflow) -> None:
    """A job without GPUs gets a run directory of three files (each file is an inode a
    launch burst pays for); its environment reaches it as inherited: the file named by
    ``BASH_ENV`` is read before the job, and an ``IFS`` is not imported."""
    startup = gflow.work / "startup.sh"
    startup.write_text("FROM_BASH_ENV=read\n")
    gflow.env.update(BASH_ENV=str(startup), IFS="x", MY_SETTING="a 'quoted' $value")
    job = gflow.submit("bash", "-c", 'echo "$FROM_BASH_ENV|$MY_SETTING|${#IFS}"')
    assert gflow.wait(job) == 0
    assert gflow.log(job) == "read|a 'quoted' $value|3\n"
    assert sorted(os.listdir(gflow.home / "run" / str(job))) == ["job.sh", "pid", "result"]


PROBE = "grep -E '^Sig(Ign|Blk)' /proc/self/status"


def test_a_program_runs_from_a_fork_of_the_wrapper_as_it_would_from_a_bash(gflow: Gflow) -> None:
    """A job whose command is a program replaces a subshell of the wrapper (no second bash
    to start); shell code keeps a bash of its own. Both see the same signals, limits,
    umask, directory and environment."""
    gflow.env["MY_SETTING"] = "kept"
    parent = 'tr "\\0" " " < /proc/$PPID/cmdline'
    seen = 'echo "$(umask) $PWD $MY_SETTING $(ulimit -d)"'
    shown = [
        gflow.submit("--memory", "900M", "sh", "-c", f"{parent}; echo; {seen}; {PROBE}"),
        gflow.submit("--memory", "900M", f"{parent}; echo; {seen}; {PROBE}"),
    ]
    assert gflow.wait(*shown) == 0
    direct, shell = (gflow.log(job).splitlines() for job in shown)
    mode = "tee" if gflow.executor == "tmux" else "file"
    assert direct[0].split()[-2:] == [mode, "direct"]
    assert shell[0].split()[-1] == mode
    assert direct[1:] == shell[1:]
    assert direct[1].split()[1:] == [str(gflow.work), "kept", str(900 * 1024)]


def test_single_word_with_spaces_is_shell_code(gflow: Gflow) -> None:
    job = gflow.submit("echo one && echo two")
    assert gflow.wait(job) == 0
    assert gflow.log(job) == "one\ntwo\n"


def test_script_form_runs_with_its_arguments(gflow: Gflow) -> None:
    script = gflow.work / "job.sh"
    script.write_text('#!/bin/bash\n# GFLOW --name=from-directive\necho "args: $*"\n')
    job = gflow.submit(str(script), "x", "y z")
    assert gflow.wait(job) == 0
    assert gflow.job(job)["name"] == "from-directive"
    assert gflow.log(job) == "args: x y z\n"


def test_log_holds_only_the_job_output(gflow: Gflow) -> None:
    job = gflow.submit("printf", "line1\\nline2\\n")
    assert gflow.wait(job) == 0
    assert gflow.log(job) == "line1\nline2\n"
    out = gflow.run("gjob", "log", str(job), "--last", "1").stdout
    assert out == "line2\n"


def test_queued_job_cancel_is_immediate(gflow: Gflow) -> None:
    blocker = gflow.submit(gflow.gate("never"))
    waiting = gflow.submit("--depends-on", str(blocker), "true")
    out = gflow.run("gcancel", str(waiting)).stdout
    assert f"Job {waiting} cancelled." in out
    row = gflow.job(waiting)
    assert (row["state"], row["reason"]) == ("Cancelled", "CancelledByUser")
    gflow.run("gcancel", str(blocker))
    assert gflow.wait(blocker) == 125


def test_cancel_stops_the_whole_process_group(gflow: Gflow) -> None:
    pidfile = gflow.work / "child.pid"
    job = gflow.submit("sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait")
    gflow.until(pidfile.exists, what="child to start")
    gflow.until(lambda: pidfile.read_text().strip(), what="pid written")
    child = int(pidfile.read_text())
    gflow.run("gcancel", str(job))
    assert gflow.wait(job) == 125
    assert gflow.job(job)["state"] == "Cancelled"
    gflow.until(lambda: not alive(child), what="background child to be killed")


def test_time_limit_fires(gflow: Gflow) -> None:
    job = gflow.submit("--time", "0:01", "sleep", "300")
    assert gflow.wait(job) == 124
    row = gflow.job(job)
    assert row["state"] == "Timeout"
    assert row["end_time"] - row["start_time"] < 10


def test_time_limit_escalates_when_sigint_is_ignored(gflow: Gflow) -> None:
    job = gflow.submit(
        "--time",
        "0:01",
        "python3",
        "-c",
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(300)",
    )
    assert gflow.wait(job) == 124
    assert gflow.job(job)["state"] == "Timeout"


def test_hold_and_release(gflow: Gflow) -> None:
    job = gflow.submit("--hold", "true")
    assert gflow.state(job) == "Hold"
    assert gflow.run("gqueue", "-j", str(job), "-f", "ST").stdout.split()[-1] == "H"
    gflow.run("gjob", "release", str(job))
    assert gflow.wait(job) == 0
    queued = gflow.submit(gflow.gate("g1"))
    later = gflow.submit("--depends-on", str(queued), "true")
    gflow.run("gjob", "hold", str(later))
    assert gflow.state(later) == "Hold"
    gflow.open_gate("g1")
    assert gflow.wait(queued) == 0
    assert gflow.state(later) == "Hold"
    gflow.run("gjob", "release", str(later))
    assert gflow.wait(later) == 0


def test_ids_are_monotonic_and_never_reused(gflow: Gflow) -> None:
    a = gflow.submit("true")
    b = gflow.submit("true")
    gflow.wait(a, b)
    gflow.stop()
    gflow.start()
    c = gflow.submit("true")
    assert a < b < c


def test_job_runs_in_its_own_session(gflow: Gflow) -> None:
    job = gflow.submit("sh", "-c", "ps -o sid= -p $$")
    assert gflow.wait(job) == 0
    sid = int(gflow.log(job).strip())
    assert sid != os.getsid(0)


def test_a_background_child_does_not_hold_the_job_open(gflow: Gflow) -> None:
    pidfile = gflow.work / "bg.pid"
    job = gflow.submit("sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started")
    assert gflow.wait(job, timeout=20) == 0
    assert gflow.log(job) == "started\n"
    gflow.until(lambda: not alive(int(pidfile.read_text())), what="the leftover to be killed")
