"""gflowd's runtime: the asyncio loop around the engine.

It performs the engine's actions — launches in a small thread pool so request
handling never waits on tmux, signals, process watching with pidfds (an exit wakes
the loop at once; nothing polls), one timer for the engine's earliest deadline —
and serves the API. :func:`run` is the whole daemon; the console script only parses
arguments.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import fcntl
import functools
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, assert_never

from aiohttp import web

from gflow import __version__, commands, logs, modes, notifyconfig, proc
from gflow.actions import Action, CloseSession, Ended, Launch, Signal, SlurmControl, Submit, Watch
from gflow.api import Api
from gflow.backoff import Backoff
from gflow.cgroup import detect as detect_cgroups
from gflow.config import DaemonConfig, Paths, load_daemon_config, load_slurm_settings
from gflow.delivery import Deliveries
from gflow.engine import Engine, Exited, Started
from gflow.errors import GflowError
from gflow.executors import (
    Inherited,
    Launched,
    LaunchError,
    LaunchSpec,
    RunAs,
    TmuxExecutor,
    make_executor,
    shortage,
)
from gflow.gpuwatch import MIN_POLL, GpuWatch
from gflow.identity import run_as
from gflow.listener import Listener, connection_budget
from gflow.metrics import Metrics
from gflow.model import Job, State
from gflow.notifier import Notifier
from gflow.notifyconfig import Notifications
from gflow.recovery import recover
from gflow.rundir import pid_time, read_result
from gflow.slurmrun import SlurmRunner
from gflow.store import open_store
from gflow.tcpauth import Verifier

if TYPE_CHECKING:
    from gflow.web.server import Dashboard

log = logging.getLogger("gflow.daemon")
T = TypeVar("T")

RESTART_ONLY = (
    "executor",
    "tcp",
    "host",
    "port",
    "system",
    "fake_gpus",
    "idle_timeout",
    "web",
    "web_port",
)
"""Settings ``gflowd reload`` reports but leaves alone: a restart applies them."""


def memory_limit(config: DaemonConfig) -> int | None:
    """Host memory (MB) gflow hands out to ``--memory`` jobs: configured, else all RAM."""
    return config.memory_mb or proc.total_memory_mb()


MAX_IN_FLIGHT = 8  # launch calls handed to the worker threads at once
RETRY_DELAY = 1.0  # seconds before retrying events the database refused to record
PRUNE_EVERY = 3600.0  # seconds between two prunings of the history


class Runtime:
    def __init__(self, paths: Paths, config: DaemonConfig, inherited: Inherited) -> None:
        self.paths = paths
        self.config = config
        self.system = config.system
        self.uid = os.getuid()
        self.started = time.time()
        self.store = open_store(paths.db)
        settings = load_slurm_settings(paths) if config.placement().slurm else None
        placement = config.placement(settings.projects if settings else None)
        self.executor = make_executor(placement.local or "process", paths.runtime_dir)
        self.engine = Engine(self.store, paths, config, executor_name=self.executor.name)
        self.engine.placement = placement
        self.slurm: SlurmRunner | None = None
        if settings is not None:
            if settings.shared_dir:
                self.engine.use_shared_dir(prepare_shared(Path(settings.shared_dir), self.system))
            self.engine.slurm_book.native = settings.native_dependencies
            self.slurm = SlurmRunner(self.engine, settings, self.store.install_id(), self.drain)
        self.engine.memory_mb = memory_limit(config)
        self.engine.inherited = inherited
        self.gpus = GpuWatch(paths, config, self.store, self.engine)
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="gflow-launch")
        self.waiters: dict[int, list[asyncio.Future[None]]] = {}
        self.submit_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._launches: list[tuple[int, Launched | LaunchError]] = []
        self._queued_launches: collections.deque[int] = collections.deque()
        self._in_flight = 0
        self._pump_pending = False
        self._exits: list[Exited] = []
        self._flush_pending = False
        # Work that found the system short of file descriptors or processes, done again
        # on a backoff timer or as soon as a job's end frees some.
        self._short = Backoff(self._retry_short)
        self._deferred: list[int] = []
        self._recheck: set[int] = set()
        self._unwatched: list[tuple[int, int, bool]] = []
        self._unsettled: list[tuple[int, int, int | None]] = []
        self._stopping = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.listener: Listener
        self.tcp: str | None = None  # where TCP is served, or why not
        self.tcp_auth = Verifier(paths.token_file)
        self.web: Dashboard | None = None
        if config.web:  # refuse to start, in one line, rather than serve without it
            from gflow.extras import require

            for module in ("jinja2", "inotify_simple"):
                require(module, "web", "the dashboard (web = true)")
        self.notify_conf = notifyconfig.load(paths.config_file)
        self.notifier = Notifier(self.store, self.notify_conf, self._gpus_held_by_others)
        self.deliveries = Deliveries(
            self.store, self.notify_conf, paths.logs_dir, busy=self._launching
        )
        self.metrics: Metrics | None = Metrics(self) if self.notify_conf.metrics else None
        self.engine.on_state = self._on_state
        if self.metrics is not None:
            self.engine.on_pass = self.metrics.scheduled

    # ------------------------------------------------------------ lifecycle

    async def serve(self, ready: ReadyPipe) -> None:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stop)
        self.gpus.apply_config(self.config)
        self.gpus.refresh(self.gpus.discover())
        self.engine.cgroups = detect_cgroups()
        if self.system:
            self.engine.identity = functools.lru_cache(maxsize=256)(run_as)
        self.engine.exit_status = self._exit_status
        if self.slurm is not None:
            self.slurm.start()
        recover(self.engine, time.time())
        self.notifier.system("scheduler_online", time.time(), version=__version__)
        self.deliveries.start()
        self._sweep_sessions()
        self.gpus.refresh()  # now that re-adopted jobs' processes are known
        if self.engine.cgroups is not None:
            self.engine.cgroups.prune({j.id for j in self.engine.jobs.values()})
        self.drain()
        runner = web.AppRunner(
            Api(self).app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5.0,
            keepalive_timeout=self.config.idle_timeout,
        )
        await runner.setup()
        await self._listen(runner)
        if self.config.web:
            await self._start_web()
        if self.gpus.backend is not None:
            self._spawn(self._poll_gpus())
        if self.config.history_days:
            self._spawn(self.prune_history())
        log.info(
            "gflowd %s serving on %s (executor %s)",
            __version__,
            self.paths.socket,
            self.engine.placement.describe(self.executor.name),
        )
        ready.send("ok")
        await self._stopping.wait()
        log.info("gflowd stopping; running jobs keep running")
        self._wake_waiters()
        self.listener.close()
        if self.web is not None:
            await self.web.stop()
        await runner.cleanup()
        await self.deliveries.close()
        self.paths.socket.unlink(missing_ok=True)
        if self.slurm is not None:
            self.slurm.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._stop_tmux()
        self.store.close()

    async def _listen(self, runner: web.AppRunner) -> None:
        assert runner.server is not None
        self.listener = Listener(
            runner.server,
            per_user=self.config.max_connections_per_user,
            total=self.config.max_connections or connection_budget(),
            idle_timeout=self.config.idle_timeout,
        )
        self.listener.serve(_unix_socket(self.paths.socket, 0o666 if self.system else 0o600))
        if self.config.tcp:
            self._listen_tcp()

    def _listen_tcp(self) -> None:
        """Loopback TCP as well; a port someone else holds costs TCP, not the daemon."""
        where = f"{self.config.host}:{self.config.tcp_port}"
        if not self.system:
            _ensure_token(self.paths.token_file)
        try:
            sock = socket.create_server((self.config.host, self.config.tcp_port))
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            self.tcp = f"unavailable ({where}: {reason})"
            log.error("cannot listen on %s: %s; serving on the Unix socket only", where, reason)
            return
        self.listener.serve(sock)
        self.tcp = where

    async def _start_web(self) -> None:
        """The dashboard (``web = true``): its server, and the engine's changes to its pages."""
        from gflow.web.server import Dashboard

        self.web = Dashboard(self)
        self.engine.on_change = self.web.hub.changed
        await self.web.start()

    def stop(self) -> None:
        self._stopping.set()

    def configure_notifications(self, conf: Notifications) -> None:
        """New notification settings (a reloaded configuration)."""
        self.notify_conf = self.notifier.conf = self.deliveries.conf = conf

    def _on_state(self, job: Job, old: State | None, why: str | None, now: float) -> None:
        self.notifier.changed(job, old, why, now)
        if self.metrics is not None:
            self.metrics.changed(job, old, why, now)

    def _launching(self) -> bool:
        return self._in_flight > 0 or bool(self._queued_launches)

    def _gpus_held_by_others(self, job_id: int) -> set[int]:
        return {g for j in self.engine.holding() if j.id != job_id for g in j.gpu_ids}

    def _tmux_servers(self) -> list[tuple[int | None, RunAs | None]]:
        """gflow's tmux servers: whose jobs each hosts (a system daemon's per-user server:
        that uid; None: the daemon's own), and whom it runs as."""
        if not isinstance(self.executor, TmuxExecutor):
            return []
        found: list[tuple[int | None, RunAs | None]] = []
        for uid in self.executor.servers():
            user = None if uid is None else self.engine.known_identity(uid)
            if user is not False:
                found.append((uid, user))
        return found

    def _sweep_sessions(self) -> None:
        """Ask each tmux server, off the event loop, which sessions it keeps: those of
        jobs that ended while gflowd was down are closed when they are due."""
        tmux = self.executor
        for owner, user in self._tmux_servers():
            assert isinstance(tmux, TmuxExecutor)
            fut = self.pool.submit(tmux.session_jobs, user)
            fut.add_done_callback(functools.partial(self._call_soon, self._swept, owner, user))

    def _swept(self, owner: int | None, user: RunAs | None, fut: Future[list[int]]) -> None:
        try:
            ids = fut.result()
        except Exception:  # the server did not answer: its sessions wait for the next start
            log.exception("cannot list the tmux sessions of %s", user.user if user else "gflowd")
            return
        now = time.time()
        jobs = self.engine.get_many(ids)
        for job_id in ids:
            job = jobs.get(job_id)
            if job is None:  # pruned from the history, or never gflow's
                self.pool.submit(self.executor.close_session, job_id, user)
            elif not job.is_active and owner in (None, job.uid):
                self.engine.keep_session(job, now)
        self.drain()

    def _stop_tmux(self) -> None:
        """Stop each gflow tmux server where no job runs or is being started; all at once,
        so that no server that fails to answer holds the daemon's stop back for long."""
        if not isinstance(self.executor, TmuxExecutor):
            return
        eng = self.engine
        live = [j for j in eng.jobs.values() if j.state is State.RUNNING or j.id in eng.launching]
        busy = {eng.known_identity(j.uid) for j in live}
        idle = [user for _, user in self._tmux_servers() if user not in busy]
        if idle:
            with ThreadPoolExecutor(min(8, len(idle))) as stopper:
                list(stopper.map(self.executor.stop_server, idle))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ actions

    def drain(self) -> None:
        """Perform everything the engine asked for, then re-arm the one timer."""
        eng = self.engine
        while eng.outbox:
            action = eng.outbox.pop(0)
            try:
                self._do(action)
            except Exception:  # one failed action must not stop the others
                log.exception("action %r failed", action)
        self._rearm()
        if self.notifier.written:
            self.notifier.written = False
            self.deliveries.wake()

    def _do(self, action: Action) -> None:
        match action:
            case Launch():
                self._queued_launches.append(action.job_id)
                if not self._pump_pending:  # after the current request has been answered
                    self._pump_pending = True
                    assert self.loop is not None
                    self.loop.call_soon(self._pump)
            case Signal():
                targets = [action.pid] if action.group else proc.children(action.pid)
                for target in targets:
                    with contextlib.suppress(ProcessLookupError):
                        if action.group:
                            os.killpg(target, action.signum)
                        else:
                            os.kill(target, action.signum)
            case Watch():
                self._watch(action.job_id, action.pid, child=False)
            case CloseSession():
                self.pool.submit(self.executor.close_session, action.job_id, action.run_as)
            case Submit():
                if self.slurm is not None:
                    self.slurm.submit(action)
            case SlurmControl():
                if self.slurm is not None:
                    self.slurm.control(action)
            case Ended():
                for waiter in self.waiters.pop(action.job_id, []):
                    if not waiter.done():
                        waiter.set_result(None)
            case _:
                assert_never(action)

    def _call_soon(self, fn: Any, *args: Any) -> None:
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    def _pump(self) -> None:
        """Hand planned launches to the workers, specs built just in time.

        At most ``MAX_IN_FLIGHT`` calls are out at once; an executor that can start
        several jobs in one call (tmux) gets them in batches of the same user.
        """
        self._pump_pending = False
        while self._queued_launches and self._in_flight < MAX_IN_FLIGHT:
            batch = self._next_batch()
            if not batch:
                continue
            self._in_flight += 1
            fut = self.pool.submit(self.executor.launch_many, batch)
            fut.add_done_callback(functools.partial(self._launch_done, [s.job_id for s in batch]))
        if self.engine.outbox:  # a job cancelled at its turn to launch ends, and frees room
            self.drain()

    def _next_batch(self) -> list[LaunchSpec]:
        batch: list[LaunchSpec] = []
        while self._queued_launches and len(batch) < self.executor.batch:
            job_id = self._queued_launches.popleft()
            try:
                spec = self.engine.next_launch(job_id, time.time())
            except Exception as exc:  # e.g. the job's user vanished from the password database
                if shortage(exc):
                    self._defer(job_id, str(exc))
                    continue
                log.exception("cannot prepare the launch of job %s", job_id)
                self.engine.launch_failed(job_id, f"{type(exc).__name__}: {exc}", time.time())
                continue
            if spec is None:
                continue
            if job_id in self._recheck:
                spec = dataclasses.replace(spec, recheck=True)
            if batch and spec.run_as != batch[0].run_as:
                self._queued_launches.appendleft(job_id)
                break
            batch.append(spec)
        return batch

    def _launch_done(self, job_ids: list[int], fut: Future[list[Launched | LaunchError]]) -> None:
        """In a worker thread: hand the outcomes back to the event loop."""
        self._call_soon(self._launched, job_ids, fut)

    def _launched(self, job_ids: list[int], fut: Future[list[Launched | LaunchError]]) -> None:
        self._in_flight -= 1
        try:
            outcomes: list[Launched | LaunchError] = fut.result()
        except Exception as exc:  # the whole call failed: every job of the batch did
            log.exception("launching jobs %s failed", job_ids)
            message = f"{type(exc).__name__}: {exc}"
            outcomes = [LaunchError(message, retry=shortage(exc)) for _ in job_ids]
        self._launches.extend(zip(job_ids, outcomes, strict=True))
        self._flush_soon()

    def _exited(self, job_id: int, pid: int, pidfd: int | None, child: bool) -> None:
        assert self.loop is not None
        if pidfd is not None:
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            self._short.now()  # a descriptor is free again
        self._settle(job_id, pid, self.executor.reap(pid) if child else None)

    def _settle(self, job_id: int, pid: int, code: int | None) -> None:
        """An ended job's exit code: the wrapper's result file, else its reaped status,
        else what the executor kept (a tmux pane's exit status)."""
        proc.kill_leftovers(pid)  # what an ended job left running goes with it, as in Slurm
        try:
            result = read_result(self.paths.run_dir / str(job_id))
        except OSError:  # cannot look now; the code must not be taken for unknown
            self._unsettled.append((job_id, pid, code))
            self._short.failed()
            return
        job = self.engine.jobs.get(job_id)
        run_as = self.engine.known_identity(job.uid) if job is not None else False
        if result is not None:
            self._exits.append(Exited(job_id, result[0], min(result[1], time.time())))
        elif code is None and job is not None and job.stop_intent is None and run_as is not False:
            self._ask_executor(job_id, run_as)
            return
        else:
            self._exits.append(Exited(job_id, code))
        self._flush_soon()

    def _exit_status(self, job: Job) -> int | None:
        """What the executor kept of an ended job's exit (recovery asks, on start-up)."""
        run_as = self.engine.known_identity(job.uid)
        return None if run_as is False else self.executor.exit_status(job.id, run_as)

    def _ask_executor(self, job_id: int, run_as: RunAs | None) -> None:
        """The job's exit code from the executor's own record, off the event loop."""
        ended = time.time()
        fut = self.pool.submit(self.executor.exit_status, job_id, run_as)
        fut.add_done_callback(lambda f: self._call_soon(self._executor_said, job_id, ended, f))

    def _executor_said(self, job_id: int, ended: float, fut: Future[int | None]) -> None:
        try:
            code = fut.result()
        except Exception:  # no answer: the code stays unknown
            log.exception("cannot ask the executor how job %s ended", job_id)
            code = None
        self._exits.append(Exited(job_id, code, ended))
        self._flush_soon()

    def _flush_soon(self) -> None:
        """Process-start and -end events that arrive together share one transaction."""
        if not self._flush_pending:
            self._flush_pending = True
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        launches, self._launches = self._launches, []
        exits, self._exits = self._exits, []
        now = time.time()
        started, watches = [], []
        for job_id, launched in launches:
            if isinstance(launched, LaunchError) and launched.retry:
                self._defer(job_id, launched.message)
                continue
            if isinstance(launched, LaunchError) or not self._plausible(job_id, launched):
                message = (
                    launched.message
                    if isinstance(launched, LaunchError)
                    else f"tmux reported pid {launched.pid}, not a process of the job's user"
                )
                log.error("%s", message)
                self.engine.launch_failed(job_id, message, now)
                continue
            self._recheck.discard(job_id)
            self._short.succeeded()
            began = pid_time(self.paths.run_dir / str(job_id))
            pid_start = None if launched.ended else proc.start_time(launched.pid)
            started.append(Started(job_id, launched.pid, pid_start, min(began or now, now)))
            watches.append((job_id, launched.pid, launched.child, launched.ended))
        if started:
            try:
                self.engine.jobs_started(started, now)
            except GflowError as exc:  # recorded when they end, or by recovery after a restart
                log.error("could not record job starts: %s", exc.message)
        for job_id, pid, child, ended in watches:
            if ended:
                self._exited(job_id, pid, None, child)
            else:
                self._watch(job_id, pid, child)
        if exits:
            self.gpus.recheck_foreign()
            try:
                self.engine.jobs_exited(exits, now)
            except GflowError as exc:  # keep the ends: they are recorded once a write works
                log.error("could not record job ends: %s; retrying", exc.message)
                self._exits = exits + self._exits
                self._retry(self._flush_soon)
            else:
                for exited in exits:
                    self._drop_cgroup(exited.job_id)
        self.drain()
        self._pump()
        if not self._launching():  # sends that waited for the launches go now
            self.deliveries.dispatch()

    def _plausible(self, job_id: int, launched: Launched) -> bool:
        """A pid from a tmux server the job's user controls must be that user's process
        before the root daemon ever signals it."""
        job = self.engine.jobs.get(job_id)
        run_as = self.engine.known_identity(job.uid) if job else None
        if launched.child or run_as is None:
            return True
        if run_as is False:
            return False
        return proc.owner(launched.pid) in (run_as.uid, None)

    def _watch(self, job_id: int, pid: int, child: bool) -> None:
        try:
            pidfd = proc.open_pidfd(pid)
        except OSError:  # out of descriptors: the job is watched as soon as some are free
            self._unwatched.append((job_id, pid, child))
            self._short.failed()
            return
        self._watch_fd(job_id, pid, pidfd, child)

    def _defer(self, job_id: int, why: str) -> None:
        """Launch ``job_id`` again later: the system is short of something that comes back."""
        if job_id not in self._recheck:
            log.warning("job %s not started yet (%s); trying again shortly", job_id, why)
        self._recheck.add(job_id)
        self._deferred.append(job_id)
        self._short.failed()

    def _retry_short(self) -> None:
        """Try again what the system was short of descriptors or processes for."""
        launches, self._deferred = self._deferred, []
        watches, self._unwatched = self._unwatched, []
        ends, self._unsettled = self._unsettled, []
        self._queued_launches.extendleft(reversed(launches))
        for job_id, pid, child in watches:
            self._watch(job_id, pid, child)
        for job_id, pid, code in ends:
            self._settle(job_id, pid, code)
        self._pump()

    def _watch_fd(self, job_id: int, pid: int, pidfd: int | None, child: bool) -> None:
        assert self.loop is not None
        if pidfd is None:
            self._exited(job_id, pid, None, child)
        else:
            self.loop.add_reader(pidfd, self._exited, job_id, pid, pidfd, child)

    def _drop_cgroup(self, job_id: int, tries: int = 20) -> None:
        """Remove an ended job's memory cgroup once its last processes have left it."""
        cgroups = self.engine.cgroups
        if cgroups is None or cgroups.remove(job_id) or tries <= 0:
            return
        assert self.loop is not None
        self.loop.call_later(0.5, self._drop_cgroup, job_id, tries - 1)

    def _rearm(self) -> None:
        assert self.loop is not None
        when = self.engine.next_wake()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, when
        if when is not None:
            self._timer = self.loop.call_later(max(0.0, when - time.time()) + 0.001, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        try:
            self.engine.tick(time.time())
        except GflowError as exc:  # the timers are kept: try again shortly
            log.error("timers not handled: %s; retrying", exc.message)
            self._retry(self._fire)
            return
        self.drain()

    def _retry(self, callback: Any) -> None:
        """Run ``callback`` again in a second (the database refused a write just now)."""
        assert self.loop is not None
        self.loop.call_later(RETRY_DELAY, callback)

    async def wait_for(
        self, ids: list[int], timeout: float, *, first: bool = False, submitter: int | None = None
    ) -> None:
        """Until every job of ``ids`` has ended (``first``: any one of them, or, given a
        ``submitter``, that user's next submission), or ``timeout``."""
        assert self.loop is not None
        futs = []
        for job_id in ids:
            fut: asyncio.Future[None] = self.loop.create_future()
            self.waiters.setdefault(job_id, []).append(fut)
            futs.append(fut)
        submitted: asyncio.Future[None] = self.loop.create_future()
        if submitter is not None:
            self.submit_waiters.setdefault(submitter, []).append(submitted)
        try:
            if first:
                wake = [*futs, submitted]
                await asyncio.wait(wake, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*futs), timeout)
        finally:
            for job_id, fut in zip(ids, futs, strict=True):
                waiting = self.waiters.get(job_id, [])
                if fut in waiting:
                    waiting.remove(fut)
                if not waiting:
                    self.waiters.pop(job_id, None)
            if submitter is not None:
                others = self.submit_waiters.get(submitter, [])
                if submitted in others:
                    others.remove(submitted)
                if not others:
                    self.submit_waiters.pop(submitter, None)

    def submitted(self, uid: int) -> None:
        """Answer the waits that asked to hear of this user's next submission."""
        for fut in self.submit_waiters.pop(uid, []):
            if not fut.done():
                fut.set_result(None)

    def _wake_waiters(self) -> None:
        """Answer every ``gjob wait`` now (it asks again), so stopping never hangs on one."""
        for futs in [*self.waiters.values(), *self.submit_waiters.values()]:
            for fut in futs:
                if not fut.done():
                    fut.set_result(None)
        self.waiters.clear()
        self.submit_waiters.clear()

    # ------------------------------------------------------------ periodic work

    async def _poll_gpus(self) -> None:
        """Look for foreign GPU processes every ``gpu_poll_interval`` seconds, and only then.

        Nothing of gflow's own waits for this: a job's end frees its GPUs at once.
        """
        assert self.loop is not None
        while True:
            await asyncio.sleep(max(self.config.gpu_poll_interval, MIN_POLL))
            self.gpus.polls += 1
            snapshot = await self.loop.run_in_executor(self.pool, self.gpus.discover)
            try:
                self.gpus.refresh(snapshot)
            except Exception:  # the poll must survive a failed write or a bad snapshot
                log.exception("GPU refresh failed")
            self.drain()

    async def prune_history(self) -> None:
        """Forget jobs that ended more than ``history_days`` ago, now and every hour.

        Like the GPU poll, it outlives a failed write: the database refusing one pruning
        (busy, disk full) is logged, and it is tried again a little later.
        """
        while True:
            days = self.config.history_days or 0
            try:
                removed = commands.prune(self.engine, time.time() - days * 86400)
            except Exception:  # the pruning must survive a failed write
                log.exception("pruning the history failed; trying again in %g s", RETRY_DELAY)
                await asyncio.sleep(RETRY_DELAY)
                continue
            if removed:
                log.info("pruned %d finished jobs older than %s days", removed, days)
            await asyncio.sleep(PRUNE_EVERY)

    # ------------------------------------------------------------ for the API

    def reload(self) -> list[str]:
        """Re-read the configuration; what only a restart can change is reported, not applied."""
        fresh = load_daemon_config(self.paths)
        self.configure_notifications(notifyconfig.load(self.paths.config_file))
        ignored = [k for k in RESTART_ONLY if getattr(fresh, k) != getattr(self.config, k)]
        self.config = dataclasses.replace(
            fresh, **{k: getattr(self.config, k) for k in RESTART_ONLY}
        )
        self.engine.config = self.config
        self.engine.memory_mb = memory_limit(self.config)
        self.gpus.apply_config(self.config)
        self.listener.configure(
            per_user=self.config.max_connections_per_user,
            total=self.config.max_connections or connection_budget(),
        )
        logs.apply(self.config)
        self.gpus.refresh()
        self.drain()
        log.info("configuration reloaded%s", f" (restart needed for: {ignored})" if ignored else "")
        return ignored

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        assert self.loop is not None
        return await self.loop.run_in_executor(self.pool, fn, *args)

    def tmux_socket(self, uid: int) -> str | None:
        if not isinstance(self.executor, TmuxExecutor):
            return None
        run_as = self.engine.known_identity(uid)
        return None if run_as is False else str(self.executor.socket_for(run_as))


