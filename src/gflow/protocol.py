"""The request shapes clients send, and their validation on arrival.

Clients build plain JSON; the daemon turns it into these frozen objects with
:meth:`from_json`, which names the field and the expected form on any bad value, so
a malformed request is always a 400 with a message and never a half-done change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from gflow import limits, options
from gflow.deps import DepRequest
from gflow.errors import InvalidInput
from gflow.limits import MAX_ENV, MAX_ENV_VALUE, MAX_ENV_VARS, MAX_PATH, MAX_SPEC


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
    signal: str | None = None
    output: str | None = None
    error: str | None = None
    cpus_per_task: int | None = None
    priority: int = options.DEFAULT_PRIORITY
    begin_at: float | None = None
    conda_env: str | None = None
    project: str | None = None
    run_on: str | None = None
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
    mail_type: str | None = None
    mail_user: str | None = None
    notify_url: str | None = None
    dry_run: bool = False

    @classmethod
    def from_json(cls, data: Any) -> SubmitRequest:
        """A submission from its JSON: option fields as values (``"gpus": 2``) and/or
        as typed (``"options": {"gpus": "gpu:2"}``, which win), and the job's context."""
        if not isinstance(data, dict):
            raise InvalidInput("request body", limits.brief(data), "a JSON object")
        unknown = sorted(set(data) - SUBMIT_KEYS)
        if unknown:
            raise InvalidInput("field", unknown[0], f"one of {', '.join(sorted(SUBMIT_KEYS))}")
        values = options.check_fields(data, options.SUBMIT)
        values.update(options.parse_texts(data.get("options"), options.SUBMIT))
        if "command" not in values:
            values["command"] = options.BY_KEY["command"].kind.check(None, "command")
        if not values.get("name"):
            values.pop("name", None)  # none, or blank: a readable random name
        workdir = data.get("workdir")
        workdir = None if workdir is None else limits.text(workdir, "workdir", MAX_PATH)
        if not workdir or not workdir.startswith("/"):
            raise InvalidInput("workdir", workdir or "(missing)", "an absolute directory path")
        script = data.get("script")
        return cls(
            workdir=workdir,
            env=_env(data),
            script=None if script is None else limits.text(script, "script", MAX_PATH),
            **values,
        )


SUBMIT_KEYS = frozenset(
    {f.name for f in fields(SubmitRequest)} | {o.field for o in options.OPTIONS} | {"options"}
)
"""What a submission's JSON may hold."""


def check_name(value: str, field: str = "name") -> str:
    """A job name as shown to everyone: one printable line of at most MAX_NAME characters."""
    name = options.BY_KEY["name"].kind.check(value, field)
    if not name:
        raise InvalidInput(field, value, "a non-empty name")
    return str(name)


def update_changes(data: Any, texts: Any = None, *, required: bool = True) -> dict[str, Any]:
    """The changes of an update or a redo, keyed by job field: ``data`` as values
    (``{"priority": 5, "time_limit": null}``), ``texts`` as typed (``{"time": "1:00:00"}``).

    The fields and their checks are those of :mod:`gflow.options` that may change.
    """
    if data is None and (texts is not None or not required):
        data = {}
    if not isinstance(data, dict) or (required and not data and not texts):
        raise InvalidInput(
            "changes",
            limits.brief(data),
            f"an object with some of {', '.join(sorted(options.CHANGEABLE))}",
        )
    for key in data:
        if key not in options.CHANGEABLE:
            raise InvalidInput(
                "update field", key, f"one of {', '.join(sorted(options.CHANGEABLE))}"
            )
    out = options.check_fields(data, options.CHANGE)
    out.update(options.parse_texts(texts, options.CHANGE))
    return out


def selector(data: Mapping[str, Any], key: str = "ids") -> str:
    """Job selectors travel as the text the user typed (``1,3,5-7``, ``@``, ``12_3``)."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(key, limits.brief(value), "job ids such as 42, 1,2,3, 1-5 or @")
    return limits.text(value, key, MAX_SPEC)
