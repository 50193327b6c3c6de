"""Starting jobs: a shared wrapper, and two ways to host it (tmux sessions, process groups).

Every job runs through ``wrapper.sh`` with its own run directory
``run/<id>/`` holding ``job.sh`` (the job's environment and command), ``gpus`` (the
GPUs it was given, for a job given some) and,
written by the wrapper, ``pid`` (first thing) and ``result`` (the numeric exit code,
written atomically as the last thing). The daemon never needs the job to call back:
it watches the wrapper's pid and reads ``result``; after a restart it reads the same
files. The log gets only the job's own output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

from gflow import rundir
from gflow.errors import GflowError
from gflow.launchspec import Inherited as Inherited
from gflow.launchspec import LaunchSpec as LaunchSpec
from gflow.launchspec import RunAs as RunAs
from gflow.launchspec import job_script as job_script
from gflow.launchspec import with_environment

EXIT_TITLE = "gflow-exit:"  # the pane title the wrapper sets as it ends (see wrapper.sh)

SHORTAGES = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM, errno.ENOSPC, errno.EDQUOT}
)
PANE_DEAD_WAIT = 5.0
"""Seconds to wait for tmux to mark an ended job's pane dead with its exit status."""


def shortage(exc: BaseException) -> bool:
    """The system is short of file descriptors, processes, memory or disk, for now."""
    return isinstance(exc, OSError) and exc.errno in SHORTAGES


class LaunchError(GflowError):
    """The executor could not start the job's process.

    ``retry``: it failed for want of a resource that comes back (EMFILE, ENOSPC...); the
    job is launched again later rather than given up. The launch may have got as far as
    starting the job (tmux), so the next attempt first looks for it (``recheck``).
    """

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class Launched:
    pid: int
    child: bool
    ended: bool = False
    """The job started and has already ended (found so by a recheck): nothing to watch."""


def wrapper_path() -> Path:
    return Path(str(resources.files("gflow") / "wrapper.sh"))


def wrapper_args(spec: LaunchSpec, mode: str) -> list[str]:
    """The wrapper and its arguments (see wrapper.sh)."""
    args = [str(wrapper_path()), str(spec.run_dir), str(spec.log_path), mode]
    return [*args, "direct"] if spec.direct else args


def write_run_dir(spec: LaunchSpec) -> None:
    """A fresh run directory and the job's log, handed to the job's user last."""
    files = {"job.sh": with_environment(spec.script, spec.env), **rundir.RESERVED}
    if spec.gpu_ids:  # none: no file (a launch burst pays for every file it creates)
        files["gpus"] = ",".join(map(str, spec.gpu_ids))
    if spec.output:  # the paths the job opens for its output and errors
        files["output"] = spec.output + "\n"
    if spec.error and spec.error != spec.output:
        files["error"] = spec.error + "\n"
    if spec.cgroup is not None and spec.memory_mb:
        files["cgroup"] = f"{_make_cgroup(spec)}\n"
    owner = (spec.run_as.uid, spec.run_as.gid) if spec.run_as is not None else None
    users = frozenset({"job.sh", "output", "error", *rundir.RESERVED})
    rundir.create(spec.run_dir, files, owner, user_files=users)
    rundir.open_log(spec.log_path, owner)


def _make_cgroup(spec: LaunchSpec) -> Path:
    """Create the job's memory cgroup; the wrapper joins it (file ``cgroup``)."""
    from gflow.cgroup import create_job_cgroup

    assert spec.cgroup is not None and spec.memory_mb
    try:
        create_job_cgroup(spec.cgroup, spec.memory_mb)
    except OSError as exc:
        raise LaunchError(
            f"cannot create memory cgroup {spec.cgroup} for job {spec.job_id}: {exc.strerror}"
        ) from exc
    return spec.cgroup


