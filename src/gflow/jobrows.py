"""How a job is laid out in a row of the ``jobs`` table, and read back without trusting it.

A job's command is stored once per submission (in its batch) when the job runs the
submission's command, so an array of 10,000 tasks keeps one copy: the job's own column
then holds ``''``. Reading takes a lookup of those shared commands. A row that cannot
be read, or holds values the engine cannot handle, is one job's problem: it is reported
as such and never stops the others from being read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gflow.deps import Dependency
from gflow.model import Job, State, StopIntent, job_problem

FIELDS = [f.name for f in dataclasses.fields(Job)]
SHARED = ""
"""The command column of a job that runs its submission's command."""
_BOOLS = ("shared", "auto_close", "retry_on_timeout")
_STATE = FIELDS.index("state")
LIST_COLUMNS = (
    "id",
    "name",
    "user",
    "uid",
    "state",
    "reason",
    "exit_code",
    "gpus",
    "gpu_ids",
    "submit_time",
    "start_time",
    "end_time",
    "time_limit",
    "memory_mb",
    "priority",
    "project",
    "group_id",
    "task_id",
    "deps",
    "slurm_id",
    "node",
    "command",
    "batch_id",
)
"""What a listing shows of a job (:meth:`gflow.store.Store.query_rows`)."""

Commands = Callable[[int], "tuple[str, ...] | None"]


def _deps_json(deps: Dependency) -> str | None:
    return None if deps == Dependency() else json.dumps(deps.to_json())


def to_row(j: Job, shared: bool) -> tuple[Any, ...]:
    """A job as a row, in :data:`FIELDS` order (written out: it runs for every job saved).

    ``shared``: the job runs its submission's command, stored once with the batch.
    """
    return (
        j.id,
        j.uid,
        j.user,
        j.name,
        SHARED if shared else json.dumps(list(j.command)),
        j.workdir,
        j.submit_time,
        j.batch_id,
        j.state.value,
        j.reason,
        j.exit_code,
        j.script,
        j.gpus,
        int(j.shared),
        j.gpu_memory_mb,
        j.memory_mb,
        j.time_limit,
        j.priority,
        j.begin_at,
        j.conda_env,
        j.project,
        int(j.auto_close),
        _deps_json(j.deps),
        j.dep_text,
        j.group_id,
        j.task_id,
        None if j.params is None else json.dumps(j.params),
        j.max_retries,
        int(j.retry_on_timeout),
        j.attempt,
        j.retry_of,
        j.redo_of,
        j.start_time,
        j.end_time,
        ",".join(map(str, j.gpu_ids)) if j.gpu_ids else None,
        j.pid,
        j.pid_start,
        j.executor,
        j.stop_intent,
        j.memory_enforcement,
        j.slurm_id,
        j.node,
        j.signal,
        j.output,
        j.error,
        j.cpus_per_task,
        j.mail_type,
        j.mail_user,
        j.notify_url,
        j.run_on,
    )


def command_of(text: str, batch_id: int, commands: Commands) -> tuple[str, ...]:
    """A job's command from its column (``''``: its submission's, looked up)."""
    if text != SHARED:
        return tuple(json.loads(text))
    shared = commands(batch_id)
    if shared is None:
        raise ValueError(f"the command of submission {batch_id} is missing")
    return shared


def from_row(row: Sequence[Any], commands: Commands) -> Job:
    data = dict(zip(FIELDS, row, strict=True))
    data["state"] = State(data["state"])
    data["command"] = command_of(data["command"], data["batch_id"], commands)
    data["deps"] = Dependency.from_json(json.loads(data["deps"])) if data["deps"] else Dependency()
    data["params"] = json.loads(data["params"]) if data["params"] else None
    data["stop_intent"] = StopIntent(data["stop_intent"]) if data["stop_intent"] else None
    ids = data["gpu_ids"]
    data["gpu_ids"] = tuple(int(i) for i in ids.split(",")) if ids else ()
    for name in _BOOLS:
        data[name] = bool(data[name])
    return Job(**data)


def readable(row: Sequence[Any], commands: Commands) -> Job | None:
    """The job, or None when its row cannot be read (``gflowd doctor`` reports it)."""
    try:
        return from_row(row, commands)
    except Exception:  # a damaged row is read as no job at all
        return None


def decode_rows(
    rows: Iterable[Sequence[Any]], commands: Commands
) -> tuple[list[Job], list[tuple[int, str, str]]]:
    """Jobs from rows, and (id, state, why) for each row that is not a job gflowd can run."""
    jobs: list[Job] = []
    broken: list[tuple[int, str, str]] = []
    for row in rows:
        try:
            job = from_row(row, commands)
        except Exception as exc:  # whatever a damaged row holds, it is one job's problem
            why = f"unreadable row ({type(exc).__name__}: {exc})"[:150]
            broken.append((row[0], str(row[_STATE]), why))
            continue
        problem = job_problem(job)
        if problem is None:
            jobs.append(job)
        else:
            broken.append((job.id, job.state.value, problem))
    return jobs, broken
