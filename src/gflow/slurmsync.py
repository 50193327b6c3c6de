"""The engine's Slurm side: which queued jobs go to Slurm now, and what Slurm's answers change.

No I/O: it leaves :class:`Submit` and :class:`SlurmControl` actions in the engine's outbox
and takes what the runtime saw (``squeue`` lines, result files) as :class:`Seen` values.

A queued job is handed to Slurm as soon as Slurm can hold what it still waits for
(:func:`gflow.slurmspec.native_dependency`): every awaited parent is a Slurm job and the
form is one Slurm knows. Otherwise gflow keeps it (reason ``WaitingForDependency``) and
submits it once that is so or the dependency is decided. The submission intent is
recorded (``slurm_id = SUBMITTING``) before ``sbatch`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gflow.actions import SlurmControl, Submit
from gflow.model import SUBMITTING, Job, Reason, State, StopIntent, Wake
from gflow.slurmspec import SlurmJob, native_dependency

if TYPE_CHECKING:
    from gflow.engine import Engine

LOST = "SlurmJobLost"


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


def _slurm_ids(engine: Engine, parents: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for p in parents:
        job = engine.jobs.get(p)
        if job is not None and in_slurm(job) and job.slurm_id is not None:
            out[p] = job.slurm_id
    return out


def plan(engine: Engine, now: float) -> None:
    """Hand every queued job whose dependency Slurm can hold (or that has none) to Slurm."""
    with engine.guarded():
        for job_id in sorted(engine.waiting):
            job = engine.jobs.get(job_id)
            if job is None or job.state is not State.QUEUED or job.slurm_id is not None:
                continue
            dependency = _native(engine, job, now)
            if dependency is None:
                continue
            engine.put(job.replace(slurm_id=SUBMITTING), job.state, now, event=False)
            engine.reasons[job_id] = "Submitting"
            engine.outbox.append(Submit(job_id, dependency))


def _native(engine: Engine, job: Job, now: float) -> str | None:
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
    parents = job.deps.parents()
    native = native_dependency(job.deps, engine.views(parents), _slurm_ids(engine, parents), now)
    if native is None:
        engine.reasons[job.id] = Reason.DEPENDENCY
    return native


def submitted(
    engine: Engine, outcomes: list[tuple[int, str | None, str | None]], now: float
) -> None:
    """Submissions came back: ``(job, slurm id, None)`` or ``(job, None, Slurm's refusal)``.

    A job cancelled or held while its submission ran is cancelled or held in Slurm too.
    """
    with engine.guarded():
        for job_id, slurm_id, refusal in outcomes:
            job = engine.jobs.get(job_id) or engine.store.get(job_id)
            if job is None:
                continue
            if slurm_id is None:
                _refused(engine, job, refusal or "refused", now)
                continue
            engine.reasons.pop(job_id, None)
            engine.put(job.replace(slurm_id=slurm_id), job.state, now, event=False)
            if job.is_final:
                engine.outbox.append(SlurmControl("cancel", (slurm_id,)))
            elif job.state is State.HOLD:
                engine.outbox.append(SlurmControl("hold", (slurm_id,)))
    engine.schedule(now)


def _refused(engine: Engine, job: Job, message: str, now: float) -> None:
    engine.reasons.pop(job.id, None)
    if not job.is_active:
        return
    if job.state is not State.QUEUED:
        engine.put(job.replace(slurm_id=None), job.state, now, event=False)
        return
    engine.move(job, State.FAILED, now, reason=f"SlurmRefused:{message}", slurm_id=None)
    engine.settle_dependents([job.id], now)


def unsubmitted(engine: Engine, job_ids: list[int], now: float) -> None:
    """These submissions never reached Slurm (looked for by their mark): submit again."""
    with engine.guarded():
        for job_id in job_ids:
            job = engine.jobs.get(job_id)
            if job is not None and job.slurm_id == SUBMITTING:
                engine.put(job.replace(slurm_id=None), job.state, now, event=False)
    engine.schedule(now)


def withdraw(engine: Engine, job: Job, now: float) -> Job:
    """Take a waiting job (and its waiting dependents held by Slurm) back from Slurm, to be
    submitted again as it now is (its dependency or request changed)."""
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


def observe(engine: Engine, seen: list[Seen], now: float) -> None:
    """Bring gflow's jobs in line with what Slurm says (one transaction, then one plan)."""
    with engine.guarded():
        for s in seen:
            job = engine.jobs.get(s.job_id)
            if job is not None and job.slurm_id == s.slurm_id:
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
    elif state is State.RUNNING and row.nodes and row.nodes != job.node:
        job = engine.put(job.replace(node=row.nodes), job.state, now, event=False)
    if state.is_final:
        _end(engine, job, state, row.gflow_reason, s.exit_code, row.end or s.ended or now, now)


def _waiting(engine: Engine, job: Job, state: State, row: SlurmJob, now: float) -> None:
    reason = row.gflow_reason
    if job.state is State.QUEUED and state is State.HOLD:
        engine.move(job, State.HOLD, now, reason=reason, observed=True)
    elif job.state is State.HOLD and state is State.QUEUED:
        engine.move(job, State.QUEUED, now, observed=True)
    if not Reason.awaits_user(job.reason):
        if reason:
            engine.reasons[job.id] = reason
        else:
            engine.reasons.pop(job.id, None)


def _start(engine: Engine, job: Job, row: SlurmJob, now: float) -> Job:
    began = min(row.start or now, now)
    job = engine.move(
        job,
        State.RUNNING,
        now,
        at=began,
        node=row.nodes,
        executor="slurm",
        observed=True,
    )
    engine.reasons.pop(job.id, None)
    if job.time_limit:
        engine.add_timer(began + job.time_limit, Wake.LIMIT, job.id)
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
    if job.state is State.QUEUED and (state is State.CANCELLED or by_user):
        why = Reason.CANCELLED_BY_USER if by_user else reason
        engine.move(job, State.CANCELLED, now, reason=why, observed=True)
        engine.settle_dependents([job.id], now)
        return
    if job.state is State.QUEUED:
        job = engine.move(job, State.RUNNING, now, at=ended, executor="slurm", observed=True)
    if job.stop_intent is StopIntent.TIMEOUT:
        state, reason = State.TIMEOUT, Reason.TIME_LIMIT
    elif job.stop_intent is StopIntent.CANCEL:
        state, reason = State.CANCELLED, Reason.CANCELLED_BY_USER
    elif state is State.FINISHED and exit_code not in (None, 0):
        state = State.FAILED
    if state is State.FINISHED:
        exit_code = 0
    engine.conclude(job, state, reason, exit_code, now, ended, observed=True)
