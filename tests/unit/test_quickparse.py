"""The quick reading of a command line agrees with argparse on every shape it takes, and
leaves every other shape to argparse."""

from __future__ import annotations

import importlib
import shlex
from typing import Any

import pytest

from gflow.cli import quickparse
from gflow.cli.common import Parser, UsageError

FLAT_TOOLS = ("gqueue", "gbatch", "gcancel", "ginfo", "gstats")


def _parsers() -> list[Parser]:
    from gflow.cli.completion import completion_parser
    from gflow.cli.gbatch import new_parser

    found = [importlib.import_module(f"gflow.cli.{t}").build_parser() for t in FLAT_TOOLS]
    return [*found, new_parser(), completion_parser("gqueue")]


def _sample(kw: dict[str, Any]) -> str:
    if kw.get("choices"):
        return str(list(kw["choices"])[-1])
    return {int: "7", float: "2.5"}.get(kw.get("type"), "x1")  # type: ignore[arg-type]


def _command_lines(parser: Parser) -> list[list[str]]:
    """Each option alone, as --opt=value, repeated, together, and the help's examples."""
    lines: list[list[str]] = [[]]
    together: list[str] = []
    positional: list[str] = []
    for flags, kw in parser.arguments:
        if flags[0][:1] != "-":
            positional = ["a1", "b2"] if kw.get("nargs") in ("+", "*", "...") else ["a1"]
            if kw.get("choices"):
                positional = [_sample(kw)]
            continue
        if kw.get("action") in ("store_true", "store_false"):
            forms = [[f] for f in flags]
        elif kw.get("action") == "version_lazy":
            continue
        else:
            value = _sample(kw)
            forms = [[f, value] for f in flags] + [[f"{flags[-1]}={value}"]]
            forms.append([*forms[0], *forms[0]])
        lines += forms
        together += forms[0]
    lines += [together, [*together, *positional], positional, [*positional, "--x", "y"]]
    epilog = parser._init.get("epilog") or ""
    for text in epilog.splitlines()[1:]:
        words = shlex.split(text.split("  ")[1] if text.startswith("  ") else text)
        if words and str(parser.prog).startswith(words[0]):
            lines.append(words[len(str(parser.prog).split()) :])
    return lines


def _argparse(parser: Parser, argv: list[str]) -> Any:
    try:
        return vars(parser.real.parse_args(argv))
    except UsageError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("parser", _parsers(), ids=lambda p: str(p.prog))
def test_the_quick_reading_agrees_with_argparse(parser: Parser) -> None:
    taken = 0
    for argv in _command_lines(parser):
        quick = quickparse.parse(parser.arguments, argv)
        if quick is None:
            continue
        taken += 1
        assert vars(quick) == _argparse(parser, argv), argv
    assert taken >= 2, parser.prog
    for flags, kw in parser.arguments:
        dest = quickparse._Option(flags, kw).dest
        if dest != "==SUPPRESS==":
            assert quickparse.default(parser.arguments, dest) == parser.real.get_default(dest)


@pytest.mark.parametrize(
    "argv",
    [
        ["-h"],
        ["--help"],
        ["--version"],
        ["--limit", "x"],
        ["--lim", "5"],
        ["-n", "-20"],
        ["-n5"],
        ["-ag"],
        ["-o", "yaml"],
        ["--all=yes"],
        ["--limit"],
        ["--", "-a"],
        ["stray"],
    ],
)
def test_unusual_command_lines_are_left_to_argparse(argv: list[str]) -> None:
    from gflow.cli.gqueue import build_parser

    assert quickparse.parse(build_parser().arguments, argv) is None


def test_a_usage_error_still_comes_from_argparse() -> None:
    from gflow.cli.gqueue import build_parser

    with pytest.raises(UsageError, match="invalid int value: 'x'"):
        build_parser().parse_args(["--limit", "x"])
    assert build_parser().parse_args(["-n", "-20"]).limit == -20


def test_gbatch_takes_the_rest_of_the_line_as_the_command() -> None:
    from gflow.cli.gbatch import build_parser

    args = build_parser().parse_args(["-g", "1", "--param", "a=1", "python", "t.py", "-g", "2"])
    assert args.command == ["python", "t.py", "-g", "2"]
    assert args.gpus == "1" and args.param == ["a=1"]
