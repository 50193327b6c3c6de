"""The request shapes clients send, and their validation on arrival.

Clients build plain JSON; the daemon turns it into these frozen objects with
:meth:`from_json`, which names the field and the expected form on any bad value, so
a malformed request is always a 400 with a message and never a half-done change.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from gflow.deps import DepRequest
from gflow.errors import InvalidInput

T = TypeVar("T")

MAX_COMMAND_WORDS = 10_000
MAX_TEXT = 1 << 20
MAX_NAME = 200
MAX_PROJECT = 64


def _opt(data: Mapping[str, Any], key: str, kind: type[T], default: T | None = None) -> T | None:
    value = data.get(key, default)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(
            key, value if isinstance(value, str) else repr(value)[:60], f"a {kind.__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(key, repr(value), "a finite number")
    return value


def _req(data: Mapping[str, Any], key: str, kind: type[T]) -> T:
    value = _opt(data, key, kind)
    if value is None:
        raise InvalidInput(key, "(missing)", f"a {kind.__name__}")
    return value


def _int_in(data: Mapping[str, Any], key: str, lo: int, hi: int, default: int | None) -> int | None:
    value = _opt(data, key, int, default)
    if value is not None and not lo <= value <= hi:
        raise InvalidInput(key, str(value), f"a whole number from {lo} to {hi}")
    return value


def _text(data: Mapping[str, Any], key: str, limit: int = MAX_TEXT) -> str | None:
    value = _opt(data, key, str)
    if value is not None and (len(value) > limit or "\x00" in value):
        raise InvalidInput(key, value[:40], f"text of at most {limit} characters without NUL")
    return value


def _words(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or len(value) > MAX_COMMAND_WORDS:
        raise InvalidInput(key, repr(value)[:60], "a non-empty list of command words")
    if not all(isinstance(w, str) and "\x00" not in w for w in value):
        raise InvalidInput(key, repr(value)[:60], "a list of strings")
    if sum(len(w) for w in value) > MAX_TEXT:
        raise InvalidInput(key, "(too long)", f"a command of at most {MAX_TEXT} characters")
    return tuple(value)


def _env(data: Mapping[str, Any]) -> dict[str, str]:
    value = data.get("env", {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput("env", repr(value)[:60], "an object of string values")
    return value


def _params(data: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    value = data.get("params") or []
    ok = isinstance(value, list) and all(
        isinstance(p, list)
        and len(p) == 2
        and isinstance(p[0], str)
        and isinstance(p[1], list)
        and all(isinstance(v, str) for v in p[1])
        for p in value
    )
    if not ok:
        raise InvalidInput("params", repr(value)[:60], 'a list of ["key", ["v1", "v2"]] pairs')
    return tuple((k, tuple(vs)) for k, vs in value)


def _rows(data: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    value = data.get("param_rows") or []
    ok = isinstance(value, list) and all(
        isinstance(r, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in r.items())
        for r in value
    )
    if not ok:
        raise InvalidInput("param_rows", repr(value)[:60], "a list of objects of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One ``gbatch`` call: a job template plus how to multiply it (array, sweep)."""

    command: tuple[str, ...]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    script: str | None = None
    name: str | None = None
    gpus: int = 0
    shared: bool = False
    gpu_memory_mb: int | None = None
    memory_mb: int | None = None
    time_limit: int | None = None
    priority: int = 10
    begin_at: float | None = None
    conda_env: str | None = None
    project: str | None = None
    auto_close: bool | None = None
    dependency: DepRequest = field(default_factory=DepRequest)
    array: str | None = None
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()
    param_rows: tuple[dict[str, str], ...] = ()
    name_template: str | None = None
    max_concurrent: int | None = None
    max_retries: int = 0
    retry_on_timeout: bool = False
    hold: bool = False
    dry_run: bool = False

    @classmethod
    def from_json(cls, data: Any) -> SubmitRequest:
        if not isinstance(data, dict):
            raise InvalidInput("request body", repr(data)[:40], "a JSON object")
        if "options" in data:
            data = {
                **{k: v for k, v in data.items() if k != "options"},
                **typed_options(data["options"]),
            }
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput("field", unknown[0], f"one of {', '.join(sorted(known))}")
        workdir = _text(data, "workdir", 4096)
        if not workdir or not workdir.startswith("/"):
            raise InvalidInput("workdir", workdir or "(missing)", "an absolute directory path")
        project = _text(data, "project", 1000)
        if project is not None:
            project = project.strip()
            if not project or len(project) > MAX_PROJECT:
                raise InvalidInput("project", project, f"1 to {MAX_PROJECT} characters")
        name = _text(data, "name", MAX_NAME)
        if name is not None and (not name.strip() or any(c in name for c in "\n\t")):
            raise InvalidInput("name", name, "a non-empty single-line name")
        time_limit = _int_in(data, "time_limit", 1, 10**9, None)
        return cls(
            command=_words(data, "command"),
            workdir=workdir,
            env=_env(data),
            script=_text(data, "script", 4096),
            name=name.strip() if name else None,
            gpus=_int_in(data, "gpus", 0, 1024, 0) or 0,
            shared=bool(_opt(data, "shared", bool, False)),
            gpu_memory_mb=_int_in(data, "gpu_memory_mb", 1, 1 << 40, None),
            memory_mb=_int_in(data, "memory_mb", 1, 1 << 40, None),
            time_limit=time_limit,
            priority=_int_in(data, "priority", 0, 255, 10) or 0,
            begin_at=_opt(data, "begin_at", float),
            conda_env=_text(data, "conda_env", 1000),
            project=project,
            auto_close=_opt(data, "auto_close", bool),
            dependency=DepRequest.from_json(data.get("dependency")),
            array=_text(data, "array", 10_000),
            params=_params(data),
            param_rows=_rows(data),
            name_template=_text(data, "name_template", 1000),
            max_concurrent=_int_in(data, "max_concurrent", 1, 1 << 30, None),
            max_retries=_int_in(data, "max_retries", 0, 100, 0) or 0,
            retry_on_timeout=bool(_opt(data, "retry_on_timeout", bool, False)),
            hold=bool(_opt(data, "hold", bool, False)),
            dry_run=bool(_opt(data, "dry_run", bool, False)),
        )