def _unix_socket(path: Path, mode: int) -> socket.socket:
    """The listening socket at ``path``, created with ``mode`` (no moment with a wider one)."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    sock.listen(socket.SOMAXCONN)
    return sock


def _ensure_token(path: Path) -> None:
    """The secret a per-user daemon wants from TCP clients, readable by its user only."""
    if path.exists():
        return
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


# ------------------------------------------------------------ entry point


class AlreadyRunning(GflowError):
    pass


def acquire_lock(paths: Paths) -> int:
    """Hold the daemon lock for the life of the process; a second daemon is refused."""
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode().strip() or "?"
        os.close(fd)
        raise AlreadyRunning(f"gflowd is already running (pid {pid})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def prepare_dirs(paths: Paths, system: bool) -> None:
    """Private to the user, or (system daemon) readable by all but writable by root only."""
    for directory, mode in modes.dir_modes(paths, system).items():
        directory.mkdir(parents=True, exist_ok=True, mode=mode)
        if system:
            os.chown(directory, 0, 0)
        directory.chmod(mode)


def prepare_shared(root: Path, system: bool) -> Path:
    """The run and log directories of Slurm jobs on the directory the nodes share."""
    try:
        for name, mode in (
            ("run", 0o711 if system else 0o700),
            ("logs", 0o755 if system else 0o700),
        ):
            (root / name).mkdir(parents=True, exist_ok=True, mode=mode)
    except OSError as exc:
        raise GflowError(f"cannot use slurm.shared_dir {root}: {exc.strerror}") from None
    return root


def check_modes(paths: Paths, system: bool) -> None:
    """Give the daemon's files back the modes they must have; refuse to start on a file
    that is not the daemon's own (another owner, a symbolic link)."""
    for problem in modes.audit(paths, system):
        if not problem.fixable:
            raise GflowError(problem.message)
        modes.repair(problem)
        log.warning("%s: changed to %04o", problem.message, problem.want)


