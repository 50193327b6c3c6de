"""Man pages, plain-text manuals and the docs' reference pages all come from the parsers.

Every flag of every parser and subparser must appear in its own command's section of
every rendering, so a flag added to a parser cannot be missing from the manual.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gflow import version
from gflow.cli import reference

BIN = Path(sys.executable).parent
TOKEN = re.compile(r"[^\s,\[\]()|]+")


def _parsers(tool: str) -> list[argparse.ArgumentParser]:
    def walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):
                    found += walk(sub)
        return found

    module = importlib.import_module(f"gflow.cli.{tool}")
    return walk(module.build_parser()) + reference.extra_parsers(tool)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag; ``-h/--help`` only on the tool itself (a page says it once)."""
    top = " " not in parser.prog
    return {
        o
        for a in parser._actions
        if a.help != argparse.SUPPRESS and (top or not isinstance(a, argparse._HelpAction))
        for o in a.option_strings
    }


def _unroff(text: str) -> str:
    text = re.sub(r"\\f[BIR]", "", text)
    for escaped, plain in (("\\-", "-"), ("\\(aq", "'"), ("\\&", ""), ("\\e", "\\")):
        text = text.replace(escaped, plain)
    return text


# Each function cuts a rendering at its subcommand headings and keeps, per command, only
# the lines that describe options (not the usage line or the examples, which name flags
# too): prog -> those lines.


def _roff_sections(page: reference.Page) -> dict[str, str]:
    text = _unroff(reference.roff(page, "1.2.3"))
    head, _, rest = text.partition(".SH COMMANDS")
    chunks = [(page.tool, head)] + [
        tuple(chunk.partition("\n")[::2]) for chunk in rest.split(".SS ")[1:]
    ]
    return {prog: "\n".join(re.findall(r"^\.TP\n(.*)$", body, re.M)) for prog, body in chunks}


def _markdown_sections(page: reference.Page) -> dict[str, str]:
    parts = re.split(r"^#+ (.+)$", reference.markdown(page), flags=re.MULTILINE)
    sections = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    rows = {k: re.findall(r"^\| (.*?) \|", v, re.M) for k, v in sections.items()}
    return {k: re.sub(r"</?code>", " ", "\n".join(v)) for k, v in rows.items()}


def _text_sections(page: reference.Page) -> dict[str, str]:
    head, _, rest = reference.text(page).partition("\nCOMMANDS\n")
    chunks = [(page.tool, head)] + [
        tuple(chunk.partition("\n")[::2])
        for chunk in re.split(r"^   (?=\S)", rest, flags=re.MULTILINE)[1:]
    ]
    return {prog: "\n".join(re.findall(r"^ {7}(-.*)$", body, re.M)) for prog, body in chunks}


@pytest.mark.parametrize("tool", reference.TOOLS)
def test_every_flag_of_every_parser_is_in_its_section_of_every_rendering(tool: str) -> None:
    page = reference.page(tool)
    renderings = {
        "roff": _roff_sections(page),
        "text": _text_sections(page),
        "markdown": _markdown_sections(page),
    }
    parsers = _parsers(tool)
    assert len(parsers) >= 2
    for name, sections in renderings.items():
        for parser in parsers:
            assert parser.prog in sections, (name, parser.prog)
            words = set(TOKEN.findall(sections[parser.prog]))
            missing = _flags(parser) - words
            assert not missing, (name, parser.prog, missing)


@pytest.mark.parametrize("tool", reference.TOOLS)
def test_man_pages_are_valid_roff(tool: str, tmp_path: Path) -> None:
    source = reference.roff(reference.page(tool), "1.2.3")
    assert source.startswith(f'.TH {tool.upper()} 1 "" "gflow-scheduler 1.2.3"')
    assert source.isascii()
    assert not re.search(r"^['.](?![A-Z]{2}\b|nh$|ad l$|nf$|fi$|RS 4$|RE$)", source, re.M)
    groff = shutil.which("groff")
    if groff:
        path = tmp_path / f"{tool}.1"
        path.write_text(source)
        done = subprocess.run(
            [groff, "-man", "-Tutf8", "-ww", "-z", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stderr == ""


def _gflow(*argv: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [str(BIN / "gflow"), *argv], env=env, capture_output=True, text=True, timeout=60
    )


def test_gflow_man_prints_a_page_through_man_or_as_text(tmp_path: Path) -> None:
    plain = _gflow("man", "gbatch", path=str(tmp_path))  # no man(1) on this PATH
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == reference.text(reference.page("gbatch"))
    assert plain.stdout.startswith("GBATCH(1)\n\nNAME\n       gbatch - submit")
    if shutil.which("man"):
        shown = _gflow("man", "gbatch")
        assert shown.returncode == 0, shown.stderr
        assert "GBATCH(1)" in shown.stdout and "--depends-on-any" in shown.stdout
        assert f"gflow-scheduler {version()}" in shown.stdout
    roff = _gflow("man", "gqueue", "--roff")
    assert roff.stdout == reference.roff(reference.page("gqueue"), version())


def test_gflow_man_refuses_an_unknown_command_in_one_line() -> None:
    done = _gflow("man", "squeue")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "invalid choice: 'squeue'" in done.stderr
