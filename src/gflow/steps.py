"""The Python API's operations, written once for :class:`gflow.Client` and
:class:`gflow.AsyncClient`.

Each operation is a generator: it yields the :class:`Request` it needs sent (or a
:class:`Pause`), is sent the decoded answer back (or has the error thrown in), and
returns its result. The synchronous client runs the steps over a blocking socket, the
asynchronous one over asyncio; neither repeats what a call sends or how its answer reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gflow import keywords
from gflow.errors import DaemonUnavailable, GflowError, NotAllDone
from gflow.options import CHANGE, SUBMIT
from gflow.records import Action, Info, JobInfo, Stats
from gflow.states import ACTIVE_STATES, FINAL_STATES, State

T = TypeVar("T")

ACTIVE = ",".join(s for s in State if s in ACTIVE_STATES)
COMPLETED = ",".join(s for s in State if s in FINAL_STATES)
WAIT_SLICE = 30.0
"""Seconds one wait request lasts at most (the daemon answers, then is asked again)."""
RECONNECT_FOR = 60.0
"""Seconds a wait keeps trying while gflowd is down (a restart), as ``gjob wait`` does."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: Any = None
    query: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


Steps = Generator[Request | Pause, Any, T]


def selector(jobs: Any) -> str:
    """Jobs as a selector: an id, ``"1,3,5-7"``, ``"@"``, a handle, a record, a future,
    or a list of them."""
    if isinstance(jobs, (str, int)) or not isinstance(jobs, Iterable):
        return keywords.job_ref(jobs)
    return ",".join(keywords.job_ref(j) for j in jobs)


# ------------------------------------------------------------ submitting


def submission(
    command: str | Sequence[str] | None,
    *,
    script: str | os.PathLike[str] | None,
    args: Sequence[Any],
    workdir: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    options: Mapping[str, Any],
    caller: str = "submit",
    conda_default: bool = True,
) -> dict[str, Any]:
    """The body of ``POST /v1/jobs`` for a command or a script, as gbatch sends it."""
    texts, fields = keywords.options(options, SUBMIT, caller)
    path = None
    if script is not None:
        if command is not None:
            raise TypeError(f"{caller}() takes a command or script=, not both")
        path = os.path.abspath(os.fspath(script))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such script: {path}")
        from gflow.cli.gbatch import script_options

        texts = {**script_options(path), **texts}
        words = [path, *(str(a) for a in args)]
    else:
        if command is None:
            raise TypeError(f"{caller}() needs a command (or script=)")
        if args:
            raise TypeError(f"{caller}(): args= goes with script=; a command has its own words")
        words = [command] if isinstance(command, str) else [str(w) for w in command]
        conda = os.environ.get("CONDA_DEFAULT_ENV")
        if conda_default and "conda_env" not in texts and conda:
            texts["conda_env"] = conda
    return {
        "command": words,
        "script": path,
        "workdir": os.path.abspath(os.fspath(workdir if workdir is not None else os.getcwd())),
        "env": dict(os.environ if env is None else env),
        **fields,
        "options": texts,
    }


def submit(body: dict[str, Any]) -> Steps[list[dict[str, Any]]]:
    """The jobs made: ``[{"id", "name", "state"}, ...]``."""
    answer = yield Request("POST", "/v1/jobs", body)
    jobs: list[dict[str, Any]] = answer["jobs"]
    return jobs


def preview(body: dict[str, Any]) -> Steps[list[JobInfo]]:
    body = {**body, "options": {**body["options"], "dry_run": True}}
    answer = yield Request("POST", "/v1/jobs", body)
    return [JobInfo.from_json(j) for j in answer["jobs"]]


# ------------------------------------------------------------ reading


def jobs(
    *,
    ids: Any = None,
    states: str | Iterable[str] | None = None,
    names: str | Iterable[str] | None = None,
    users: str | Iterable[str] | None = None,
    projects: str | Iterable[str] | None = None,
    since: Any = None,
    limit: int | None = None,
    all: bool = False,
    completed: bool = False,
) -> Steps[list[JobInfo]]:
    """``gqueue``'s filters: by default this user's queued, held and running jobs."""
    state_text = _csv(states)
    if all:
        state_text = None
    elif completed:
        state_text = COMPLETED
    elif state_text is None and ids is None and names is None:
        state_text = ACTIVE
    query = {
        "states": state_text,
        "ids": None if ids is None else selector(ids),
        "names": _csv(names),
        "users": _csv(users) or ("all" if ids is not None else "me"),
        "projects": _csv(projects),
        "since": _since(since),
        "limit": limit,
    }
    answer = yield Request("GET", "/v1/jobs", query=query)
    return [JobInfo.from_json(j) for j in answer["jobs"]]


def show(job: Any) -> Steps[list[JobInfo]]:
    """Everything about the jobs selected, with their history and attempts."""
    answer = yield Request("GET", "/v1/show", query={"ids": selector(job)})
    return [JobInfo.from_json(j) for j in answer["jobs"]]


def one(job: Any) -> Steps[JobInfo]:
    found = yield from show(job)
    named = [j for j in found if str(j.id) == selector(job)]  # an array's id: its first task
    if len(found) > 1 and len(named) == 1:
        return named[0]
    if len(found) != 1:
        from gflow.errors import InvalidInput

        raise InvalidInput("job", selector(job), "exactly one job (an id, @ or @~1)")
    return found[0]


