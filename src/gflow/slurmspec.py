"""The Slurm executor's pure half: what Slurm's words mean to gflow, and back.

Which gflow state a Slurm state means (Slurm's reason is kept), which ``sbatch`` flags a
job's request becomes, which dependencies Slurm can hold itself (``--dependency``) and
which gflow must hold until they are decided, and how ``squeue``'s output reads. No I/O:
:mod:`gflow.slurmctl` runs the commands.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gflow.deps import Clause, Dependency, DepType, ParentView, Verdict, evaluate
from gflow.model import Job, Reason, State

# squeue -o: one line per job (-r: per array task); the comment last, as it may hold "|".
SQUEUE_FORMAT = "%i|%A|%T|%r|%N|%S|%e|%k"
_EMPTY = frozenset({"", "(null)", "N/A", "n/a", "None", "Unknown", "(None)"})

_RUNNING = frozenset(
    {
        "RUNNING",
        "COMPLETING",
        "CONFIGURING",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESIZING",
    }
)
_FINAL: dict[str, tuple[State, str | None]] = {
    "COMPLETED": (State.FINISHED, None),
    "FAILED": (State.FAILED, None),
    "TIMEOUT": (State.TIMEOUT, Reason.TIME_LIMIT),
    "DEADLINE": (State.TIMEOUT, "Deadline"),
    "CANCELLED": (State.CANCELLED, "CancelledInSlurm"),
    "PREEMPTED": (State.CANCELLED, "Preempted"),
    "REVOKED": (State.CANCELLED, "Revoked"),
    "NODE_FAIL": (State.FAILED, "NodeFail"),
    "BOOT_FAIL": (State.FAILED, "BootFail"),
    "OUT_OF_MEMORY": (State.FAILED, "OutOfMemory"),
    "SPECIAL_EXIT": (State.FAILED, "SpecialExit"),
}
_HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})
_HELD_STATES = frozenset({"REQUEUE_HOLD", "RESV_DEL_HOLD"})
_QUIET_REASONS = frozenset({"None", "NonZeroExitCode"})
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Zero Bytes were transmitted",
    "Communication connection failure",
)


@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """The ``[slurm]`` table of the configuration."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    sbatch_args: tuple[str, ...] = ()
    poll_interval: float = 2.0
    shared_dir: str | None = None
    native_dependencies: bool = True
    """False: gflow holds every dependency and submits a job once it can start."""
    projects: dict[str, str] = field(default_factory=dict)
    """Where each project's jobs go when both executors are configured."""


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One line of ``squeue``: a job, or one task of an array (``key`` ``4_3``)."""

    key: str
    job_id: int
    slurm_state: str
    reason: str | None
    nodes: str | None
    start: float | None
    end: float | None
    comment: str | None

    @property
    def state(self) -> State | None:
        """The gflow state this means (None: a state gflow does not know, left alone)."""
        mapped = gflow_state(self.slurm_state, self.reason)
        return None if mapped is None else mapped[0]

    @property
    def gflow_reason(self) -> str | None:
        mapped = gflow_state(self.slurm_state, self.reason)
        return None if mapped is None else mapped[1]


def gflow_state(slurm_state: str, reason: str | None) -> tuple[State, str | None] | None:
    """Slurm's state (and reason) as gflow's state and reason; None for a state unknown here.

    Pending jobs keep Slurm's reason (``Resources``, ``Priority``, ``Dependency``...);
    a held one is Hold. A final state keeps Slurm's reason where it says more than the
    state does.
    """
    name = slurm_state.strip().upper().split()[0] if slurm_state.strip() else ""
    why = None if reason is None or reason in _EMPTY else reason
    if name in ("PENDING", "REQUEUED", "REQUEUE_FED"):
        if why in _HELD_REASONS:
            return State.HOLD, why
        return State.QUEUED, why
    if name in _HELD_STATES:
        return State.HOLD, why or "JobHeldAdmin"
    if name in _RUNNING:
        return State.RUNNING, why if name == "SUSPENDED" else None
    if name in _FINAL:
        state, default = _FINAL[name]
        if why is not None and why not in _QUIET_REASONS and default is None:
            return state, why
        return state, default
    return None


def _time(text: str) -> float | None:
    text = text.strip()
    if text in _EMPTY:
        return None
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _field(text: str) -> str | None:
    text = text.strip()
    return None if text in _EMPTY else text


def parse_squeue(text: str) -> list[SlurmJob]:
    """The lines of ``squeue -h -o SQUEUE_FORMAT``; malformed lines are skipped."""
    out: list[SlurmJob] = []
    for line in text.splitlines():
        parts = line.split("|", 7)
        if len(parts) != 8 or not parts[1].strip().isdigit():
            continue
        key, own, state, reason, nodes, start, end, comment = parts
        mapped = gflow_state(state, None)
        started = mapped is not None and (mapped[0] is State.RUNNING or mapped[0].is_final)
        ended = mapped is not None and mapped[0].is_final
        out.append(
            SlurmJob(
                key=key.strip(),
                job_id=int(own),
                slurm_state=state.strip(),
                reason=_field(reason),
                nodes=_field(nodes),
                start=_time(start) if started else None,
                end=_time(end) if ended else None,
                comment=_field(comment),
            )
        )
    return out


def unreachable(message: str) -> bool:
    """True if a Slurm command's error says the controller could not be reached."""
    return any(marker in message for marker in _UNREACHABLE)