def harden() -> Inherited:
    """Make every file the daemon creates private (umask 077) and allow it as many open
    files as the hard limit does; return what jobs get instead."""
    umask = os.umask(0o077)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = _nr_open()
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            return Inherited(umask=umask)
        return Inherited(umask=umask, nofile=soft)
    return Inherited(umask=umask)


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 1 << 20


def run(
    paths: Paths, config: DaemonConfig, *, ready: int | None = None, foreground: bool = True
) -> int:
    """Run the daemon until it is stopped; the return value is the process exit status."""
    pipe = ReadyPipe(ready)
    inherited = harden()
    try:
        prepare_dirs(paths, config.system)
        lock = acquire_lock(paths)
    except (GflowError, OSError) as exc:
        pipe.fail(exc)
        raise
    logs.setup(paths, config, foreground)
    try:
        check_modes(paths, config.system)
        runtime = Runtime(paths, config, inherited)
        asyncio.run(runtime.serve(pipe))
    except (GflowError, OSError) as exc:
        log.error("gflowd stopped on an error: %s", exc)
        pipe.fail(exc)
        raise
    except Exception as exc:  # the daemon's boundary: say why, then show the traceback
        log.exception("gflowd stopped on an unexpected error")
        pipe.fail(exc)
        raise
    finally:
        os.close(lock)
    return 0


class ReadyPipe:
    """The pipe on which a detached daemon tells ``gflowd up`` it serves (or why not)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, line: str) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, f"{line}\n".encode())
            os.close(self.fd)
        self.fd = None

    def fail(self, exc: BaseException) -> None:
        self.send("error: " + (exc.message if isinstance(exc, GflowError) else str(exc)))