def is_wrapper(pid: int, run_dir: Path) -> bool:
    """True if ``pid`` is the live wrapper of this run directory (not a tmux client or
    server that merely mentions it among its arguments)."""
    from gflow import proc

    return proc.args(pid)[1:3] == [str(wrapper_path()), str(run_dir)] and not proc.is_zombie(pid)


def find_wrapper(run_dir: Path) -> int | None:
    """The wrapper of a run directory, looked for among all processes (after a crash)."""
    from gflow import proc

    return next((pid for pid in proc.pids() if is_wrapper(pid, run_dir)), None)


class Executor(Protocol):
    name: str
    batch: int  # how many launches one call of launch_many may take

    def launch(self, spec: LaunchSpec) -> Launched: ...

    def launch_many(self, specs: list[LaunchSpec]) -> list[Launched | LaunchError]: ...

    def reap(self, pid: int) -> int | None: ...

    def exit_status(self, job_id: int, run_as: RunAs | None = None) -> int | None: ...

    def close_session(self, job_id: int, run_as: RunAs | None = None) -> bool: ...


def _ids(run_as: RunAs | None) -> tuple[int | None, int | None, list[int] | None]:
    """The uid, gid and groups to start a process with (None: stay as we are)."""
    if run_as is None:
        return None, None, None
    return run_as.uid, run_as.gid, list(run_as.groups)


def attempt(launch: Callable[[LaunchSpec], Launched], spec: LaunchSpec) -> Launched | LaunchError:
    """One launch, its failure as a value (a batch reports each job's outcome)."""
    try:
        return launch(spec)
    except LaunchError as exc:
        return exc
    except Exception as exc:  # one job's launch must not sink the others of its batch
        return failure(spec, exc)


def failure(spec: LaunchSpec, exc: Exception) -> LaunchError:
    return LaunchError(
        f"cannot start job {spec.job_id}: {type(exc).__name__}: {exc}", retry=shortage(exc)
    )


