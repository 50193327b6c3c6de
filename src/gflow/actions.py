"""What the engine asks the runtime to do, and who asks the engine.

The engine never touches processes: it leaves these actions in its outbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from gflow.launchspec import RunAs


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as the kernel reported it (SO_PEERCRED), not as the client claims."""

    uid: int
    gid: int
    user: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class Launch:
    """Start this job on these GPUs (the runtime asks for its LaunchSpec when it is its turn)."""

    job_id: int
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Signal:
    """Send ``signum`` to the job whose wrapper is ``pid``: to its whole process group, or
    (not ``group``) to the job's command only, the wrapper's child."""

    job_id: int
    pid: int
    signum: int
    group: bool = True


@dataclass(frozen=True, slots=True)
class Watch:
    """Watch an already-running process (re-adopted after a restart)."""

    job_id: int
    pid: int


@dataclass(frozen=True, slots=True)
class CloseSession:
    job_id: int
    run_as: RunAs | None


@dataclass(frozen=True, slots=True)
class Ended:
    job_id: int


@dataclass(frozen=True, slots=True)
class Submit:
    """Hand these jobs to Slurm with this ``--dependency`` (``""``: none): one job, or the
    tasks of an array as one ``sbatch --array=ARRAY``."""

    job_ids: tuple[int, ...]
    dependency: str
    array: str | None = None


@dataclass(frozen=True, slots=True)
class SlurmControl:
    """``scancel`` (verb ``cancel``), ``scontrol hold`` or ``release`` these Slurm jobs,
    send them signal number ``value`` (``signal``), or set their array throttle
    (``throttle``, to ``value``; 0: none)."""

    verb: str
    slurm_ids: tuple[str, ...]
    value: int = 0


Action = Launch | Signal | Watch | CloseSession | Ended | Submit | SlurmControl
