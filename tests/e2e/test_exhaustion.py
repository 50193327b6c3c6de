"""A machine short of something: file descriptors, disk space. Jobs wait or carry on;
none is lost, misreported or cancelled for it. And an exit code that cannot be read is
recorded as unknown, never guessed."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, EXECUTORS, Gflow, alive, short_home


def _final(g: Gflow) -> dict[int, tuple[str, int | None, str | None]]:
    db = g.db()
    try:
        rows = db.execute("SELECT id, state, exit_code, reason FROM jobs").fetchall()
    finally:
        db.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.skipif(not shutil.which("prlimit"), reason="needs prlimit")
def test_running_out_of_file_descriptors_delays_launches_and_loses_nothing(
    make_gflow: Callable[..., Gflow],
) -> None:
    """A daemon allowed 32 open files gets a burst of 40 jobs that all run at once: the
    launches it has no descriptors for wait and start once jobs end."""
    g = make_gflow("process")
    g.run("prlimit", "--nofile=32:32", str(BIN / "gflowd"), "up")
    gate = g.work / "go"
    code = f"while [ ! -e {gate} ]; do sleep 0.02; done; exit $((GFLOW_ARRAY_TASK_ID % 2 * 3))"
    g.run("gbatch", "--array", "1-40", "sh", "-c", code)
    daemon_log = g.home / "gflowd.log"
    g.until(lambda: "Too many open files" in daemon_log.read_text(), what="descriptors to run out")
    g.open_gate("go")
    g.until(
        lambda: all(state not in ("Queued", "Running") for state, _, _ in _final(g).values()),
        timeout=120,
        what="every job to end",
    )
    jobs = _final(g)
    assert len(jobs) == 40
    for job_id, (state, exit_code, reason) in jobs.items():
        task = g.job(job_id)["task_id"]
        expected = ("Finished", 0) if task % 2 == 0 else ("Failed", 3)
        assert (state, exit_code) == expected, (job_id, state, exit_code, reason)
    assert g.run("gqueue", "-a").returncode == 0


# ------------------------------------------------------------ a full disk


@contextlib.contextmanager
def small_filesystem(path: Path) -> Iterator[None]:
    """A 2 MiB tmpfs mounted at ``path`` (skips the test where mounting is not allowed)."""
    path.mkdir(exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(path)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> Path:
    filler = path / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    assert (
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={path}/more", "bs=1k", "count=1"], capture_output=True
        ).returncode
        != 0
    )
    return filler


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_job_that_succeeds_on_a_full_disk_is_recorded_as_a_success(
    executor: str, make_gflow: Callable[..., Gflow]
) -> None:
    """The run directories' filesystem fills up while two jobs run. One ends while gflowd
    watches, the other while gflowd is down: both are Finished, and the job that waits
    for them waits for space to start rather than being cancelled."""
    g = make_gflow(executor)
    with small_filesystem(g.home / "run"):
        try:
            g.start()
            live = g.submit("sh", "-c", g.gate("live"))
            later = g.submit("sh", "-c", g.gate("later"))
            after = g.submit("--depends-on-all", f"{live},{later}", "echo", "after")
            g.until_state(live, "Running")
            g.until_state(later, "Running")
            filler = fill(g.home / "run")
            g.open_gate("live")
            g.until(lambda: g.state(live) != "Running", what="the first job to end")
            assert (g.state(live), g.job(live)["exit_code"]) == ("Finished", 0)
            g.kill9()
            wrapper = g.job(later)["pid"]
            g.open_gate("later")
            g.until(lambda: not alive(wrapper), what="the second job to end")
            g.start()
            assert (g.state(later), g.job(later)["exit_code"]) == ("Finished", 0)
            daemon_log = g.home / "gflowd.log"
            g.until(lambda: f"job {after} not started yet" in daemon_log.read_text())
            assert g.state(after) == "Queued"
            filler.unlink()
            assert g.wait(after) == 0
            assert g.log(after) == "after\n"
        finally:
            g.stop()


# ------------------------------------------------------------ exit codes nobody wrote

RESULT = '"$GFLOW_HOME/run/$GFLOW_JOB_ID/result"'
LOSE_RESULT = f"rm -f {RESULT} && mkdir {RESULT} && "


def test_a_lost_result_file_is_made_up_for_by_the_executor(gflow: Gflow) -> None:
    """The job's own result file is gone: the wrapper's exit status (process) or the
    tmux pane's (tmux) still tells the daemon how the job ended."""
    job = gflow.submit("sh", "-c", LOSE_RESULT + "exit 3")
    assert gflow.wait(job) == 3
    assert (gflow.home / "run" / str(job) / "result").is_dir()
    row = gflow.job(job)
    assert (row["state"], row["exit_code"], row["reason"]) == ("Failed", 3, None)


