"""Talking to Slurm through its own commands: sbatch, squeue, scontrol, scancel.

Every call is one process with a timeout; its failure is a :class:`SlurmRefused` (Slurm
said no, with Slurm's message) or a :class:`SlurmUnreachable` (no controller, no
command). What the answers mean is :mod:`gflow.slurmspec`'s business.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gflow.errors import GflowError
from gflow.launchspec import RunAs
from gflow.slurmspec import SQUEUE_FORMAT, SlurmJob, error_line, parse_exit_code, parse_squeue
from gflow.slurmspec import unreachable as says_unreachable

COMMANDS = ("sbatch", "squeue", "scontrol", "scancel")
MAX_IDS_PER_CALL = 5000  # keeps one command line far below the kernel's limit


class SlurmRefused(GflowError):
    """Slurm refused the request; the message is Slurm's own."""


class SlurmUnreachable(GflowError):
    """The Slurm controller did not answer, or a Slurm command is missing."""

    status = 503


@dataclass(frozen=True, slots=True)
class Answer:
    code: int
    out: str
    err: str


class Slurm:
    """The Slurm commands, run with ``timeout`` seconds each (``bin_dir``: where they are)."""

    def __init__(self, *, timeout: float = 60.0, bin_dir: str | None = None) -> None:
        self.timeout = timeout
        self.bin_dir = bin_dir

    def command(self, name: str) -> str | None:
        if self.bin_dir:
            path = os.path.join(self.bin_dir, name)
            return path if os.access(path, os.X_OK) else None
        return shutil.which(name)

    def missing(self) -> list[str]:
        """The Slurm commands gflow needs that are not installed."""
        return [name for name in COMMANDS if self.command(name) is None]

    def _run(
        self,
        name: str,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        run_as: RunAs | None = None,
    ) -> Answer:
        exe = self.command(name)
        if exe is None:
            raise SlurmUnreachable(f"{name} not found: is Slurm installed on this machine?")
        env = {k: v for k, v in os.environ.items() if k.startswith("SLURM_CONF")}
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        try:
            done = subprocess.run(
                [exe, *args],
                input=stdin,
                capture_output=True,
                text=True,
                env=env,
                timeout=self.timeout,
                check=False,
                cwd="/",
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=list(run_as.groups) if run_as else None,
            )
        except subprocess.TimeoutExpired:
            raise SlurmUnreachable(f"{name} did not answer within {self.timeout:g}s") from None
        except OSError as exc:
            raise SlurmUnreachable(f"cannot run {name}: {exc.strerror}") from None
        return Answer(done.returncode, done.stdout, done.stderr)

    def _checked(self, name: str, args: Sequence[str], **kw: object) -> Answer:
        answer = self._run(name, args, **kw)  # type: ignore[arg-type]
        if answer.code != 0:
            message = error_line(answer.err or answer.out)
            if says_unreachable(answer.err):
                raise SlurmUnreachable(f"Slurm controller unreachable: {message}")
            raise SlurmRefused(message)
        return answer

    # ------------------------------------------------------------ requests

    def submit(self, args: Sequence[str], script: str, run_as: RunAs | None = None) -> str:
        """``sbatch --parsable``: the new job's id (the script comes on standard input)."""
        answer = self._checked("sbatch", [*args], stdin=script, run_as=run_as)
        first = answer.out.strip().splitlines()[-1] if answer.out.strip() else ""
        job_id = first.split(";")[0].strip()
        if not job_id.isdigit():
            raise SlurmRefused(f"sbatch printed no job id: {answer.out.strip()[:200]!r}")
        return job_id

    def query(self, job_ids: Iterable[str]) -> list[SlurmJob]:
        """The jobs (array tasks one by one) of these ids, active or recently ended.

        Ids Slurm no longer knows are simply absent from the answer.
        """
        ids = sorted({str(i) for i in job_ids})
        out: list[SlurmJob] = []
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            chunk = ids[start : start + MAX_IDS_PER_CALL]
            out += self._squeue(["-j", ",".join(chunk)])
        return out

    def jobs_of(self, users: Iterable[str] = ()) -> list[SlurmJob]:
        """Every job Slurm knows of these users (all users if none is named)."""
        names = sorted(set(users))
        return self._squeue(["-u", ",".join(names)] if names else [])

    def _squeue(self, select: list[str]) -> list[SlurmJob]:
        answer = self._run("squeue", ["-h", "-r", "-t", "all", "-o", SQUEUE_FORMAT, *select])
        if answer.code != 0:
            if "Invalid job id" in answer.err:  # none of the ids is known any more
                return []
            message = error_line(answer.err)
            if says_unreachable(answer.err):
                raise SlurmUnreachable(f"Slurm controller unreachable: {message}")
            raise SlurmRefused(message)
        return parse_squeue(answer.out)

    def exit_code(self, key: str) -> int | None:
        """A job's exit status as Slurm recorded it (None: unknown)."""
        answer = self._run("scontrol", ["show", "job", "-o", key])
        return parse_exit_code(answer.out) if answer.code == 0 else None

    def cancel(self, keys: Iterable[str], signal: str | None = None) -> None:
        """``scancel``: end these jobs, or with ``signal`` only signal them (every step)."""
        args = ["--full", f"--signal={signal}"] if signal else []
        names = sorted(set(keys))
        if names:
            self._checked("scancel", [*args, *names])

    def hold(self, keys: Iterable[str]) -> None:
        self._control("hold", keys)

    def release(self, keys: Iterable[str]) -> None:
        self._control("release", keys)

    def _control(self, verb: str, keys: Iterable[str]) -> None:
        names = sorted(set(keys))
        if names:
            self._checked("scontrol", [verb, ",".join(names)])

    def update(self, key: str, fields: dict[str, str]) -> None:
        """``scontrol update JobId=KEY Field=value...`` (TimeLimit, Nice, Dependency...)."""
        if fields:
            pairs = [f"{k}={v}" for k, v in fields.items()]
            self._checked("scontrol", ["update", f"JobId={key}", *pairs])

    def test_only(self, args: Sequence[str]) -> str:
        """``sbatch --test-only``: would Slurm take a job with these flags? (Slurm's answer;
        nothing is submitted.)"""
        answer = self._checked("sbatch", ["--test-only", *args, "--wrap", "true"])
        return error_line(answer.err or answer.out).removeprefix("sbatch: ")

    def ping(self) -> str:
        """The controller's answer to ``scontrol ping``; SlurmUnreachable if it is down."""
        answer = self._run("scontrol", ["ping"])
        text = answer.out.strip()
        if answer.code != 0 or "UP" not in text:
            raise SlurmUnreachable(
                f"Slurm controller unreachable: {text or error_line(answer.err)}"
            )
        return text
