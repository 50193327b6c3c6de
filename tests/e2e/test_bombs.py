"""One user's oversized request neither freezes the daemon for the others nor bloats it.

Each bomb runs in a thread while this test keeps asking ``/v1/health``: every answer must
come while the bomb is in flight, within a bound that is generous (the bombs used to
stall the daemon for 10 to 25 seconds and more), and the bomb must complete or be refused.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from gflow.client import RemoteError
from tests.helpers import Gflow

HEALTH_BOUND = 5.0  # seconds one health request may wait while a bomb is in flight


def in_flight(g: Gflow, bomb: Callable[[], Any]) -> Any:
    """Run ``bomb`` while asking for health; its result (or the error it raised)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = bomb()
        except Exception as exc:  # the test looks at it below
            outcome["value"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    api = g.api(timeout=120)
    worst = 0.0
    while thread.is_alive():
        asked = time.monotonic()
        api.get("/v1/health")
        worst = max(worst, time.monotonic() - asked)
    thread.join()
    assert worst < HEALTH_BOUND, f"health waited {worst:.1f}s behind the bomb"
    return outcome["value"]


def _peak_rss_mb(g: Gflow) -> float:
    with open(f"/proc/{g.daemon_pid()}/status") as fh:
        line = next(ln for ln in fh if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_cascading_redo_of_2000_jobs(gflow_process: Gflow) -> None:
    g = gflow_process
    api = g.api(timeout=120)
    root = g.submit("sh", "-c", "exit 1")
    body = {"command": ["true"], "workdir": str(g.work), "array": "1-2000"}
    api.post("/v1/jobs", {**body, "options": {"depends_on": [str(root)]}})
    assert g.wait(root) == 1
    g.until(lambda: g.queue_json() == [], what="the dependents to be cancelled")
    done = in_flight(g, lambda: api.post("/v1/jobs/redo", {"id": str(root), "cascade": True}))
    assert len(done["jobs"]) == 2001


def test_a_dependency_naming_500000_jobs_is_refused(gflow_process: Gflow) -> None:
    g = gflow_process
    api = g.api(timeout=120)
    parent = g.submit("--hold", "true")
    typed = {"depends_on": ["afterok:" + ":".join([str(parent)] * 500_000)]}
    clauses = [["afterok", [str(parent)] * 500_000, 0]]
    wire = {"clauses": clauses, "any_of": False, "on_count": 0, "singleton": False}
    base = {"command": ["true"], "workdir": str(g.work)}
    for body in ({**base, "options": typed}, {**base, "dependency": {**wire, "auto_cancel": True}}):
        refused = in_flight(g, lambda body=body: api.post("/v1/jobs", body))
        assert isinstance(refused, RemoteError) and refused.status == 400, refused
        assert "depend" in refused.message


def test_a_large_command_in_1000_jobs_is_stored_once_and_listed_in_pages(
    gflow_process: Gflow,
) -> None:
    g = gflow_process
    api = g.api(timeout=300)
    db = g.home / "gflow.db"
    before = os.path.getsize(db) + os.path.getsize(f"{db}-wal")
    words = ["sh", "-c", "exit 0", "x" * 100_000]
    body = {"command": words, "workdir": str(g.work), "array": "1-1000", "hold": True}
    first = in_flight(g, lambda: api.post("/v1/jobs", body))["jobs"][0]["id"]
    grown = os.path.getsize(db) + os.path.getsize(f"{db}-wal") - before
    assert grown < 10 * 2**20, f"the database grew by {grown} bytes"  # not 1000 x 100 KB
    api.post("/v1/jobs/cancel", {"ids": str(first)})
    peak = _peak_rss_mb(g)
    for view in ("compact", None):
        listed = in_flight(g, lambda view=view: api.get("/v1/jobs", users="me", view=view))
        assert len(listed["jobs"]) == 1000
        assert all(job["command"] == words for job in listed["jobs"])
    grew = _peak_rss_mb(g) - peak
    assert grew < 64, f"listing 100 MB of jobs grew the daemon by {grew:.0f} MB"


def test_large_commands_after_small_rows_are_still_listed_in_small_pages(
    gflow_process: Gflow,
) -> None:
    g = gflow_process
    api = g.api(timeout=300)
    base = {"workdir": str(g.work), "hold": True}
    small = api.post("/v1/jobs", {**base, "command": ["true"], "array": "1-64"})
    words = ["sh", "-c", "exit 0", "x" * 1_000_000]
    large = api.post("/v1/jobs", {**base, "command": words, "array": "1-60"})
    for done in (small, large):
        api.post("/v1/jobs/cancel", {"ids": str(done["jobs"][0]["id"])})
    peak = _peak_rss_mb(g)
    for query in ({"view": "compact"}, {}, {"view": "rows", "fields": "id,command"}):
        listed = in_flight(g, lambda query=query: api.get("/v1/jobs", users="me", **query))
        commands = [row[1] if "fields" in query else row["command"] for row in listed["jobs"]]
        assert commands == [["true"]] * 64 + [words] * 60
        del listed, commands
    grew = _peak_rss_mb(g) - peak
    assert grew < 64, f"listing 60 MB of jobs after small ones grew the daemon by {grew:.0f} MB"