def error_line(stderr: str) -> str:
    """Slurm's own explanation from a command's error output, on one line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "error:" in line:
            text = line.split("error:", 1)[1].strip()
            return text.removeprefix("Batch job submission failed:").strip() or line
    return lines[-1] if lines else "no message"


def parse_exit_code(scontrol_line: str) -> int | None:
    """The exit status in ``scontrol show job -o`` output (``ExitCode=3:0``; 128+N for
    a job killed by signal N)."""
    for word in scontrol_line.split():
        if word.startswith("ExitCode="):
            code, _, sig = word.removeprefix("ExitCode=").partition(":")
            if sig.isdigit() and int(sig):
                return 128 + int(sig)
            return int(code) if code.isdigit() else None
    return None


# ------------------------------------------------------------------ submission


def comment(install_id: str, job_id: int) -> str:
    """The mark that finds a job's Slurm submission again after a crash."""
    return f"gflow:{install_id}:{job_id}"


def slurm_time(seconds: int) -> str:
    """A time limit for ``--time``: Slurm counts whole minutes, so round up."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00"


def slurm_nice(priority: int) -> int | None:
    """gflow's priority (higher first, default 10) as Slurm's ``--nice`` (higher later).

    Only Slurm operators may raise a job's priority (a negative nice), so priorities
    above the default submit as the default does.
    """
    return 10 - priority if priority < 10 else None


def slurm_begin(when: float) -> str:
    return datetime.datetime.fromtimestamp(math.ceil(when)).strftime("%Y-%m-%dT%H:%M:%S")


def sbatch_args(
    job: Job,
    settings: SlurmSettings,
    *,
    mark: str,
    log_path: str,
    dependency: str = "",
    array: str | None = None,
) -> list[str]:
    """The flags of ``sbatch`` for ``job`` (its batch script goes on standard input).

    The environment travels in the run directory's ``env`` file; ``sbatch`` runs with
    only ``PATH`` (and ``SLURM_CONF``) in its own, which is all it passes on
    (``--export=ALL``: ``NONE`` would delay every job's start by a second in Slurm
    22.05). Slurm adds its own variables and ``CUDA_VISIBLE_DEVICES``.
    gflow decides what a failed dependency means, so Slurm never cancels for that
    (``--kill-on-invalid-dep=no``), and a job that ends is never requeued.
    """
    args = [
        "--parsable",
        f"--job-name={job.name}",
        f"--comment={mark}",
        f"--chdir={job.workdir}",
        f"--output={log_path}",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",
        "--kill-on-invalid-dep=no",
    ]
    args += site_args(settings)
    if job.gpus:
        args.append(f"--gres=gpu:{job.gpus}")
    if job.time_limit:
        args.append(f"--time={slurm_time(job.time_limit)}")
    if job.memory_mb:
        args.append(f"--mem={job.memory_mb}M")
    if job.cpus_per_task:
        args.append(f"--cpus-per-task={job.cpus_per_task}")
    nice = slurm_nice(job.priority)
    if nice:
        args.append(f"--nice={nice}")
    if job.begin_at is not None:
        args.append(f"--begin={slurm_begin(job.begin_at)}")
    if array:
        args.append(f"--array={array}")
    if dependency:
        args.append(f"--dependency={dependency}")
    args.extend(settings.sbatch_args)
    return args


def site_args(settings: SlurmSettings) -> list[str]:
    """The flags the ``[slurm]`` table adds to every job: partition, account and qos."""
    pairs = (
        ("--partition", settings.partition),
        ("--account", settings.account),
        ("--qos", settings.qos),
    )
    return [f"{flag}={value}" for flag, value in pairs if value]


def array_spec(indexes: list[int], limit: int | None = None) -> str:
    """Slurm's ``--array`` for these task indexes (ranges where they run), ``%N`` throttle."""
    runs: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    spec = ",".join(runs)
    return f"{spec}%{limit}" if limit else spec


