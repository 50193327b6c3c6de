"""GPUs and host memory end to end, on fake GPUs: allocation, packing, refusals,
restriction, foreign processes, memory admission and enforcement, backfill."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gflow.gpu import GpuProcess, nvidia_driver_loaded, write_fake_procs
from gflow.proc import is_zombie
from tests.helpers import Gflow

MakeGflow = Callable[..., Gflow]


def visible(g: Gflow, job: int) -> str:
    """The CUDA_VISIBLE_DEVICES the job printed first."""
    return g.log(job).splitlines()[0]


def gpu_job(g: Gflow, gate: str, *flags: str) -> int:
    """A job that prints its CUDA_VISIBLE_DEVICES, then waits for ``gate``."""
    return g.submit(*flags, "sh", "-c", f'echo "$CUDA_VISIBLE_DEVICES"; {g.gate(gate)}')


def reason(g: Gflow, job: int) -> str | None:
    rows = [j for j in g.queue_json("-a") if j["id"] == job]
    return rows[0]["reason"] if rows else None


def gqueue_line(g: Gflow, job: int) -> str:
    lines = g.run("gqueue", "-j", str(job)).stdout.splitlines()
    return next(line for line in lines if line.split()[0] == str(job))


def status(g: Gflow) -> dict[str, Any]:
    return dict(g.api().get("/v1/info")["status"])


# ------------------------------------------------------------ exclusive allocation


def test_two_jobs_run_on_two_gpus_and_a_third_starts_when_one_ends(
    make_gflow: MakeGflow,
) -> None:
    # The next GPU poll is an hour away: only job a's end can let job c start.
    g = make_gflow("process", GFLOW_FAKE_GPUS="2x24G", GFLOW_DAEMON__GPU_POLL_INTERVAL="3600")
    g.start()
    a = gpu_job(g, "a", "-g", "1")
    b = gpu_job(g, "b", "-g", "1")
    c = g.submit("-g", "1", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES $CUDA_DEVICE_ORDER"')
    g.until(lambda: g.log(a) and g.log(b), what="both jobs to print their GPU")
    assert {visible(g, a), visible(g, b)} == {"0", "1"}
    assert g.state(c) == "Queued"
    assert "(WaitingForGpu)" in gqueue_line(g, c)
    held_by_a = visible(g, a)
    g.open_gate("a")
    assert g.wait(c) == 0
    assert g.job(c)["start_time"] >= g.job(a)["end_time"]
    assert g.log(c).strip() == f"{held_by_a} PCI_BUS_ID"
    info = g.run("ginfo").stdout
    assert f"allocated to job {b}" in info
    g.open_gate("b")
    assert g.wait(b) == 0


def test_shared_jobs_pack_by_declared_memory(two_gpus: Gflow) -> None:
    g = two_gpus
    shared = ["--shared", "-g", "1", "--gpu-memory", "10G"]
    jobs = [gpu_job(g, "s", *shared) for _ in range(3)]
    g.until(lambda: all(g.log(j) for j in jobs), what="shared jobs to start")
    assert [visible(g, j) for j in jobs] == ["0", "0", "1"]
    exclusive = gpu_job(g, "x", "-g", "1")
    assert reason(g, exclusive) == "WaitingForGpu"
    lines = g.run("ginfo").stdout.splitlines()
    assert f"shared by jobs {jobs[0]} " in lines[1]
    assert "20480 MiB declared" in lines[1]
    g.open_gate("s")
    assert g.wait(*jobs) == 0
    g.until(lambda: g.log(exclusive), what="the exclusive job to start")
    g.open_gate("x")
    assert g.wait(exclusive) == 0


# ------------------------------------------------------------ refused at submission


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (["-g", "3"], 1, "--gpus 3 can never run: this machine has 2 GPU(s)"),
        (["-g", "1", "--gpu-memory", "30G"], 1, "--gpu-memory 30G on 1 GPU(s) can never fit"),
        (["--shared", "--gpu-memory", "30G", "-g", "1"], 1, "largest usable GPU has 24G"),
        (["--shared", "-g", "1"], 2, "--shared needs --gpu-memory"),
        (["--memory", "100T"], 1, "--memory 102400G can never fit"),
    ],
)
def test_requests_that_can_never_fit_are_refused(
    two_gpus: Gflow, flags: list[str], code: int, message: str
) -> None:
    done = two_gpus.run("gbatch", *flags, "true", check=False)
    assert done.returncode == code
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2
    assert two_gpus.queue_json("-a") == []


def test_gpus_on_a_machine_without_gpus_are_refused(gflow_process: Gflow) -> None:
    g = gflow_process
    done = g.run("gbatch", "-g", "1", "true", check=False)
    assert done.returncode == 1
    assert "this machine has no GPUs" in done.stderr
    assert "No GPUs" in g.run("ginfo").stdout
    job = g.submit("sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"')
    assert g.wait(job) == 0
    assert g.log(job) == "[]\n"


# ------------------------------------------------------------ restriction


def test_set_gpus_restricts_and_persists_across_restart(two_gpus: Gflow) -> None:
    g = two_gpus
    out = g.run("gctl", "set-gpus", "1").stdout
    assert "only GPUs [1]" in out
    shown = g.run("gctl", "show-gpus").stdout.splitlines()
    assert shown[1].split()[:3] == ["0", "restricted", "idle"]
    assert shown[2].split()[:3] == ["1", "allowed", "idle"]
    refused = g.run("gbatch", "-g", "2", "true", check=False)
    assert refused.returncode == 1
    assert "only 1 of the 2 GPUs may be used" in refused.stderr
    bad = g.run("gctl", "set-gpus", "5", check=False)
    assert bad.returncode == 1
    first = gpu_job(g, "r", "-g", "1")
    second = gpu_job(g, "r", "-g", "1")
    g.until(lambda: g.log(first), what="the first job to start")
    assert visible(g, first) == "1"
    assert reason(g, second) == "WaitingForGpu"
    assert "restricted (gctl set-gpus)" in g.run("ginfo").stdout
    g.stop()
    g.start()
    assert "restricted" in g.run("gctl", "show-gpus").stdout.splitlines()[1]
    assert g.state(second) == "Queued"
    assert "removed" in g.run("gctl", "set-gpus", "all").stdout
    g.until(lambda: g.log(second), what="the second job to start on GPU 0")
    assert visible(g, second) == "0"
    g.open_gate("r")
    assert g.wait(first, second) == 0


def test_gflowd_up_gpus_and_environment_restrict(make_gflow: MakeGflow) -> None:
    g = make_gflow("process", GFLOW_FAKE_GPUS="3", GFLOW_DAEMON__GPUS="2")
    g.start()
    job = g.submit("-g", "1", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES"')
    assert g.wait(job) == 0
    assert g.log(job) == "2\n"
    g.stop()
    del g.env["GFLOW_DAEMON__GPUS"]
    g.start()  # the restriction was stored: still only GPU 2
    assert g.run("gbatch", "-g", "2", "true", check=False).returncode == 1
    g.stop()
    g.start("--gpus", "0-1")
    job = g.submit("-g", "2", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES"')
    assert g.wait(job) == 0
    assert g.log(job) == "0,1\n"
    g.stop()
    g.start("--gpus", "all")  # an explicit "all" lifts the stored restriction
    assert g.wait(g.submit("-g", "3", "true")) == 0


# ------------------------------------------------------------ foreign processes


@pytest.fixture
def stranger() -> Iterator[int]:
    """A live process that gflow did not start."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_foreign_process_is_shown_and_avoided(make_gflow: MakeGflow, stranger: int) -> None:
    g = make_gflow("process", GFLOW_FAKE_GPUS="2x24G", GFLOW_DAEMON__GPU_POLL_INTERVAL="0.1")
    g.start()
    procs = g.home / "fake_gpu_procs.json"
    write_fake_procs(procs, {0: [GpuProcess(stranger, 2000)]})
    unmanaged = f"unmanaged (pid {stranger}, 2000 MiB)"
    g.until(lambda: unmanaged in g.run("ginfo").stdout, what="ginfo to show the process")
    assert "2000/24576 MiB" in g.run("ginfo").stdout.splitlines()[1]
    a = gpu_job(g, "a", "-g", "1")
    b = gpu_job(g, "b", "-g", "1")
    g.until(lambda: g.log(a), what="job a to start")
    assert visible(g, a) == "1"
    assert reason(g, b) == "WaitingForGpu"
    # A shared job may use the memory the foreign process leaves free.
    s = g.submit(
        "--shared", "-g", "1", "--gpu-memory", "20G", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"
    )
    assert g.wait(s) == 0
    assert g.log(s) == "0\n"
    # Ignoring the process frees the card for exclusive jobs.
    out = g.run("gctl", "gpu-process", "ignore", "--gpu", "0", "--pid", str(stranger)).stdout
    assert f"pid {stranger}" in out
    g.until(lambda: g.log(b), what="job b to start on GPU 0")
    assert visible(g, b) == "0"
    assert f"pid {stranger}" in g.run("gctl", "gpu-process", "list").stdout
    assert unmanaged not in g.run("ginfo").stdout
    g.run("gctl", "gpu-process", "unignore", "--gpu", "0", "--pid", str(stranger))
    assert "No ignored" in g.run("gctl", "gpu-process", "list").stdout
    g.until(lambda: unmanaged in g.run("ginfo").stdout, what="the process to count again")
    # When the foreign process is gone from the GPU the card is idle again.
    write_fake_procs(procs, {})
    g.open_gate("a")
    g.open_gate("b")
    assert g.wait(a, b) == 0
    g.until(lambda: "unmanaged" not in g.run("ginfo").stdout, what="the card to be idle")


