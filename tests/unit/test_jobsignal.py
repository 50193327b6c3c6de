"""Slurm's --signal=[B:]SIG[@SECONDS], read and written back in its normal form."""

from __future__ import annotations

import signal

import pytest

from gflow.errors import InvalidInput
from gflow.jobsignal import parse


@pytest.mark.parametrize(
    ("text", "normal", "number"),
    [
        ("USR1", "USR1@60", signal.SIGUSR1),
        ("B:SIGUSR1@120", "B:USR1@120", signal.SIGUSR1),
        ("b:term@0", "B:TERM@0", signal.SIGTERM),
        ("12@30", "USR2@30", signal.SIGUSR2),
        ("@90", "USR1@90", signal.SIGUSR1),
        ("", "USR1@60", signal.SIGUSR1),
    ],
)
def test_forms(text: str, normal: str, number: int) -> None:
    spec = parse(text)
    assert (str(spec), spec.number) == (normal, number)
    assert str(parse(str(spec))) == normal


@pytest.mark.parametrize("text", ["KILL", "9", "STOP", "USR1@", "USR1@-1", "USR1@65536", "R:USR1"])
def test_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="SIG one of"):
        parse(text)
