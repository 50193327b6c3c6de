"""The bounds every request is held to (``gflow.limits``), as the parsers and the API apply them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gflow import commands, limits
from gflow.config import DaemonConfig, Paths
from gflow.deps import DepRequest, parse_dependency, parse_moab
from gflow.engine import Caller, Engine
from gflow.errors import InvalidInput, Refused
from gflow.protocol import SubmitRequest, update_changes
from gflow.store import Store

BASE: dict[str, Any] = {"command": ["true"], "workdir": "/tmp"}


@pytest.mark.parametrize("value", [True, 1.0, "1", None, -1, 256, 10**400])
def test_whole_numbers_are_ints_in_range(value: object) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        limits.whole(value, "priority", 0, 255)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 1e300, True, "0"])
def test_instants_are_finite_and_within_the_calendar(value: object) -> None:
    with pytest.raises(InvalidInput, match="begin_at"):
        limits.instant(value, "begin_at")


@pytest.mark.parametrize("value", ["\ud800", "a\x00b", "x" * 201])
def test_text_is_utf8_without_nul_and_bounded(value: str) -> None:
    with pytest.raises(InvalidInput, match="name"):
        limits.text(value, "name", 200)


@pytest.mark.parametrize("value", ["\x1b[31m", "a\nb", "tab\there", "\u202eevil"])
def test_a_line_is_printable(value: str) -> None:
    assert limits.text(value, "name", 200) == value
    with pytest.raises(InvalidInput, match="printable"):
        limits.text(value, "name", 200, line=True)


def test_dependency_references_are_deduplicated_and_counted() -> None:
    req = parse_dependency("afterok:5:5:6:5,afterany:7:7")
    assert [len(c.refs) for c in req.clauses] == [2, 1]
    with pytest.raises(InvalidInput, match="at most 10000 jobs"):
        parse_dependency(":".join(["afterok", *map(str, range(1, limits.MAX_DEP_REFS + 2))]))
    with pytest.raises(InvalidInput, match="dependency"):
        parse_dependency("afterok:1," * (limits.MAX_SPEC // 10 + 1))


def test_delays_and_counts_are_bounded_in_every_syntax() -> None:
    assert parse_dependency("after:3+10").clauses[0].delay == 600
    for spec in ("after:3+99999999999999", "after:3+" + "9" * 5000):
        with pytest.raises(InvalidInput, match="delay"):
            parse_dependency(spec)
    with pytest.raises(InvalidInput, match="on:COUNT"):
        parse_moab("depend=on:" + "9" * 5000)


def _wire(delay: Any) -> dict[str, Any]:
    return {
        "clauses": [["after", ["3"], delay]],
        "any_of": False,
        "on_count": 0,
        "singleton": False,
        "auto_cancel": True,
    }


@pytest.mark.parametrize("delay", [10**400, -1, 1.5, True, "60", float("inf")])
def test_a_dependency_from_the_wire_is_checked_like_a_typed_one(delay: object) -> None:
    with pytest.raises(InvalidInput, match="dependency delay"):
        DepRequest.from_json(_wire(delay))
    assert DepRequest.from_json(_wire(60)).clauses[0].delay == 60


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"gpus": 1025}, "gpus"),
        ({"memory_mb": 1024**3 + 1}, "memory_mb"),
        ({"time_limit": limits.MAX_SECONDS + 1}, "time_limit"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_retries": 101}, "max_retries"),
        ({"env": {"A=B": "x"}}, "environment variable name"),
        ({"env": {"BIG": "x" * (limits.MAX_ENV_VALUE + 1)}}, "environment variable BIG"),
        ({"command": ["x" * (limits.MAX_COMMAND + 1)]}, "command"),
        ({"project": "a\x07b"}, "project"),
        ({"conda_env": "env\n"}, "conda_env"),
        ({"options": {"begin": "now", "utc_offset": -86400}}, "utc_offset"),
    ],
)
def test_a_submission_is_held_to_the_cli_limits(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        SubmitRequest.from_json({**BASE, **extra})


def test_an_update_is_held_to_the_same_limits() -> None:
    assert update_changes({"name": "  "}) == {"name": ""}  # blank: a fresh random name
    for changes, field in [
        ({"name": "a\x1bb"}, "name"),
        ({"begin_at": 1e300}, "begin_at"),
        ({"priority": 256}, "priority"),
        ({"command": ["ok", "\ud800"]}, "command"),
    ]:
        with pytest.raises(InvalidInput, match=field):
            update_changes(changes)


def test_one_submission_makes_at_most_a_million_dependency_links(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    engine = Engine(Store(paths.db), paths, DaemonConfig())
    parents = SubmitRequest.from_json({**BASE, "array": "1-1000", "hold": True})
    first = commands.submit(engine, parents, ANN, 100.0)[0].id
    fan = SubmitRequest.from_json(
        {**BASE, "array": "1-1001", "options": {"depends_on": [str(first)]}}
    )
    with pytest.raises(Refused, match="at most 1000000"):
        commands.submit(engine, fan, ANN, 100.0)
    assert len(engine.jobs) == 1000


ANN = Caller(1000, 1000, "ann")