@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")
def test_a_pane_dead_before_its_status_is_known_is_asked_again() -> None:
    """tmux marks a pane dead as soon as its terminal closes, and learns the exit status
    only when it collects the process: until then the executor asks again, rather than
    take the dead pane for an exit nobody can tell."""
    from gflow.executors import TmuxExecutor

    home = short_home()
    tmux = TmuxExecutor(home)
    gate = home / "go"
    closed = "trap '' HUP; exec </dev/null >/dev/null 2>&1"  # the pane's terminal, not its end
    body = f"{closed}; while [ ! -e {gate} ]; do sleep 0.2; done; exit 3"
    try:
        new = [*tmux.base(), "new-session", "-d", "-s", "gflow-7", "bash", "-c", body]
        subprocess.run(new, check=True, capture_output=True)
        ask = [*tmux.base(), "display-message", "-p", "-t", "=gflow-7:", "#{pane_dead}"]

        def dead() -> bool:
            return subprocess.run(ask, capture_output=True, text=True).stdout.strip() == "1"

        Gflow(home, "tmux").until(dead, what="the pane's terminal to close")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            status = pool.submit(tmux.exit_status, 7)
            gate.touch()
            assert status.result() == 3
    finally:
        subprocess.run([*tmux.base(), "kill-server"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_an_exit_code_nobody_can_tell_is_unknown_and_holds_dependents(
    gflow_process: Gflow,
) -> None:
    """A job ends while gflowd is down and no channel kept its exit code: it is Failed
    with reason ExitCodeUnknown, not retried; ``afterany`` dependents run, ``afterok``
    and ``afternotok`` ones wait with a reason naming it until its user redoes it."""
    g = gflow_process
    marker = g.work / "lose"
    marker.touch()
    code = f"if [ -e {marker} ]; then {LOSE_RESULT} true; fi; {g.gate('go')}"
    parent = g.submit("--max-retries", "2", "sh", "-c", code)
    ok = g.submit("-d", f"afterok:{parent}", "true")
    notok = g.submit("-d", f"afternotok:{parent}", "true")
    anyway = g.submit("-d", f"afterany:{parent}", "true")
    g.until(lambda: (g.home / "run" / str(parent) / "result").is_dir())
    wrapper = g.job(parent)["pid"]
    g.kill9()
    g.open_gate("go")
    g.until(lambda: not alive(wrapper), what="the job to end")
    g.start()
    row = g.job(parent)
    assert (row["state"], row["exit_code"], row["reason"]) == ("Failed", None, "ExitCodeUnknown")
    assert g.wait(anyway) == 0
    waiting = {j["id"]: j for j in g.queue_json("-j", f"{ok},{notok}")}
    for job in (ok, notok):
        assert waiting[job]["state"] == "Queued"
        assert waiting[job]["reason"] == f"DependencyExitUnknown:{parent}"
    assert max(r[0] for r in g.db().execute("SELECT id FROM jobs")) == anyway  # no retry
    marker.unlink()
    g.run("gjob", "redo", str(parent), "--cascade")
    assert g.wait(ok) == 0
    assert g.state(notok) == "Cancelled"