def array_dependency(tasks: Sequence[tuple[int, str]]) -> str | None:
    """One ``--dependency`` for array tasks that each have their own: (task id, native).

    The same for every task: that one. Differing only where each task ``i`` waits for
    task ``i`` of one Slurm array (``afterok:123_i``, what gflow's ``aftercorr`` becomes):
    Slurm's ``aftercorr:123`` there. Otherwise None: the tasks go one by one.
    """
    texts = {text for _, text in tasks}
    if len(texts) == 1:
        return texts.pop()
    split = [(task, text.split(",")) for task, text in tasks]
    if "?" in "".join(texts) or len({len(parts) for _, parts in split}) != 1:
        return None
    joined: list[str] = []
    for k in range(len(split[0][1])):
        column = {parts[k] for _, parts in split}
        if len(column) == 1:
            joined.append(column.pop())
            continue
        base = _corresponding([(task, parts[k]) for task, parts in split])
        if base is None:
            return None
        joined.append(f"aftercorr:{base}")
    return ",".join(joined)


def _corresponding(items: list[tuple[int, str]]) -> str | None:
    """``123`` if item of task ``i`` is ``afterok:123_i`` for every task; else None."""
    bases = set()
    for task, text in items:
        kind, _, key = text.partition(":")
        base, _, index = key.partition("_")
        if kind != "afterok" or not base.isdigit() or index != str(task):
            return None
        bases.add(base)
    return bases.pop() if len(bases) == 1 else None


# ------------------------------------------------------------------ dependencies


def _verdict(
    kind: DepType, parent: int, delay: int, views: Mapping[int, ParentView], now: float
) -> Verdict:
    one = Dependency(clauses=(Clause(kind, (parent,), delay),))
    return evaluate(one, views, now).verdict


def _clause_verdict(c: Clause, views: Mapping[int, ParentView], now: float) -> Verdict:
    return evaluate(Dependency(clauses=(c,)), views, now).verdict


def _native_clause(
    c: Clause, views: Mapping[int, ParentView], slurm_ids: Mapping[int, str], now: float
) -> list[str] | None:
    """The Slurm items still awaited of one clause; None if one is not in Slurm.

    ``afternotok`` on a whole array (every task ended, one failed) is not Slurm's
    ``afternotok`` over its task ids (each task failed): gflow holds such a job until the
    array is decided.
    """
    if c.group is not None and c.type is DepType.AFTERNOTOK:
        return [] if _clause_verdict(c, views, now) is Verdict.SATISFIED else None
    items: list[str] = []
    for parent in c.parents:
        verdict = _verdict(c.type, parent, c.delay, views, now)
        if verdict is Verdict.SATISFIED:
            continue
        if verdict is Verdict.NEVER:
            return None
        sid = slurm_ids.get(parent)
        if sid is None:
            return None
        suffix = f"+{math.ceil(c.delay / 60)}" if c.delay else ""
        items.append(f"{sid}{suffix}")
    return items


def native_dependency(
    dep: Dependency,
    views: Mapping[int, ParentView],
    slurm_ids: Mapping[int, str],
    now: float,
) -> str | None:
    """``dep`` as Slurm's ``--dependency`` over Slurm job ids, for what is still awaited.

    ``""``: nothing left for Slurm to wait for. None: Slurm cannot hold it now — a
    parent still awaited is not a Slurm job (or not submitted yet), the form is gflow's
    own (Moab's ``on:N``), an any-of alternative needs several jobs at once, or the
    verdict is already "never" (gflow cancels or marks the job). gflow then keeps the
    job until its dependency is decided and submits it without one.

    Parents already decided are judged here and left out, so Slurm is never asked about
    a job it may have forgotten.
    """
    verdict = evaluate(dep, views, now).verdict
    if verdict is Verdict.SATISFIED:
        return ""
    if verdict is Verdict.NEVER or dep.on_count or dep.on_pool:
        return None
    if dep.any_of:
        return _native_any(dep, views, slurm_ids, now)
    parts: list[str] = []
    for c in dep.clauses:
        items = _native_clause(c, views, slurm_ids, now)
        if items is None:
            return None
        if items:
            parts.append(c.type.value + "".join(f":{i}" for i in items))
    if dep.singleton:
        parts.append("singleton")
    return ",".join(parts)


def _native_any(
    dep: Dependency, views: Mapping[int, ParentView], slurm_ids: Mapping[int, str], now: float
) -> str | None:
    alternatives: list[str] = []
    for c in dep.clauses:
        if _clause_verdict(c, views, now) is Verdict.NEVER:
            continue  # this alternative is out; the others decide
        items = _native_clause(c, views, slurm_ids, now)
        if items is None or len(items) != 1:
            return None  # "all of these" cannot be one alternative of Slurm's "?"
        alternatives.append(f"{c.type.value}:{items[0]}")
    return "?".join(alternatives) if alternatives else None
