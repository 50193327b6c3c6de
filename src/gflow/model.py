"""The job model: plain data, one table of allowed state changes, one function to make them.

Nothing outside :func:`transition` assigns a job's state, or stamps its start and end
times and exit code: :meth:`Job.replace` and :meth:`Job.again` refuse to. The states
themselves are in :mod:`gflow.states`; reasons, stop intents and timer kinds are here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gflow import limits
from gflow.deps import Clause, Dependency
from gflow.errors import Conflict
from gflow.limits import (
    EARLIEST,
    LATEST,
    MAX_CPUS,
    MAX_GPU_INDEX,
    MAX_GPUS,
    MAX_ID,
    MAX_PID,
    MAX_PRIORITY,
    MAX_REASON,
    MAX_RETRIES,
    MAX_SECONDS,
    MAX_UID,
)
from gflow.states import ACTIVE_STATES as ACTIVE_STATES
from gflow.states import CODES as CODES
from gflow.states import FINAL_STATES as FINAL_STATES
from gflow.states import State as State

ALLOWED: dict[State, frozenset[State]] = {
    # Queued → Failed: the cluster refused the job (Slurm executor)
    State.QUEUED: frozenset({State.HOLD, State.RUNNING, State.CANCELLED, State.FAILED}),
    State.HOLD: frozenset({State.QUEUED, State.CANCELLED}),
    State.RUNNING: frozenset({State.FINISHED, State.FAILED, State.CANCELLED, State.TIMEOUT}),
    State.FINISHED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.TIMEOUT: frozenset(),
}


SUBMITTING = "submitting"
"""``Job.slurm_id`` while ``sbatch`` runs: the intent is recorded before the call."""


class Reason(StrEnum):
    """Why a job waits or ended: shown in NODELIST(REASON), stored with the job and its
    events. The members are fixed; the functions make the reasons that carry a value."""

    DEPENDENCY = "WaitingForDependency"
    GPU = "WaitingForGpu"
    RESOURCES = "Resources"
    MEMORY = "WaitingForMemory"
    BEGIN_TIME = "BeginTime"
    PRIORITY = "Priority"
    GROUP_LIMIT = "JobGroupLimit"
    QUOTA = "Quota"
    RESERVED = "Reserved"
    NEVER = "DependencyNeverSatisfied"
    HELD = "JobHeldUser"
    CANCELLED_BY_USER = "CancelledByUser"
    LAUNCHING = "Launching"
    NO_EXECUTOR = "ExecutorNotConfigured"
    """It asked for an executor (local, slurm) this gflowd was started without."""
    SUBMITTING = "Submitting"
    """On its way to Slurm (``sbatch`` runs)."""
    TIME_LIMIT = "TimeLimit"
    NO_EXIT_CODE = "NoExitCode"
    """What earlier versions recorded for a job without exit code (taken for a failure)."""
    EXIT_UNKNOWN = "ExitCodeUnknown"
    """A Failed job whose exit code no channel could tell: not taken for a failure."""

    @staticmethod
    def dependency_failed(parent: int) -> str:
        return f"DependencyFailed:{parent}"

    @staticmethod
    def system_error(message: str) -> str:
        return f"SystemError:{message}"

    @staticmethod
    def invalid_data(problem: str) -> str:
        """A job whose stored data gflowd cannot handle, ended so the others carry on."""
        return f"InvalidJobData:{problem}"[:MAX_REASON]

    @staticmethod
    def retry_of(job_id: int) -> str:
        """The first event of an automatic retry of ``job_id``."""
        return f"RetryOf:{job_id}"

    @staticmethod
    def redo_of(job_id: int) -> str:
        """The first event of ``gjob redo`` of ``job_id``."""
        return f"RedoOf:{job_id}"

    @staticmethod
    def parent_exit_unknown(parent: int) -> str:
        """A waiting job whose ``afterok``/``afternotok`` parent ended with an unknown code."""
        return f"DependencyExitUnknown:{parent}"

    @staticmethod
    def awaits_user(reason: str | None) -> bool:
        """A dependency verdict that holds a job until its user acts (forgotten as soon as
        the dependency changes)."""
        return reason == Reason.NEVER or (reason or "").startswith("DependencyExitUnknown:")

    @staticmethod
    def stop_signal(intent: StopIntent | None, signal_name: str) -> str:
        """The event of one step of a stop: ``TimeLimit:SIGINT``, ``Cancelling:SIGTERM``."""
        why = {StopIntent.TIMEOUT: "TimeLimit", StopIntent.CANCEL: "Cancelling"}
        return f"{why.get(intent, 'Stop') if intent else 'Stop'}:{signal_name}"

    @staticmethod
    def warning_signal(spec: str) -> str:
        """The event of a job's ``--signal``: ``Signal:B:USR1@60``."""
        return f"Signal:{spec}"


