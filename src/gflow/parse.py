"""Parsers and formatters for what users type: durations, sizes, job ids, arrays, sweeps.

Every function is pure (:mod:`gflow.paramfile` reads the files) and every malformed
input raises :class:`~gflow.errors.InvalidInput`, never a bare ``ValueError``.
"""

from __future__ import annotations

import datetime
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from gflow.errors import InvalidInput
from gflow.limits import (
    MAX_DIGITS,
    MAX_EXPANSION,
    MAX_GPU_INDEX,
    MAX_ID,
    MAX_MEMORY_MB,
    MAX_PRIORITY,
    MAX_SECONDS,
)

_MAX_PARAM_DIGITS: Final = 15
_MAX_SHOWN: Final = 80

# Patterns are kept as strings and compiled on first use (re caches them): fast import.
_KEY_RE: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_MEMORY_RE: Final = r"([0-9]*)(?:\.([0-9]+))?\s*([A-Za-z]*)"
_ARRAY_ITEM_RE: Final = r"([0-9]+)(?:\s*-\s*([0-9]+)(?:\s*:\s*([0-9]+))?)?"
_NUMBER = r"[+-]?[0-9]+(?:\.[0-9]+)?"
_RANGE_RE: Final = rf"({_NUMBER}):({_NUMBER})(?::({_NUMBER}))?"
_NOW_PLUS_RE: Final = r"now\s*\+\s*([0-9]+)\s*([a-z]*)"
_AGO_RE: Final = r"([0-9]+)\s*([a-z]+)"
_CLOCK_RE: Final = r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?"
_DATE_RE: Final = (
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[Tt ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?"
)
_DURATION_RE: Final = r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
_PLACEHOLDER_RE: Final = r"\{\{|\}\}|(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}"

_UNLIMITED: Final = frozenset({"UNLIMITED", "INFINITE"})
_TIME_FORMS: Final = "MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED"
_MEMORY_FORMS: Final = "a size > 0 such as 512 (MiB), 1024M, 2G, 1.5G, 1T, 512MiB or 4096K"
_REF_FORMS: Final = "a job id (1 or more), @, @~N or ARRAYID_TASKID"
_ARRAY_FORMS: Final = "ids >= 0 as N, A-B or A-B:STEP, comma separated, optionally ending %MAX"
_DATE_FORM: Final = "YYYY-MM-DD[THH:MM[:SS]]"
_BEGIN_FORMS: Final = f"now, now+N[s|m|h|d|w], HH:MM[:SS], {_DATE_FORM}, today or tomorrow"
_DURATION_FORMS: Final = "1h, 30m, 2h30m, 45s, 1d, HH:MM:SS or MINUTES (a bare number)"
_SINCE_FORMS: Final = f"N[s|m|h|d|w] (e.g. 1h, 2d), today, yesterday or {_DATE_FORM}"
_PARAM_FORMS: Final = "KEY=V1,V2,... with KEY matching [A-Za-z_][A-Za-z0-9_]*"

_CLOCK_WEIGHTS: Final = {1: (60,), 2: (60, 1), 3: (3600, 60, 1)}
_KIB_PER_UNIT: Final = {
    **dict.fromkeys(("k", "kb", "kib"), 1),
    **dict.fromkeys(("", "m", "mb", "mib"), 1024),
    **dict.fromkeys(("g", "gb", "gib"), 1024**2),
    **dict.fromkeys(("t", "tb", "tib"), 1024**3),
}
_SECONDS_PER_UNIT: Final = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}


@dataclass(frozen=True, slots=True)
class RecentRef:
    """``@`` (``back=0``, the most recent submission) or ``@~N`` (``back=N``)."""

    back: int


@dataclass(frozen=True, slots=True)
class TaskRef:
    """One task of a job array, written ``ARRAYID_TASKID`` as in Slurm."""

    array_id: int
    task_id: int


Ref: TypeAlias = int | RecentRef | TaskRef


@dataclass(frozen=True, slots=True)
class ArraySpec:
    task_ids: tuple[int, ...]
    max_running: int | None


def _invalid(field: str, value: str, expected: str) -> InvalidInput:
    """The error for ``value``, shortened so a huge input cannot flood a terminal."""
    shown = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."
    return InvalidInput(field, shown, expected)


def _num(text: str) -> int | None:
    """An ASCII decimal of at most 18 significant digits, else None."""
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= MAX_DIGITS else None


