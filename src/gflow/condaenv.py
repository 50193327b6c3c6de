"""A job's conda environment, checked when it is submitted rather than when it runs.

The job activates its environment with the conda its submitter's ``PATH`` finds, so
the check asks that conda, as the submitter, with the submitter's environment (a
system daemon never runs a user's program as root). It refuses only on a clear answer:
no conda at all, or no environment of that name (a path: no ``conda-meta`` there).
A conda that does not answer in time, or says something this cannot read, gets the
benefit of the doubt; the job reports a failed activation itself, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from typing import BinaryIO

from gflow.errors import Refused
from gflow.launchspec import RunAs, job_environment

CHECK_TIMEOUT = 30.0
"""Seconds conda is given to list its environments."""
MAX_OUTPUT = 1 << 20
"""Bytes of conda's answer read at most."""
REAP_TIMEOUT = 5.0
"""Seconds a killed probe is waited for."""
NO_CONDA = 127
NOT_AN_ENV = 3
SHOWN = 8
"""Environment names a refusal lists at most."""

# $1: the environment, $2: the job's directory (a relative path is relative to it, as
# in the job, which changes there before it activates the environment).
_PROBE = r"""command -v conda >/dev/null 2>&1 || exit 127
case $1 in
*/*) cd -- "$2" 2>/dev/null || exit 0
    p=$1
    case $p in "~/"*) p=$HOME/${p#"~/"} ;; esac
    [ -d "$p/conda-meta" ] || exit 3
    exit 0 ;;
esac
exec conda env list --json"""


@dataclass(frozen=True, slots=True)
class Probe:
    """What the submitter's shell answered: its exit status (None: no answer in time,
    or more output than :data:`MAX_OUTPUT`) and what it printed."""

    code: int | None
    output: bytes = b""


def is_path(name: str) -> bool:
    return "/" in name


def problem(name: str, probe: Probe) -> str | None:
    """Why a job asking for conda environment ``name`` cannot run (None: it can, or
    the answer is not clear enough to refuse it)."""
    shown = repr(name)
    if probe.code == NO_CONDA:
        return (
            f"--conda-env {shown}: conda was not found on your PATH, so the job could not "
            "activate that environment"
        )
    if is_path(name):
        if probe.code == NOT_AN_ENV:
            return f"--conda-env {shown}: no conda environment there (no conda-meta directory)"
        return None
    if probe.code != 0 or name in ("base", "root"):
        return None
    envs = _env_paths(probe.output)
    if envs is None:
        return None
    names = [os.path.basename(p.rstrip("/")) for p in envs]
    if name in names:
        return None
    known = sorted({n for n in names[1:] if n}) if names else []
    listed = ", ".join(["base", *known[:SHOWN]]) + (", ..." if len(known) > SHOWN else "")
    return f"--conda-env {shown}: no such conda environment (conda env list shows: {listed})"


def _env_paths(output: bytes) -> list[str] | None:
    """The environments' prefixes from ``conda env list --json``; None if unreadable."""
    try:
        data = json.loads(output)
    except ValueError:
        return None
    envs = data.get("envs") if isinstance(data, dict) else None
    if not isinstance(envs, list) or not all(isinstance(p, str) for p in envs):
        return None
    return envs


async def check(name: str, env: dict[str, str], workdir: str, run_as: RunAs | None) -> None:
    """Refuse a submission whose conda environment cannot be activated."""
    if not name or name == env.get("CONDA_DEFAULT_ENV"):
        return  # none, or the one active in the shell that submits
    found = problem(name, await probe(name, env, workdir, run_as))
    if found is not None:
        raise Refused(found)


async def probe(
    name: str,
    env: dict[str, str],
    workdir: str,
    run_as: RunAs | None,
    timeout: float = CHECK_TIMEOUT,
) -> Probe:
    """Ask the submitter's conda, as the submitter, without blocking the event loop.

    Its answer comes through a pipe the daemon owns and closes when it is done: a
    process conda left behind in a session of its own (out of reach of the kill) may
    keep the other end open, and it then writes into a closed pipe rather than into
    the daemon's memory, for ever.
    """
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        try:
            proc = await _start(name, env, workdir, run_as, write_end)
        except OSError:  # cannot ask now (out of processes...): no reason to refuse
            return Probe(None)
        finally:
            os.close(write_end)
        try:
            return await asyncio.wait_for(_answer(proc, pipe), timeout)
        except TimeoutError:
            return Probe(None)
        finally:
            pipe.close()
            await _stop(proc)


async def _start(
    name: str, env: dict[str, str], workdir: str, run_as: RunAs | None, out: int
) -> asyncio.subprocess.Process:
    ids = (run_as.uid, run_as.gid, list(run_as.groups)) if run_as else (None, None, None)
    return await asyncio.create_subprocess_exec(
        "/bin/bash",
        "-c",
        _PROBE,
        "gflow-conda-check",
        name,
        workdir,
        env=job_environment(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=out,
        stderr=asyncio.subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,
        user=ids[0],
        group=ids[1],
        extra_groups=ids[2],
    )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Kill the probe's process group if it still runs, and collect it."""
    if proc.returncode is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), REAP_TIMEOUT)


async def _answer(proc: asyncio.subprocess.Process, pipe: BinaryIO) -> Probe:
    """The process's output on ``pipe`` and its exit status (no status past
    :data:`MAX_OUTPUT`)."""
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, pipe)
    try:
        output = await _read(reader)
    finally:
        transport.close()
    return Probe(None if output is None else await proc.wait(), output or b"")


async def _read(reader: asyncio.StreamReader) -> bytes | None:
    """All that ``reader`` gives until its end; None past :data:`MAX_OUTPUT`."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await reader.read(65536):
        size += len(chunk)
        if size > MAX_OUTPUT:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
