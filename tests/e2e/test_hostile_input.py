"""What a request can carry: every number and text is bounded at the door.

Each case here once got past the API (a 500 with a traceback, or worse: a value that
later broke the daemon for everyone). Now each is refused with a 4xx whose message names
the field, and nothing is written.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.helpers import Gflow

BASE: dict[str, Any] = {"command": ["true"], "workdir": "/tmp", "hold": True}


def _dependency(delay: Any) -> dict[str, Any]:
    return {
        "clauses": [["after", ["1"], delay]],
        "any_of": False,
        "on_count": 0,
        "singleton": False,
        "auto_cancel": True,
    }


def _refused(g: Gflow, method: str, path: str, body: bytes, field: str) -> None:
    status, answer = g.raw(method, path, body)
    assert 400 <= status < 500, (status, answer)
    assert field in answer["error"], answer
    assert "internal error" not in answer["error"]


def test_the_overflow_time_bomb_is_refused_at_the_door(gflow_process: Gflow) -> None:
    g = gflow_process
    parent = g.submit("--hold", "true")
    bomb = {**BASE, "dependency": _dependency(10**400)}
    bomb["dependency"]["clauses"][0][1] = [str(parent)]
    _refused(g, "POST", "/v1/jobs", json.dumps(bomb).encode(), "dependency delay")
    done = g.run("gbatch", "-d", f"after:{parent}+99999999999999", "true", check=False)
    assert done.returncode == 2 and "delay of at most" in done.stderr
    assert g.queue_json("-a") == [g.queue_json("-a")[0]]  # only the parent exists
    g.run("gjob", "release", str(parent))
    assert g.wait(parent) == 0
    g.stop()
    g.start()  # and the daemon starts again, as always
    assert g.state(parent) == "Finished"


def _body(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


SUBMISSIONS = [
    (_body(name="\ud800"), "name"),
    (_body(workdir="/tmp/\ud800"), "workdir"),
    (_body(command=["echo", "\ud800"]), "command"),
    (_body(env={"X": "\ud800"}), "environment variable X"),
    (_body(env={"X": "a\x00b"}), "environment variable X"),
    (_body(name="\x1b[31mred"), "name"),
    (_body(name="two\nlines"), "name"),
    (_body(params=[["x", ["a\x00b"]]]), "param x"),
    (_body(params=[["x", []]]), "params"),  # a sweep of no jobs left an empty submission
    (_body(params=[["x", ["\x1b]0;owned\x07"]]]), "name"),
    (
        json.dumps(BASE)[:-1].encode() + b', "dependency": '
        b'{"clauses": [["after", ["1"], 1e999]], "any_of": false, "on_count": 0, '
        b'"singleton": false, "auto_cancel": true}}',
        "dependency delay",
    ),
    (_body(options={"begin": "now", "utc_offset": 86400}), "utc_offset"),
    (_body(begin_at=1e300), "begin_at"),
    (_body(time_limit=10**30), "time_limit"),
    (_body(priority=True), "priority"),
]


def test_a_hostile_submission_is_refused_and_names_the_field(gflow_process: Gflow) -> None:
    for body, field in SUBMISSIONS:
        _refused(gflow_process, "POST", "/v1/jobs", body, field)
    assert gflow_process.queue_json("-a") == []


def test_hostile_updates_queries_and_controls_are_refused(gflow_process: Gflow) -> None:
    g = gflow_process
    held = g.submit("--hold", "-n", "plain", "true")
    ended = g.submit("true")
    assert g.wait(ended) == 0
    for path, body, field in [
        ("/v1/jobs/update", {"ids": str(held), "changes": {"name": "\ud800"}}, "name"),
        ("/v1/jobs/update", {"ids": str(held), "changes": {"name": "a\nb"}}, "name"),
        ("/v1/jobs/redo", {"id": str(ended), "changes": {"name": "\ud800"}}, "name"),
        ("/v1/jobs/release", {"ids": str(held), "at": 1e300}, "at"),
        ("/v1/admin/set-limit", {"job": held, "limit": 10**30}, "limit"),
    ]:
        _refused(g, "POST", path, json.dumps(body).encode(), field)
    for query, field in [
        ("users=99999999999999999999999", "users"),
        ("states=Finished&limit=99999999999999999999999", "limit"),
        ("since=1e999", "since"),
        ("view=rows&fields=id,script", "fields"),
        ("view=rows&fields=", "fields"),  # no field at all: not an empty row per job
        ("view=rows&fields=,", "fields"),
    ]:
        _refused(g, "GET", f"/v1/jobs?{query}", b"", field)
    assert g.job(held)["name"] == "plain"
    renamed = g.run("gjob", "update", str(held), "--name", "\x1b[2Jgone", check=False)
    assert renamed.returncode == 2 and "printable" in renamed.stderr
    assert g.job(held)["name"] == "plain"
    assert g.run("gjob", "show", str(held)).returncode == 0


def test_text_from_the_database_reaches_no_terminal_raw(gflow_process: Gflow) -> None:
    """Names stored before names were checked (or by hand) are printed escaped."""
    g = gflow_process
    job = g.submit("--hold", "-n", "plain", "true")
    g.stop()
    db = sqlite3.connect(g.home / "gflow.db")
    with db:
        db.execute("UPDATE jobs SET name=? WHERE id=?", ("\x1b[2J\x1b]0;pwned\x07x\ny", job))
    db.close()
    g.start()
    for argv in (
        ["gqueue", "-u", "all"],
        ["gqueue", "-t"],
        ["gqueue", "-o", "csv", "-f", "JOBID,NAME"],
        ["gjob", "show", str(job)],
        ["gcancel", "--dry-run", str(job)],
    ):
        out = g.run(*argv).stdout
        assert "\x1b" not in out and "\x07" not in out, argv
        assert "\\x1b[2J\\x1b]0;pwned\\x07x\\ny" in out, argv
