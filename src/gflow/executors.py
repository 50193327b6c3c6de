"""Starting jobs: a shared wrapper, and two ways to host it (tmux sessions, process groups).

Every job runs through ``wrapper.sh`` with its own run directory
``run/<id>/`` holding ``env`` (the job's environment), ``job.sh`` (the command) and,
written by the wrapper, ``pid`` (first thing) and ``result`` (the numeric exit code,
written atomically as the last thing). The daemon never needs the job to call back:
it watches the wrapper's pid and reads ``result``; after a restart it reads the same
files. The log gets only the job's own output.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
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

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_NAME = r"GFLOW_[A-Za-z0-9_]*|CUDA_VISIBLE_DEVICES(?![A-Za-z0-9_])"
JOB_VAR = re.compile(rf"(\\)?\$(?:\{{({_JOB_NAME})\}}|({_JOB_NAME}))")
"""The variables gflow sets for a job, as a command word may name them: ``$GFLOW_*`` and
``$CUDA_VISIBLE_DEVICES``, written ``$NAME`` or ``${NAME}`` (``\\$``: a literal dollar)."""
STRIPPED_ENV = frozenset(
    {
        "TMUX",
        "TMUX_PANE",
        "BASHOPTS",
        "BASH_VERSINFO",
        "EUID",
        "PPID",
        "SHELLOPTS",
        "UID",
        "_",
    }
)


SHORTAGES = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM, errno.ENOSPC, errno.EDQUOT}
)
PANE_DEAD_WAIT = 5.0
"""Seconds to wait for tmux to mark an ended job's pane dead and keep its exit status."""


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
class RunAs:
    """The Unix identity a system daemon starts a job with."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    user: str


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    job_id: int
    run_dir: Path
    log_path: Path
    env: dict[str, str]
    script: str
    memory_mb: int | None = None
    run_as: RunAs | None = None
    gpu_ids: tuple[int, ...] = ()
    cgroup: Path | None = None
    """The job's cgroup v2 directory, made with ``memory.max`` before the job starts."""
    recheck: bool = False
    """An earlier launch of this job failed part-way: adopt the job if it did start."""
    output: str | None = None
    """The file the job's output goes to, instead of its log (opened by the job)."""
    error: str | None = None
    """The file its errors go to (None: with its output)."""


@dataclass(frozen=True, slots=True)
class Inherited:
    """What jobs get from the shell that started gflowd, not from the daemon's own
    hardened settings (umask 077 and the raised limit of open files)."""

    umask: int = 0o022
    nofile: int | None = None
    """The soft limit of open files; None: leave the daemon's."""


@dataclass(frozen=True, slots=True)
class Launched:
    pid: int
    child: bool
    ended: bool = False
    """The job started and has already ended (found so by a recheck): nothing to watch."""


def quote_word(word: str) -> str:
    """Quote one command word for bash: it reaches the job exactly as written, except
    gflow's own variables (:data:`JOB_VAR`), filled in when the job runs, and ``\\$``
    before one of them, which keeps that ``$`` literal. Every other ``$`` is left alone
    for the program that reads the word (``awk '{print $NF}'``, ``sh -c 'echo $i'``)."""
    parts: list[str] = []
    at = 0
    for m in JOB_VAR.finditer(word):
        literal = word[at : m.start()]
        if m.group(1):  # \$NAME: the text $NAME
            literal += m.group(0)[1:]
        if literal:
            parts.append(shlex.quote(literal))
        if not m.group(1):
            parts.append(f'"${{{m.group(2) or m.group(3)}}}"')
        at = m.end()
    if at < len(word) or not parts:
        parts.append(shlex.quote(word[at:]))
    return "".join(parts)


_BUILTIN_NAMES = (
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue "
    "declare dirs disown echo enable eval exec exit export false fc fg getopts hash help "
    "history jobs kill let local logout mapfile popd printf pushd pwd read readarray "
    "readonly return set shift shopt source suspend test times trap true type typeset "
    "ulimit umask unalias unset wait"
)
BASH_BUILTINS = frozenset(_BUILTIN_NAMES.split())
"""Commands bash runs itself: a job's command named so is not ``exec``-ed."""

_RUN_SCRIPT = """__gflow_s={path}
if [ -x "$__gflow_s" ]; then exec "$__gflow_s"{args}; fi
__gflow_l=; {{ IFS= read -r __gflow_l < "$__gflow_s"; }} 2>/dev/null
case $__gflow_l in
'#!'*) read -r __gflow_i __gflow_a <<< "${{__gflow_l:2}}"
    __gflow_i=${{__gflow_i%$'\\r'}} __gflow_a=${{__gflow_a%$'\\r'}}
    if [ -n "$__gflow_i" ]; then
        exec "$__gflow_i" ${{__gflow_a:+"$__gflow_a"}} "$__gflow_s"{args}
    fi ;;
esac
exec bash "$__gflow_s"{args}"""