def test_a_gflow_jobs_own_gpu_processes_are_not_foreign(make_gflow: MakeGflow) -> None:
    g = make_gflow("process", GFLOW_FAKE_GPUS="1", GFLOW_DAEMON__GPU_POLL_INTERVAL="0.1")
    g.start()
    # One child in the job's session, one that left it (found through its parents).
    script = f"sleep 300 & echo $! > kids; setsid sleep 301 & echo $! >> kids; {g.gate('a')}"
    job = g.submit("-g", "1", "sh", "-c", script)
    kids_file = g.work / "kids"
    g.until(lambda: kids_file.exists() and len(kids_file.read_text().split()) == 2, what="kids")
    kids = [int(pid) for pid in kids_file.read_text().split()]
    try:
        procs = [GpuProcess(pid, 5000) for pid in kids]
        write_fake_procs(g.home / "fake_gpu_procs.json", {0: procs})
        polls = status(g)["gpu_polls"]
        g.until(lambda: status(g)["gpu_polls"] >= polls + 2, what="two GPU polls")
        assert "unmanaged" not in g.run("ginfo").stdout
    finally:
        os.kill(kids[1], 9)  # it left the job's process group: the job's end would miss it
    g.open_gate("a")
    assert g.wait(job) == 0
    nxt = g.submit("-g", "1", "true")
    assert g.wait(nxt, timeout=10) == 0