def _nums(texts: Iterable[str]) -> list[int] | None:
    values = [_num(t) for t in texts]
    return None if None in values else [v for v in values if v is not None]


def parse_whole(text: str, field: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, typed in ASCII digits."""
    value = _num(text.strip())
    if value is None or not low <= value <= high:
        raise _invalid(field, text, f"an integer from {low} to {high}")
    return value


# --- durations -------------------------------------------------------------------------


def parse_time_limit(text: str) -> int | None:
    """Seconds in a Slurm-style time limit; ``None`` for UNLIMITED. A bare number is minutes."""
    s = text.strip()
    if s.isascii() and s.upper() in _UNLIMITED:
        return None
    day_text, dash, clock = s.rpartition("-")
    parts = _nums(clock.split(":"))
    days = _num(day_text) if dash else 0
    if days is None or parts is None or len(parts) > 3:
        raise _invalid("time limit", text, _TIME_FORMS)
    weights = (3600, 60, 1)[: len(parts)] if dash else _CLOCK_WEIGHTS[len(parts)]
    if any(p >= 60 for p in parts[1:]) or (dash and parts[0] >= 24):
        raise _invalid("time limit", text, f"{_TIME_FORMS}, with fields in range")
    seconds = days * 86400 + sum(p * w for p, w in zip(parts, weights, strict=True))
    if not 0 < seconds <= MAX_SECONDS:
        raise _invalid("time limit", text, f"more than 0 and at most {MAX_SECONDS // 86400} days")
    return seconds


def format_duration(seconds: float | None) -> str:
    """``HH:MM:SS`` or ``D-HH:MM:SS``; fractions are truncated, negatives shown as zero."""
    if seconds is None or seconds == math.inf:
        return "UNLIMITED"
    total = int(seconds) if math.isfinite(seconds) and seconds > 0 else 0
    days, rest = divmod(total, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


# --- sizes and counts ------------------------------------------------------------------


def parse_memory_mb(text: str, field: str = "memory") -> int:
    """MiB in a size such as ``512`` (MiB), ``2G``, ``1.5GiB`` or ``4096K``; rounded up."""
    match = re.fullmatch(_MEMORY_RE, text.strip())
    kib_per_unit = _KIB_PER_UNIT.get(match.group(3).lower()) if match else None
    if match is None or kib_per_unit is None:
        raise _invalid(field, text, _MEMORY_FORMS)
    whole, fraction = match.group(1), match.group(2) or ""
    mantissa = _num(whole + fraction) if whole or fraction else None
    if mantissa is None or mantissa == 0 or len(fraction) > MAX_DIGITS:
        raise _invalid(field, text, _MEMORY_FORMS)
    scale: int = 10 ** len(fraction) * 1024
    mib = -(-mantissa * kib_per_unit // scale)
    if mib > MAX_MEMORY_MB:
        raise _invalid(field, text, f"at most {MAX_MEMORY_MB // 1024**2}T")
    return mib


def format_memory_mb(mb: int | None) -> str:
    """``-`` for None, ``2G`` for whole GiB, else ``1536M``."""
    if mb is None:
        return "-"
    return f"{mb // 1024}G" if mb > 0 and mb % 1024 == 0 else f"{mb}M"


def parse_priority(text: str) -> int:
    return parse_whole(text, "priority", 0, MAX_PRIORITY)


def parse_nonneg_int(text: str, field: str) -> int:
    return parse_whole(text, field, 0, MAX_ID)


# --- instants --------------------------------------------------------------------------


def _at(now: datetime.datetime, day: datetime.date, clock: datetime.time) -> datetime.datetime:
    """``day`` at wall-clock ``clock`` in the frame of ``now`` (its zone, or local if naive)."""
    return datetime.datetime.combine(day, clock, tzinfo=now.tzinfo)


def _date_time(s: str, now: datetime.datetime) -> datetime.datetime | None:
    match = re.fullmatch(_DATE_RE, s)
    if match is None:
        return None
    year, month, day = (int(g) for g in match.group(1, 2, 3))
    hour, minute, second = (int(g or 0) for g in match.group(4, 5, 6))
    return _at(now, datetime.date(year, month, day), datetime.time(hour, minute, second))


def _offset(amount: str, unit: str, default_unit: str | None) -> int | None:
    count = _num(amount)
    per_unit = _SECONDS_PER_UNIT.get(unit or default_unit or "")
    if count is None or per_unit is None or count * per_unit > MAX_SECONDS:
        return None
    return count * per_unit


def _begin(s: str, now: datetime.datetime) -> float | None:
    word = s.lower()
    if word == "now":
        return now.timestamp()
    if word in ("today", "tomorrow"):
        day = now.date() + datetime.timedelta(days=1 if word == "tomorrow" else 0)
        return _at(now, day, datetime.time()).timestamp()
    if match := re.fullmatch(_NOW_PLUS_RE, word):
        seconds = _offset(match.group(1), match.group(2), "s")
        return None if seconds is None else now.timestamp() + seconds
    if match := re.fullmatch(_CLOCK_RE, s):
        hour, minute, second = (int(g or 0) for g in match.group(1, 2, 3))
        when = _at(now, now.date(), datetime.time(hour, minute, second))
        if when < now:
            when = _at(now, now.date() + datetime.timedelta(days=1), when.time())
        return when.timestamp()
    moment = _date_time(s, now)
    return None if moment is None else moment.timestamp()


def parse_begin(text: str, now: datetime.datetime, field: str = "begin time") -> float:
    """Epoch seconds of a start time; wall-clock forms are read in ``now``'s frame."""
    try:
        result = _begin(text.strip(), now)
    except (ValueError, OverflowError, OSError) as exc:
        raise _invalid(field, text, _BEGIN_FORMS) from exc
    if result is None:
        raise _invalid(field, text, _BEGIN_FORMS)
    return result


def parse_when(text: str, now: datetime.datetime, field: str = "start time") -> float:
    """:func:`parse_begin`'s forms, plus ISO 8601 with a zone (``2026-05-01T14:00:00Z``)."""
    s = text.strip()
    iso = s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is not None:
        return moment.timestamp()
    return parse_begin(text, now, field)


def parse_duration(text: str, field: str = "duration") -> int:
    """Seconds in ``1h``, ``30m``, ``2h30m``, ``45s``, ``1d``, ``HH:MM:SS`` or ``90`` (minutes)."""
    s = text.strip().lower()
    seconds: int | None = None
    if ":" in s:
        try:
            seconds = parse_time_limit(s)
        except InvalidInput:
            seconds = None
    elif s.isdigit():
        minutes = _num(s)
        seconds = None if minutes is None else minutes * 60
    elif (match := re.fullmatch(_DURATION_RE, s)) and any(match.groups()):
        parts = _nums(g or "0" for g in match.groups())
        if parts is not None:
            seconds = sum(p * w for p, w in zip(parts, (86400, 3600, 60, 1), strict=True))
    if seconds is None:
        raise _invalid(field, text, _DURATION_FORMS)
    if not 0 < seconds <= MAX_SECONDS:
        raise _invalid(field, text, f"more than 0 and at most {MAX_SECONDS // 86400} days")
    return seconds


def _since(s: str, now: datetime.datetime) -> float | None:
    word = s.lower()
    if word in ("today", "yesterday"):
        day = now.date() - datetime.timedelta(days=1 if word == "yesterday" else 0)
        return _at(now, day, datetime.time()).timestamp()
    if match := re.fullmatch(_AGO_RE, word):
        seconds = _offset(match.group(1), match.group(2), None)
        return None if seconds is None else now.timestamp() - seconds
    when = _date_time(s, now)
    return None if when is None else when.timestamp()


def parse_since(text: str, now: datetime.datetime) -> float:
    """Epoch seconds of a past instant: ``1h`` (ago), ``today``, ``yesterday`` or a date."""
    try:
        result = _since(text.strip(), now)
    except (ValueError, OverflowError, OSError) as exc:
        raise _invalid("since", text, _SINCE_FORMS) from exc
    if result is None:
        raise _invalid("since", text, _SINCE_FORMS)
    return result


# --- job references --------------------------------------------------------------------


def parse_ref(token: str, field: str = "job id") -> Ref:
    """``42``, ``@`` / ``@~N`` (recent submissions) or ``ARRAYID_TASKID``."""
    s = token.strip()
    ref: Ref | None = None
    if s == "@":
        ref = RecentRef(0)
    elif s.startswith("@~"):
        back = _num(s[2:])
        ref = None if back is None else RecentRef(back)
    elif "_" in s:
        ids = _nums(s.split("_"))
        if ids is not None and len(ids) == 2 and ids[0] >= 1:
            ref = TaskRef(ids[0], ids[1])
    else:
        job_id = _num(s)
        ref = job_id if job_id is not None and job_id >= 1 else None
    if ref is None:
        raise _invalid(field, token, _REF_FORMS)
    return ref


def parse_id_list(text: str, field: str = "job ids") -> list[Ref]:
    """Comma-separated refs and ``A-B`` ranges; order kept, duplicates dropped."""
    if not text.strip():
        raise _invalid(field, text, f"a comma-separated list of {_REF_FORMS} or A-B")
    refs: dict[Ref, None] = {}
    budget = MAX_EXPANSION
    for raw in text.split(","):
        item = raw.strip()
        start_text, dash, end_text = item.partition("-")
        if dash:
            bounds = _nums((start_text.strip(), end_text.strip()))
            if bounds is None or not 1 <= bounds[0] <= bounds[1]:
                raise _invalid(field, item, "a range A-B of job ids with 1 <= A <= B")
            new: Iterable[Ref] = range(bounds[0], bounds[1] + 1)
            budget -= bounds[1] - bounds[0] + 1
        else:
            new = (parse_ref(item, field),)
            budget -= 1
        if budget < 0:
            raise _invalid(field, text, f"at most {MAX_EXPANSION} ids")
        refs.update(dict.fromkeys(new))
    return list(refs)


# --- arrays and sweeps -----------------------------------------------------------------


def parse_array_spec(text: str) -> ArraySpec:
    """Slurm ``--array``: ``1-10``, ``1,3,5``, ``0-20:2``, ``1-100%4`` and mixes thereof."""
    body, percent, limit_text = text.strip().partition("%")
    max_running = _num(limit_text.strip()) if percent else None
    if percent and (max_running is None or max_running < 1):
        raise _invalid("array", text, f"{_ARRAY_FORMS} (MAX at least 1)")
    task_ids: set[int] = set()
    budget = MAX_EXPANSION
    for raw in body.split(","):
        match = re.fullmatch(_ARRAY_ITEM_RE, raw.strip())
        groups = _nums(g for g in match.groups() if g is not None) if match else None
        if groups is None:
            raise _invalid("array", text, _ARRAY_FORMS)
        start = groups[0]
        end = groups[1] if len(groups) > 1 else start
        step = groups[2] if len(groups) > 2 else 1
        if start > end or step < 1:
            raise _invalid("array", raw.strip(), "a range A-B[:STEP] with A <= B, STEP >= 1")
        budget -= (end - start) // step + 1
        if budget < 0:
            raise _invalid("array", text, f"at most {MAX_EXPANSION} tasks")
        task_ids.update(range(start, end + 1, step))
    return ArraySpec(tuple(sorted(task_ids)), max_running)


def _scaled(number: str, decimals: int, item: str) -> int:
    """``number`` times ``10**decimals`` as an exact int."""
    sign = -1 if number.startswith("-") else 1
    whole, _, fraction = number.lstrip("+-").partition(".")
    if len(fraction) > _MAX_PARAM_DIGITS or len(whole.lstrip("0")) > _MAX_PARAM_DIGITS:
        raise _invalid("param", item, f"numbers of at most {_MAX_PARAM_DIGITS} digits")
    return sign * int(whole.lstrip("0") + fraction.ljust(decimals, "0") or "0")


def _render(value: int, decimals: int, as_float: bool) -> str:
    if not as_float:
        return str(value)
    whole, fraction = divmod(abs(value), 10**decimals)
    digits = f"{fraction:0{decimals}d}".rstrip("0") or "0"
    return f"{'-' if value < 0 else ''}{whole}.{digits}"


def _expand_range(
    item: str, start_text: str, stop_text: str, step_text: str | None, limit: int
) -> list[str]:
    """``start:stop[:step]``, including ``stop`` when a step lands on it exactly."""
    texts = (start_text, stop_text, step_text or "1")
    decimals = max(len(t.partition(".")[2]) for t in texts)
    start, stop, step = (_scaled(t, decimals, item) for t in texts)
    if step <= 0 or start > stop:
        raise _invalid("param", item, "a range START:STOP[:STEP] with START <= STOP, STEP > 0")
    count = (stop - start) // step + 1
    if count > limit:
        raise _invalid("param", item, f"at most {MAX_EXPANSION} values")
    as_float = any("." in t for t in texts)
    return [_render(start + i * step, decimals, as_float) for i in range(count)]


def parse_param(text: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2`` where each value may be a range ``START:STOP[:STEP]``."""
    key_text, equals, values_text = text.partition("=")
    key = key_text.strip()
    if not equals or not re.fullmatch(_KEY_RE, key):
        raise _invalid("param", text, _PARAM_FORMS)
    values: list[str] = []
    for raw in values_text.split(","):
        item = raw.strip()
        if not item:
            raise _invalid("param", text, f"{_PARAM_FORMS}, no value empty")
        limit = MAX_EXPANSION - len(values)
        match = re.fullmatch(_RANGE_RE, item)
        if match:
            values.extend(_expand_range(item, match[1], match[2], match[3], limit))
        elif limit > 0:
            values.append(item)
        else:
            raise _invalid("param", text, f"at most {MAX_EXPANSION} values")
    return key, values


def _check_keys(keys: list[str], field: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if not re.fullmatch(_KEY_RE, key):
            raise _invalid(field, key, "a key matching [A-Za-z_][A-Za-z0-9_]*")
        if key in seen:
            raise _invalid(field, key, "each key at most once")
        seen.add(key)


def param_rows(path: str, rows: Iterable[tuple[int, list[str]]]) -> list[dict[str, str]]:
    """Sweep combinations from the rows of a CSV file (line number, cells): a header row
    of keys, then one row per job. ``path`` names the file in messages."""
    keys: list[str] | None = None
    combos: list[dict[str, str]] = []
    for line, row in rows:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if keys is None:
            keys = cells
            _check_keys(keys, f"param file {path} header key")
            continue
        if len(cells) != len(keys):
            where = f"row on line {line} of param file {path}"
            raise _invalid(where, ",".join(row), f"{len(keys)} cells ({', '.join(keys)})")
        if len(combos) == MAX_EXPANSION:
            raise _invalid("param file", path, f"at most {MAX_EXPANSION} rows")
        combos.append(dict(zip(keys, cells, strict=True)))
    if not combos:
        raise _invalid("param file", path, "a header row of keys and at least one row")
    return combos


def expand_params(params: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Cartesian product of the values, first key varying slowest."""
    _check_keys([key for key, _ in params], "param")
    sizes = [len(values) for _, values in params]
    if math.prod(sizes) > MAX_EXPANSION:
        shown = " x ".join(map(str, sizes))
        raise _invalid("params", shown, f"at most {MAX_EXPANSION} combinations")
    keys = [key for key, _ in params]
    product = itertools.product(*(values for _, values in params))
    return [dict(zip(keys, combo, strict=True)) for combo in product]


def render_template(template: str, values: dict[str, str], field: str = "command") -> str:
    """Replace ``{key}`` by ``values[key]``; ``{{``/``}}`` are literal braces.

    Other brace text is kept as is, so shell ``${VAR}`` survives; an unknown ``{name}``
    not preceded by ``$`` is an error.
    """

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        dollar, name = match.group(1, 2)
        if name in values:
            return dollar + values[name]
        if dollar:
            return token
        known = ", ".join(sorted(values)) or "none"
        raise _invalid(field, token, f"a known param (known: {known}); {{{{ }}}} for braces")

    return re.sub(_PLACEHOLDER_RE, substitute, template)


def parse_index_set(text: str, field: str = "gpus") -> list[int] | None:
    """``all`` (None) or GPU indices such as ``0,2``, ``0-3``, ``1,3-4``; sorted, unique."""
    s = text.strip()
    if s.lower() == "all":
        return None
    indices: set[int] = set()
    budget = MAX_EXPANSION
    for raw in s.split(","):
        start_text, dash, end_text = raw.partition("-")
        bounds = _nums((start_text.strip(), end_text.strip()) if dash else (start_text.strip(),))
        if bounds is None or not bounds[0] <= bounds[-1] <= MAX_GPU_INDEX:
            raise _invalid(field, text, f"all, or indices N or A-B from 0 to {MAX_GPU_INDEX}")
        budget -= bounds[-1] - bounds[0] + 1
        if budget < 0:
            raise _invalid(field, text, f"at most {MAX_EXPANSION} indices in all")
        indices.update(range(bounds[0], bounds[-1] + 1))
    return sorted(indices)
