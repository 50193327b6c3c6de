"""What the end-to-end tests share: a real gflowd in a temporary GFLOW_HOME, driven
through the real commands, and the same for a second local user.

Nothing is mocked but the GPUs (``GFLOW_FAKE_GPUS``). Jobs whose length matters wait
for a file the test creates (:meth:`Gflow.gate`), and the tests wait on conditions
(``gjob wait`` or :meth:`Gflow.until`), never on fixed sleeps. The fixtures built on
these are in ``tests/conftest.py`` and ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gflow.client import Client

BIN = Path(sys.executable).parent
TOOLS = ("gflow", "gflowd", "gbatch", "gqueue", "gcancel", "gjob", "ginfo", "gctl", "gstats")
EXECUTORS = ["tmux", "process"] if shutil.which("tmux") else ["process"]
SCREENSHOTS = Path(
    os.environ.get("GFLOW_SCREENSHOTS") or Path(__file__).resolve().parents[1] / "test-artifacts"
)
"""Where the browser tests save a picture of each page (printed at the end of the run):
in the checkout, so runs of other checkouts on the same machine keep theirs."""


class Gflow:
    """One installation under a temporary GFLOW_HOME, and helpers to drive it."""

    def __init__(self, home: Path, executor: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.executor = executor
        self.work = home / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "GFLOW_HOME": str(home),
            "GFLOW_DAEMON__EXECUTOR": executor,
            "GFLOW_DAEMON__KILL_GRACE": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "NO_COLOR": "1",
            **(env or {}),
        }
        if "GFLOW_FAKE_GPUS" not in (env or {}):
            self.env.pop("GFLOW_FAKE_GPUS", None)

    # ------------------------------------------------------------ processes

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 60,
        cwd: Path | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        tool = argv[0]
        exe = str(BIN / tool) if tool in TOOLS else tool
        done = subprocess.run(
            [exe, *argv[1:]],
            env=self.env,
            cwd=cwd or self.work,
            text=True,
            capture_output=True,
            timeout=timeout,
            input=input,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}\nstdout: {done.stdout}\n"
                f"stderr: {done.stderr}"
            )
        return done

    def start(self, *extra: str) -> None:
        self.run("gflowd", "up", *extra)

    def stop(self) -> None:
        self.run("gflowd", "down", check=False)

    def daemon_pid(self) -> int | None:
        try:
            text = (self.home / "gflowd.lock").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def kill9(self) -> None:
        pid = self.daemon_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        self.until(lambda: not alive(pid), what="daemon to die")

    # ------------------------------------------------------------ jobs

    def submit(self, *argv: str, cwd: Path | None = None) -> int:
        out = self.run("gbatch", *argv, cwd=cwd).stdout.strip().splitlines()
        return int(out[-1].split()[3])

    def submit_many(self, *argv: str) -> list[int]:
        """The ids of an array or sweep (gbatch prints ``Submitted batch job 12 (array of
        3 tasks: 12-14)``), or of one job."""
        return submitted_ids(self.run("gbatch", *argv).stdout)

    def gate(self, name: str, code: int = 0) -> str:
        """A shell command that waits for file ``name`` in the work dir, then exits ``code``."""
        path = self.work / name
        return f"while [ ! -e {path} ]; do sleep 0.02; done; exit {code}"

    def open_gate(self, name: str) -> None:
        (self.work / name).touch()

    def wait(self, *ids: int, timeout: float = 60) -> int:
        return self.run(
            "gjob",
            "wait",
            ",".join(map(str, ids)),
            "--timeout",
            str(timeout),
            check=False,
            timeout=timeout + 10,
        ).returncode

    def job(self, job_id: int) -> dict[str, Any]:
        db = self.db()
        try:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        finally:
            db.close()
        assert row is not None, f"job {job_id} not in the database"
        return dict(row)

    def state(self, job_id: int) -> str:
        return str(self.job(job_id)["state"])

    def api(self, timeout: float = 30) -> Client:
        """The real HTTP client, pointed at this installation's socket."""
        from gflow.config import Paths

        return Client(Paths(self.home / "gflow.toml", self.home, self.home), timeout=timeout)

    def raw(
        self, method: str, path: str, body: bytes = b"", timeout: float = 60
    ) -> tuple[int, Any]:
        """One HTTP request with exactly these bytes as its body: (status, decoded JSON)."""
        import socket

        from gflow.client import _read_response

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.home / "gflowd.sock"))
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: gflowd\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            status, data = _read_response(sock)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data

    def show(self, job_id: int) -> dict[str, Any]:
        return dict(self.api().get("/v1/show", ids=str(job_id))["jobs"][0])

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'gflow.db'}?mode=ro", uri=True, timeout=10)

    def log(self, job_id: int) -> str:
        return (self.home / "logs" / f"{job_id}.log").read_text()

    def slurm_ids(self) -> dict[int, str]:
        """The Slurm job id of each job the Slurm executor submitted."""
        db = self.db()
        try:
            rows = db.execute(
                "SELECT id, slurm_id FROM jobs WHERE slurm_id IS NOT NULL"
                " AND slurm_id != 'submitting'"  # the submission is under way
            )
            return {int(i): str(s) for i, s in rows.fetchall()}
        finally:
            db.close()

    def until(self, cond: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = cond()
            except FileNotFoundError:  # a log or result file the job has not written yet
                value = None
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def until_state(self, job_id: int, state: str, timeout: float = 30) -> None:
        self.until(lambda: self.state(job_id) == state, timeout, f"job {job_id} to be {state}")

    def queue_json(self, *argv: str) -> list[dict[str, Any]]:
        out = self.run("gqueue", "-o", "json", *argv).stdout
        return list(json.loads(out)["jobs"])


# ------------------------------------------------------------ dependencies and refusals


def parents(g: Gflow, job_id: int) -> list[int]:
    """The job's parents as stored (main clauses, then the on:N pool)."""
    deps = json.loads(g.job(job_id)["deps"] or "{}")
    ids = [p for clause in deps.get("clauses", []) for p in clause[1]]
    ids += [p for clause in deps.get("on_pool", []) for p in clause[1]]
    return ids


def column(g: Gflow, job_id: int, field: str) -> str:
    """One field of one job as ``gqueue -j N -f FIELD`` prints it (the seed's idiom)."""
    return g.run("gqueue", "-j", str(job_id), "-f", field).stdout.strip().splitlines()[-1].strip()


def snapshot(g: Gflow) -> list[tuple[Any, ...]]:
    db = g.db()
    try:
        return db.execute("SELECT id, state, reason, deps FROM jobs ORDER BY id").fetchall()
    finally:
        db.close()


def refused(g: Gflow, *argv: str, code: int = 1) -> str:
    """Run a command that must be refused: exit ``code``, no traceback, nothing changed.

    Returns the message without the tool's prefix (``Error:`` or ``gbatch: error:``).
    """
    before = snapshot(g)
    done = g.run(*argv, check=False)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2
    assert snapshot(g) == before
    first = lines[0]
    for prefix in ("Error: ", f"{argv[0]}: error: "):
        first = first.removeprefix(prefix)
    return first


def submitted_ids(out: str) -> list[int]:
    """The job ids gbatch's ``Submitted batch job ...`` lines name."""
    ids: list[int] = []
    for line in out.splitlines():
        if line.startswith("Submitted batch job"):
            words = line.split()
            if words[4] in ("(array", "(sweep"):  # (array of N tasks: FIRST-LAST)
                first, last = words[-1].rstrip(")").split("-")
                ids.extend(range(int(first), int(last) + 1))
            else:
                ids.append(int(words[3]))
    return ids


def fake_conda(g: Gflow, *envs: str) -> Path:
    """A stand-in for conda, first on the PATH of ``g``'s commands and so of its jobs: a
    real program that lists base and ``envs`` (``conda env list --json``), and whose shell
    hook's ``conda activate NAME`` sets ``CONDA_DEFAULT_ENV`` as conda's does."""
    root = g.home / "conda"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    listed = json.dumps({"envs": [str(root), *(str(root / "envs" / e) for e in envs)]})
    hook = 'conda() { if [ "$1" = activate ]; then export CONDA_DEFAULT_ENV="$2"; fi; }'
    exe = root / "bin" / "conda"
    exe.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"env) echo {shlex.quote(listed)} ;;\n"
        f"shell.bash) echo {shlex.quote(hook)} ;;\n"
        "*) exit 2 ;;\n"
        "esac\n"
    )
    exe.chmod(0o755)
    g.env["PATH"] = f"{root / 'bin'}{os.pathsep}{g.env['PATH']}"
    return exe


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def short_home() -> Path:
    """A short temp dir: Unix socket paths must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix="gf", dir="/tmp"))


def teardown(g: Gflow) -> None:
    """Stop the daemon, kill what its jobs left running, remove the installation."""
    g.stop()
    kill_running_jobs(g)
    sock = g.home / "tmux.sock"
    if sock.exists() and shutil.which("tmux"):
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True, check=False)
    shutil.rmtree(g.home, ignore_errors=True)


def kill_running_jobs(g: Gflow) -> None:
    """Jobs outlive gflowd by design; a test must not leave its jobs behind."""
    try:
        db = g.db()
        try:
            pids = [r[0] for r in db.execute("SELECT pid FROM jobs WHERE state='Running'")]
        finally:
            db.close()
    except sqlite3.Error:
        return
    for pid in pids:
        if pid:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


# ------------------------------------------------------------ another user

USER = "gflowtest"
ADMIN = "gflowadm"
ADMIN_GROUP = "gflowadmins"
SRC = Path(__file__).resolve().parents[1] / "src"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"),
    reason="needs root, useradd and runuser",
)


LOGIN = ("--create-home", "--shell", "/bin/bash")


def local_user(name: str, *useradd: str) -> pwd.struct_passwd:
    """The local user ``name``, created with these ``useradd`` options (default: a login
    with a home) if missing. Another test run may create it at the same moment."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    done = subprocess.run(
        ["useradd", *(useradd or LOGIN), name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise AssertionError(f"useradd {name} failed: {done.stderr.strip()}") from None


def python_for(user: str) -> str | None:
    """A Python >= 3.11 that ``user`` can execute (ours may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        done = subprocess.run(
            [
                "runuser",
                "-u",
                user,
                "--",
                candidate,
                "-c",
                "import sys; sys.exit(sys.version_info < (3, 11))",
            ],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return candidate
    return None


class AsUser:
    """Run gflow's CLIs as the other user, against the same GFLOW_HOME."""

    def __init__(self, g: Gflow, user: pwd.struct_passwd) -> None:
        self.g = g
        self.user = user
        self.python = python_for(user.pw_name) or "python3"
        self.work = g.home / f"work-{user.pw_name}"
        self.work.mkdir(exist_ok=True)
        os.chown(self.work, user.pw_uid, user.pw_gid)

    def argv(self, tool: str, *args: str, **env: str) -> list[str]:
        """The command line running ``tool`` (``-c`` for Python code) as this user."""
        environment = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.user.pw_dir,
            "USER": self.user.pw_name,
            "GFLOW_HOME": str(self.g.home),
            "PYTHONPATH": str(SRC),
            "NO_COLOR": "1",
            **env,
        }
        return [
            "runuser",
            "-u",
            self.user.pw_name,
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in environment.items()),
            self.python,
            *(["-c"] if tool == "-c" else ["-m", f"gflow.cli.{tool}"]),
            *args,
        ]

    def run(
        self, tool: str, *args: str, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(tool, *args, **env)
        done = subprocess.run(
            argv, cwd=self.work, capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{tool} {args} -> {done.returncode}: {done.stderr}")
        return done

    def submit(self, *args: str, **env: str) -> int:
        return int(self.run("gbatch", *args, **env).stdout.split()[3])

    def post(self, path: str, body: dict[str, object]) -> tuple[int, str]:
        """A raw API request as this user: (HTTP status, error message or "")."""
        code = (
            "import json, sys\n"
            "from gflow.client import Client, RemoteError\n"
            "try:\n"
            "    Client().post(sys.argv[1], json.loads(sys.argv[2]))\n"
            "    print(200)\n"
            "except RemoteError as exc:\n"
            "    print(exc.status, exc.message)\n"
        )
        done = self.run("-c", code, path, json.dumps(body))
        status, _, message = done.stdout.strip().partition(" ")
        return int(status), message
