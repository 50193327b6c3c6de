"""Why a job waits or failed, in words and next steps (pure: records in)."""

from __future__ import annotations

import functools

from gflow import triage
from gflow.records import Gpu, GpuHolder, Info, JobInfo

diagnose = functools.partial(triage.diagnose, now=1_800_000_000.0)


def job(state: str, **fields: object) -> JobInfo:
    return JobInfo(id=7, name="train", user="ann", state=state, st="?", **fields)  # type: ignore[arg-type]


def test_a_job_waiting_for_gpus_says_who_holds_them() -> None:
    gpus = (Gpu(0, "A100", jobs=(GpuHolder(3, "big"),)), Gpu(1, "A100", allowed=False))
    found = diagnose(job("Queued", reason="WaitingForGpu", gpus=2), [], Info(gpus, "tmux"), None)
    assert found["verdict"] == "waits for 2 GPU(s); 0 of 2 are idle, jobs 3 hold the others"
    assert found["hints"] == ["fewer GPUs: gjob update 7 --gpus N"]


def test_a_job_waiting_for_parents_names_them() -> None:
    parent = JobInfo(id=5, name="prep", user="ann", state="Running", st="R")
    waiting = job("Queued", reason="WaitingForDependency", pending=(5,), dependency="afterok:5")
    found = diagnose(waiting, [parent], None, None)
    assert found["verdict"] == (
        "waits for its dependency (afterok:5): still waiting on 5 (prep, Running)"
    )
    never = job("Queued", reason="DependencyNeverSatisfied", auto_cancel=False)
    failed = JobInfo(id=5, name="prep", user="ann", state="Failed", st="F", exit_code=1)
    found = diagnose(never, [failed], None, None)
    assert found["verdict"].startswith("can never start: 5 ended Failed")
    assert found["hints"][0] == "gjob redo 5 (run the parent again)"


def test_a_failure_is_explained_from_its_exit_code_and_log() -> None:
    tail = "Traceback...\ntorch.cuda.OutOfMemoryError: CUDA out of memory.\n"
    found = diagnose(job("Failed", exit_code=1), [], None, tail)
    assert found["verdict"].startswith("failed with exit code 1: a general error")
    assert found["hints"][0].startswith("the GPU ran out of memory")
    assert found["log_tail"] == tail
    killed = diagnose(job("Failed", exit_code=137), [], None, "")
    assert "SIGKILL" in str(killed["verdict"]) and "memory" in str(killed["verdict"])
    assert "SIGSEGV" in str(diagnose(job("Failed", exit_code=139), [], None, "")["verdict"])
    assert "signal 7" in str(diagnose(job("Failed", exit_code=135), [], None, "")["verdict"])


def test_ends_and_holds() -> None:
    cancelled = diagnose(job("Cancelled", reason="DependencyFailed:5"), [], None, None)
    assert cancelled["hints"] == ["gjob redo 5 --cascade (runs 5 again, and this job after it)"]
    timeout = diagnose(job("Timeout", time_limit=60, start_time=0.0, end_time=61.0), [], None, "")
    assert timeout["verdict"] == "stopped at its time limit of 00:01:00 (ran 00:01:01)"
    assert diagnose(job("Hold"), [], None, None)["hints"] == ["gjob release 7"]
    assert diagnose(job("Finished", start_time=0.0, end_time=5.0), [], None, None)["verdict"] == (
        "finished successfully after 00:00:05"
    )