UPDATABLE: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "gpus": lambda d: _int_in(d, "gpus", 0, 1024, None),
    "priority": lambda d: _int_in(d, "priority", 0, 255, None),
    "time_limit": lambda d: _int_in(d, "time_limit", 1, 10**9, None),
    "memory_mb": lambda d: _int_in(d, "memory_mb", 1, 1 << 40, None),
    "gpu_memory_mb": lambda d: _int_in(d, "gpu_memory_mb", 1, 1 << 40, None),
    "name": lambda d: _text(d, "name", MAX_NAME),
    "command": lambda d: _words(d, "command"),
    "conda_env": lambda d: _text(d, "conda_env", 1000),
    "begin_at": lambda d: _opt(d, "begin_at", float),
    "max_retries": lambda d: _int_in(d, "max_retries", 0, 100, None),
    "shared": lambda d: _opt(d, "shared", bool),
    "dependency": lambda d: DepRequest.from_json(d.get("dependency")),
}
CLEARABLE = frozenset({"time_limit", "memory_mb", "gpu_memory_mb", "conda_env", "begin_at"})


def update_changes(data: Any) -> dict[str, Any]:
    """Validate the ``changes`` object of an update; keys map to job fields."""
    if not isinstance(data, dict) or not data:
        raise InvalidInput(
            "changes", repr(data)[:60], f"an object with some of {', '.join(UPDATABLE)}"
        )
    out: dict[str, Any] = {}
    for key in data:
        if key not in UPDATABLE:
            raise InvalidInput("update field", key, f"one of {', '.join(UPDATABLE)}")
        if data[key] is None and key not in CLEARABLE:
            raise InvalidInput(key, "null", "a value (this field cannot be cleared)")
        out[key] = UPDATABLE[key](data)
    return out