class ProcessExecutor:
    """Each job is a plain process group (``setsid``); output goes straight to the log."""

    name = "process"
    batch = 1

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def launch_many(self, specs: list[LaunchSpec]) -> list[Launched | LaunchError]:
        return [attempt(self.launch, spec) for spec in specs]

    def launch(self, spec: LaunchSpec) -> Launched:
        write_run_dir(spec)
        argv = ["/bin/bash", *wrapper_args(spec, "file")]
        uid, gid, groups = _ids(spec.run_as)
        try:
            proc = subprocess.Popen(
                argv,
                env={},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                cwd="/",
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        except OSError as exc:
            raise LaunchError(
                f"cannot start job {spec.job_id}: {exc.strerror}", retry=shortage(exc)
            ) from exc
        self._children[proc.pid] = proc  # kept, so only reap() collects its exit status
        return Launched(proc.pid, child=True)

    def reap(self, pid: int) -> int | None:
        """The exit status of an ended wrapper (shell style: 128+N when killed by signal N)."""
        child = self._children.pop(pid, None)
        code = child.poll() if child is not None else None
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def exit_status(self, job_id: int, run_as: RunAs | None = None) -> int | None:
        return None  # only reap() knows, and only while gflowd is the wrapper's parent

    def close_session(self, job_id: int, run_as: RunAs | None = None) -> bool:
        return False


class TmuxExecutor:
    """Each job is a tmux session ``gflow-<id>`` on gflow's own tmux server.

    The server has its own socket (so the user's tmux configuration cannot change how
    jobs start) and keeps finished panes open, so ``gjob attach`` shows the output.
    """

    name = "tmux"
    batch = 16

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.tmux = shutil.which("tmux") or "tmux"

    def socket_for(self, run_as: RunAs | None) -> Path:
        """gflow's tmux socket; a system daemon gives each user a private directory."""
        if run_as is None:
            return self.runtime_dir / "tmux.sock"
        home = self.runtime_dir / "tmux" / str(run_as.uid)
        if not home.is_dir():
            if not home.parent.is_dir():  # every user passes through to their own socket
                home.parent.mkdir(mode=0o711, exist_ok=True)
                home.parent.chmod(0o711)
            home.mkdir(mode=0o700, exist_ok=True)
            os.chown(home, run_as.uid, run_as.gid)
        return home / "sock"

    def _conf(self) -> Path:
        conf = self.runtime_dir / "tmux.conf"
        if not conf.exists():
            conf.write_text("set -g remain-on-exit on\nset -g history-limit 10000\n")
            conf.chmod(0o644)
        return conf

    def base(self, run_as: RunAs | None = None) -> list[str]:
        return [self.tmux, "-S", str(self.socket_for(run_as)), "-f", str(self._conf())]

    def _run(
        self, args: list[str], run_as: RunAs | None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color"}
        if run_as is not None:
            env["HOME"] = run_as.home
        uid, gid, groups = _ids(run_as)
        return subprocess.run(
            self.base(run_as) + args,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
            user=uid,
            group=gid,
            extra_groups=groups,
        )

    @staticmethod
    def _new_session(spec: LaunchSpec) -> list[str]:
        return [
            "new-session",
            "-d",
            "-s",
            f"gflow-{spec.job_id}",
            "-x",
            "200",
            "-y",
            "50",
            "-P",
            "-F",
            "#{pane_pid}",
            "--",
            "/bin/bash",
            *wrapper_args(spec, "tee"),
        ]

    def launch_many(self, specs: list[LaunchSpec]) -> list[Launched | LaunchError]:
        """Several sessions in one tmux command (one client, one round trip to the server).

        Specs must share one ``run_as``. If tmux stops part-way (a stale session of the
        same name), the rest go one by one; a session that does exist is adopted, never
        started twice.
        """
        if len(specs) == 1 or any(s.recheck for s in specs):
            return [attempt(self.launch, spec) for spec in specs]
        out: dict[int, Launched | LaunchError] = {}
        ready: list[LaunchSpec] = []
        for spec in specs:
            try:
                write_run_dir(spec)
            except Exception as exc:  # this job only; nothing of it has started
                out[spec.job_id] = failure(spec, exc)
            else:
                ready.append(spec)
        args = [word for spec in ready for word in (*self._new_session(spec), ";")]
        try:
            done = self._run(args[:-1], specs[0].run_as) if ready else None
            pids = [int(x) for x in done.stdout.split() if x.isdigit()] if done else []
        except (OSError, subprocess.TimeoutExpired) as exc:
            if shortage(exc):  # looked for when they are launched again
                return [out.get(s.job_id) or failure(s, exc) for s in specs]
            pids = []
        for spec, pid in zip(ready, pids, strict=False):
            out[spec.job_id] = Launched(pid, child=False)
        for spec in ready[len(pids) :]:
            out[spec.job_id] = attempt(self._adopt_or_launch, spec)
        return [out[spec.job_id] for spec in specs]

    def _adopt_or_launch(self, spec: LaunchSpec) -> Launched:
        pid = self._pane_pid(spec)
        return Launched(pid, child=False) if pid else self.launch(spec)

    def _started(self, spec: LaunchSpec) -> Launched | None:
        """After a launch that stopped part-way: the job, if it did start (its wrapper
        writes its pid first thing)."""
        pid = self._pane_pid(spec)
        if pid:
            return Launched(pid, child=False)
        pid = rundir.read_pid(spec.run_dir)
        return Launched(pid, child=False, ended=True) if pid else None

    def _pane_pid(self, spec: LaunchSpec) -> int | None:
        """The wrapper's pid if this job's session exists and runs its wrapper already."""
        done = self._run(
            ["display-message", "-p", "-t", f"=gflow-{spec.job_id}:", "#{pane_pid}"], spec.run_as
        )
        text = done.stdout.strip()
        if done.returncode != 0 or not text.isdigit():
            return None
        pid = int(text)
        return pid if is_wrapper(pid, spec.run_dir) else None

    def launch(self, spec: LaunchSpec) -> Launched:
        found = self._started(spec) if spec.recheck else None
        if found is not None:
            return found
        write_run_dir(spec)
        name = f"gflow-{spec.job_id}"
        cmd = self._new_session(spec)
        try:
            done = self._run(cmd, spec.run_as)
            if done.returncode != 0 and "duplicate session" in done.stderr:
                self._run(["kill-session", "-t", f"={name}"], spec.run_as)  # a stale one
                done = self._run(cmd, spec.run_as)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LaunchError(
                f"cannot start tmux for job {spec.job_id}: {exc}", retry=shortage(exc)
            ) from exc
        out = done.stdout.strip()
        if done.returncode != 0 or not out.isdigit():
            err = (done.stderr or done.stdout).strip().splitlines()
            raise LaunchError(f"tmux refused job {spec.job_id}: {err[-1] if err else 'no output'}")
        return Launched(int(out), child=False)

    def reap(self, pid: int) -> int | None:
        return None  # the pane belongs to the tmux server, which collects it

    def exit_status(self, job_id: int, run_as: RunAs | None = None) -> int | None:
        """The exit status tmux kept for the job's dead pane (the wrapper exits with the
        job's code), for when the result file has none; None if the session is gone.

        tmux marks a pane dead when its terminal closes, and knows the exit status only
        once it has collected the process: a moment later (later on a loaded machine), or
        never when the two race. The wrapper's last words to the pane, a title holding
        the code, stand in for it. This asks again for up to ``PANE_DEAD_WAIT`` seconds,
        in a worker thread, only on this fallback path."""
        query = "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{pane_title}"
        deadline = time.monotonic() + PANE_DEAD_WAIT
        while True:
            done = self._run(["display-message", "-p", "-t", f"=gflow-{job_id}:", query], run_as)
            if done.returncode != 0:
                return None
            dead, status, sig, title = [*done.stdout.strip().split("|", 3), "", "", ""][:4]
            if dead == "1":
                if status.isdigit():
                    return int(status)
                if sig.isdigit():
                    return 128 + int(sig)
                code = title.removeprefix(EXIT_TITLE)
                if title.startswith(EXIT_TITLE) and code.isdigit():
                    return int(code)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def close_session(self, job_id: int, run_as: RunAs | None = None) -> bool:
        done = self._run(["kill-session", "-t", f"=gflow-{job_id}"], run_as)
        return done.returncode == 0

    def sessions(self, run_as: RunAs | None = None) -> list[str]:
        done = self._run(["list-sessions", "-F", "#{session_name}"], run_as)
        return [s for s in done.stdout.split() if s.startswith("gflow-")]

    def servers(self) -> list[int | None]:
        """Whose gflow tmux servers may be running: a uid (a system daemon's per-user
        servers), or None for the daemon's own."""
        found: list[int | None] = []
        if (self.runtime_dir / "tmux.sock").exists():
            found.append(None)
        users = self.runtime_dir / "tmux"
        if users.is_dir():
            found += sorted(int(p.name) for p in users.iterdir() if p.name.isdigit())
        return found

    def session_jobs(self, run_as: RunAs | None = None) -> list[int]:
        """The jobs with a session on this server (none if it does not run)."""
        return [int(s[6:]) for s in self.sessions(run_as) if s[6:].isdigit()]

    def stop_server(self, run_as: RunAs | None = None) -> None:
        """Stop this gflow tmux server, with the sessions it keeps for ended jobs (a server
        that does not answer within seconds is left as it is)."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self._run(["kill-server"], run_as, timeout=5)


def make_executor(name: str, runtime_dir: Path) -> Executor:
    """``auto`` picks tmux when it is installed, else plain process groups."""
    if name == "auto":
        name = "tmux" if shutil.which("tmux") else "process"
    if name == "tmux":
        if not shutil.which("tmux"):
            raise GflowError("executor tmux requested but tmux is not installed")
        return TmuxExecutor(runtime_dir)
    return ProcessExecutor()
