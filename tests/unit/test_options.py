"""The option table (``gflow.options``): one declaration per job option, one parser.

Walks the table: every option gbatch takes is taken by ``gjob update`` and ``gjob redo``
in every spelling and with every value form, giving the same field values, or is refused
with the table's reason; typed JSON values meet the same checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gflow import options
from gflow.cli import gbatch, gjob, jobopts
from gflow.errors import InvalidInput
from gflow.model import Job
from gflow.options import CHANGE, OPTIONS, SUBMIT
from gflow.paramfile import READERS
from gflow.protocol import SubmitRequest, update_changes

# Value forms a user may type, per kind of value; an option whose kind is missing here fails.
FORMS: dict[type[options.Kind], list[list[str]]] = {
    options.Whole: [["3"], ["0003"]],
    options.TimeLimit: [["90"], ["1:30"], ["1:30:00"], ["2-12:00:00"], ["UNLIMITED"]],
    options.Size: [["512"], ["2G"], ["1.5G"], ["4096K"], ["1T"]],
    options.WarningSignal: [["USR1"], ["B:USR1@120"], ["SIGTERM@30"], ["10"]],
    options.FilePattern: [["out.log"], ["logs/%x-%A_%4a.out"], ["/tmp/%u-%j-%%.txt"]],
    options.Instant: [["2030-01-02"], ["2030-01-02T03:04"], ["2030-01-02T03:04:05"]],
    options.Text: [["x1"]],
    options.Name: [["train-1"]],
    options.Project: [["vision"]],
    options.Switch: [[]],
    options.Choice: [["local"], ["SLURM"]],
    options.Params: [["lr=0.1,0.2"], ["n=1:3"]],
    options.ParamFile: [["rows.csv"]],
    options.MailType: [["END,FAIL"], ["all"], ["BEGIN"], ["TIME_LIMIT"]],
    options.MailUser: [["me@lab.example.org"], ["alice"]],
    options.Url: [["https://hooks.example.org/x?y=1"], ["http://127.0.0.1:8080/"]],
}
GPU_FORMS = [["2"], ["gpu:2"], ["gpu:a100:2"], [" gpu:2 "]]
DEP_FORMS = {
    "gflow": [
        ["5"],
        ["afterok:5:6,afterany:7"],
        ["after:5+10"],
        ["@"],
        ["5?6"],
        ["singleton"],
        [""],
        ["0"],
    ],
    "all": [["5,6"], ["@,@~1"]],
    "any": [["5,6"]],
    "moab": [["depend=afterok:5:6"], ["x=depend:afterany:5"], ["depend=before:5,on:1"]],
    "no_auto_cancel": [[]],
    "kill_on_invalid": [["yes"], ["no"], ["No"]],
}


def forms(option: options.Option) -> list[list[str]]:
    kind = option.kind
    if isinstance(kind, options.Dependency):
        return DEP_FORMS[kind.syntax]
    if option.key == "gpus":
        return GPU_FORMS
    return FORMS[type(kind)]


def cases() -> list[tuple[options.Option, str, list[str]]]:
    return [
        (option, flag, value)
        for option in OPTIONS
        if option.kind.form != options.WORDS
        for flag in option.flags
        for value in forms(option)
    ]


def submitted(argv: list[str]) -> dict[str, Any]:
    args = gbatch.build_parser().parse_args([*argv, "true"])
    assert args.command == ["true"], argv
    return jobopts.given(args, SUBMIT)


def changed(sub: str, argv: list[str]) -> dict[str, Any]:
    target = ["update", "7"] if sub == "update" else ["redo", "7"]
    return jobopts.given(gjob.build_parser().parse_args([*target, *argv]), CHANGE)


def fields(texts: dict[str, Any], purpose: str) -> dict[str, Any]:
    return options.parse_texts({**texts, "utc_offset": 0}, purpose)


def with_companion(option: options.Option, argv: list[str]) -> list[str]:
    """--no-auto-cancel with a dependency it applies to, too."""
    return [*argv, "-d", "9"] if option.key == "no_auto_cancel" else argv


@pytest.mark.parametrize(("option", "flag", "value"), cases(), ids=repr)
def test_every_gbatch_option_is_taken_by_gjob_update_and_redo_alike(
    option: options.Option, flag: str, value: list[str]
) -> None:
    argv = with_companion(option, [flag, *value])
    texts = submitted(argv)
    assert option.key in texts
    for sub in ("update", "redo"):
        assert changed(sub, argv) == texts
    if option.local:  # read by the client; the daemon never opens a user's path
        with pytest.raises(InvalidInput, match=option.flag):
            fields(texts, SUBMIT)
    else:
        expected = fields(texts, SUBMIT)
        assert options.ADJUSTS.get(option.field, option.field) in expected
    if option.update is True:
        assert fields(texts, CHANGE) == expected
    else:
        assert isinstance(option.update, str) and option.update
        with pytest.raises(InvalidInput) as refused:
            fields(texts, CHANGE)
        assert option.flag in refused.value.message and option.update in refused.value.message


def test_auto_cancel_alone_changes_only_that() -> None:
    for texts, auto in (
        ({"no_auto_cancel": True}, False),
        ({"kill_on_invalid_dep": "yes"}, True),
        ({"kill_on_invalid_dep": "no"}, False),
    ):
        for purpose in (SUBMIT, CHANGE):
            request = fields(texts, purpose)["dependency"]
            assert request.auto_cancel is auto and not request.sets_dependency
    assert fields({"depends_on": ["5"]}, CHANGE)["dependency"].auto_cancel is None
    with pytest.raises(InvalidInput, match="--kill-on-invalid-dep"):
        fields({"kill_on_invalid_dep": "maybe"}, SUBMIT)


def test_an_empty_dependency_or_0_means_none() -> None:
    for text in ("", "0", " 0 "):
        request = fields({"depends_on": [text]}, CHANGE)["dependency"]
        assert request.is_empty and request.sets_dependency and request.text is None


@pytest.mark.parametrize("option", OPTIONS, ids=repr)
def test_a_typed_value_meets_the_checks_of_the_text(option: options.Option) -> None:
    """The JSON value a program sends is held to the limits its text form is."""
    if option.local or isinstance(option.kind, options.Dependency):
        return
    if option.kind.form == options.WORDS:
        value: Any = ["echo", "hi"]
    else:
        parsed = fields(submitted(with_companion(option, [option.flag, *forms(option)[0]])), SUBMIT)
        value = parsed[options.ADJUSTS.get(option.field, option.field)]
        if isinstance(value, tuple):
            value = [[k, list(vs)] for k, vs in value]
    field = options.ADJUSTS.get(option.field, option.field)
    assert options.check_fields({option.field: value}, SUBMIT)[field] is not None
    if isinstance(option.kind, options.Whole):
        with pytest.raises(InvalidInput, match=option.field):
            options.check_fields({option.field: option.kind.hi + 1}, SUBMIT)


def test_gpus_in_slurm_form_are_refused_when_out_of_range() -> None:
    with pytest.raises(InvalidInput, match="--gpus"):
        fields({"gpus": "gpu:2000"}, CHANGE)
    with pytest.raises(InvalidInput, match="--gpus"):
        fields({"gpus": "gpu:x"}, SUBMIT)


def test_the_table_matches_the_request_and_the_job() -> None:
    request = {f.name for f in dataclasses.fields(SubmitRequest)}
    assert request - {o.field for o in OPTIONS} == {"workdir", "env", "script"}
    job = {f.name for f in dataclasses.fields(Job)}
    assert options.CHANGEABLE - job == {"dependency", *options.ADJUSTS}
    assert len(options.BY_KEY) == len(OPTIONS)
    for option in OPTIONS:
        assert option.key.isidentifier() and option.help and option.flags, option
        assert option.update is True or isinstance(option.update, str), option
    spellings = [f for o in OPTIONS for f in o.flags]
    assert len(spellings) == len(set(spellings))
    sbatch = [f for o in OPTIONS for f in o.sbatch]  # #SBATCH -c is --cpus-per-task
    assert len(sbatch) == len(set(sbatch))
    assert set(READERS) == {o.key for o in OPTIONS if o.local}


def test_changes_take_values_and_texts_together() -> None:
    got = update_changes({"priority": 5}, {"time": "10", "gpus": "gpu:1"})
    assert got == {"priority": 5, "time_limit": 600, "gpus": 1}
    assert update_changes({"time_limit": None}) == {"time_limit": None}
    with pytest.raises(InvalidInput, match="cannot be cleared"):
        update_changes({"priority": None})
    with pytest.raises(InvalidInput, match="update field"):
        update_changes({"array": "1-3"})
    with pytest.raises(InvalidInput, match="changes"):
        update_changes(None)
    assert update_changes(None, None, required=False) == {}


def test_a_submission_reads_texts_and_values_alike() -> None:
    base = {"command": ["true"], "workdir": "/tmp"}
    typed = SubmitRequest.from_json({**base, "gpus": 2, "time_limit": 600, "name": "a"})
    texts = {"gpus": "gpu:2", "time": "10", "name": "a"}
    assert SubmitRequest.from_json({**base, "options": texts}) == typed
    assert SubmitRequest.from_json({**base, "name": "  "}).name is None  # a random one


def test_nice_lowers_the_priority_as_in_slurm() -> None:
    for purpose in (SUBMIT, CHANGE):
        assert fields({"nice": "3"}, purpose) == {"priority": 7}
        assert fields({"nice": "5", "priority": "50"}, purpose) == {"priority": 45}
        assert fields({"nice": "200"}, purpose) == {"priority": 0}
    assert options.check_fields({"nice": 4}, SUBMIT) == {"priority": 6}
    args = gbatch.build_parser().parse_args(["--nice", "3", "true"])
    body = {"command": ["true"], "workdir": "/", "options": jobopts.given(args, SUBMIT)}
    assert SubmitRequest.from_json(body).priority == 7
