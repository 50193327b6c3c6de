"""A listing longer than a block is printed while it arrives, and reads exactly as the
same listing laid out whole (table, CSV and JSON)."""

from __future__ import annotations

import csv
import io
import json

from gflow.cli.gqueue import BLOCK
from tests.conftest import Gflow


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
    rows = list(csv.reader(io.StringIO(g.run("gqueue", "-o", "csv").stdout)))
    assert len(rows) == count + 2 and rows[0][0] == "JOBID"
    listed = json.loads(g.run("gqueue", "-o", "json").stdout)
    assert listed["total"] == count + 1
    assert [j["id"] for j in listed["jobs"]] == sorted(j["id"] for j in listed["jobs"])
    folded = g.run("gqueue").stdout.splitlines()
    assert len(folded) == 3 and f"long[1-{count}]" in folded[1]
