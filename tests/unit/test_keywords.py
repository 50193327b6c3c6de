"""Python keywords become the option text gbatch would send: one table, no second parser."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

import gflow
from gflow import keywords, options
from gflow.sdk import Job
from gflow.steps import selector


def typed(**given: object) -> dict[str, object]:
    return keywords.options(given, options.SUBMIT, "submit")[0]


def test_every_option_of_the_table_is_a_keyword() -> None:
    submit = keywords.keywords(options.SUBMIT)
    assert set(submit) == set(options.BY_KEY) - {"command", "dry_run"}
    assert "command" in keywords.keywords(options.CHANGE)


def test_values_become_what_a_user_would_type() -> None:
    parent = Job(7)
    assert typed(gpus=2, priority=5, memory="2G", name="x") == {
        "gpus": "2",
        "priority": "5",
        "memory": "2G",
        "name": "x",
    }
    assert typed(depends_on=parent) == {"depends_on": ["7"]}
    assert typed(depends_on=[parent, "afterok:3"]) == {"depends_on": ["7", "afterok:3"]}
    assert typed(depends_on_all=[parent, 8], depends_on_any="1,2") == {
        "depends_on_all": "7,8",
        "depends_on_any": "1,2",
    }
    assert typed(param={"lr": [0.1, 0.01], "bs": "16:64:16"}) == {
        "param": ["lr=0.1,0.01", "bs=16:64:16"]
    }
    assert typed(hold=True, shared=False) == {"hold": True, "shared": False}
    assert typed(time=datetime.timedelta(days=1, minutes=1, seconds=5)) == {"time": "1-00:01:05"}
    assert typed(gpus=None) == {}


def test_a_begin_time_carries_the_callers_zone() -> None:
    zone = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2030, 5, 1, 14, 30, tzinfo=zone)
    assert typed(begin=moment) == {"begin": "2030-05-01T14:30:00", "utc_offset": 7200}
    assert set(typed(begin="22:00")) == {"begin", "utc_offset"}
    parsed = options.parse_texts(typed(begin=moment), options.SUBMIT)
    assert parsed["begin_at"] == moment.timestamp()


def test_a_parameter_file_is_read_here(tmp_path: Path) -> None:
    rows = tmp_path / "p.csv"
    rows.write_text("a,b\n1,2\n")
    texts, fields = keywords.options({"param_file": rows}, options.SUBMIT, "submit")
    assert texts == {} and fields == {"param_rows": [{"a": "1", "b": "2"}]}


def test_unknown_keywords_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"^submit\(\) got an unexpected keyword argument 'gpu'$"):
        typed(gpu=1)
    with pytest.raises(TypeError, match="'command'"):
        typed(command=["x"])


def test_the_daemon_parser_reads_what_the_keywords_make() -> None:
    parsed = options.parse_texts(typed(gpus=1, time="1:30:00", depends_on=Job(3)), "submit")
    assert (parsed["gpus"], parsed["time_limit"]) == (1, 5400)
    assert parsed["dependency"].text == "3"
    with pytest.raises(gflow.InvalidInput, match="invalid --gpus 'x'"):
        options.parse_texts(typed(gpus="x"), "submit")


def test_selectors() -> None:
    assert selector(5) == "5" and selector("1-3,@") == "1-3,@"
    assert selector([Job(1), 2, "@"]) == "1,2,@"


def test_the_public_names() -> None:
    assert set(gflow.__all__) == {*gflow._PUBLIC, "DISTRIBUTION", "version"}
    for name in gflow._PUBLIC:
        assert getattr(gflow, name).__name__ == name