class StopIntent(StrEnum):
    """Why a running job is being stopped, which decides how it ends."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"


class Wake(StrEnum):
    """What an engine timer is for."""

    BEGIN = "begin"
    """A begin time passed: re-plan."""
    DEPENDENCY = "dep"
    """An ``after:ID+MINUTES`` delay ended: judge the job again."""
    LIMIT = "limit"
    """A running job reached its time limit: stop it."""
    WARN = "warn"
    """A running job's ``--signal`` is due."""
    KILL = "kill"
    """The next signal of a stop (SIGTERM, then SIGKILL)."""
    REPLAN = "replan"
    """A reservation window opened or closed: re-plan."""
    CLOSE = "close"
    """An ended job's tmux session has been kept ``session_keep`` seconds: close it."""


@dataclass(frozen=True, slots=True)
class Job:
    """One job, as stored. Runtime handles (pidfds, timers) never live here."""

    id: int
    uid: int
    user: str
    name: str
    command: tuple[str, ...]
    workdir: str
    submit_time: float
    batch_id: int = 0
    state: State = State.QUEUED
    reason: str | None = None
    exit_code: int | None = None
    script: str | None = None
    gpus: int = 0
    shared: bool = False
    gpu_memory_mb: int | None = None
    memory_mb: int | None = None
    time_limit: int | None = None
    priority: int = 10
    begin_at: float | None = None
    conda_env: str | None = None
    project: str | None = None
    auto_close: bool = False
    deps: Dependency = field(default_factory=Dependency)
    dep_text: str | None = None
    group_id: int | None = None
    task_id: int | None = None
    params: dict[str, str] | None = None
    max_retries: int = 0
    retry_on_timeout: bool = False
    attempt: int = 0
    retry_of: int | None = None
    redo_of: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    gpu_ids: tuple[int, ...] = ()
    pid: int | None = None
    pid_start: int | None = None
    executor: str | None = None
    stop_intent: StopIntent | None = None
    memory_enforcement: str | None = None
    slurm_id: str | None = None
    """The Slurm job id (``123``, ``120_4`` for an array task); ``SUBMITTING`` while the
    submission is under way."""
    node: str | None = None
    """The Slurm node a job runs or ran on."""
    signal: str | None = None
    """Slurm's ``--signal`` in its normal form (``B:USR1@60``), see :mod:`gflow.jobsignal`."""
    output: str | None = None
    """Where the job's output goes, as typed (sbatch's ``%`` patterns, :mod:`gflow.jobfiles`)."""
    error: str | None = None
    """Where its errors go (None: with its output)."""
    cpus_per_task: int | None = None
    mail_type: str | None = None
    mail_user: str | None = None
    notify_url: str | None = None
    run_on: str | None = None
    """Where the job runs: ``local`` or ``slurm`` (None: the daemon's default)."""

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def is_active(self) -> bool:
        return self.state.is_active

    @property
    def session(self) -> str:
        """The tmux session name of this job (whether or not tmux runs it)."""
        return f"gflow-{self.id}"

    def replace(self, **changes: Any) -> Job:
        """This job with other request fields or wait reason; never another state, nor
        the times and exit code that only :func:`transition` stamps."""
        _refuse_stamps(changes, "Job.replace")
        return dataclasses.replace(self, **changes)

    def again(self, new_id: int, now: float, **changes: Any) -> Job:
        """A new Queued job with this one's request, as a retry or a redo makes it."""
        _refuse_stamps(changes, "Job.again")
        return dataclasses.replace(self, id=new_id, submit_time=now, **{**_FRESH, **changes})


_FRESH: dict[str, Any] = {
    "state": State.QUEUED,
    "reason": None,
    "exit_code": None,
    "begin_at": None,
    "start_time": None,
    "end_time": None,
    "gpu_ids": (),
    "pid": None,
    "pid_start": None,
    "executor": None,
    "stop_intent": None,
    "memory_enforcement": None,
    "slurm_id": None,
    "node": None,
    "attempt": 0,
    "retry_of": None,
    "redo_of": None,
}


STAMPED = frozenset({"state", "start_time", "end_time", "exit_code"})
"""What only :func:`transition` writes: the state, and the times and exit code of a change."""


def _refuse_stamps(changes: dict[str, Any], caller: str) -> None:
    stamped = sorted(STAMPED.intersection(changes))
    if stamped:
        raise TypeError(f"{caller} cannot set {', '.join(stamped)}: transition() does")


def can_transition(old: State, new: State) -> bool:
    return new in ALLOWED[old]


def transition(
    job: Job,
    new: State,
    now: float,
    *,
    reason: str | None = None,
    exit_code: int | None = None,
    at: float | None = None,
    **changes: Any,
) -> Job:
    """Return ``job`` moved to ``new``, with times stamped; refuse a change the table forbids.

    ``at``: when it happened, if earlier than ``now`` (a start read from the run directory,
    an end from the wrapper's result file); it stamps the start or end time. ``changes``
    set other fields that come with the move (the process of a start, a new begin time)
    but never the state, times or exit code.
    """
    if not can_transition(job.state, new):
        raise Conflict(f"job {job.id} is {job.state.value} and cannot become {new.value}")
    _refuse_stamps(changes, "transition")
    stamped: dict[str, Any] = {"state": new, "reason": reason}
    if new is State.RUNNING:
        stamped["start_time"] = now if at is None else at
    if new.is_final:
        end = now if at is None else at
        # file times tick coarser than the clock: an end never reads before the start
        stamped["end_time"] = end if job.start_time is None else max(end, job.start_time)
        stamped["exit_code"] = exit_code
    return dataclasses.replace(job, **changes, **stamped)


