"""The engine's Slurm side: which queued jobs go to Slurm now, and what Slurm's answers change.

No I/O: it leaves :class:`Submit` and :class:`SlurmControl` actions in the engine's outbox
and takes what the runtime saw (``squeue`` lines, result files) as :class:`Seen` values.
Every state change goes through :meth:`Engine.move`; ``observed=True`` marks one Slurm
made, which gflow must not carry out in Slurm again.

A queued job is handed to Slurm as soon as Slurm can hold what it still waits for
(:func:`gflow.slurmspec.native_dependency`): every awaited parent is a Slurm job and the
form is one Slurm knows. Otherwise gflow keeps it (reason ``WaitingForDependency``) and
submits it once that is so or the dependency is decided. The tasks of an array that
become ready together go as one ``sbatch --array`` (with the ``%N`` throttle) when their
request and dependency allow it (:func:`gflow.slurmspec.array_dependency`); otherwise
one by one, gflow keeping at most N of them in Slurm. The submission intent is recorded
(``slurm_id = SUBMITTING``) before ``sbatch`` runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gflow.actions import SlurmControl, Submit
from gflow.deps import Verdict, evaluate
from gflow.model import SUBMITTING, Job, Reason, State, StopIntent
from gflow.placement import SLURM
from gflow.slurmspec import SlurmJob, array_dependency, array_spec, native_dependency

if TYPE_CHECKING:
    from gflow.engine import Engine

LOST = "SlurmJobLost"


@dataclass(slots=True)
class Book:
    """What the engine keeps in memory about its Slurm side."""

    native: bool = True
    """Slurm holds the dependencies it can express (``[slurm] native_dependencies``)."""
    alone: set[int] = field(default_factory=set)
    """Jobs to submit one by one: Slurm refused their array (too many tasks, say)."""


def in_slurm(job: Job) -> bool:
    """The job has a Slurm job id (its submission finished)."""
    return job.slurm_id is not None and job.slurm_id != SUBMITTING


@dataclass(frozen=True, slots=True)
class Seen:
    """What the runtime found about one job in Slurm: its ``squeue`` line (None: Slurm no
    longer knows it) and the exit code (the result file's, else Slurm's) and end time."""

    job_id: int
    slurm_id: str
    row: SlurmJob | None
    exit_code: int | None = None
    ended: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A submission came back: the Slurm ids of its jobs, or Slurm's refusal."""

    job_ids: tuple[int, ...]
    slurm_ids: tuple[str, ...] | None
    refusal: str | None = None
    array: bool = False


# ------------------------------------------------------------ submitting


def plan(engine: Engine, now: float) -> None:
    """Hand every queued Slurm job whose dependency Slurm can hold (or that has none) to Slurm."""
    candidates = _candidates(engine)
    if not candidates:
        return
    with engine.guarded():
        natives = [(j.id, _native(engine, j, now)) for j in candidates]
        ready = [  # as they are now: judging one may have cancelled another
            (job, dependency)
            for job_id, dependency in natives
            if dependency is not None
            and (job := engine.jobs.get(job_id)) is not None
            and job.state is State.QUEUED
        ]
        for submit in _submissions(engine, ready):
            for job_id in submit.job_ids:
                job = engine.jobs[job_id]
                engine.put(job.replace(slurm_id=SUBMITTING), job.state, now, event=False)
                engine.set_reason(job_id, Reason.SUBMITTING)
            engine.outbox.append(submit)


def _candidates(engine: Engine) -> list[Job]:
    """Queued jobs that run on Slurm and are not there yet."""
    out: list[Job] = []
    for job_id in sorted(engine.waiting):
        job = engine.jobs.get(job_id)
        if job is None or job.state is not State.QUEUED or job.slurm_id is not None:
            continue
        if engine.site(job) == SLURM:
            out.append(job)
    return out


def _native(engine: Engine, job: Job, now: float) -> str | None:
    """The ``--dependency`` to submit ``job`` with now; None: not yet (gflow holds it)."""
    if Reason.awaits_user(job.reason):
        return None
    if job.deps.is_empty:
        return ""
    if job.id not in engine.evals and engine.judge(job.id, now):
        engine.settle_dependents([job.id], now)
        return None
    current = engine.jobs.get(job.id)
    if current is None or Reason.awaits_user(current.reason):
        return None
    views = engine.views(job.deps.parents())
    if engine.slurm_book.native:
        ids = _slurm_ids(engine, job.deps.parents())
        native = native_dependency(job.deps, views, ids, now)
    else:
        met = evaluate(job.deps, views, now).verdict is Verdict.SATISFIED
        native = "" if met else None
    if native is None:
        engine.set_reason(job.id, Reason.DEPENDENCY)
    return native


