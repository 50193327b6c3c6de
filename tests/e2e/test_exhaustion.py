"""A machine short of something: file descriptors, disk space. Jobs wait or carry on;
none is lost, misreported or cancelled for it."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.conftest import BIN, Gflow


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
