"""Stopping a job gracefully, with both executors: the stop sequence (SIGINT, SIGTERM,
SIGKILL, ``kill_grace`` apart) reaches every process of the job, SIGKILL comes only after
the grace, and a job ends when its processes do; ``--signal`` warns before a time limit.

The jobs are Python programs that save a "checkpoint" in their signal handlers once the
test opens a gate, so a job killed too early never writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import EXECUTORS, Gflow

GRACE = 3

PROGRAM = """\
import os, signal, subprocess, sys, time
name, work = sys.argv[1], sys.argv[2]

def path(what):
    return os.path.join(work, f"{{what}}-{{name}}")

def touch(what):
    with open(path(what), "w") as fh:
        fh.write(str(os.getpid()))

def gate(what):
    while not os.path.exists(path(what)):
        time.sleep(0.02)

def save(signum=None, frame=None):
    touch("got")
    gate("go")
    touch("ckpt")
    sys.exit(0)

{setup}
touch("ready")
while True:
    time.sleep(0.05)
"""

SETUPS = {
    # Ignores SIGINT; saves on SIGTERM.
    "term": "signal.signal(signal.SIGINT, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, save)",
    # Saves on SIGINT, as KeyboardInterrupt.
    "int": "try:\n"
    "    touch('ready')\n"
    "    while True: time.sleep(0.05)\n"
    "except KeyboardInterrupt:\n"
    "    save()",
    # Its SIGTERM handler takes longer than the grace: SIGKILL ends it.
    "slow": "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "def slow(signum, frame):\n"
    "    touch('got'); gate('go'); touch('alive')\n"
    "    while True: time.sleep(0.05)\n"
    "signal.signal(signal.SIGTERM, slow)",
}


def program(work: Path, kind: str) -> str:
    path = work / f"{kind}.py"
    path.write_text(PROGRAM.format(setup=SETUPS[kind]))
    return str(path)


@pytest.fixture(params=EXECUTORS)
def graceful(request: pytest.FixtureRequest, make_gflow: Callable[..., Gflow]) -> Iterator[Gflow]:
    g = make_gflow(request.param, GFLOW_DAEMON__KILL_GRACE=str(GRACE))
    g.start()
    yield g


def marker(g: Gflow, what: str, name: str) -> Path:
    return g.work / f"{what}-{name}"


def test_cancel_gives_every_process_its_grace(graceful: Gflow) -> None:
    g = graceful
    work = str(g.work)
    jobs = {kind: g.submit("python3", program(g.work, kind), kind, work) for kind in SETUPS}
    # A shell that dies on SIGINT, leaving two children that save on SIGTERM.
    child = program(g.work, "term")
    shell = f"python3 {child} child1 {work} & python3 {child} child2 {work} & wait"
    jobs["children"] = g.submit("sh", "-c", shell)
    names = [*SETUPS, "child1", "child2"]
    for name in names:
        g.until(marker(g, "ready", name).exists, what=f"{name} to be ready")
    g.run("gcancel", ",".join(str(j) for j in jobs.values()))
    waiting = set(names)

    def answer_signals() -> bool:
        """Open each job's gate as soon as it has its signal, while it still runs."""
        for name in sorted(waiting):
            if marker(g, "got", name).exists():
                owner = jobs.get(name, jobs["children"])
                assert g.state(owner) == "Running", f"{name} was not given its grace"
                marker(g, "go", name).touch()
                waiting.discard(name)
        return not waiting

    g.until(answer_signals, timeout=3 * GRACE + 30, what="every job's signal")
    g.until(marker(g, "alive", "slow").exists, what="the slow handler to outlive its gate")
    assert g.wait(*jobs.values(), timeout=3 * GRACE + 30) == 125
    for name in ("term", "int", "child1", "child2"):
        assert marker(g, "ckpt", name).exists(), f"{name} did not save its checkpoint"
    rows = {kind: g.job(job) for kind, job in jobs.items()}
    assert {row["state"] for row in rows.values()} == {"Cancelled"}
    assert rows["term"]["exit_code"] == 0
    assert not marker(g, "ckpt", "slow").exists()
    signalled = marker(g, "got", "slow").stat().st_mtime
    assert rows["slow"]["end_time"] >= signalled + GRACE - 0.5, "SIGKILL came before the grace"


def test_a_time_limited_job_saves_its_checkpoint(graceful: Gflow) -> None:
    g = graceful
    script = program(g.work, "term")
    job = g.submit("--time", "0:02", "python3", script, "limited", str(g.work))
    g.until(marker(g, "got", "limited").exists, timeout=30, what="the time limit's SIGTERM")
    assert g.state(job) == "Running"
    marker(g, "go", "limited").touch()
    assert g.wait(job) == 124
    assert marker(g, "ckpt", "limited").exists()
    row = g.job(job)
    assert (row["state"], row["reason"], row["exit_code"]) == ("Timeout", "TimeLimit", 0)


WARNED = """\
import os, signal, subprocess, sys, time
name, work, role = sys.argv[1], sys.argv[2], sys.argv[3]

def save(signum, frame):
    with open(os.path.join(work, f"{signal.Signals(signum).name}-{name}-{role}"), "w") as fh:
        fh.write("checkpoint")

signal.signal(signal.SIGUSR1, save)
if role == "parent":
    child = subprocess.Popen([sys.executable, __file__, name, work, "child"])
open(os.path.join(work, f"ready-{name}-{role}"), "w").close()
while True:
    time.sleep(0.05)
"""


def test_signal_warns_before_the_time_limit(graceful: Gflow) -> None:
    g = graceful
    script = g.work / "warned.py"
    script.write_text(WARNED)
    work = str(g.work)
    jobs = {
        "all": g.submit(
            "-t", "0:03", "--signal=USR1@2", "python3", str(script), "all", work, "parent"
        ),
        "batch": g.submit(
            "-t", "0:03", "--signal", "B:SIGUSR1@2", "python3", str(script), "batch", work, "parent"
        ),
        "unasked": g.submit("-t", "0:03", "python3", str(script), "unasked", work, "parent"),
    }
    for name in jobs:
        g.until(marker(g, "ready", f"{name}-child").exists, what=f"{name} to be ready")
    assert g.wait(*jobs.values(), timeout=30) == 124
    saved = sorted(p.name for p in g.work.glob("SIGUSR1-*"))
    assert saved == ["SIGUSR1-all-child", "SIGUSR1-all-parent", "SIGUSR1-batch-parent"]
    shown = g.run("gjob", "show", str(jobs["batch"])).stdout
    assert "Signal=B:USR1@2" in shown and "Stop=TimeLimit" in shown
    assert "Running: Signal:B:USR1@2" in shown and "Running: TimeLimit:SIGINT" in shown
    assert g.job(jobs["unasked"])["state"] == "Timeout"