def _slurm_ids(engine: Engine, parents: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for p in parents:
        job = engine.jobs.get(p)
        if job is not None and job.slurm_id is not None and in_slurm(job):
            out[p] = job.slurm_id
    return out


def _array_key(job: Job) -> tuple[object, ...]:
    """Tasks with equal keys can share one ``sbatch --array``: one request for all."""
    return (
        job.group_id,
        job.batch_id,
        job.uid,
        job.workdir,
        job.gpus,
        job.time_limit,
        job.memory_mb,
        job.cpus_per_task,
        job.priority,
        job.begin_at,
    )


def _submissions(engine: Engine, ready: list[tuple[Job, str]]) -> list[Submit]:
    """One ``--array`` per group of tasks that allow it, the other jobs one by one."""
    arrays: dict[tuple[object, ...], list[tuple[Job, str]]] = {}
    alone: list[tuple[Job, str]] = []
    for job, dependency in ready:
        lone = job.group_id is None or job.task_id is None or job.deps.singleton
        if lone or job.id in engine.slurm_book.alone:
            alone.append((job, dependency))
        else:
            arrays.setdefault(_array_key(job), []).append((job, dependency))
    limits = engine.group_limits
    busy = _in_slurm_per_group(engine) if limits else Counter[int]()
    out: list[Submit] = []
    for members in arrays.values():
        group = members[0][0].group_id or 0
        limit = limits.get(group)
        tasks = [(j.task_id or 0, d) for j, d in members]
        joined = array_dependency(tasks)
        if len(members) < 2 or joined is None or (limit and busy[group]):
            alone.extend(members)  # one by one; a limit is then kept by gflow
            continue
        spec = array_spec([t for t, _ in tasks], limit)
        out.append(Submit(tuple(j.id for j, _ in members), joined, spec))
    for job, dependency in sorted(alone, key=lambda pair: pair[0].id):
        group = job.group_id or 0
        limit = limits.get(group)
        if limit and busy[group] >= limit:
            engine.set_reason(job.id, Reason.GROUP_LIMIT)
            continue
        busy[group] += 1
        out.append(Submit((job.id,), dependency))
    return out


def _in_slurm_per_group(engine: Engine) -> Counter[int]:
    """How many active jobs of each array or sweep Slurm has (or is being given)."""
    return Counter(
        j.group_id for j in engine.jobs.values() if j.group_id and j.slurm_id is not None
    )


def submitted(engine: Engine, outcomes: list[Outcome], now: float) -> None:
    """Submissions came back. A job cancelled or held while its submission ran is
    cancelled or held in Slurm too; an array Slurm refused is submitted again task by task."""
    with engine.guarded():
        for outcome in outcomes:
            keys = outcome.slurm_ids or (None,) * len(outcome.job_ids)
            for job_id, slurm_id in zip(outcome.job_ids, keys, strict=True):
                job = engine.jobs.get(job_id) or engine.store.get(job_id)
                if job is None or job.slurm_id != SUBMITTING:
                    continue
                if slurm_id is not None:
                    _recorded(engine, job, slurm_id, now)
                elif outcome.array and job.is_active:
                    engine.slurm_book.alone.add(job_id)
                    engine.put(job.replace(slurm_id=None), job.state, now, event=False)
                else:
                    _refused(engine, job, outcome.refusal or "refused", now)
    engine.schedule(now)


def _recorded(engine: Engine, job: Job, slurm_id: str, now: float) -> None:
    if engine.reasons.get(job.id) == Reason.SUBMITTING:
        engine.reasons.pop(job.id, None)
    engine.put(job.replace(slurm_id=slurm_id), job.state, now, event=False)
    if job.is_final:
        engine.outbox.append(SlurmControl("cancel", (slurm_id,)))
    elif job.state is State.HOLD:
        engine.outbox.append(SlurmControl("hold", (slurm_id,)))


def _refused(engine: Engine, job: Job, message: str, now: float) -> None:
    engine.reasons.pop(job.id, None)
    if job.state is not State.QUEUED:
        engine.put(job.replace(slurm_id=None), job.state, now, event=False)
        return
    reason = f"SlurmRefused:{message}"[:200]
    engine.move(job, State.FAILED, now, reason=reason, slurm_id=None)
    engine.settle_dependents([job.id], now)


def unsubmitted(engine: Engine, job_ids: list[int], now: float) -> None:
    """These submissions never reached Slurm (looked for by their mark): submit again."""
    with engine.guarded():
        for job_id in job_ids:
            job = engine.jobs.get(job_id) or engine.store.get(job_id)
            if job is not None and job.slurm_id == SUBMITTING:
                engine.put(job.replace(slurm_id=None), job.state, now, event=False)
    engine.schedule(now)


def withdraw(engine: Engine, job: Job, now: float) -> Job:
    """Take a waiting job (and its waiting dependents held by Slurm) back from Slurm, to be
    submitted again as it now is (its dependency, request or executor changed)."""
    if not in_slurm(job) or not job.state.is_waiting:
        return job
    assert job.slurm_id is not None
    engine.outbox.append(SlurmControl("cancel", (job.slurm_id,)))
    back = engine.put(job.replace(slurm_id=None), job.state, now, event=False)
    for child_id in sorted(engine.children.get(job.id, ())):
        child = engine.jobs.get(child_id)
        if child is not None:
            withdraw(engine, child, now)
    return back


def throttle(engine: Engine, group_id: int, limit: int | None) -> None:
    """``gctl set-limit`` on an array Slurm holds as one: its ``ArrayTaskThrottle`` too."""
    arrays = {
        j.slurm_id.split("_")[0]
        for j in engine.jobs.values()
        if j.group_id == group_id and j.slurm_id is not None and "_" in j.slurm_id
    }
    if arrays:
        engine.outbox.append(SlurmControl("throttle", tuple(sorted(arrays)), limit or 0))


def cancel_strays(engine: Engine, rows: list[SlurmJob], prefix: str) -> None:
    """Cancel Slurm jobs marked as this installation's (``prefix``) that no job of gflow
    waits for or runs any more: gflow ended or withdrew them and a crash cut the
    ``scancel`` short. Jobs whose submission is under way are left alone."""
    live = {j.slurm_id for j in engine.jobs.values() if j.slurm_id is not None}
    marks = {f"{prefix}{j.id}" for j in engine.jobs.values() if j.slurm_id == SUBMITTING}
    strays = [
        r.key
        for r in rows
        if (r.comment or "").startswith(prefix)
        and r.comment not in marks
        and r.key not in live
        and r.state is not None
        and not r.state.is_final
    ]
    if strays:
        engine.outbox.append(SlurmControl("cancel", tuple(sorted(strays))))


# ------------------------------------------------------------ following


def observe(engine: Engine, seen: list[Seen], now: float) -> None:
    """Bring gflow's jobs in line with what Slurm says (one transaction, then one plan)."""
    with engine.guarded():
        for s in seen:
            job = engine.jobs.get(s.job_id)
            if job is not None and job.slurm_id == s.slurm_id:
                with engine.isolated(job.id, now):
                    _observe_one(engine, job, s, now)
    engine.schedule(now)


def _observe_one(engine: Engine, job: Job, s: Seen, now: float) -> None:
    row = s.row
    if row is None:
        if s.exit_code is None:
            _end(engine, job, State.FAILED, LOST, None, s.ended or now, now)
        else:
            ended = State.FINISHED if s.exit_code == 0 else State.FAILED
            _end(engine, job, ended, None, s.exit_code, s.ended or now, now)
        return
    state = row.state
    if state is None:
        return
    if not (state is State.RUNNING or state.is_final):
        _waiting(engine, job, state, row, now)
        return
    if job.state is State.HOLD:
        job = engine.move(job, State.QUEUED, now, observed=True)
    if job.state is State.QUEUED:
        job = _start(engine, job, row, now)
    elif state is State.RUNNING:
        if row.nodes and row.nodes != job.node:
            job = engine.put(job.replace(node=row.nodes), job.state, now, event=False)
        if job.stop_intent is not None and job.slurm_id is not None:
            engine.outbox.append(SlurmControl("cancel", (job.slurm_id,)))  # again, till it ends
    if state.is_final:
        _end(engine, job, state, row.gflow_reason, s.exit_code, row.end or s.ended or now, now)


def _waiting(engine: Engine, job: Job, state: State, row: SlurmJob, now: float) -> None:
    reason = row.gflow_reason
    if job.state is State.QUEUED and state is State.HOLD:
        job = engine.move(job, State.HOLD, now, reason=reason, observed=True)
    elif job.state is State.HOLD and state is State.QUEUED:
        job = engine.move(job, State.QUEUED, now, observed=True)
    if job.state is not State.QUEUED or Reason.awaits_user(job.reason):
        return
    if reason:
        engine.set_reason(job.id, reason)
    elif engine.reasons.pop(job.id, None) is not None:
        engine.on_change(job.id)


def _start(engine: Engine, job: Job, row: SlurmJob, now: float) -> Job:
    began = min(row.start or now, now)
    job = engine.move(
        job, State.RUNNING, now, at=began, node=row.nodes, executor=SLURM, observed=True
    )
    engine.reasons.pop(job.id, None)
    engine.arm_limits(job, began)
    if job.stop_intent is StopIntent.CANCEL:
        engine.begin_stop(job, StopIntent.CANCEL, now)
    engine.settle_dependents([job.id], now)
    return job


def _end(
    engine: Engine,
    job: Job,
    state: State,
    reason: str | None,
    exit_code: int | None,
    ended: float,
    now: float,
) -> None:
    by_user = job.stop_intent is StopIntent.CANCEL
    if job.state.is_waiting and (state is State.CANCELLED or by_user):
        why = Reason.CANCELLED_BY_USER if by_user else reason
        engine.move(job, State.CANCELLED, now, reason=why, observed=True)
        engine.settle_dependents([job.id], now)
        return
    if job.state is State.HOLD:
        job = engine.move(job, State.QUEUED, now, observed=True)
    if job.state is State.QUEUED:
        job = engine.move(job, State.RUNNING, now, at=ended, executor=SLURM, observed=True)
    if job.stop_intent is StopIntent.TIMEOUT:
        state, reason = State.TIMEOUT, Reason.TIME_LIMIT
    elif by_user:
        state, reason = State.CANCELLED, Reason.CANCELLED_BY_USER
    elif state is State.FINISHED and exit_code not in (None, 0):
        state = State.FAILED
    if state is State.FINISHED:
        exit_code = 0
    engine.conclude(job, state, reason, exit_code, now, ended, observed=True)
