"""Job options as Python keywords: ``submit("python train.py", gpus=1, time="2:00:00")``.

The keywords are the keys of the one option table (:data:`gflow.options.OPTIONS`); a
value is turned into the text a user would type (``gpus=1`` → ``"1"``, a job or future
→ its id, ``param={"lr": [0.1, 0.01]}`` → ``"lr=0.1,0.01"``) and the daemon parses it
like a gbatch flag, so a bad value gets the message gbatch prints. Nothing here checks
a value's form: that is the daemon's parser's job, for every way in alike.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from gflow.options import BY_KEY, LIST, SUBMIT, SWITCH, WORDS, Dependency, Instant, TimeLimit

NOT_KEYWORDS = frozenset({"command", "dry_run"})
"""Table entries a submission takes otherwise: the command is the first argument, and a
dry run is :meth:`gflow.Client.preview`."""


def keywords(purpose: str) -> list[str]:
    """The option keywords of a submission or a change, in the table's order."""
    skip = NOT_KEYWORDS if purpose == SUBMIT else frozenset({"dry_run"})
    return [key for key in BY_KEY if key not in skip]


def job_ref(value: Any) -> str:
    """How a job is named in an option: a handle, a record or a future by its ``id``,
    anything else as its text (``12``, ``@``, ``afterok:3:4``)."""
    job_id = getattr(value, "id", None)
    if isinstance(job_id, int) and not isinstance(value, (int, str)):
        return str(job_id)
    return str(value)


def options(
    given: Mapping[str, Any], purpose: str, caller: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options as typed, and the fields read on the client (``param_file``'s rows).

    Raises TypeError for a keyword that is not an option, as Python does for a call."""
    allowed = set(keywords(purpose))
    texts: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for key, value in given.items():
        if key not in allowed:
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}")
        if value is None:
            continue
        option = BY_KEY[key]
        if option.local:  # a file of the caller's: read here, as the caller
            from gflow.paramfile import READERS

            fields[option.field] = READERS[key](os.fspath(value))
            continue
        texts[key] = _typed(key, value, texts)
    if "begin" in texts and "utc_offset" not in texts:
        texts["utc_offset"] = time.localtime().tm_gmtoff  # "22:00" is the caller's 22:00
    return texts, fields


def _typed(key: str, value: Any, context: dict[str, Any]) -> Any:
    option = BY_KEY[key]
    kind = option.kind
    if kind.form == SWITCH:
        return value
    if kind.form == WORDS:
        return [value] if isinstance(value, str) else [str(w) for w in value]
    if key == "param" and isinstance(value, Mapping):
        return [f"{k}={_values(v)}" for k, v in value.items()]
    if kind.form == LIST:
        items = [value] if _single(value) else list(value)
        return [job_ref(v) if isinstance(kind, Dependency) else _text(v) for v in items]
    if isinstance(kind, Dependency) and not _single(value):
        return ",".join(job_ref(v) for v in value)
    if isinstance(kind, TimeLimit) and isinstance(value, datetime.timedelta):
        return _duration(value)
    if isinstance(kind, Instant) and isinstance(value, datetime.datetime):
        local = value.astimezone() if value.tzinfo is None else value
        offset = local.utcoffset()
        context["utc_offset"] = int(offset.total_seconds()) if offset else 0
        return local.strftime("%Y-%m-%dT%H:%M:%S")
    return job_ref(value) if isinstance(kind, Dependency) else _text(value)


def _single(value: Any) -> bool:
    return isinstance(value, (str, bytes, int)) or not isinstance(value, Iterable)


def _values(value: Any) -> str:
    return value if isinstance(value, str) else ",".join(str(v) for v in value)


def _text(value: Any) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _duration(value: datetime.timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(max(seconds, 0), 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock
