"""The schedulers under test: this gflow, and (with ``--vs``) the Rust gflow (PyPI ``runqd``).

A :class:`Target` is one scheduler with one executor. :meth:`Target.fresh` boots its
daemon in a new temporary home that nothing else uses; the bench drives it only
through the real command-line tools, and reads job timestamps from the scheduler's own
record (our SQLite database; the Rust daemon's ``GET /jobs``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OURS_BIN = Path(os.path.abspath(sys.executable)).parent
RUNQD_BIN = Path(os.environ.get("GFLOW_BENCH_RUNQD", "/tmp/runqd-venv/bin"))
PYCACHE = Path(tempfile.gettempdir()) / "gflow-bench-pycache"
SUBMITTED = re.compile(r"Submitted batch job (\d+)(?: \((?:array|sweep) of \d+ \w+: \d+-(\d+)\))?")
_SCRUB = ("GFLOW_", "TMUX", "XDG_")


def submitted_ids(out: str) -> list[int]:
    """The job ids gbatch printed: one line per job, or one per array or sweep (gflow's
    ``Submitted batch job 12 (array of 3 tasks: 12-14)``)."""
    ids: list[int] = []
    for first, last in SUBMITTED.findall(out):
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


@dataclass(frozen=True, slots=True)
class JobTimes:
    """One job as the scheduler recorded it (times in seconds since the epoch)."""

    id: int
    state: str
    exit_code: int | None
    submit: float | None
    start: float | None
    end: float | None


class BenchError(Exception):
    pass


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["NO_COLOR"] = "1"
    env["USER"] = pwd.getpwuid(os.getuid()).pw_name
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _http(sock: socket.socket, path: str, timeout: float) -> tuple[int, bytes]:
    sock.settimeout(timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n", 1)[0].split()[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = [], body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out.append(rest[:size])
            rest = rest[size + 2 :]
        body = b"".join(out)
    return status, body


class Target:
    """One scheduler + executor. Subclasses know how to boot, stop and read it."""

    kind = ""
    homes = "/tmp"  # where the daemons' homes are made (bench/run.py --homes)

    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.name = f"{self.kind}/{executor}"
        self.home: Path | None = None
        self.env: dict[str, str] = {}
        self.work: Path = Path("/")

    # ------------------------------------------------------------ lifecycle

    def fresh(self) -> float:
        """Boot a daemon in a new empty home; return seconds until it answered."""
        self.teardown()
        self.home = Path(tempfile.mkdtemp(prefix=f"gb{self.kind[0]}", dir=self.homes))
        self.work = self.home / "work"
        self.work.mkdir()
        self.env = self._env()
        self.prepare()
        return self.up()

    def prepare(self) -> None:
        """Write configuration into the new home before the first start."""

    def up(self) -> float:
        """Start the daemon on the current home; seconds from the command to healthy."""
        t0 = time.perf_counter()
        done = self.cli("gflowd", "up", check=False, timeout=60)
        if done.returncode != 0:
            raise BenchError(f"{self.name}: gflowd up failed: {done.stderr.strip()}")
        deadline = time.monotonic() + 60
        while not self.healthy():
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: daemon not healthy after 60 s")
            time.sleep(0.005)
        return time.perf_counter() - t0

    def down(self) -> None:
        pid = self.pid()
        self.cli("gflowd", "down", check=False, timeout=60)
        if pid is not None:
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):  # our own daemon, by its pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def teardown(self) -> None:
        if self.home is None:
            return
        with contextlib.suppress(Exception):
            self.down()
        self._kill_tmux()
        for _ in range(5):  # a daemon still exiting may write a last file
            shutil.rmtree(self.home, ignore_errors=True)
            if not self.home.exists():
                break
            time.sleep(0.2)
        self.home = None

    def _kill_tmux(self) -> None:
        sock = self.tmux_socket()
        if sock is not None and sock.exists() and shutil.which("tmux"):
            subprocess.run(
                ["tmux", "-S", str(sock), "kill-server"], capture_output=True, check=False
            )

    # ------------------------------------------------------------ clients

    def bin(self, tool: str) -> str:
        raise NotImplementedError

    def cli(
        self, *argv: str, check: bool = True, timeout: float = 120, stdout: Any = subprocess.PIPE
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.bin(argv[0]), *argv[1:]],
            env=self.env,
            cwd=self.work,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise BenchError(
                f"{self.name}: {' '.join(argv)[:80]} exited {done.returncode}: "
                f"{done.stderr.strip()[:300]}"
            )
        return done

    def submit(self, *argv: str, timeout: float = 120) -> list[int]:
        out = self.cli("gbatch", *argv, timeout=timeout).stdout
        return submitted_ids(out)

    def gate_script(self, name: str) -> tuple[Path, Path]:
        """A script that waits (at most 5 min) for a file; returns (script, gate file)."""
        gate = self.work / f"{name}.open"
        script = self.work / f"{name}.sh"
        script.write_text(
            "#!/bin/bash\nend=$((SECONDS+300))\n"
            f"while [ ! -e {gate} ] && [ $SECONDS -lt $end ]; do sleep 0.005; done\n"
        )
        script.chmod(0o755)
        return script, gate

    # ------------------------------------------------------------ introspection

    def pid(self) -> int | None:
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    def tmux_socket(self) -> Path | None:
        raise NotImplementedError

    def jobs(self, ids: list[int] | None = None) -> dict[int, JobTimes]:
        raise NotImplementedError

    def exit_codes_known(self) -> bool:
        return True

    def _env(self) -> dict[str, str]:
        raise NotImplementedError


class Ours(Target):
    kind = "gflow"

    def _env(self) -> dict[str, str]:
        assert self.home is not None
        env = _base_env()
        env["GFLOW_HOME"] = str(self.home)
        env["GFLOW_DAEMON__EXECUTOR"] = self.executor
        # Installed users have bytecode; a sandbox's PYTHONDONTWRITEBYTECODE would make
        # every client compile gflow from source (~10 ms a call). Cache it outside the repo.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        env["PATH"] = f"{OURS_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def bin(self, tool: str) -> str:
        return str(OURS_BIN / tool)

    @property
    def db_path(self) -> Path:
        assert self.home is not None
        return self.home / "gflow.db"

    def pid(self) -> int | None:
        if self.home is None:
            return None
        try:
            text = (self.home / "gflowd.lock").read_text().strip()
        except OSError:
            return None
        pid = int(text) if text.isdigit() else None
        return pid if pid is not None and _alive(pid) else None

    def healthy(self) -> bool:
        assert self.home is not None
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.home / "gflowd.sock"))
                return _http(s, "/v1/health", 5)[0] == 200
        except (OSError, ValueError, IndexError):
            return False

    def tmux_socket(self) -> Path | None:
        return None if self.home is None else self.home / "tmux.sock"

    def jobs(self, ids: list[int] | None = None) -> dict[int, JobTimes]:
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            sql = "SELECT id, state, exit_code, submit_time, start_time, end_time FROM jobs"
            if ids:
                sql += f" WHERE id BETWEEN {min(ids)} AND {max(ids)}"
            rows = db.execute(sql).fetchall()
        finally:
            db.close()
        wanted = set(ids) if ids else None
        return {r[0]: JobTimes(*r) for r in rows if wanted is None or r[0] in wanted}


class Runqd(Target):
    """The Rust gflow, on a private HOME, TCP port and tmux socket."""

    kind = "runqd"

    def __init__(self, executor: str) -> None:
        super().__init__(executor)
        self.port = 0

    def _env(self) -> dict[str, str]:
        assert self.home is not None
        env = _base_env()
        env.update(HOME=str(self.home), TMUX_TMPDIR=str(self.home))
        env["PATH"] = f"{RUNQD_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def prepare(self) -> None:
        assert self.home is not None
        self.port = _free_port()
        cfg = self.home / ".config" / "gflow"
        cfg.mkdir(parents=True)
        # runqd's tmux jobs report their end by calling gcancel from a login shell,
        # whose PATH /etc/profile resets: put runqd first in it, as its users must.
        rc = f'export PATH="{RUNQD_BIN}:$PATH"\n'
        for name in (".bash_profile", ".bashrc"):
            (self.home / name).write_text(rc)
        (cfg / "gflow.toml").write_text(
            f'[daemon]\nhost = "127.0.0.1"\nport = {self.port}\n'
            f'[executor]\ntype = "{self.executor}"\n'
        )

    @property
    def state_dir(self) -> Path:
        assert self.home is not None
        return self.home / ".local" / "share" / "gflow"

    def bin(self, tool: str) -> str:
        return str(RUNQD_BIN / tool)

    def pid(self) -> int | None:
        if self.home is None:
            return None
        out = self.cli("gflowd", "status", check=False, timeout=30).stdout
        m = re.search(r"PID:\s+(\d+)", out)
        return int(m.group(1)) if m and _alive(int(m.group(1))) else None

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            return _http(s, path, timeout)

    def healthy(self) -> bool:
        try:
            return self.get("/", 2)[0] == 200
        except (OSError, ValueError, IndexError):
            return False

    def tmux_socket(self) -> Path | None:
        return None if self.home is None else self.home / f"tmux-{os.getuid()}" / "default"

    def exit_codes_known(self) -> bool:
        return False  # the Rust gflow does not store exit codes

    def jobs(self, ids: list[int] | None = None) -> dict[int, JobTimes]:
        status, body = self.get("/jobs", 20)
        if status != 200:
            raise BenchError(f"{self.name}: GET /jobs answered {status}")
        wanted = set(ids) if ids else None
        out = {}
        for j in json.loads(body):
            if wanted is not None and j["id"] not in wanted:
                continue
            out[j["id"]] = JobTimes(
                j["id"],
                j["state"],
                None,
                _ts(j.get("submitted_at")),
                _ts(j.get("started_at")),
                _ts(j.get("finished_at")),
            )
        return out


def _ts(value: dict[str, int] | None) -> float | None:
    if not value:
        return None
    return value["secs_since_epoch"] + value["nanos_since_epoch"] / 1e9


def warm_bytecode() -> None:
    """Compile gflow and what it imports into the bench's bytecode cache once."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    imports = "import gflow.daemon, gflow.client, gflow.parse, gflow.deps, " + ", ".join(
        f"gflow.cli.{tool}" for tool in ("gbatch", "gqueue", "gcancel", "gjob", "gflowd")
    )
    subprocess.run([sys.executable, "-c", imports], env=env, capture_output=True, check=False)


def make_targets(vs: bool, executors: tuple[str, ...]) -> list[Target]:
    targets: list[Target] = []
    for ex in executors:
        targets.append(Ours(ex))
        if vs:
            targets.append(Runqd(ex))
    return targets


FINAL = frozenset({"Finished", "Failed", "Cancelled", "Timeout"})


def wait_final(
    target: Target, ids: list[int], budget: float, poll: float | None = None
) -> tuple[dict[int, JobTimes], bool]:
    """Poll until every job is final or ``budget`` seconds pass; (jobs, all final?)."""
    poll = poll or (0.05 if target.kind == "gflow" else 0.25)
    deadline = time.monotonic() + budget
    jobs: dict[int, JobTimes] = {}
    while True:
        try:
            jobs = target.jobs(ids)
        except OSError:  # a daemon too busy to answer in time: keep waiting
            if time.monotonic() > deadline:
                raise BenchError(f"{target.name}: no answer to a job listing") from None
        else:
            if len(jobs) == len(ids) and all(j.state in FINAL for j in jobs.values()):
                return jobs, True
            if time.monotonic() > deadline:
                return jobs, False
        time.sleep(poll)


def proc_stat(pid: int) -> dict[str, float]:
    """CPU seconds, scheduling count (≈ wake-ups) and memory of a process and its threads."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / tick
    runs = 0
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            runs += int((task / "schedstat").read_text().split()[2])
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    switches += int(line.split()[1])
    status = Path(f"/proc/{pid}/status").read_text()
    mem = {
        k: int(v.split()[0]) / 1024
        for k, _, v in (ln.partition(":") for ln in status.splitlines())
        if k in ("VmRSS", "VmHWM")
    }
    threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    return {
        "cpu_s": cpu,
        "runs": runs,
        "switches": switches,
        "rss_mb": mem.get("VmRSS", 0.0),
        "hwm_mb": mem.get("VmHWM", 0.0),
        "threads": threads,
    }
