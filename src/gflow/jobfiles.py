"""Where a job's output goes: sbatch's ``-o/--output`` and ``-e/--error`` file patterns.

A pattern is a path, relative to the job's working directory unless absolute, in which
``%j`` is the job id, ``%x`` its name, ``%A`` its array's id (the job id outside an
array), ``%a`` its task id (0 outside an array), ``%u`` its user, ``%N`` the host's short
name and ``%%`` a percent sign; a number after ``%`` pads with zeros (``%4a``). The
patterns are stored as typed and filled in for each job, so a retry or a redo writes
under its own id. Pure: the files are opened by the job, as its user.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from gflow.errors import InvalidInput

FORMS = (
    "a file path; %j job id, %x job name, %A array id, %a task id, %u user, %N host, "
    "%% a percent sign, and a width such as %4a pads with zeros"
)
_SPEC = re.compile(r"%(\d{0,2})(.|$)", re.S)
LETTERS = frozenset("jxAauN%")


@dataclass(frozen=True, slots=True)
class Names:
    """What a pattern's ``%`` letters stand for, for one job."""

    job_id: int
    name: str
    user: str
    array_id: int | None
    task_id: int | None
    host: str


def check(pattern: str, field: str) -> str:
    """``pattern`` if every ``%`` in it is one gflow fills in, else a one-line error."""
    for m in _SPEC.finditer(pattern):
        if m.group(2) not in LETTERS:
            raise InvalidInput(field, pattern, FORMS)
    return pattern


def expand(pattern: str, names: Names, workdir: str) -> str:
    """The absolute path ``pattern`` means for one job."""
    values = {
        "j": str(names.job_id),
        "x": names.name,
        "A": str(names.array_id if names.array_id is not None else names.job_id),
        "a": str(names.task_id if names.task_id is not None else 0),
        "u": names.user,
        "N": names.host,
    }

    def fill(m: re.Match[str]) -> str:
        width, letter = m.group(1), m.group(2)
        if letter == "%":
            return "%"
        value = values[letter]
        return value.zfill(int(width)) if width else value

    return posixpath.join(workdir, _SPEC.sub(fill, pattern))
