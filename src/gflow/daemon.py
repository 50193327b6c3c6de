"""gflowd's runtime: the asyncio loop around the engine.

It performs the engine's actions — launches in a small thread pool so request
handling never waits on tmux, signals, process watching with pidfds (an exit wakes
the loop at once; nothing polls), one timer for the engine's earliest deadline —
and serves the API. :func:`run` is the whole daemon; the console script only parses
arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import hmac
import logging
import os
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from gflow import __version__, proc
from gflow.api import Api
from gflow.cgroup import detect as detect_cgroups
from gflow.config import DaemonConfig, Paths, load_daemon_config
from gflow.engine import Caller, CloseSession, Ended, Engine, Launch, Signal, Watch
from gflow.errors import Forbidden, GflowError, InvalidInput, Refused
from gflow.executors import (
    Launched,
    LaunchError,
    TmuxExecutor,
    make_executor,
    read_pid,
    read_result,
)
from gflow.gpu import GpuBackend, GpuInfo, select_backend
from gflow.identity import run_as
from gflow.model import State
from gflow.parse import parse_index_set
from gflow.recovery import recover
from gflow.scheduler import GpuSlot
from gflow.store import open_store

log = logging.getLogger("gflow.daemon")


class Runtime:
    def __init__(self, paths: Paths, config: DaemonConfig) -> None:
        self.paths = paths
        self.config = config
        self.system = config.system
        self.uid = os.getuid()
        self.started = time.time()
        self.store = open_store(paths.db)
        self.executor = make_executor(config.executor, paths.runtime_dir)
        self.engine = Engine(self.store, paths, config, executor_name=self.executor.name)
        self.engine.memory_mb = memory_limit(config)
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="gflow-launch")
        fake = config.fake_gpus or None
        self.gpu_backend: GpuBackend | None = select_backend(fake, paths.fake_procs_file)
        self.gpu_snapshot: list[GpuInfo] = []
        self.gpu_polls = 0
        self.waiters: dict[int, list[asyncio.Future[None]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopping = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle

    async def serve(self, ready: ReadyPipe) -> None:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stop)
        self._apply_gpu_config()
        self.refresh_gpus(self._discover())
        self.engine.cgroups = detect_cgroups()
        if self.system:
            self.engine.identity = functools.lru_cache(maxsize=256)(run_as)
        recover(self.engine, time.time())
        self.refresh_gpus(self.gpu_snapshot)  # now that re-adopted jobs' processes are known
        if self.engine.cgroups is not None:
            self.engine.cgroups.prune({j.id for j in self.engine.jobs.values()})
        self.drain()
        runner = web.AppRunner(Api(self).app(), access_log=None, handle_signals=False)
        await runner.setup()
        await self._listen(runner)
        if self.gpu_backend is not None:
            self._spawn(self._poll_gpus())
        if self.config.history_days:
            self._spawn(self._prune_history())
        log.info(
            "gflowd %s serving on %s (executor %s)",
            __version__,
            self.paths.socket,
            self.executor.name,
        )
        ready.send("ok")
        await self._stopping.wait()
        log.info("gflowd stopping; running jobs keep running")
        await runner.cleanup()
        self.paths.socket.unlink(missing_ok=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    async def _listen(self, runner: web.AppRunner) -> None:
        sock = self.paths.socket
        sock.unlink(missing_ok=True)
        old = os.umask(0o111 if self.system else 0o177)
        try:
            await web.UnixSite(runner, str(sock)).start()
        finally:
            os.umask(old)
        if self.config.tcp:
            if not self.system:
                _ensure_token(self.paths.token_file)
            await web.TCPSite(runner, self.config.host, self.config.port).start()

    def stop(self) -> None:
        self._stopping.set()

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

    def _do(self, action: object) -> None:
        if isinstance(action, Launch):
            fut = self.pool.submit(self.executor.launch, action.spec)
            job_id = action.job_id
            fut.add_done_callback(lambda f: self._call_soon(self._launched, job_id, f))
        elif isinstance(action, Signal):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(action.pid, action.signum)
        elif isinstance(action, Watch):
            self._watch(action.job_id, action.pid, child=False)
        elif isinstance(action, CloseSession):
            self.pool.submit(self.executor.close_session, action.job_id, action.run_as)
        elif isinstance(action, Ended):
            for waiter in self.waiters.pop(action.job_id, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _call_soon(self, fn: Any, *args: Any) -> None:
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    def _launched(self, job_id: int, fut: Future[Launched]) -> None:
        now = time.time()
        try:
            launched = fut.result()
        except LaunchError as exc:
            log.error("%s", exc.message)
            self.engine.launch_failed(job_id, exc.message, now)
        except Exception as exc:
            log.exception("launch of job %s failed", job_id)
            self.engine.launch_failed(job_id, f"{type(exc).__name__}: {exc}", now)
        else:
            pidfd = proc.open_pidfd(launched.pid)
            started = _mtime(self.paths.run_dir / str(job_id) / "pid")
            self.engine.job_started(
                job_id,
                launched.pid,
                proc.start_time(launched.pid),
                now,
                started=min(started or now, now),
            )
            self._watch_fd(job_id, launched.pid, pidfd, launched.child)
        self.drain()

    def _watch(self, job_id: int, pid: int, child: bool) -> None:
        self._watch_fd(job_id, pid, proc.open_pidfd(pid), child)

    def _watch_fd(self, job_id: int, pid: int, pidfd: int | None, child: bool) -> None:
        assert self.loop is not None
        if pidfd is None:
            self._exited(job_id, pid, None, child)
        else:
            self.loop.add_reader(pidfd, self._exited, job_id, pid, pidfd, child)

    def _exited(self, job_id: int, pid: int, pidfd: int | None, child: bool) -> None:
        assert self.loop is not None
        if pidfd is not None:
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # leftovers of an ended job go with it, as in Slurm
        code = proc.reap(pid) if child else None
        result = read_result(self.paths.run_dir / str(job_id))
        now = time.time()
        self._recheck_foreign()
        if result is None:
            self.engine.job_exited(job_id, code, now)
        else:
            self.engine.job_exited(job_id, result[0], now, end_time=min(result[1], now))
        self._drop_cgroup(job_id)
        self.drain()

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
        self.engine.tick(time.time())
        self.drain()

    async def wait_for(self, ids: list[int], timeout: float) -> None:
        assert self.loop is not None
        futs = []
        for job_id in ids:
            fut: asyncio.Future[None] = self.loop.create_future()
            self.waiters.setdefault(job_id, []).append(fut)
            futs.append(fut)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*futs), timeout)

    # ------------------------------------------------------------ GPUs

    def _apply_gpu_config(self) -> None:
        """A ``gpus`` setting given in the configuration, environment or ``gflowd up --gpus``
        replaces the stored restriction (``all`` lifts it); left unset, the stored one
        (from ``gctl set-gpus``) stays."""
        if self.config.gpus is None:
            return
        allowed = parse_index_set(self.config.gpus, "gpus")
        with self.store.tx():
            self.store.set_setting("allowed_gpus", allowed)

    def _discover(self) -> list[GpuInfo]:
        if self.gpu_backend is None:
            return []
        try:
            return self.gpu_backend.discover()
        except GflowError as exc:
            log.error("GPU discovery failed: %s", exc.message)
        except Exception:
            log.exception("GPU discovery failed")
        return self.gpu_snapshot

    def refresh_gpus(self, snapshot: list[GpuInfo]) -> None:
        """Take a new GPU snapshot: which cards exist, may be used, and hold foreign processes."""
        self.gpu_snapshot = snapshot
        self.engine.set_gpus(self._slots(), time.time())

    def _slots(self) -> tuple[GpuSlot, ...]:
        allowed = self.store.setting("allowed_gpus")
        ignored = {(int(g), int(p)) for g, p in self.store.setting("ignored_gpu_procs") or []}
        ours = self._our_pids()
        slots = []
        for gpu in self.gpu_snapshot:
            foreign = [
                p
                for p in gpu.processes
                if (gpu.index, p.pid) not in ignored and _is_foreign(p.pid, ours)
            ]
            slots.append(
                GpuSlot(
                    gpu.index,
                    gpu.memory_total_mib,
                    sum(p.used_mib for p in foreign),
                    tuple(p.pid for p in foreign),
                    allowed is None or gpu.index in allowed,
                )
            )
        return tuple(slots)

    def _our_pids(self) -> set[int]:
        """The main pids of gflow's jobs, including those still being launched."""
        ours = {j.pid for j in self.engine.jobs.values() if j.pid}
        for job_id in self.engine.launching:
            pid = read_pid(self.paths.run_dir / str(job_id))
            if pid is not None:
                ours.add(pid)
        return ours

    def _recheck_foreign(self) -> None:
        """Forget foreign processes of the last snapshot that have ended since.

        A job's end frees its GPUs at once; this makes sure no process counted as foreign
        by the last poll (for instance one of that very job's, seen while it started)
        keeps its card blocked until the next poll.
        """
        if any(s.foreign_pids for s in self.engine.gpu_slots):
            self.engine.gpu_slots = self._slots()

    def _drop_cgroup(self, job_id: int, tries: int = 20) -> None:
        """Remove an ended job's memory cgroup once its last processes have left it."""
        cgroups = self.engine.cgroups
        if cgroups is None or cgroups.remove(job_id) or tries <= 0:
            return
        assert self.loop is not None
        self.loop.call_later(0.5, self._drop_cgroup, job_id, tries - 1)

    async def _poll_gpus(self) -> None:
        """Look for foreign GPU processes every ``gpu_poll_interval`` seconds, and only then.

        Nothing of gflow's own waits for this: a job's end frees its GPUs at once.
        """
        assert self.loop is not None
        while True:
            await asyncio.sleep(max(self.config.gpu_poll_interval, MIN_GPU_POLL))
            self.gpu_polls += 1
            snapshot = await self.loop.run_in_executor(self.pool, self._discover)
            try:
                self.refresh_gpus(snapshot)
            except Exception:  # the poll must survive a failed write or a bad snapshot
                log.exception("GPU refresh failed")
            self.drain()

    async def _prune_history(self) -> None:
        while True:
            days = self.config.history_days or 0
            removed = self.store.prune(time.time() - days * 86400)
            if removed:
                log.info("pruned %d finished jobs older than %s days", removed, days)
            await asyncio.sleep(3600)

    # ------------------------------------------------------------ views

    def status(self) -> dict[str, Any]:
        slots = self.engine.gpu_slots
        busy = {g for j in self.engine.holding() for g in j.gpu_ids}
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime": time.time() - self.started,
            "executor": self.executor.name,
            "database": str(self.paths.db),
            "socket": str(self.paths.socket),
            "system": self.system,
            "gpus_total": len(slots),
            "gpus_available": sum(
                1 for s in slots if s.allowed and not s.unmanaged and s.index not in busy
            ),
            "gpu_backend": self.gpu_backend.name if self.gpu_backend else None,
            "gpu_polls": self.gpu_polls,
            "jobs": {s.value: n for s, n in _count(self.engine).items()},
        }

    def info(self) -> dict[str, Any]:
        holders: dict[int, list[dict[str, Any]]] = {}
        for job in self.engine.holding():
            for g in job.gpu_ids:
                holders.setdefault(g, []).append(
                    {
                        "id": job.id,
                        "name": job.name,
                        "shared": job.shared,
                        "gpu_memory_mb": job.gpu_memory_mb,
                    }
                )
        by_index = {g.index: g for g in self.gpu_snapshot}
        gpus = []
        for slot in self.engine.gpu_slots:
            snap = by_index.get(slot.index)
            gpus.append(
                {
                    "index": slot.index,
                    "name": snap.name if snap else "?",
                    "uuid": snap.uuid if snap else "",
                    "memory_total_mib": slot.total_mib,
                    "memory_used_mib": snap.memory_used_mib if snap else 0,
                    "allowed": slot.allowed,
                    "foreign_pids": list(slot.foreign_pids),
                    "foreign_mib": slot.foreign_mib,
                    "jobs": holders.get(slot.index, []),
                }
            )
        return {
            "gpus": gpus,
            "status": self.status(),
            "memory_mb": self.engine.memory_mb,
            "executor": self.executor.name,
        }

    def stats(self, uids: tuple[int, ...], since: float | None) -> dict[str, Any]:
        from gflow.stats import summarize

        summary = summarize(self.store.stats_rows(uids, since), time.time())
        summary["since"] = since
        return summary

    # ------------------------------------------------------------ admin verbs

    async def admin(self, verb: str, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
        now = time.time()
        if verb == "show-gpus":
            return self.info()
        if verb == "close-sessions":
            return await self._close_sessions(data, caller)
        if self.system and not caller.admin and verb != "set-limit":
            raise Forbidden(f"gctl {verb} is for administrators of the system gflowd")
        if verb == "reload":
            return self.reload()
        if verb == "set-gpus":
            return self._set_gpus(data)
        if verb == "gpu-process":
            return self._gpu_process(data)
        if verb == "set-limit":
            return self._set_limit(data, caller, now)
        if verb == "prune":
            days = data.get("older_than_days", self.config.history_days)
            if not isinstance(days, (int, float)) or isinstance(days, bool) or days < 0:
                raise InvalidInput("older_than_days", repr(days), "a number of days >= 0")
            return {"removed": self.store.prune(now - days * 86400)}
        raise web.HTTPNotFound(reason=f"unknown admin action {verb}")

    def reload(self) -> dict[str, Any]:
        """Re-read the configuration; what only a restart can change is reported, not applied."""
        fresh = load_daemon_config(self.paths)
        fixed = ("executor", "tcp", "host", "port", "system", "fake_gpus")
        ignored = [k for k in fixed if getattr(fresh, k) != getattr(self.config, k)]
        kept = {k: getattr(self.config, k) for k in fixed}
        self.config = dataclasses.replace(fresh, **kept)
        self.engine.config = self.config
        self.engine.memory_mb = memory_limit(self.config)
        self._apply_gpu_config()
        self.refresh_gpus(self.gpu_snapshot)
        self.drain()
        log.info("configuration reloaded%s", f" (restart needed for: {ignored})" if ignored else "")
        return {"reloaded": True, "needs_restart": ignored}

    def _set_gpus(self, data: dict[str, Any]) -> dict[str, Any]:
        """Restrict the GPUs gflow hands out (stored: it outlives a restart)."""
        spec = data.get("gpus")
        if not isinstance(spec, str):
            raise InvalidInput("gpus", repr(spec), "all, 0,2 or 0-3")
        allowed = parse_index_set(spec, "gpus")
        known = sorted(s.index for s in self.engine.gpu_slots)
        bad = sorted(set(allowed or []) - set(known))
        if bad:
            have = ",".join(map(str, known)) if known else "none"
            raise Refused(f"no GPU {','.join(map(str, bad))} on this machine (GPUs: {have})")
        with self.store.tx():
            self.store.set_setting("allowed_gpus", allowed)
        self.refresh_gpus(self.gpu_snapshot)
        return {"allowed": allowed}

    def _gpu_process(self, data: dict[str, Any]) -> dict[str, Any]:
        """``gctl gpu-process``: foreign processes to ignore when placing jobs (stored)."""
        action = data.get("action")
        ignored = [list(x) for x in self.store.setting("ignored_gpu_procs") or []]
        if action in ("ignore", "unignore"):
            gpu, pid = data.get("gpu"), data.get("pid")
            if not isinstance(gpu, int) or not isinstance(pid, int):
                raise InvalidInput("gpu/pid", f"{gpu}/{pid}", "whole numbers")
            if action == "ignore" and gpu not in {s.index for s in self.engine.gpu_slots}:
                raise Refused(f"no GPU {gpu} on this machine")
            ignored = [x for x in ignored if x != [gpu, pid]]
            if action == "ignore":
                ignored.append([gpu, pid])
            with self.store.tx():
                self.store.set_setting("ignored_gpu_procs", ignored or None)
            self.refresh_gpus(self.gpu_snapshot)
        elif action != "list":
            raise InvalidInput("action", str(action), "ignore, unignore or list")
        return {"ignored": ignored}

    def _set_limit(self, data: dict[str, Any], caller: Caller, now: float) -> dict[str, Any]:
        job_id, limit = data.get("job"), data.get("limit")
        if not isinstance(job_id, int) or not isinstance(limit, int) or limit < 0:
            raise InvalidInput("set-limit", f"{job_id} {limit}", "a job or group id and N >= 0")
        job = self.engine.require(job_id)
        self.engine.check_owner(job, caller)
        if job.group_id is None:
            raise InvalidInput("job", str(job_id), "a job that belongs to an array or sweep")
        with self.store.tx():
            self.store.set_group_limit(job.group_id, limit or None)
        if limit:
            self.engine.group_limits[job.group_id] = limit
        else:
            self.engine.group_limits.pop(job.group_id, None)
        self.engine.schedule(now)
        members = self.store.group_members(job.group_id)
        return {"group": job.group_id, "limit": limit or None, "jobs": len(members)}

    async def _close_sessions(self, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
        if not isinstance(self.executor, TmuxExecutor):
            return {"closed": [], "note": "the process executor has no sessions"}
        ids = data.get("ids")
        states = data.get("states") or []
        assert self.loop is not None
        alive = await self.loop.run_in_executor(self.pool, self.executor.sessions, None)
        wanted = []
        for name in alive:
            job = self.engine.job(int(name.split("-", 1)[1])) if name[6:].isdigit() else None
            if job is None or job.state is State.RUNNING or job.uid != caller.uid:
                continue
            if ids and job.id not in ids:
                continue
            if states and job.state.value not in states:
                continue
            wanted.append(job.id)
        for job_id in wanted:
            await self.loop.run_in_executor(self.pool, self.executor.close_session, job_id, None)
        return {"closed": wanted}

    def tmux_socket(self, uid: int) -> str | None:
        if not isinstance(self.executor, TmuxExecutor):
            return None
        return str(self.executor.socket_for(self.engine.identity(uid)))

    def tcp_identity(self, header: str) -> tuple[int, int]:
        token_path = self.paths.token_file
        try:
            token = token_path.read_text().strip()
        except OSError:
            token = ""
        given = header.removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(token, given):
            raise Forbidden(f"TCP clients must send the token from {token_path}")
        return self.uid, os.getgid()


def _ensure_token(path: Path) -> None:
    """The secret a per-user daemon wants from TCP clients, readable by its user only."""
    if path.exists():
        return
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


MIN_GPU_POLL = 0.1


def memory_limit(config: DaemonConfig) -> int | None:
    """Host memory (MB) gflow hands out to ``--memory`` jobs: configured, else all RAM."""
    return config.memory_mb or proc.total_memory_mb()


def _stat_fields(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return []
    return data[data.rfind(")") + 2 :].split()


def _is_foreign(pid: int, ours: set[int]) -> bool:
    """True if ``pid`` is alive and not a process of one of gflow's jobs.

    A job's processes are in the session its main process leads, or descend from it
    (a process that started its own session is still found by its parents). A process
    that is gone, a zombie, or invisible here counts as not foreign: it holds nothing.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields[:1] == ["Z"]:
        return False
    with contextlib.suppress(OSError):
        if os.getsid(pid) in ours:
            return False
    current = pid
    for _ in range(64):
        if current in ours:
            return False
        parent = fields[1] if len(fields) > 1 else ""
        if not parent.isdigit() or int(parent) <= 1:
            break
        current = int(parent)
        fields = _stat_fields(current)
    return True


def _count(engine: Engine) -> dict[State, int]:
    out: dict[State, int] = {}
    for job in engine.jobs.values():
        out[job.state] = out.get(job.state, 0) + 1
    return out


# ------------------------------------------------------------ entry point


class AlreadyRunning(GflowError):
    pass


def acquire_lock(paths: Paths) -> int:
    """Hold the daemon lock for the life of the process; a second daemon is refused."""
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
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
    modes = {
        paths.data_dir: 0o755 if system else 0o700,
        paths.runtime_dir: 0o755 if system else 0o700,
        paths.logs_dir: 0o755 if system else 0o700,
        paths.run_dir: 0o711 if system else 0o700,
    }
    for directory, mode in modes.items():
        directory.mkdir(parents=True, exist_ok=True, mode=mode)
        if system:
            os.chown(directory, 0, 0)
        directory.chmod(mode)


def setup_logging(paths: Paths, level: str, foreground: bool) -> None:
    handlers: list[logging.Handler] = [logging.FileHandler(paths.daemon_log)]
    if foreground and os.isatty(2):
        handlers.append(logging.StreamHandler())
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def run(
    paths: Paths, config: DaemonConfig, *, ready: int | None = None, foreground: bool = True
) -> int:
    """Run the daemon until it is stopped; the return value is the process exit status."""
    pipe = ReadyPipe(ready)
    try:
        prepare_dirs(paths, config.system)
        lock = acquire_lock(paths)
    except (GflowError, OSError) as exc:
        pipe.fail(exc)
        raise
    setup_logging(paths, config.log_level, foreground)
    try:
        runtime = Runtime(paths, config)
        asyncio.run(runtime.serve(pipe))
    except (GflowError, OSError) as exc:
        log.error("gflowd stopped on an error: %s", exc)
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


def socket_path(paths: Paths) -> Path:
    return paths.socket
