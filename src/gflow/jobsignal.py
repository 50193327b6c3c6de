"""Slurm's ``--signal=[B:]SIG[@SECONDS]``: a warning signal before a job's time limit.

SIG (a name such as ``USR1`` or ``SIGUSR1``, or its number; default USR1) is sent
SECONDS (default 60, at most 65535) before the time limit, to every process of the job,
or with ``B:`` to the job's command only (the batch script, in Slurm's words). Nothing is
sent unless asked. Pure: parsing and formatting only.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from gflow.errors import InvalidInput

DEFAULT_SIGNAL = "USR1"
DEFAULT_SECONDS = 60
MAX_SECONDS = 65535
SIGNALS = ("HUP", "INT", "QUIT", "USR1", "USR2", "ALRM", "TERM", "XCPU")
"""The signals a job may ask for: those the job wrapper lets through to the job (the
wrapper's ``__gflow_signals``), which a program can catch."""
FORMS = (
    "[B:]SIG[@SECONDS]: SIG one of " + ", ".join(SIGNALS) + " (or SIGUSR1, or its number; "
    f"default {DEFAULT_SIGNAL}), SECONDS from 0 to {MAX_SECONDS} (default {DEFAULT_SECONDS})"
)


@dataclass(frozen=True, slots=True)
class JobSignal:
    name: str
    """Without the SIG prefix: ``USR1``."""
    seconds: int
    """How long before the time limit."""
    batch_only: bool = False
    """``B:``: to the job's command only, not to every process of the job."""

    @property
    def number(self) -> int:
        return int(signal.Signals[f"SIG{self.name}"])

    def __str__(self) -> str:
        return f"{'B:' if self.batch_only else ''}{self.name}@{self.seconds}"


def parse(text: str, field: str = "--signal") -> JobSignal:
    """``[B:]SIG[@SECONDS]``, e.g. ``USR1``, ``B:SIGUSR1@120``, ``10@30``, ``@90``."""
    spec = text.strip()
    batch_only = spec[:2].upper() == "B:"
    if batch_only:
        spec = spec[2:]
    sig, at, seconds = spec.partition("@")
    name = _name(sig.strip())
    wait = seconds.strip()
    if name is None or (at and not (wait.isascii() and wait.isdigit() and len(wait) <= 5)):
        raise InvalidInput(field, text, FORMS)
    value = int(wait) if at else DEFAULT_SECONDS
    if value > MAX_SECONDS:
        raise InvalidInput(field, text, FORMS)
    return JobSignal(name, value, batch_only)


def _name(sig: str) -> str | None:
    if not sig:
        return DEFAULT_SIGNAL
    if sig.isascii() and sig.isdigit():
        number = int(sig) if len(sig) <= 3 else 0
        names = {int(signal.Signals[f"SIG{n}"]): n for n in SIGNALS}
        return names.get(number)
    upper = sig.upper()
    upper = upper[3:] if upper.startswith("SIG") else upper
    return upper if upper in SIGNALS else None
