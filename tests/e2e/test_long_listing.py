"""A listing longer than a block is printed while it arrives, and reads exactly as the
same listing laid out whole (table, CSV and JSON)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

from gflow.cli.gqueue import BLOCK, COLUMNS
from tests.conftest import Gflow

ALL = ",".join(COLUMNS)


def test_a_long_listing_streams_as_the_whole_one(gflow_process: Gflow) -> None:
    g = gflow_process
    count = BLOCK + 500
    g.run("gbatch", "-H", "--array", f"1-{count}", "-n", "long", "true")
    g.submit("-H", "-n", "a-name-longer-than-the-others", "true")  # after the first block
    streamed = g.run("gqueue", "-e").stdout
    whole = g.run("gqueue", "-e", "-r", "priority").stdout  # sorted: laid out whole
    assert streamed == whole
    lines = streamed.splitlines()
    assert len(lines) == count + 2
    assert len({line.index(" H ") for line in lines[1:]}) == 1  # one column for ST
    for output in ("csv", "json"):  # streamed, then laid out whole
        text = g.run("gqueue", "-o", output, "-f", ALL).stdout
        assert text == g.run("gqueue", "-o", output, "-f", ALL, "-r", "priority").stdout
    rows = list(csv.reader(io.StringIO(g.run("gqueue", "-o", "csv").stdout)))
    assert len(rows) == count + 2 and rows[0][0] == "JOBID"
    listed = json.loads(g.run("gqueue", "-o", "json").stdout)
    assert listed["total"] == count + 1
    assert [j["id"] for j in listed["jobs"]] == sorted(j["id"] for j in listed["jobs"])
    folded = g.run("gqueue").stdout.splitlines()
    assert len(folded) == 3 and f"long[1-{count}]" in folded[1]


def test_a_history_row_that_cannot_be_read_is_listed_as_such(gflow_process: Gflow) -> None:
    """The daemon reads only the fields a listing shows; a damaged one is still flagged."""
    g = gflow_process
    ok, bad = g.submit("-n", "fine", "true"), g.submit("-n", "broken", "true")
    g.wait(ok, bad)
    g.stop()
    with sqlite3.connect(g.home / "gflow.db") as db:
        db.execute("UPDATE jobs SET command='[', state='Lost' WHERE id=?", (bad,))
    g.start()
    lines = g.run("gqueue", "-a", "-f", "JOBID,NAME,ST,COMMAND").stdout.splitlines()
    assert lines[1].split() == [str(ok), "fine", "CD", "true"]
    assert lines[2].split() == [str(bad), "(unreadable)", "F", "?"]
    assert g.run("gqueue", "-a", "-f", "JOBID,NAME").stdout.split()[-2:] == [str(bad), "broken"]
