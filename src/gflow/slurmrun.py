"""The Slurm executor's runtime: submissions, cancels and holds through Slurm's commands,
and following the cluster (one ``squeue`` for all active jobs every ``poll_interval``
seconds, and only while a job is in Slurm; the result files on the shared directory give
exit codes). Everything that waits on Slurm runs in its own thread; what it learns goes
back to the engine on the event loop (:mod:`gflow.slurmsync`).

Crash safety: a submission is recorded (``slurm_id = SUBMITTING``) before ``sbatch``
runs, and ``--comment gflow:<install id>:<job id>`` marks it, so a submission cut short
by a crash is found again in Slurm (or known to be missing) and never made twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from gflow import proc, slurmsync
from gflow.actions import SlurmControl, Submit
from gflow.engine import Engine
from gflow.executors import LaunchSpec, RunAs, wrapper_path, write_run_dir
from gflow.model import SUBMITTING
from gflow.rundir import read_result
from gflow.slurmctl import Slurm, SlurmRefused, SlurmUnreachable
from gflow.slurmspec import SlurmSettings, comment, sbatch_args

log = logging.getLogger("gflow.slurm")

MAX_BACKOFF = 60.0
STRAY_WAIT = 30.0  # seconds to let an sbatch of a killed daemon finish before looking
_SLURM_ENV = ("SLURM_", "SBATCH_", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")


@dataclass(frozen=True, slots=True)
class Prepared:
    job_id: int
    spec: LaunchSpec
    args: list[str]
    script: str


def batch_script(spec: LaunchSpec) -> str:
    """The job's Slurm batch script: gflow's own wrapper, with its arguments set."""
    wrapper = wrapper_path().read_text()
    head = f"#!/bin/bash\n# gflow job {spec.job_id}\n"
    args = f"set -- {_q(str(spec.run_dir))} {_q(str(spec.log_path))} file\n"
    return head + args + wrapper


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


class SlurmStatus:
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
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="gflow-slurm")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.in_flight: set[int] = set()
        self._pending: list[Prepared] = []
        self._submitting = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ submissions

    def submit(self, action: Submit) -> None:
        """Prepare the job's run directory and flags now; sbatch in the worker thread."""
        job = self.engine.jobs.get(action.job_id)
        if job is None or job.slurm_id != SUBMITTING:
            return
        spec = self.engine.launch_spec(job, ())
        env = {k: v for k, v in spec.env.items() if not k.startswith(_SLURM_ENV)}
        spec = replace(spec, env=env, cgroup=None)
        args = sbatch_args(
            job,
            self.settings,
            mark=comment(self.install_id, job.id),
            log_path=str(spec.log_path),
            dependency=action.dependency,
        )
        self.in_flight.add(job.id)
        self._pending.append(Prepared(job.id, spec, args, batch_script(spec)))
        if not self._submitting:
            self._submitting = True
            assert self.loop is not None
            self.loop.call_soon(self._send)

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            self._submitting = False
            return
        fut = self.pool.submit(self._sbatch_all, batch)
        fut.add_done_callback(lambda f: self._call_soon(self._sent, f))

    def _sbatch_all(self, batch: list[Prepared]) -> list[tuple[int, str | None, str | None]]:
        out: list[tuple[int, str | None, str | None]] = []
        for p in batch:
            try:
                write_run_dir(p.spec)
                out.append((p.job_id, self.slurm.submit(p.args, p.script, p.spec.run_as), None))
                self.status.ok()
            except SlurmRefused as exc:
                _note_in_log(p.spec, exc.message)
                out.append((p.job_id, None, exc.message))
            except SlurmUnreachable as exc:
                self.status.down(exc.message)
                out.append((p.job_id, SUBMITTING, None))  # looked for by its mark later
            except Exception as exc:  # the job's files could not be made, for one
                message = f"{type(exc).__name__}: {exc}"
                out.append((p.job_id, None, message))
        return out

    def _sent(self, fut: Any) -> None:
        outcomes: list[tuple[int, str | None, str | None]] = fut.result()
        done = [o for o in outcomes if o[1] != SUBMITTING]
        for job_id, _, _ in outcomes:
            self.in_flight.discard(job_id)
        try:
            slurmsync.submitted(self.engine, done, time.time())
        except Exception:
            log.exception("could not record Slurm submissions")
        self._wake.set()
        self.drain()
        self._send()

    def control(self, action: SlurmControl) -> None:
        verbs = {
            "cancel": self.slurm.cancel,
            "hold": self.slurm.hold,
            "release": self.slurm.release,
        }
        fn = verbs[action.verb]

        def run() -> None:
            try:
                fn(action.slurm_ids)
            except (SlurmRefused, SlurmUnreachable) as exc:
                log.warning(
                    "%s %s in Slurm: %s", action.verb, ",".join(action.slurm_ids), exc.message
                )

        self.pool.submit(run)

    # ------------------------------------------------------------ following

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(self._follow())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def poke(self) -> None:
        self._wake.set()

    def _active(self) -> list[tuple[int, str]]:
        return [
            (j.id, j.slurm_id)
            for j in self.engine.jobs.values()
            if j.slurm_id is not None and j.id not in self.in_flight
        ]

    async def _follow(self) -> None:
        assert self.loop is not None
        interval = self.settings.poll_interval
        while True:
            if not self._active():
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(interval)
            active = self._active()
            if not active:
                continue
            try:
                seen, found, lost = await self.loop.run_in_executor(self.pool, self._look, active)
            except SlurmUnreachable as exc:
                self.status.down(exc.message)
                interval = min(MAX_BACKOFF, interval * 2)
                continue
            except Exception:
                log.exception("following Slurm failed")
                continue
            self.status.ok()
            interval = self.settings.poll_interval
            now = time.time()
            try:
                if found:
                    slurmsync.submitted(self.engine, found, now)
                if lost:
                    slurmsync.unsubmitted(self.engine, lost, now)
                slurmsync.observe(self.engine, seen, now)
            except Exception:
                log.exception("could not record what Slurm said")
            self.drain()

    def _look(
        self, active: list[tuple[int, str]]
    ) -> tuple[list[slurmsync.Seen], list[tuple[int, str | None, str | None]], list[int]]:
        """In the worker: one squeue for every job in Slurm, then exit codes of ended ones."""
        known = [(i, s) for i, s in active if s != SUBMITTING]
        intents = [i for i, s in active if s == SUBMITTING]
        rows = {r.key: r for r in self.slurm.query({s.split("_")[0] for _, s in known})}
        seen: list[slurmsync.Seen] = []
        for job_id, sid in known:
            row = rows.get(sid)
            code: int | None = None
            ended: float | None = None
            state = row.state if row is not None else None
            if row is None or (state is not None and state.is_final):
                result = read_result(self.engine.run_path(job_id))
                if result is not None:
                    code, ended = result
                elif row is not None:
                    code = self.slurm.exit_code(sid)
            seen.append(slurmsync.Seen(job_id, sid, row, code, ended))
        found, lost = self._find_intents(intents) if intents else ([], [])
        return seen, found, lost

    def _find_intents(
        self, job_ids: list[int]
    ) -> tuple[list[tuple[int, str | None, str | None]], list[int]]:
        """Submissions cut short: look for their mark in Slurm once no sbatch of ours runs."""
        marks = {comment(self.install_id, i): i for i in job_ids}
        deadline = time.monotonic() + STRAY_WAIT
        while _stray_sbatch(marks) and time.monotonic() < deadline:
            time.sleep(0.2)
        users = {j.user for i in job_ids if (j := self.engine.jobs.get(i)) is not None}
        by_mark = {r.comment: r for r in self.slurm.jobs_of(users) if r.comment in marks}
        found: list[tuple[int, str | None, str | None]] = [
            (marks[m], r.key.split("_")[0], None) for m, r in by_mark.items()
        ]
        lost = [i for m, i in marks.items() if m not in by_mark]
        return found, lost

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)


def _stray_sbatch(marks: dict[str, int]) -> bool:
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


__all__ = ["RunAs", "SlurmRunner", "SlurmStatus", "batch_script"]
