"""What the Python API returns: plain frozen dataclasses, built from the daemon's JSON.

The fields are named as in ``gqueue -o json`` and ``ginfo -o json``; fields a daemon
sends that a dataclass does not know are ignored, so a newer daemon does not break an
older client. Times are seconds since the epoch, sizes MiB, limits seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gflow.states import ACTIVE_STATES, FINAL_STATES, State

T = TypeVar("T")


def build(cls: type[T], data: Mapping[str, Any], **also: Any) -> T:
    """An instance of dataclass ``cls`` from the keys of ``data`` it has fields for;
    JSON lists become tuples (the records are frozen and hashable)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**{**values, **also})


@dataclass(frozen=True, slots=True)
class Event:
    """One change of a job's state (``gjob show``'s history)."""

    time: float
    old: str | None
    new: str
    reason: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(data["time"], data["from"], data["to"], data["reason"])


@dataclass(frozen=True, slots=True)
class JobInfo:
    """Everything about one job at one moment (``gjob show``, ``gqueue -o json``).

    The fields after ``command`` are filled by :meth:`gflow.Client.job` and
    :meth:`gflow.Client.jobs`; ``events`` and ``attempts`` by :meth:`gflow.Client.job` only.
    """

    id: int
    name: str
    user: str
    state: str
    """Queued, Hold, Running, Finished, Failed, Cancelled or Timeout."""
    st: str
    """The state's code: PD, H, R, CD, F, CA, TO."""
    reason: str | None = None
    exit_code: int | None = None
    gpus: int = 0
    gpu_ids: tuple[int, ...] = ()
    submit_time: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    time_limit: int | None = None
    memory_mb: int | None = None
    priority: int = 10
    project: str | None = None
    group_id: int | None = None
    """The array or sweep the job is a task of (its first job's id)."""
    task_id: int | None = None
    parents: tuple[int, ...] = ()
    command: tuple[str, ...] = ()
    uid: int | None = None
    script: str | None = None
    workdir: str | None = None
    shared: bool = False
    gpu_memory_mb: int | None = None
    begin_at: float | None = None
    conda_env: str | None = None
    dependency: str | None = None
    """The dependency in Slurm's form (``afterok:3:4``)."""
    auto_cancel: bool = True
    params: Mapping[str, str] | None = None
    max_retries: int = 0
    attempt: int = 0
    retry_of: int | None = None
    redo_of: int | None = None
    pid: int | None = None
    executor: str | None = None
    log: str | None = None
    """The path of the job's output."""
    events: tuple[Event, ...] = ()
    attempts: tuple[int, ...] = ()
    """Every attempt of the job, a retry after the job it retries."""
    remaining: str | None = None
    pending: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobInfo:
        events = tuple(Event.from_json(e) for e in data.get("events") or ())
        return build(cls, data, events=events)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def ok(self) -> bool:
        """Finished with exit code 0."""
        return self.state == State.FINISHED


@dataclass(frozen=True, slots=True)
class Action:
    """What a cancel, hold, release, update or redo did (or, in a preview, would do) to
    one job."""

    id: int
    name: str
    action: str
    """``cancelled``, ``stopping``, ``held``, ``released``, ``updated``, ``would cancel``..."""
    state: str | None = None
    dependent: bool = False
    """In a cancel preview: a queued job that waits on a cancelled one."""
    fields: tuple[str, ...] = ()
    """What an update changed."""
    redo_of: int | None = None


@dataclass(frozen=True, slots=True)
class GpuHolder:
    id: int
    name: str
    shared: bool = False
    gpu_memory_mb: int | None = None


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU, as ``ginfo`` shows it."""

    index: int
    name: str
    uuid: str = ""
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    allowed: bool = True
    """False when ``gctl set-gpus`` keeps jobs off it."""
    foreign_pids: tuple[int, ...] = ()
    foreign_mib: int = 0
    jobs: tuple[GpuHolder, ...] = ()
    reservation: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Gpu:
        return build(cls, data, jobs=tuple(build(GpuHolder, j) for j in data.get("jobs", ())))

    @property
    def idle(self) -> bool:
        return self.allowed and not self.jobs and not self.foreign_pids


@dataclass(frozen=True, slots=True)
class Info:
    """The machine and the daemon (``ginfo``): GPUs, host memory, status."""

    gpus: tuple[Gpu, ...]
    executor: str
    memory_mb: int | None = None
    status: Mapping[str, Any] = field(default_factory=dict)
    """pid, version, uptime, database, GPU totals and job counts by state."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Info:
        return build(cls, data, gpus=tuple(Gpu.from_json(g) for g in data["gpus"]))


@dataclass(frozen=True, slots=True)
class Stats:
    """Usage statistics (``gstats``)."""

    total_jobs: int
    by_state: Mapping[str, int]
    avg_wait_secs: float | None = None
    avg_runtime_secs: float | None = None
    total_gpu_hours: float = 0.0
    jobs_with_gpus: int = 0
    success_rate: float | None = None
    since: float | None = None
