"""The Slurm executor's runtime: submissions, cancels and holds through Slurm's commands,
and following the cluster (one ``squeue`` for all active jobs every ``poll_interval``
seconds, and only while a job is in Slurm; the result files on the shared directory give
exit codes). Everything that waits on Slurm runs in a worker thread (one for ``sbatch``,
one for ``scancel``/``scontrol``, one for looking), so the order of a job's controls is
kept; what it learns goes back to the engine on the event loop (:mod:`gflow.slurmsync`).

Crash safety: a submission is recorded (``slurm_id = SUBMITTING``) before ``sbatch``
runs, and ``--comment gflow:<install id>:<job id>`` marks it (an array: its first job's
id), so a submission cut short by a crash is found again in Slurm (or known to be
missing) and never made twice. At start, a job of ours that Slurm still runs but gflow
has ended (its ``scancel`` was cut short) is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from gflow import proc, slurmsync
from gflow.actions import SlurmControl, Submit
from gflow.engine import Engine
from gflow.executors import LaunchSpec, wrapper_path, write_run_dir
from gflow.model import SUBMITTING, Job
from gflow.rundir import read_result
from gflow.slurmctl import MAX_IDS_PER_CALL, Slurm, SlurmRefused, SlurmUnreachable
from gflow.slurmspec import SlurmJob, SlurmSettings, comment, sbatch_args
from gflow.slurmsync import Outcome, Seen

log = logging.getLogger("gflow.slurm")

MAX_BACKOFF = 60.0
STRAY_WAIT = 30.0  # seconds to let an sbatch of a killed daemon finish before looking
_SLURM_ENV = ("SLURM_", "SBATCH_", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")


@dataclass(frozen=True, slots=True)
class Prepared:
    """One ``sbatch`` call: its jobs (with their array task ids), flags and script."""

    job_ids: tuple[int, ...]
    tasks: tuple[int, ...]
    specs: tuple[LaunchSpec, ...]
    args: list[str]
    script: str

    @property
    def array(self) -> bool:
        return len(self.job_ids) > 1


@dataclass(slots=True)
class Look:
    """What one look at the cluster found."""

    seen: list[Seen] = field(default_factory=list)
    found: list[Outcome] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    ours: list[SlurmJob] | None = None
    """At start: every job Slurm has with this installation's mark."""


def batch_script(spec: LaunchSpec) -> str:
    """The job's Slurm batch script: gflow's own wrapper, with its arguments set."""
    args = f"set -- {_q(str(spec.run_dir))} {_q(str(spec.log_path))} file\n"
    return f"#!/bin/bash\n# gflow job {spec.job_id}\n{args}{wrapper_path().read_text()}"


def array_script(tasks: Sequence[int], specs: Sequence[LaunchSpec]) -> str:
    """One batch script for the tasks of an array: each task runs its own job's wrapper."""
    lines = ["#!/bin/bash", f"# gflow jobs {specs[0].job_id}-{specs[-1].job_id}"]
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    for task, spec in zip(tasks, specs, strict=True):
        lines.append(f"{task}) set -- {_q(str(spec.run_dir))} {_q(str(spec.log_path))} file ;;")
    lines.append('*) echo "gflow: no job for array task $SLURM_ARRAY_TASK_ID" >&2; exit 1 ;;')
    lines.append("esac")
    return "\n".join(lines) + "\n" + wrapper_path().read_text()


def _q(text: str) -> str:
    return shlex.quote(text)


class SlurmStatus:
    """Whether the controller answered gflow's last call."""

    def __init__(self) -> None:
        self.reachable = True
        self.message: str | None = None
        self.since: float | None = None

    def ok(self) -> None:
        if not self.reachable:
            log.info("Slurm controller reachable again")
        self.reachable, self.message, self.since = True, None, None

    def down(self, message: str) -> None:
        if self.reachable:
            log.warning("%s; retrying with backoff", message)
            self.since = time.time()
        self.reachable, self.message = False, message

    def json(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "message": self.message, "since": self.since}


