"""The request shapes clients send, and their validation on arrival.

Clients build plain JSON; the daemon turns it into these frozen objects with
:meth:`from_json`, which names the field and the expected form on any bad value, so
a malformed request is always a 400 with a message and never a half-done change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from gflow import limits
from gflow.deps import DepRequest
from gflow.errors import InvalidInput
from gflow.limits import (
    MAX_COMMAND,
    MAX_COMMAND_WORDS,
    MAX_COUNT,
    MAX_ENV,
    MAX_ENV_VALUE,
    MAX_ENV_VARS,
    MAX_EXPANSION,
    MAX_GPUS,
    MAX_MEMORY_MB,
    MAX_NAME,
    MAX_PATH,
    MAX_PRIORITY,
    MAX_PROJECT,
    MAX_RETRIES,
    MAX_SECONDS,
    MAX_SPEC,
    MAX_UTC_OFFSET,
)

T = TypeVar("T")

MAX_KEYS = 100  # sweep keys, columns of a parameter file


def _opt(data: Mapping[str, Any], key: str, kind: type[T], default: T | None = None) -> T | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(key, limits.brief(value), f"a {kind.__name__}")
    return value


def _int_in(data: Mapping[str, Any], key: str, lo: int, hi: int, default: int | None) -> int | None:
    value = data.get(key, default)
    return None if value is None else limits.whole(value, key, lo, hi)


def _text(
    data: Mapping[str, Any], key: str, limit: int = MAX_SPEC, *, line: bool = False
) -> str | None:
    value = data.get(key)
    return None if value is None else limits.text(value, key, limit, line=line)


def _instant(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return None if value is None else limits.instant(value, key)


def _words(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or len(value) > MAX_COMMAND_WORDS:
        raise InvalidInput(
            key, limits.brief(value), f"a list of 1 to {MAX_COMMAND_WORDS} command words"
        )
    words = tuple(limits.text(w, key, MAX_COMMAND) for w in value)
    if sum(map(len, words)) > MAX_COMMAND:
        raise InvalidInput(key, "(too long)", f"a command of at most {MAX_COMMAND} characters")
    return words


def _env(data: Mapping[str, Any]) -> dict[str, str]:
    value = data.get("env", {})
    if not isinstance(value, dict) or len(value) > MAX_ENV_VARS:
        raise InvalidInput(
            "env", limits.brief(value), f"an object of at most {MAX_ENV_VARS} strings"
        )
    total = 0
    for name, text in value.items():
        limits.text(name, "environment variable name", MAX_ENV_VALUE)
        if not name or "=" in name:
            raise InvalidInput("environment variable name", name, "a name without '='")
        limits.text(text, f"environment variable {name[:40]}", MAX_ENV_VALUE)
        total += len(name) + len(text)
    if total > MAX_ENV:
        raise InvalidInput("env", f"{total} characters", f"at most {MAX_ENV} characters in all")
    return value


def _params(data: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    value = data.get("params") or []
    ok = (
        isinstance(value, list)
        and len(value) <= MAX_KEYS
        and all(
            isinstance(p, list)
            and len(p) == 2
            and isinstance(p[0], str)
            and isinstance(p[1], list)
            and len(p[1]) <= MAX_EXPANSION
            for p in value
        )
    )
    if not ok:
        raise InvalidInput("params", limits.brief(value), 'a list of ["key", ["v1", "v2"]] pairs')
    return tuple(
        (
            limits.text(k, "param", MAX_NAME, line=True),
            tuple(limits.text(v, f"param {k}", MAX_SPEC) for v in vs),
        )
        for k, vs in value
    )


def _rows(data: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    value = data.get("param_rows") or []
    ok = (
        isinstance(value, list)
        and len(value) <= MAX_EXPANSION
        and all(isinstance(r, dict) and len(r) <= MAX_KEYS for r in value)
    )
    if not ok:
        raise InvalidInput("param_rows", limits.brief(value), "a list of objects of strings")
    for row in value:
        for k, v in row.items():
            limits.text(k, "param file key", MAX_NAME, line=True)
            limits.text(v, f"param {k}", MAX_SPEC)
    return tuple(value)


def check_name(value: str, field: str = "name") -> str:
    """A job name as shown to everyone: one printable line of at most MAX_NAME characters."""
    name = limits.text(value, field, MAX_NAME, line=True).strip()
    if not name:
        raise InvalidInput(field, value, "a non-empty name")
    return name


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
            raise InvalidInput("request body", limits.brief(data), "a JSON object")
        if "options" in data:
            data = {
                **{k: v for k, v in data.items() if k != "options"},
                **typed_options(data["options"]),
            }
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput("field", unknown[0], f"one of {', '.join(sorted(known))}")
        workdir = _text(data, "workdir", MAX_PATH)
        if not workdir or not workdir.startswith("/"):
            raise InvalidInput("workdir", workdir or "(missing)", "an absolute directory path")
        project = _text(data, "project", MAX_PROJECT * 4, line=True)
        if project is not None:
            project = project.strip()
            if not project or len(project) > MAX_PROJECT:
                raise InvalidInput("project", project, f"1 to {MAX_PROJECT} characters")
        name = data.get("name")
        return cls(
            command=_words(data, "command"),
            workdir=workdir,
            env=_env(data),
            script=_text(data, "script", MAX_PATH),
            name=None if name is None else check_name(name),
            gpus=_int_in(data, "gpus", 0, MAX_GPUS, 0) or 0,
            shared=bool(_opt(data, "shared", bool, False)),
            gpu_memory_mb=_int_in(data, "gpu_memory_mb", 1, MAX_MEMORY_MB, None),
            memory_mb=_int_in(data, "memory_mb", 1, MAX_MEMORY_MB, None),
            time_limit=_int_in(data, "time_limit", 1, MAX_SECONDS, None),
            priority=_int_in(data, "priority", 0, MAX_PRIORITY, 10) or 0,
            begin_at=_instant(data, "begin_at"),
            conda_env=_text(data, "conda_env", 1000, line=True),
            project=project,
            auto_close=_opt(data, "auto_close", bool),
            dependency=DepRequest.from_json(data.get("dependency")),
            array=_text(data, "array"),
            params=_params(data),
            param_rows=_rows(data),
            name_template=_text(data, "name_template", 1000),
            max_concurrent=_int_in(data, "max_concurrent", 1, MAX_COUNT, None),
            max_retries=_int_in(data, "max_retries", 0, MAX_RETRIES, 0) or 0,
            retry_on_timeout=bool(_opt(data, "retry_on_timeout", bool, False)),
            hold=bool(_opt(data, "hold", bool, False)),
            dry_run=bool(_opt(data, "dry_run", bool, False)),
        )


UPDATABLE: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "gpus": lambda d: _int_in(d, "gpus", 0, MAX_GPUS, None),
    "priority": lambda d: _int_in(d, "priority", 0, MAX_PRIORITY, None),
    "time_limit": lambda d: _int_in(d, "time_limit", 1, MAX_SECONDS, None),
    "memory_mb": lambda d: _int_in(d, "memory_mb", 1, MAX_MEMORY_MB, None),
    "gpu_memory_mb": lambda d: _int_in(d, "gpu_memory_mb", 1, MAX_MEMORY_MB, None),
    "name": lambda d: _new_name(d.get("name")),
    "command": lambda d: _words(d, "command"),
    "conda_env": lambda d: _text(d, "conda_env", 1000, line=True),
    "begin_at": lambda d: _instant(d, "begin_at"),
    "max_retries": lambda d: _int_in(d, "max_retries", 0, MAX_RETRIES, None),
    "shared": lambda d: _opt(d, "shared", bool),
    "dependency": lambda d: DepRequest.from_json(d.get("dependency")),
}


def _new_name(value: Any) -> str:
    """A new name; blank text asks for a fresh random one."""
    text = limits.text(value, "name", MAX_NAME, line=True)
    return check_name(text) if text.strip() else ""


CLEARABLE = frozenset({"time_limit", "memory_mb", "gpu_memory_mb", "conda_env", "begin_at"})


def update_changes(data: Any) -> dict[str, Any]:
    """Validate the ``changes`` object of an update; keys map to job fields."""
    if not isinstance(data, dict) or not data:
        raise InvalidInput(
            "changes", limits.brief(data), f"an object with some of {', '.join(UPDATABLE)}"
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
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(key, limits.brief(value), "job ids such as 42, 1,2,3, 1-5 or @")
    return limits.text(value, key, MAX_SPEC)


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
    return limits.text(value, f"--{key.replace('_', '-')}", MAX_SPEC)


def _option_list(options: Mapping[str, Any], key: str) -> list[str]:
    value = options.get(key) or []
    flag = f"--{key.replace('_', '-')}"
    if not isinstance(value, list) or len(value) > MAX_KEYS:
        raise InvalidInput(flag, limits.brief(value), f"a list of at most {MAX_KEYS} texts")
    return [limits.text(v, flag, MAX_SPEC) for v in value]


def typed_options(options: Any) -> dict[str, Any]:
    """Parse gbatch's options as the user typed them (``--time 1:30:00``, ``-d afterok:3``).

    The client sends the text and the daemon parses it, so a submission costs the client
    no parsing imports. The result holds the structured request fields.
    """
    from gflow import deps, parse

    if not isinstance(options, dict):
        raise InvalidInput("options", limits.brief(options), "an object of option texts")
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
    limits.whole(offset, "utc_offset", -MAX_UTC_OFFSET, MAX_UTC_OFFSET)
    zone = datetime.timezone(datetime.timedelta(seconds=offset))
    return datetime.datetime.now(zone)