def selector(data: Mapping[str, Any], key: str = "ids") -> str:
    """Job selectors travel as the text the user typed (``1,3,5-7``, ``@``, ``12_3``)."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 100_000:
        raise InvalidInput(key, repr(value)[:60], "job ids such as 42, 1,2,3, 1-5 or @")
    return value


# ------------------------------------------------------------ options as typed

OPTION_KEYS = frozenset(
    {
        "gpus",
        "time",
        "memory",
        "gpu_memory",
        "priority",
        "begin",
        "utc_offset",
        "params",
        "max_concurrent",
        "max_retries",
        "depends_on",
        "depends_on_all",
        "depends_on_any",
        "moab",
        "no_auto_cancel",
    }
)


def _option_text(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 100_000:
        raise InvalidInput(f"--{key.replace('_', '-')}", repr(value)[:40], "text")
    return value


def _option_list(options: Mapping[str, Any], key: str) -> list[str]:
    value = options.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"--{key.replace('_', '-')}", repr(value)[:40], "a list of texts")
    return value


def typed_options(options: Any) -> dict[str, Any]:
    """Parse gbatch's options as the user typed them (``--time 1:30:00``, ``-d afterok:3``).

    The client sends the text and the daemon parses it, so a submission costs the client
    no parsing imports. The result holds the structured request fields.
    """
    from gflow import deps, parse

    if not isinstance(options, dict):
        raise InvalidInput("options", repr(options)[:40], "an object of option texts")
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise InvalidInput("option", unknown[0], f"one of {', '.join(sorted(OPTION_KEYS))}")
    out: dict[str, Any] = {}
    text = functools.partial(_option_text, options)
    if (gpus := text("gpus")) is not None:
        value = gpus.strip()
        if value.lower().startswith("gpu:"):
            value = value.rsplit(":", 1)[1]
        out["gpus"] = parse.parse_nonneg_int(value, "--gpus")
    if (limit := text("time")) is not None:
        out["time_limit"] = parse.parse_time_limit(limit)
    if (memory := text("memory")) is not None:
        out["memory_mb"] = parse.parse_memory_mb(memory, "--memory")
    if (gpu_memory := text("gpu_memory")) is not None:
        out["gpu_memory_mb"] = parse.parse_memory_mb(gpu_memory, "--gpu-memory")
    if (priority := text("priority")) is not None:
        out["priority"] = parse.parse_priority(priority)
    if (begin := text("begin")) is not None:
        out["begin_at"] = parse.parse_begin(begin, _client_now(options.get("utc_offset")))
    for key in ("max_concurrent", "max_retries"):
        if (number := text(key)) is not None:
            out[key] = parse.parse_nonneg_int(number, f"--{key.replace('_', '-')}")
    params = _option_list(options, "params")
    if params:
        out["params"] = [list(parse.parse_param(p)) for p in params]
    dep = deps.from_gflow(
        None,
        text("depends_on_all"),
        text("depends_on_any"),
        auto_cancel=not options.get("no_auto_cancel"),
    )
    for spec in _option_list(options, "depends_on"):
        dep = dep.merge(deps.parse_dependency(spec))
    for spec in _option_list(options, "moab"):
        dep = dep.merge(deps.parse_moab(spec))
    if not dep.is_empty or not dep.auto_cancel:
        out["dependency"] = dep.to_json()
    return out


def _client_now(offset: Any) -> Any:
    """Now, in the client's time zone (``--begin 22:00`` means the submitter's 22:00)."""
    import datetime

    if offset is None:
        return datetime.datetime.now().astimezone()
    if not isinstance(offset, int) or isinstance(offset, bool) or abs(offset) > 86400:
        raise InvalidInput("utc_offset", repr(offset), "seconds east of UTC")
    zone = datetime.timezone(datetime.timedelta(seconds=offset))
    return datetime.datetime.now(zone)