class SlurmRunner:
    def __init__(
        self,
        engine: Engine,
        settings: SlurmSettings,
        install_id: str,
        drain: Callable[[], None],
        slurm: Slurm | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.install_id = install_id
        self.drain = drain
        self.slurm = slurm or Slurm()
        self.status = SlurmStatus()
        self.submitter = ThreadPoolExecutor(1, thread_name_prefix="gflow-sbatch")
        self.controller = ThreadPoolExecutor(1, thread_name_prefix="gflow-scontrol")
        self.looker = ThreadPoolExecutor(1, thread_name_prefix="gflow-squeue")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.in_flight: set[int] = set()
        self.ended_submitting: dict[int, Job] = {}
        """Jobs that ended while their submission ran, before a crash: looked for once."""
        self._pending: list[Prepared] = []
        self._submitting = False
        self._controls: dict[tuple[str, int], list[str]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ submissions

    def submit(self, action: Submit) -> None:
        """Prepare the jobs' run directories and flags now; sbatch in the worker thread."""
        found = self.engine.get_many(action.job_ids)
        jobs = [found[i] for i in action.job_ids if i in found]
        if not jobs:
            return
        specs = tuple(self._spec(job) for job in jobs)
        first = jobs[0]
        array = action.array if len(jobs) > 1 else None
        args = sbatch_args(
            first,
            self.settings,
            mark=comment(self.install_id, first.id),
            log_path="/dev/null" if array else str(specs[0].log_path),
            dependency=action.dependency,
            array=array,
        )
        tasks = tuple(job.task_id or 0 for job in jobs)
        script = array_script(tasks, specs) if array else batch_script(specs[0])
        ids = tuple(job.id for job in jobs)
        self.in_flight.update(ids)
        self._pending.append(Prepared(ids, tasks, specs, args, script))
        if not self._submitting:
            self._submitting = True
            assert self.loop is not None
            self.loop.call_soon(self._send)

    def _spec(self, job: Job) -> LaunchSpec:
        spec = self.engine.launch_spec(job, ())
        env = {k: v for k, v in spec.env.items() if not k.startswith(_SLURM_ENV)}
        return replace(spec, env=env, cgroup=None)

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            self._submitting = False
            return
        fut = self.submitter.submit(self._sbatch_all, batch)
        fut.add_done_callback(lambda f: self._call_soon(self._sent, batch, f))

    def _sbatch_all(self, batch: list[Prepared]) -> list[Outcome]:
        return [o for p in batch if (o := self._sbatch(p)) is not None]

    def _sbatch(self, p: Prepared) -> Outcome | None:
        """One submission's outcome; None when Slurm did not answer (looked for later)."""
        try:
            for spec in p.specs:
                write_run_dir(spec)
            slurm_id = self.slurm.submit(p.args, p.script, p.specs[0].run_as)
        except SlurmRefused as exc:
            if not p.array:
                _note_in_log(p.specs[0], exc.message)
            return Outcome(p.job_ids, None, exc.message, p.array)
        except SlurmUnreachable as exc:
            self.status.down(exc.message)
            return None
        except Exception as exc:  # the job's files could not be made, for one
            return Outcome(p.job_ids, None, f"{type(exc).__name__}: {exc}")
        self.status.ok()
        keys = tuple(f"{slurm_id}_{t}" for t in p.tasks) if p.array else (slurm_id,)
        return Outcome(p.job_ids, keys)

    def _sent(self, batch: list[Prepared], fut: Any) -> None:
        for p in batch:
            self.in_flight.difference_update(p.job_ids)
        try:
            slurmsync.submitted(self.engine, fut.result(), time.time())
        except Exception:
            log.exception("could not record Slurm submissions")
        self._wake.set()
        self.drain()
        self._send()

    # ------------------------------------------------------------ controls

    def control(self, action: SlurmControl) -> None:
        """Gather controls of one turn of the loop: one ``scancel`` for a whole array."""
        if not self._controls:
            assert self.loop is not None
            self.loop.call_soon(self._flush_controls)
        self._controls.setdefault((action.verb, action.value), []).extend(action.slurm_ids)

    def _flush_controls(self) -> None:
        batch, self._controls = self._controls, {}
        for (verb, value), keys in batch.items():
            unique = sorted(set(keys))
            for start in range(0, len(unique), MAX_IDS_PER_CALL):
                self.controller.submit(
                    self._control, verb, value, unique[start : start + MAX_IDS_PER_CALL]
                )

    def _control(self, verb: str, value: int, keys: list[str]) -> None:
        try:
            if verb == "cancel":
                self.slurm.cancel(keys)
            elif verb == "hold":
                self.slurm.hold(keys)
            elif verb == "release":
                self.slurm.release(keys)
            elif verb == "signal":
                self.slurm.cancel(keys, signal=str(value))
            else:
                for key in keys:
                    self.slurm.update(key, {"ArrayTaskThrottle": str(value)})
        except (SlurmRefused, SlurmUnreachable) as exc:
            log.warning("%s %s in Slurm: %s", verb, ",".join(keys[:10]), exc.message)

    # ------------------------------------------------------------ following

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.ended_submitting = {j.id: j for j in self.engine.store.ended_while_submitting()}
        self._task = asyncio.ensure_future(self._follow())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for pool in (self.submitter, self.controller, self.looker):
            pool.shutdown(wait=False, cancel_futures=True)

    def poke(self) -> None:
        self._wake.set()

    def _active(self) -> list[Job]:
        jobs = [
            j
            for j in self.engine.jobs.values()
            if j.slurm_id is not None and j.id not in self.in_flight
        ]
        return jobs + [j for j in self.ended_submitting.values() if j.id not in self.in_flight]

    async def _follow(self) -> None:
        assert self.loop is not None
        interval = self.settings.poll_interval
        first = True
        while True:
            if not first and not self._active():
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(0 if first else interval)
            active = self._active()
            if not active and not first:
                continue
            try:
                look = await self.loop.run_in_executor(self.looker, self._look, active, first)
            except SlurmUnreachable as exc:
                self.status.down(exc.message)
                interval = min(MAX_BACKOFF, interval * 2)
                continue
            except Exception:
                log.exception("following Slurm failed")
                continue
            self.status.ok()
            interval = self.settings.poll_interval
            first = False
            self._record(look)

    def _record(self, look: Look) -> None:
        now = time.time()
        for outcome in look.found:
            self.ended_submitting.pop(outcome.job_ids[0], None)
        for job_id in look.lost:
            self.ended_submitting.pop(job_id, None)
        try:
            if look.found:
                slurmsync.submitted(self.engine, look.found, now)
            if look.lost:
                slurmsync.unsubmitted(self.engine, look.lost, now)
            slurmsync.observe(self.engine, look.seen, now)
            if look.ours is not None:
                slurmsync.cancel_strays(self.engine, look.ours, self._prefix)
        except Exception:
            log.exception("could not record what Slurm said")
        self.drain()

    @property
    def _prefix(self) -> str:
        return comment(self.install_id, 0).removesuffix("0")

    def _look(self, active: list[Job], first: bool) -> Look:
        """In the worker: one squeue for every job in Slurm, then exit codes of ended ones."""
        known = [j for j in active if j.slurm_id not in (None, SUBMITTING)]
        intents = [j for j in active if j.slurm_id == SUBMITTING]
        look = Look()
        ids = {str(j.slurm_id).split("_")[0] for j in known}
        rows = {r.key: r for r in self.slurm.query(ids)} if ids else {}
        for job in known:
            look.seen.append(self._seen(job, rows.get(str(job.slurm_id))))
        everyone: list[SlurmJob] | None = None
        if intents or first:
            self._wait_for_strays(intents)
            everyone = self.slurm.jobs_of(() if first else {j.user for j in intents})
        if intents and everyone is not None:
            look.found, look.lost = _intents(intents, everyone, self.install_id)
        if first and everyone is not None:
            look.ours = [r for r in everyone if (r.comment or "").startswith(self._prefix)]
        return look

    def _seen(self, job: Job, row: SlurmJob | None) -> Seen:
        code: int | None = None
        ended: float | None = None
        state = row.state if row is not None else None
        if row is None or (state is not None and state.is_final):
            result = read_result(self.engine.run_path(job))
            if result is not None:
                code, ended = result
            elif row is not None:
                code = self.slurm.exit_code(str(job.slurm_id))
        return Seen(job.id, str(job.slurm_id), row, code, ended)

    def _wait_for_strays(self, intents: list[Job]) -> None:
        """Let an ``sbatch`` of a killed daemon finish before looking for what it made."""
        marks = {comment(self.install_id, j.id) for j in intents}
        deadline = time.monotonic() + STRAY_WAIT
        while marks and _stray_sbatch(marks) and time.monotonic() < deadline:
            time.sleep(0.2)

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)


def _intents(
    intents: list[Job], rows: list[SlurmJob], install_id: str
) -> tuple[list[Outcome], list[int]]:
    """Submissions cut short, found in Slurm by their mark (an array's: its first job's,
    and each task by its task id) or known to be missing."""
    marks = {comment(install_id, j.id): j for j in intents}
    by_task = {(j.group_id, j.task_id or 0): j.id for j in intents if j.group_id is not None}
    found: dict[int, str] = {}
    for row in rows:
        first = marks.get(row.comment or "")
        if first is None:
            continue
        _, _, task = row.key.partition("_")
        if not task:
            found[first.id] = row.key
        elif task.isdigit() and (job_id := by_task.get((first.group_id or 0, int(task)))):
            found[job_id] = row.key
    outcomes = [Outcome((i,), (key,)) for i, key in found.items()]
    return outcomes, [j.id for j in intents if j.id not in found]


def _stray_sbatch(marks: set[str]) -> bool:
    """An sbatch carrying one of these marks still runs (started by a daemon now dead)."""
    wanted = {f"--comment={m}" for m in marks}
    for pid in proc.pids():
        args = proc.args(pid)
        if args and args[0].endswith("sbatch") and wanted.intersection(args):
            return True
    return False


def _note_in_log(spec: LaunchSpec, message: str) -> None:
    """Slurm's refusal goes into the job's log too."""
    with contextlib.suppress(OSError), open(spec.log_path, "a") as fh:
        fh.write(f"gflow: Slurm refused the job: {message}\n")


__all__ = ["SlurmRunner", "SlurmStatus", "array_script", "batch_script"]
