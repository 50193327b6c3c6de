"""Why a job is waiting, or why it failed: a verdict in words and what to do about it.

Pure: a job's record, the records of the jobs it waits for, the machine's state and
the end of its log in; a small dict out. The MCP server's ``diagnose`` tool answers with
it, so an agent (or a person) gets the reason and the next step in one call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from gflow.records import Info, JobInfo

SIGNALS = {2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}
EXIT_CODES = {
    1: "a general error in the program (its log says which)",
    2: "a usage error (a wrong option or argument)",
    126: "the command is not executable (permissions, or not a program)",
    127: "the command was not found (a typo, or a PATH or environment without it)",
    137: "killed by SIGKILL: often the host ran out of memory (or --memory was exceeded)",
    139: "a segmentation fault (SIGSEGV) in the program or a native library",
    143: "stopped by SIGTERM",
}
LOG_SIGNS: tuple[tuple[str, str], ...] = (
    (
        r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED",
        "the GPU ran out of memory: a smaller batch, more GPUs (gpus=), or a card to "
        "itself (no shared=)",
    ),
    (
        r"\bMemoryError\b|Cannot allocate memory|\bKilled\b",
        "host memory ran out: ask for more (memory=) or use less",
    ),
    (
        r"No module named '?([\w.]+)'?",
        "the job's Python lacks module {0}: submit from the environment that has it (a "
        "job gets its submitter's environment) or name one with conda_env=",
    ),
    (r"command not found", "a command is not on the job's PATH"),
    (r"No such file or directory", "a file is missing: paths are relative to the job's workdir"),
    (r"Permission denied", "a file or directory is not accessible to the job's user"),
)
WAITING = {
    "WaitingForGpu": "waits for GPUs",
    "Resources": "waits for a free slot (gflow runs at most max_running jobs at once)",
    "WaitingForMemory": "waits for host memory to be free",
    "BeginTime": "waits for its begin time",
    "Priority": "kept back so as not to delay a job ahead of it that waits for GPUs",
    "JobGroupLimit": "its array or sweep already runs its limit of jobs at once",
    "Quota": "held back by a quota (gctl quota list)",
    "Reserved": "the idle GPUs are reserved for another user now",
    "Launching": "is being started",
}
TAIL_LINES = 20


def diagnose(
    job: JobInfo,
    parents: Iterable[JobInfo],
    info: Info | None,
    log_tail: str | None,
    *,
    now: float,
) -> dict[str, object]:
    """``{"id", "state", "reason", "verdict", "hints", "log_tail"}`` for ``job`` at
    time ``now``."""
    if job.state == "Queued":
        verdict, hints = _queued(job, list(parents), info)
    elif job.state == "Hold":
        verdict, hints = "held: it starts only once released", [f"gjob release {job.id}"]
    elif job.state == "Running":
        verdict, hints = _running(job, now), []
    elif job.state == "Finished":
        verdict, hints = f"finished successfully after {_took(job, now)}", []
    elif job.state == "Timeout":
        limit = _clock(job.time_limit)
        verdict = f"stopped at its time limit of {limit} (ran {_took(job, now)})"
        hints = [f"gjob redo {job.id} --time LONGER (a limit above {limit})"]
    elif job.state == "Cancelled":
        verdict, hints = _cancelled(job)
    else:
        verdict, hints = _failed(job, log_tail or "")
    out: dict[str, object] = {
        "id": job.id,
        "state": job.state,
        "reason": job.reason,
        "verdict": verdict,
        "hints": hints,
    }
    if log_tail and job.state in ("Failed", "Timeout", "Running", "Cancelled"):
        out["log_tail"] = log_tail
    return out


def _queued(job: JobInfo, parents: list[JobInfo], info: Info | None) -> tuple[str, list[str]]:
    reason = job.reason or ""
    if reason in ("WaitingForDependency", "DependencyNeverSatisfied"):
        return _dependency(job, parents)
    if reason == "WaitingForGpu" and info is not None:
        idle = sum(1 for g in info.gpus if g.idle)
        holders = sorted({h.id for g in info.gpus for h in g.jobs})
        verdict = f"waits for {job.gpus} GPU(s); {idle} of {len(info.gpus)} are idle"
        if holders:
            verdict += f", jobs {', '.join(map(str, holders[:10]))} hold the others"
        hints = [f"fewer GPUs: gjob update {job.id} --gpus N"] if job.gpus > 1 else []
        return verdict, hints
    if reason == "BeginTime" and job.begin_at:
        return f"starts no earlier than {_when(job.begin_at)}", [
            f"gjob update {job.id} --begin now"
        ]
    words = WAITING.get(reason, "waiting for its turn")
    return words, [
        f"higher priority: gjob update {job.id} --priority 50"
    ] if reason == "Priority" else []


def _dependency(job: JobInfo, parents: list[JobInfo]) -> tuple[str, list[str]]:
    waiting = set(job.pending) or {p.id for p in parents if p.is_active}
    shown = [f"{p.id} ({p.name}, {p.state})" for p in parents if p.id in waiting]
    failed = [p for p in parents if p.is_final and not p.ok]
    if job.reason == "DependencyNeverSatisfied":
        why = ", ".join(f"{p.id} ended {p.state}" for p in failed) or "a parent ended badly"
        return (
            f"can never start: {why}, and it was submitted with no_auto_cancel",
            [
                *(f"gjob redo {p.id} (run the parent again)" for p in failed[:3]),
                f"gjob update {job.id} --depends-on OTHER, or gcancel {job.id}",
            ],
        )
    verdict = f"waits for its dependency ({job.dependency or 'parents'})"
    if shown:
        verdict += ": still waiting on " + ", ".join(shown[:10])
    return verdict, [f"gjob show {p.id}" for p in parents if p.id in waiting][:3]


def _running(job: JobInfo, now: float) -> str:
    where = f" on GPU {','.join(map(str, job.gpu_ids))}" if job.gpu_ids else ""
    limit = f" of its {_clock(job.time_limit)} limit" if job.time_limit else ""
    return f"running{where} for {_took(job, now)}{limit}"


def _cancelled(job: JobInfo) -> tuple[str, list[str]]:
    reason = job.reason or ""
    if reason.startswith("DependencyFailed:"):
        parent = reason.split(":", 1)[1]
        return (
            f"cancelled because job {parent}, which it waited for, did not end as needed",
            [f"gjob redo {parent} --cascade (runs {parent} again, and this job after it)"],
        )
    if reason.startswith("SystemError:"):
        return f"could not start: {reason.split(':', 1)[1]}", [f"gjob redo {job.id}"]
    return "cancelled by a user", [f"gjob redo {job.id}"]


def _failed(job: JobInfo, log_tail: str) -> tuple[str, list[str]]:
    code = job.exit_code
    if code is None:
        verdict = "failed without an exit code (its process vanished, e.g. killed with gflowd down)"
    else:
        meaning = EXIT_CODES.get(code) or (
            f"killed by {SIGNALS.get(code - 128, f'signal {code - 128}')}"
            if 128 < code < 160
            else "an error in the program (its log says which)"
        )
        verdict = f"failed with exit code {code}: {meaning}"
    hints = []
    for pattern, hint in LOG_SIGNS:
        found = re.search(pattern, log_tail)
        if found:
            hints.append(hint.format(*found.groups()))
    if job.max_retries and job.attempt < job.max_retries:
        hints.append(f"it is retried (attempt {job.attempt + 1} of {job.max_retries + 1})")
    hints.append(f"after fixing: gjob redo {job.id} --cascade")
    return verdict, hints


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "".join(text.splitlines(keepends=True)[-lines:])


def _took(job: JobInfo, now: float) -> str:
    if job.start_time is None:
        return "no time"
    return _clock((job.end_time or now) - job.start_time)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "no limit"
    s = max(int(seconds), 0)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
