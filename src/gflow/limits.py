"""Every bound on what one request may carry, in one place.

The command-line parsers (:mod:`gflow.parse`, :mod:`gflow.deps`), the request shapes
(:mod:`gflow.protocol`), the admin handlers and the check of stored jobs all use these
names, so the CLI and the raw API accept exactly the same numbers and texts. The bounds
are chosen so that no accepted value can overflow the engine's arithmetic, a float
timestamp or a SQLite integer. Pure: no I/O, imports nothing heavier than the errors.
"""

from __future__ import annotations

import math

from gflow.errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:  # a client imports this with the option table: no typing at start-up
    from typing import Final

# ------------------------------------------------------------ numbers

MAX_DIGITS: Final = 18
"""Digits of any id or count typed as text (keeps every id below SQLite's 2**63)."""
MAX_ID: Final = 10**MAX_DIGITS - 1
"""Job, array, task and reservation ids."""
MAX_UID: Final = 2**32 - 2
MAX_PID: Final = 2**22
MAX_GPUS: Final = 1024
"""GPUs one job may ask for."""
MAX_GPU_INDEX: Final = 1023
MAX_PRIORITY: Final = 255
MAX_SECONDS: Final = 100 * 366 * 86400
"""Time limits, ``after:ID+MINUTES`` delays, ``now+N``, durations: at most 100 years."""
MAX_MEMORY_MB: Final = 1024**3
"""Host or GPU memory of one job, in MiB (1 PiB)."""
MAX_RETRIES: Final = 100
MAX_CPUS: Final = 1 << 16
MAX_COUNT: Final = 10**9
"""Counting limits: ``--max-concurrent``, ``gctl set-limit``, quota entries."""
MAX_DAYS: Final = MAX_SECONDS // 86400
MAX_WAIT: Final = 300.0
"""Seconds one ``/v1/wait`` request may block (the client asks again)."""
EARLIEST: Final = 0.0
LATEST: Final = 253402300799.0
"""Instants (begin times, ``--at``, ``--since``, reservations): up to 9999-12-31."""
MAX_UTC_OFFSET: Final = 86399
"""A client's time zone, in seconds east of UTC (strictly less than a day)."""

# ------------------------------------------------------------ sizes

MAX_EXPANSION: Final = 100_000
"""Jobs one submission creates; ids one selector names; values one sweep key takes."""
MAX_DEP_REFS: Final = 10_000
"""Job references typed in one job's dependency (duplicates count once)."""
MAX_PARENTS: Final = MAX_EXPANSION
"""Parents one job waits for once references are resolved (an array counts its tasks)."""
MAX_DEP_EDGES: Final = 1_000_000
"""Parent links one submission creates: jobs times the parents of each."""
MAX_NAME: Final = 200
MAX_PROJECT: Final = 64
MAX_PATH: Final = 4096
MAX_SPEC: Final = 100_000
"""Characters of one option's text: a dependency, an array spec, a job selector."""
MAX_COMMAND: Final = 1 << 20
"""Characters of one job's command (all words together)."""
MAX_COMMAND_WORDS: Final = 10_000
MAX_ENV: Final = 1 << 20
"""Characters of a submission's environment, names and values together."""
MAX_ENV_VALUE: Final = 128 * 1024
"""One environment variable (the kernel refuses longer strings at exec)."""
MAX_ENV_VARS: Final = 10_000
MAX_BATCH_TEXT: Final = 64 << 20
"""Characters of command text one submission may store when a sweep renders one per job."""
MAX_REASON: Final = 200
MAX_KEYS: Final = 100
"""Keys of a sweep, columns of a parameter file, uses of a repeatable option."""


# ------------------------------------------------------------ checks


def whole(value: object, field: str, lo: int, hi: int) -> int:
    """``value`` if it is a JSON whole number (not a bool) from ``lo`` to ``hi``."""
    if type(value) is not int or not lo <= value <= hi:
        raise InvalidInput(field, brief(value), f"a whole number from {lo} to {hi}")
    return value


def number(value: object, field: str, lo: float, hi: float) -> float:
    """``value`` as a float if it is a finite JSON number from ``lo`` to ``hi``."""
    if type(value) is int and lo <= value <= hi:
        return float(value)
    if type(value) is not float or not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidInput(field, brief(value), f"a number from {lo:g} to {hi:g}")
    return value


def instant(value: object, field: str) -> float:
    """A point in time in seconds since the epoch, within :data:`EARLIEST`–:data:`LATEST`."""
    try:
        return number(value, field, EARLIEST, LATEST)
    except InvalidInput:
        raise InvalidInput(
            field, brief(value), "a time in seconds since the epoch (year 1970 to 9999)"
        ) from None


def text(value: object, field: str, limit: int, *, line: bool = False) -> str:
    """``value`` if it is a string of at most ``limit`` characters that is valid UTF-8
    without NUL; with ``line``, printable characters only (no tab, newline, escape)."""
    if not isinstance(value, str):
        raise InvalidInput(field, brief(value), "text")
    if len(value) > limit:
        raise InvalidInput(field, value[:40] + "...", f"text of at most {limit} characters")
    if not encodable(value):
        raise InvalidInput(field, value[:60], "valid UTF-8 text without NUL characters")
    if line and not value.isprintable():
        raise InvalidInput(
            field, value[:60], "printable text (no control characters, tabs or newlines)"
        )
    return value


def encodable(value: str) -> bool:
    """Text that can be stored, passed to a process and printed: UTF-8, no NUL."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def brief(value: object) -> str:
    """``value`` as an error message shows it: its ``repr``, cut short."""
    try:
        shown = value if isinstance(value, str) else repr(value)
    except (ValueError, RecursionError):  # an integer too long to print, or nested too deep
        shown = f"a {type(value).__name__}"
    return shown if len(shown) <= 60 else shown[:57] + "..."
