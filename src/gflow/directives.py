"""The options a job script carries in its header: ``# GFLOW`` and ``#SBATCH`` lines.

They are read where sbatch reads them: after the ``#!`` line, up to the first line that
is neither blank nor a comment (a heredoc further down keeps its own). ``# GFLOW`` lines
hold gbatch options. ``#SBATCH`` options that mean a gflow option (:data:`OPTIONS`'
``sbatch`` spellings) become that option; those a single machine honours by itself
(one node, one task) are met; an option whose absence would change what the job does
(more than one node, another directory) is refused; any other is ignored, and named so
the user knows. Pure: text in, options out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from gflow.errors import InvalidInput
from gflow.options import OPTIONS, SWITCH, Option

MARKERS = ("# GFLOW", "#GFLOW", "#SBATCH")
MAX_LINES = 500
"""A header is read no further than this."""

ONE = {"--nodes": "nodes", "-N": "nodes", "--ntasks": "tasks", "-n": "tasks"}
ONE |= {"--ntasks-per-node": "tasks"}
"""``#SBATCH`` counts this machine meets only as 1: a job is one task on one node."""
ELSEWHERE = frozenset({"--chdir", "-D"})
"""``#SBATCH`` options that would run the job in another directory."""


@dataclass(slots=True)
class Directives:
    tokens: list[str] = field(default_factory=list)
    """gbatch's options, as if typed on its command line."""
    ignored: list[str] = field(default_factory=list)
    """The ``#SBATCH`` options gflow does not honour, as written."""


def header(text: str) -> list[str]:
    """The lines of a script's header, stripped."""
    lines = text.splitlines()[:MAX_LINES]
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    found = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        found.append(stripped)
    return found


def read(text: str, where: str) -> Directives:
    """The options of the script ``text`` (named ``where`` in messages)."""
    out = Directives()
    for line in header(text):
        marker = next((m for m in MARKERS if line.startswith(m)), None)
        rest = line[len(marker) :] if marker else ""
        if marker is None or rest[:1] not in ("", " ", "\t"):
            continue  # a comment, or e.g. "# GFLOWS"
        try:
            words = shlex.split(rest, comments=True)
        except ValueError:
            words = rest.split()
        if marker == "#SBATCH":
            _sbatch(words, where, out)
        else:
            out.tokens += words
    return out


def _sbatch(words: list[str], where: str, out: Directives) -> None:
    table = {flag: option for option in OPTIONS for flag in option.sbatch}
    i = 0
    while i < len(words):
        flag, eq, value = words[i].partition("=")
        option = table.get(flag)
        switch = option is not None and option.kind.form == SWITCH
        takes = not eq and not switch and i + 1 < len(words)
        if takes:
            value = words[i + 1]
        written = words[i : i + (2 if takes else 1)]
        i += len(written)
        if option is not None:
            out.tokens += _as_gbatch(option, value, switch)
        elif flag in ONE:
            _one(flag, value, where)
        elif flag in ELSEWHERE:
            raise InvalidInput(
                f"#SBATCH {flag}",
                value,
                f"none (in {where}): gflow runs a job in the directory it is submitted "
                "from; cd there before gbatch, or in the script",
            )
        else:
            out.ignored += written


def _as_gbatch(option: Option, value: str, switch: bool) -> list[str]:
    return [option.flag] if switch else [f"{option.flag}={value}"]


def _one(flag: str, value: str, where: str) -> None:
    low = value.split("-", 1)[0].strip()
    if low.isascii() and low.isdigit() and int(low) <= 1:
        return
    raise InvalidInput(
        f"#SBATCH {flag}",
        value,
        f"1 (in {where}): gflow runs a job as one task on this one machine, and running "
        f"it once instead of on several {ONE[flag]} would change what it does",
    )