def render_command(words: tuple[str, ...], script: str | None) -> str:
    """The bash lines that run a job's command.

    A single word containing whitespace is shell code, as written (``gbatch "a && b"``).
    Otherwise every word is one argument, and the command replaces the job's shell
    (``exec``), so the job's signals reach it and its exit status is the job's.

    A script runs directly when it is executable; else with the interpreter its ``#!``
    line names (with the one argument that line may give, as the kernel reads it), and
    with bash when it has none. The job's own shell decides, with its user's rights (the
    daemon, maybe root, must not look at a file on the user's behalf).
    """
    if script is not None:
        args = "".join(" " + quote_word(w) for w in words[1:])
        return _RUN_SCRIPT.format(path=quote_word(script), args=args)
    if len(words) == 1 and any(c.isspace() for c in words[0]):
        return words[0]
    line = " ".join(quote_word(w) for w in words)
    return line if words[0] in BASH_BUILTINS else f"exec {line}"


def job_script(
    command: str,
    workdir: str,
    conda_env: str | None,
    memory_mb: int | None,
    *,
    rlimit: bool = True,
    inherited: Inherited = Inherited(),
) -> str:
    """The bash script of one job.

    ``memory_mb`` with ``rlimit`` sets ``ulimit -d`` (RLIMIT_DATA, in KiB): it caps the
    memory a job writes to, while address space merely reserved (CUDA reserves tens of
    GiB) does not count, as it would with RLIMIT_AS. Without ``rlimit`` the limit is the
    job's cgroup's business. The job gets the umask and open-file limit of ``inherited``.
    """
    lines = [
        "#!/bin/bash",
        f"umask {inherited.umask:04o}",
        f"cd -- {shlex.quote(workdir)} || exit 1",
    ]
    if inherited.nofile is not None:
        lines.append(f"ulimit -Sn {inherited.nofile} 2>/dev/null")
    if memory_mb and rlimit:
        lines.append(f"ulimit -d {memory_mb * 1024} 2>/dev/null")
    if conda_env:
        env = shlex.quote(conda_env)
        lines += [
            'if command -v conda >/dev/null 2>&1; then eval "$(conda shell.bash hook)"; fi',
            f"conda activate {env} || {{ echo 'gflow: cannot activate conda env '{env} >&2; "
            "exit 1; }",
        ]
    lines.append(command)
    return "\n".join(lines) + "\n"


def env_file(env: dict[str, str]) -> str:
    lines = []
    for key, value in sorted(env.items()):
        if _NAME.match(key) and key not in STRIPPED_ENV:
            lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def wrapper_path() -> Path:
    return Path(str(resources.files("gflow") / "wrapper.sh"))


def write_run_dir(spec: LaunchSpec) -> None:
    """A fresh run directory and the job's log, handed to the job's user last."""
    files = {"env": env_file(spec.env), "job.sh": spec.script, **rundir.RESERVED}
    files["gpus"] = ",".join(map(str, spec.gpu_ids))
    if spec.output:  # the paths the job opens for its output and errors
        files["output"] = spec.output + "\n"
    if spec.error and spec.error != spec.output:
        files["error"] = spec.error + "\n"
    if spec.cgroup is not None and spec.memory_mb:
        files["cgroup"] = f"{_make_cgroup(spec)}\n"
    owner = (spec.run_as.uid, spec.run_as.gid) if spec.run_as is not None else None
    users = frozenset({"env", "job.sh", "output", "error", *rundir.RESERVED})
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
        argv = ["/bin/bash", str(wrapper_path()), str(spec.run_dir), str(spec.log_path), "file"]
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

    def _run(self, args: list[str], run_as: RunAs | None) -> subprocess.CompletedProcess[str]:
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
            timeout=30,
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
            "/usr/bin/env",
            "-i",
            "/bin/bash",
            str(wrapper_path()),
            str(spec.run_dir),
            str(spec.log_path),
            "tee",
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

        tmux marks a pane dead a moment after its process ends (later on a loaded
        machine), so this asks again for up to ``PANE_DEAD_WAIT`` seconds, in a worker
        thread, only on this fallback path."""
        query = "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}"
        deadline = time.monotonic() + PANE_DEAD_WAIT
        while True:
            done = self._run(["display-message", "-p", "-t", f"=gflow-{job_id}:", query], run_as)
            if done.returncode != 0:
                return None
            dead, status, sig = [*done.stdout.strip().split("|"), "", ""][:3]
            if dead == "1":
                if status.isdigit():
                    return int(status)
                return 128 + int(sig) if sig.isdigit() else None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def close_session(self, job_id: int, run_as: RunAs | None = None) -> bool:
        done = self._run(["kill-session", "-t", f"=gflow-{job_id}"], run_as)
        return done.returncode == 0

    def sessions(self, run_as: RunAs | None = None) -> list[str]:
        done = self._run(["list-sessions", "-F", "#{session_name}"], run_as)
        return [s for s in done.stdout.split() if s.startswith("gflow-")]


def make_executor(name: str, runtime_dir: Path) -> Executor:
    """``auto`` picks tmux when it is installed, else plain process groups."""
    if name == "auto":
        name = "tmux" if shutil.which("tmux") else "process"
    if name == "tmux":
        if not shutil.which("tmux"):
            raise GflowError("executor tmux requested but tmux is not installed")
        return TmuxExecutor(runtime_dir)
    return ProcessExecutor()