def test_a_job_end_does_not_wait_for_the_poll_to_forget_dead_processes(
    make_gflow: MakeGflow, stranger: int
) -> None:
    g = make_gflow("process", GFLOW_FAKE_GPUS="2", GFLOW_DAEMON__GPU_POLL_INTERVAL="3600")
    write_fake_procs(g.home / "fake_gpu_procs.json", {0: [GpuProcess(stranger, 100)]})
    g.start()  # seen at start-up; the next poll is an hour away
    assert f"unmanaged (pid {stranger}" in g.run("ginfo").stdout
    a = gpu_job(g, "a", "-g", "1")
    both = g.submit("-g", "2", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES"')
    g.until(lambda: g.log(a), what="job a to start")
    assert visible(g, a) == "1"
    os.kill(stranger, 9)
    # A loaded machine may run the killed process's exit later: the job ends after it.
    g.until(lambda: is_zombie(stranger), what="the stranger to be dead")
    g.open_gate("a")
    assert g.wait(both) == 0  # only job a's end can have let it start
    assert g.log(both) == "0,1\n"


# ------------------------------------------------------------ host memory


def test_memory_admission_and_enforcement(make_gflow: MakeGflow) -> None:
    g = make_gflow("process", GFLOW_DAEMON__MEMORY_MB="1000")
    g.start()
    refused = g.run("gbatch", "--memory", "2G", "true", check=False)
    assert refused.returncode == 1
    assert "gflow hands out 1000M of host memory" in refused.stderr
    a = g.submit("--memory", "600M", "sh", "-c", g.gate("a"))
    b = g.submit("--memory", "600M", "true")
    c = g.submit("true")
    assert g.wait(c) == 0  # no --memory: not held back
    g.until_state(a, "Running")
    assert "(WaitingForMemory)" in gqueue_line(g, b)
    g.open_gate("a")
    assert g.wait(a, b) == 0
    hog = "x = bytearray(800 * 1024 * 1024); print('allocated')"
    over = g.submit("--memory", "300M", "python3", "-c", hog)
    under = g.submit("--memory", "300M", "python3", "-c", "print('fine')")
    assert g.wait(over) != 0
    assert g.wait(under) == 0
    assert g.state(over) == "Failed"
    assert "MemoryError" in g.log(over)
    assert g.log(under) == "fine\n"
    assert g.job(over)["memory_enforcement"] == "rlimit"
    assert g.job(c)["memory_enforcement"] is None
    assert "MemoryEnforcement=rlimit" in g.run("gjob", "show", str(over)).stdout.split()


# ------------------------------------------------------------ priority and backfill


def test_backfill_never_delays_the_head_job(two_gpus: Gflow) -> None:
    g = two_gpus
    a = gpu_job(g, "a", "-g", "1", "--time", "10")
    g.until(lambda: g.log(a), what="job a to start")
    head = gpu_job(g, "h", "-g", "2", "--priority", "50")
    untimed = gpu_job(g, "u", "-g", "1")  # could hold GPU 1 past a's end: must wait
    assert reason(g, head) == "WaitingForGpu"
    assert reason(g, untimed) == "Priority"
    assert "(Priority)" in gqueue_line(g, untimed)
    short = gpu_job(g, "s", "-g", "1", "--time", "1")  # ends before a's limit: may go
    g.until(lambda: g.log(short), what="the short job to backfill")
    assert visible(g, short) == "1"
    assert reason(g, head) == "WaitingForGpu"
    g.open_gate("s")
    g.open_gate("a")
    assert g.wait(a, short) == 0
    g.until(lambda: g.log(head), what="the head job to start")
    assert visible(g, head) == "0,1"
    assert reason(g, untimed) == "WaitingForGpu"
    g.open_gate("h")
    g.open_gate("u")
    assert g.wait(head, untimed) == 0
    assert g.job(untimed)["start_time"] >= g.job(head)["end_time"]


# ------------------------------------------------------------ polling


def test_gpu_poll_runs_once_per_interval_and_idle_daemon_sleeps(make_gflow: MakeGflow) -> None:
    g = make_gflow("process", GFLOW_FAKE_GPUS="2", GFLOW_DAEMON__GPU_POLL_INTERVAL="0.25")
    g.start()
    began, first = time.monotonic(), status(g)["gpu_polls"]
    g.until(lambda: status(g)["gpu_polls"] >= first + 3, what="three GPU polls")
    polls = status(g)["gpu_polls"] - first
    assert polls <= (time.monotonic() - began) / 0.25 + 1  # never more often than asked
    g.stop()
    g.env.pop("GFLOW_DAEMON__GPU_POLL_INTERVAL")
    g.start()
    pid = g.daemon_pid()
    assert pid is not None
    before = _wakeups(pid)
    time.sleep(1.0)  # an idle second, watched: the daemon must stay asleep through it
    assert _wakeups(pid) - before <= 4
    assert status(g)["gpu_polls"] == 0


def _wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid`` (a sleeping thread adds none)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as fh:
            for line in fh:
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
    return total


# ------------------------------------------------------------ without the nvml extra


def test_gflowd_up_names_the_nvml_extra_when_gpus_are_expected_without_it(
    make_gflow: MakeGflow, tmp_path: Path
) -> None:
    """nvidia-ml-py is optional; a daemon told to hand out GPUs without it says what to
    install instead of offering no GPUs. The stand-in module makes the import fail as it
    does when the package is not installed."""
    shadow = tmp_path / "no-nvml"
    shadow.mkdir()
    (shadow / "pynvml.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pynvml'\", name='pynvml')\n"
    )
    g = make_gflow("process", PYTHONPATH=str(shadow))
    done = g.run("gflowd", "up", "--gpus", "0,1", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("gflowd: error: gflowd did not start: GPU scheduling")
    assert done.stderr.endswith(" pip install 'gflow-scheduler[nvml]'\n")
    assert done.stderr.count("\n") == 1
    started = g.run("gflowd", "up", check=False)  # CPU-only, unless NVIDIA cards are here
    assert (started.returncode == 0) is not nvidia_driver_loaded()