# ------------------------------------------------------------ stored data the engine can trust

BROKEN_END: dict[State, State] = {
    State.QUEUED: State.CANCELLED,
    State.HOLD: State.CANCELLED,
    State.RUNNING: State.FAILED,
}
"""How a job whose data cannot be handled ends: it never ran (Cancelled) or it did (Failed)."""

_INT64 = 2**63 - 1
_WHOLE: dict[str, tuple[int, int]] = {
    "id": (1, MAX_ID),
    "uid": (0, MAX_UID),
    "batch_id": (0, _INT64),
    "gpus": (0, MAX_GPUS),
    "priority": (0, MAX_PRIORITY),
    "max_retries": (0, MAX_RETRIES),
    "attempt": (0, MAX_RETRIES),
}
_OPTIONAL_WHOLE: dict[str, tuple[int, int]] = {
    "exit_code": (-(2**31), 2**31),
    "gpu_memory_mb": (1, _INT64),
    "memory_mb": (1, _INT64),
    "time_limit": (1, MAX_SECONDS),
    "group_id": (0, _INT64),
    "task_id": (0, _INT64),
    "retry_of": (1, _INT64),
    "redo_of": (1, _INT64),
    "pid": (1, MAX_PID),
    "pid_start": (0, _INT64),
    "cpus_per_task": (1, MAX_CPUS),
}
_INSTANTS = ("submit_time",)
_OPTIONAL_INSTANTS = ("begin_at", "start_time", "end_time")
_TEXTS = ("user", "name", "workdir")
_OPTIONAL_TEXTS = (
    "reason",
    "script",
    "conda_env",
    "project",
    "dep_text",
    "executor",
    "stop_intent",
    "memory_enforcement",
    "signal",
    "output",
    "error",
    "mail_type",
    "mail_user",
    "notify_url",
    "slurm_id",
    "node",
    "run_on",
)
_FLAGS = ("shared", "auto_close", "retry_on_timeout")


def job_problem(job: Job) -> str | None:
    """Why the engine cannot handle ``job`` as stored (a value of the wrong type or out of
    range, as only a damaged or hand-edited database holds), or None when it can."""
    for name, (lo, hi) in _WHOLE.items():
        if not _whole(getattr(job, name), lo, hi):
            return _out_of_range(name, getattr(job, name))
    for name, (lo, hi) in _OPTIONAL_WHOLE.items():
        value = getattr(job, name)
        if value is not None and not _whole(value, lo, hi):
            return _out_of_range(name, value)
    for name in (*_INSTANTS, *_OPTIONAL_INSTANTS):
        value = getattr(job, name)
        if (value is not None or name in _INSTANTS) and not _instant(value):
            return _out_of_range(name, value)
    for name in (*_TEXTS, *_OPTIONAL_TEXTS):
        value = getattr(job, name)
        if (value is not None or name in _TEXTS) and not isinstance(value, str):
            return _out_of_range(name, value)
    for name in _FLAGS:
        if type(getattr(job, name)) is not bool:
            return _out_of_range(name, getattr(job, name))
    return _parts_problem(job)


def _parts_problem(job: Job) -> str | None:
    if not job.command or not all(isinstance(w, str) for w in job.command):
        return _out_of_range("command", job.command)
    if not all(_whole(g, 0, MAX_GPU_INDEX) for g in job.gpu_ids):
        return _out_of_range("gpu_ids", job.gpu_ids)
    params = job.params
    if params is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        return _out_of_range("params", params)
    if not _whole(job.deps.on_count, 0, _INT64):
        return _out_of_range("dependency on:COUNT", job.deps.on_count)
    for clause in (*job.deps.clauses, *job.deps.on_pool):
        problem = _clause_problem(clause)
        if problem:
            return problem
    return None


def _clause_problem(clause: Clause) -> str | None:
    if not _whole(clause.delay, 0, MAX_SECONDS):
        return _out_of_range("dependency delay", clause.delay)
    if not clause.parents or not all(_whole(p, 1, MAX_ID) for p in clause.parents):
        return _out_of_range("dependency parent", clause.parents)
    if clause.group is not None and not _whole(clause.group, 1, MAX_ID):
        return _out_of_range("dependency group", clause.group)
    return None


def _whole(value: object, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


def _instant(value: object) -> bool:
    return type(value) in (int, float) and EARLIEST <= value <= LATEST  # type: ignore[operator]


def _out_of_range(name: str, value: object) -> str:
    return f"{name} {limits.brief(value)} is out of range"
