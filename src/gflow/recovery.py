"""Start-up repair: re-adopt jobs still running, settle those that ended meanwhile.

The daemon may have been killed at any instant. For each Running job the recorded pid
and process start time tell whether the process is still the job's (PID reuse is
caught); if it is gone, the wrapper's result file holds the exit code and its
modification time is the end time. A Queued job whose run directory already holds a
pid file (or a live wrapper process naming its run directory) was being launched when
the daemon died: it did start, so it is moved to Running and handled the same way — it
is never launched twice. A run directory with neither is removed before the job is
planned again (a stale tmux session of that name is replaced at launch).

A job whose stored data gflowd cannot handle (a row that cannot be read, a value out of
range) is ended with reason ``InvalidJobData:...`` (its process killed if it still
runs), and each job is handled on its own: one job's data never stops the start-up.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from gflow import proc
from gflow.engine import Engine, Watch
from gflow.executors import find_wrapper, is_wrapper
from gflow.model import Job, Reason, State, StopIntent, Wake
from gflow.rundir import pid_time, read_gpus, read_pid, read_result, remove


def recover(engine: Engine, now: float) -> None:
    engine.load()
    with engine.guarded():
        for job_id, _, problem in engine.broken:
            engine.quarantine(job_id, problem, now, _live_wrapper(engine, job_id))
        for job in sorted(engine.jobs.values(), key=lambda j: j.id):
            if job.slurm_id is not None:
                continue  # a Slurm job: the Slurm executor re-reads the cluster
            with engine.isolated(job.id, now, functools.partial(_live_wrapper, engine, job.id)):
                if job.state is State.RUNNING:
                    _running(engine, job, now)
                elif job.state is State.QUEUED:
                    _maybe_launched(engine, job, now)
        for job in list(engine.jobs.values()):
            with engine.isolated(job.id, now):
                _rearm(engine, job, now)
        engine.arm_reservations(now)
        for job in list(engine.jobs.values()):
            if job.state.is_waiting and engine.judge(job.id, now):
                engine.settle_dependents([job.id], now)
    engine.schedule(now)


def _live_wrapper(engine: Engine, job_id: int) -> int | None:
    return live_wrapper(engine.paths.run_dir / str(job_id))


def live_wrapper(rd: Path) -> int | None:
    """The pid of a job's wrapper if it still runs (found from its run directory ``rd``)."""
    if not rd.is_dir():
        return None
    pid = read_pid(rd) or find_wrapper(rd)
    return pid if pid is not None and is_wrapper(pid, rd) else None


def _run_dir(engine: Engine, job: Job) -> Path:
    return engine.paths.run_dir / str(job.id)


def _running(engine: Engine, job: Job, now: float) -> None:
    rd = _run_dir(engine, job)
    if job.pid and _still_the_job(job.pid, job.pid_start, rd):
        engine.outbox.append(Watch(job.id, job.pid))
        return
    _settle(engine, job, rd, now)


def _still_the_job(pid: int, recorded_start: int | None, rd: Path) -> bool:
    """The recorded process is alive and is the job's, not a process that reuses its pid."""
    started = proc.start_time(pid)
    if started is None or proc.is_zombie(pid):
        return False
    return started == recorded_start if recorded_start is not None else is_wrapper(pid, rd)


def _settle(engine: Engine, job: Job, rd: Path, now: float) -> None:
    """The job ended while gflowd was down: what it left in its process group goes too."""
    if job.pid:
        proc.kill_leftovers(job.pid)
    result = read_result(rd)
    if result is None:
        code = engine.exit_status(job) if job.stop_intent is None else None
        engine.finish(job, code, now, None)
    else:
        engine.finish(job, result[0], now, result[1])


def _cancel_if_asked(engine: Engine, job: Job, now: float) -> None:
    """A cancel acknowledged while the job was being launched is carried out now."""
    if job.stop_intent is StopIntent.CANCEL:
        engine.move(job, State.CANCELLED, now, reason=Reason.CANCELLED_BY_USER)


def _maybe_launched(engine: Engine, job: Job, now: float) -> None:
    rd = _run_dir(engine, job)
    if not rd.exists():
        _cancel_if_asked(engine, job, now)
        return
    pid = read_pid(rd) or find_wrapper(rd)
    if pid is None and read_result(rd) is None:
        with contextlib.suppress(OSError):  # launching it again makes a fresh one anyway
            remove(rd)
        _cancel_if_asked(engine, job, now)
        return
    started = pid_time(rd) or now
    alive = pid is not None and is_wrapper(pid, rd)
    running = engine.move(
        job,
        State.RUNNING,
        started,
        gpu_ids=read_gpus(rd),
        pid=pid,
        pid_start=proc.start_time(pid) if alive and pid else None,
        executor=engine.executor_name,
        memory_enforcement=engine.memory_enforcement(job),
    )
    if alive and pid is not None:
        engine.outbox.append(Watch(job.id, pid))
    else:
        _settle(engine, running, rd, now)


def _rearm(engine: Engine, job: Job, now: float) -> None:
    if job.state is State.RUNNING:
        if job.stop_intent is not None and (job.pid or job.slurm_id):
            engine.begin_stop(job, job.stop_intent, now)
        elif job.start_time is not None:
            engine.arm_limits(job, job.start_time, unless_before=now)
    elif job.begin_at is not None:
        engine.add_timer(job.begin_at, Wake.BEGIN, job.id)