def info() -> Steps[Info]:
    answer = yield Request("GET", "/v1/info")
    return Info.from_json(answer)


def stats(users: str | Iterable[str] | None = None, since: Any = None) -> Steps[Stats]:
    query = {"users": _csv(users) or "me", "since": _since(since)}
    answer = yield Request("GET", "/v1/stats", query=query)
    return Stats(**{k: v for k, v in answer.items() if k in Stats.__dataclass_fields__})


def wait(jobs: Any, timeout: float | None = None, *, retries: bool = True) -> Steps[list[JobInfo]]:
    """Block until every selected job has ended; TimeoutError after ``timeout`` seconds.

    A job that is retried stands for its newest attempt (``retries=False``: the job as
    named). A gflowd restart in the middle is waited out (for :data:`RECONNECT_FOR`
    seconds)."""
    ids = selector(jobs)
    query: dict[str, Any] = {"ids": ids} if retries else {"ids": ids, "retries": 0}
    deadline = None if timeout is None else time.monotonic() + timeout
    answered: float | None = None
    while True:
        left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
        try:
            answer = yield Request("GET", "/v1/wait", query={**query, "timeout": max(left, 0)})
        except DaemonUnavailable:
            if answered is None or time.monotonic() - answered > RECONNECT_FOR:
                raise
            yield Pause(0.5)
            continue
        answered = time.monotonic()
        if answer["done"]:
            return [JobInfo.from_json(j) for j in answer["jobs"]]
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"jobs {ids} still active after {timeout:g} s")


# ------------------------------------------------------------ changing


def control(verb: str, body: dict[str, Any]) -> Steps[list[Action]]:
    """``/v1/jobs/<verb>``: what was done per job; :class:`NotAllDone` when some selected
    jobs were refused (the CLI's error lines, one per job)."""
    answer = yield Request("POST", f"/v1/jobs/{verb}", body)
    done = [Action(**_action(j)) for j in answer["jobs"]]
    errors = list(answer.get("errors") or ())
    if verb == "cancel" and not body.get("dry_run"):  # dependents: what the cancel did to them
        errors += [
            f"job {a.id} not cancelled: {a.action}"
            for a in done
            if not (_cancelled(a) or a.dependent)
        ]
        done = [a for a in done if _cancelled(a) or a.dependent]
    if errors:
        raise NotAllDone("\n".join(errors), done)
    return done


def _cancelled(action: Action) -> bool:
    return action.action in ("cancelled", "stopping")


def _action(data: Mapping[str, Any]) -> dict[str, Any]:
    known = Action.__dataclass_fields__
    out = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    out.setdefault("action", "redone" if "redo_of" in data else "done")
    return out


def change_options(given: Mapping[str, Any], caller: str) -> dict[str, Any]:
    texts, fields = keywords.options(given, CHANGE, caller)
    if fields:
        raise TypeError(f"{caller}() cannot change {', '.join(sorted(fields))}")
    return texts


def release_at(at: Any) -> float | None:
    """``release(at=...)``: seconds since the epoch, a datetime, or gbatch's ``--begin``
    forms (``22:00``, ``now+1h``)."""
    if at is None or isinstance(at, (int, float)):
        return at
    import datetime

    if isinstance(at, datetime.datetime):
        return at.timestamp()
    from gflow.parse import parse_begin

    return parse_begin(str(at), datetime.datetime.now().astimezone(), "at")


# ------------------------------------------------------------ logs


def log_text(
    path: str, first: int | None, last: int | None, max_bytes: int | None
) -> tuple[str, int]:
    """The lines asked for of the log at ``path`` (at most ``max_bytes`` of them, from the
    end when ``last`` is given), and the offset up to which the file was seen."""
    from gflow.cli import logtail

    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        if first is None and last is None:
            start = 0 if max_bytes is None else max(end - max_bytes, 0)
            fh.seek(start)
            data = fh.read(end - start)
        elif first is None:
            data = logtail.last_lines(fh, last or 0, end)
        else:
            fh.seek(0)
            data = logtail.first_lines(fh, first)
            if last is not None:
                import io

                data = logtail.last_lines(io.BytesIO(data), last, len(data))
    if max_bytes is not None and len(data) > max_bytes:
        data = data[:max_bytes] if first is not None and last is None else data[-max_bytes:]
    return data.decode(errors="replace"), end


def read_from(path: str, offset: int) -> bytes:
    """What the log at ``path`` holds past ``offset`` (nothing while it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def log_path(job: JobInfo) -> str:
    """Where the job's output is; a clear error when it has none yet."""
    if job.log is None or not os.path.exists(job.log):
        raise GflowError(
            f"the log of job {job.id} is not available (state {job.state}; "
            "a log appears when the job starts)"
        )
    return job.log


# ------------------------------------------------------------ helpers


def _csv(value: str | Iterable[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(value)


def _since(value: Any) -> float | None:
    """``since=``: seconds since the epoch, a datetime, or ``1h``, ``2d``, ``today``..."""
    if value is None or isinstance(value, (int, float)):
        return value
    import datetime

    if isinstance(value, datetime.datetime):
        return value.timestamp()
    from gflow.parse import parse_since

    return parse_since(str(value), datetime.datetime.now().astimezone())
