"""tmux sessions, with both executors: attaching from inside tmux, sessions of ended jobs
closed after ``session_keep``, and gflow's tmux server stopped with the daemon. With the
process executor there are no sessions, and no tmux server is ever started."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.conftest import EXECUTORS, Gflow


def tmux(g: Gflow, *args: str, socket: str = "tmux.sock") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-S", str(g.home / socket), *args], capture_output=True, text=True, check=False
    )


def has_session(g: Gflow, job: int) -> bool:
    return tmux(g, "has-session", "-t", f"=gflow-{job}").returncode == 0


def server_runs(g: Gflow) -> bool:
    return tmux(g, "list-sessions").returncode == 0


def test_attach_from_inside_tmux(gflow: Gflow) -> None:
    job = gflow.submit(gflow.gate("attached"))
    gflow.until_state(job, "Running")
    err, rc = gflow.work / "attach.err", gflow.work / "attach.rc"
    own = {"TERM", "TMUX", "TMUX_PANE"}  # the outer pane's own, as in a user's tmux
    exports = " ".join(
        f"{k}={shlex.quote(v)}" for k, v in gflow.env.items() if k.isidentifier() and k not in own
    )
    inner = f"export {exports}; gjob attach {job} 2> {err}; echo $? > {rc}; sleep 600"
    outer = ["new-session", "-d", "-x", "120", "-y", "40", "bash", "-c", inner]
    assert tmux(gflow, "-f", "/dev/null", *outer, socket="outer.sock").returncode == 0
    try:
        if gflow.executor == "tmux":
            clients = lambda: tmux(gflow, "list-clients", "-t", f"=gflow-{job}").stdout  # noqa: E731
            gflow.until(clients, what="gjob attach, run inside tmux, to attach")
            assert not rc.exists()
        else:
            gflow.until(lambda: rc.read_text().strip(), what="gjob attach to give up")
            assert rc.read_text().strip() == "1"
            assert "does not run under tmux" in err.read_text()
    finally:
        tmux(gflow, "kill-server", socket="outer.sock")
        gflow.open_gate("attached")
    assert gflow.wait(job) == 0


KEEP = 4  # seconds


@pytest.fixture(params=EXECUTORS)
def keeping(request: pytest.FixtureRequest, make_gflow: Callable[..., Gflow]) -> Gflow:
    g = make_gflow(request.param, GFLOW_DAEMON__SESSION_KEEP=str(KEEP))
    g.start()
    return g


def test_sessions_of_ended_jobs_close_after_session_keep(keeping: Gflow) -> None:
    g = keeping
    kept = g.submit("true")
    closed = g.submit("--auto-close", "true")
    assert g.wait(kept, closed) == 0
    if g.executor == "process":
        assert not server_runs(g)
        return
    g.until(lambda: not has_session(g, closed), what="the --auto-close session to close")
    there = has_session(g, kept)
    if time.time() < g.job(kept)["end_time"] + KEEP:  # it was not due yet when looked for
        assert there, "a session was closed before session_keep"
    g.until(lambda: not has_session(g, kept), what="the session to close after session_keep")


def test_sessions_left_while_gflowd_was_down_are_closed(keeping: Gflow) -> None:
    g = keeping
    job = g.submit("true")
    assert g.wait(job) == 0
    g.kill9()
    due = g.job(job)["end_time"] + KEEP
    g.until(lambda: time.time() > due, what="session_keep to pass")
    g.start()
    if g.executor == "tmux":
        g.until(lambda: not has_session(g, job), what="the session to be closed at start")
    assert not has_session(g, job)


def test_gflowd_down_stops_its_tmux_server_when_no_job_runs(gflow: Gflow) -> None:
    running = gflow.submit(gflow.gate("still"))
    ended = gflow.submit("true")
    assert gflow.wait(ended) == 0
    gflow.stop()
    assert server_runs(gflow) is (gflow.executor == "tmux")  # a job still runs there
    gflow.start()
    gflow.open_gate("still")
    assert gflow.wait(running) == 0
    gflow.stop()
    assert not server_runs(gflow)
