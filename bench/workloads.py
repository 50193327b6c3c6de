"""The workloads of issue 8. Each takes one target and returns measurements.

Every run boots a fresh daemon (``Target.fresh``) and tears it down, so runs do not
see each other's jobs. Latencies come from the scheduler's own record: for gflow the
``jobs`` table (``start_time`` is the wrapper's pid file, ``end_time`` the result
file's time), for runqd its ``started_at`` / ``finished_at``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from history import add_history
from targets import (
    FINAL,
    BenchError,
    JobTimes,
    Ours,
    Target,
    proc_stat,
    submitted_ids,
    wait_final,
)


@dataclass(slots=True)
class Sample:
    """One measurement: a metric key, its values (ms, s, MB ...) and optional note."""

    key: str
    values: list[float]
    note: str = ""


@dataclass(slots=True)
class Config:
    quick: bool = False
    reps: int = 3
    submit_calls: int = 200
    array_size: int = 10_000
    chain: int = 100
    fan: int = 50
    jobs: int = 1000
    tiers: tuple[int, ...] = (0, 10_000, 100_000)
    queue_tiers: tuple[int, ...] = (1_000, 10_000, 100_000)
    events: int = 30
    idle_s: float = 60.0
    budget: float = 120.0  # our runs; over this the run is a failure
    budget_runqd: float = 60.0  # runqd is known to be slow; its runs are cut here
    restarts: int = 5
    hyperfine_max: int = 20
    array_timeout: float = 120.0
    executors: tuple[str, ...] = ("process", "tmux")
    notes: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, quick: bool) -> Config:
        if not quick:
            return cls()
        return cls(
            quick=True,
            reps=1,
            submit_calls=50,
            tiers=(0, 10_000),
            queue_tiers=(1_000, 10_000),
            events=15,
            idle_s=10.0,
            budget=60.0,
            budget_runqd=20.0,
            restarts=3,
            hyperfine_max=8,
            array_timeout=20.0,
        )

    def budget_for(self, t: Target) -> float:
        return self.budget if isinstance(t, Ours) else self.budget_runqd


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _links(jobs: dict[int, JobTimes], pairs: list[tuple[int, int]]) -> list[float]:
    """Parent end → child start (ms) for every (parent, child) both of which ran."""
    out = []
    for parent, child in pairs:
        p, c = jobs.get(parent), jobs.get(child)
        if p and c and p.end is not None and c.start is not None:
            out.append(_ms(c.start - p.end))
    return out


def _misreported(t: Target, jobs: dict[int, JobTimes]) -> int:
    bad = 0
    for j in jobs.values():
        if j.state not in FINAL:
            continue
        if j.state != "Finished" or (t.exit_codes_known() and j.exit_code != 0):
            bad += 1
    return bad


# ------------------------------------------------------------ 1. submit latency


_LOOP = r"""
n=$1; deadline=$2
for ((i = 0; i < n; i++)); do
    s=$EPOCHREALTIME
    gbatch true >/dev/null 2>&1 || echo fail
    e=$EPOCHREALTIME
    echo "$s $e"
    (( ${e%.*} >= deadline )) && break
done
"""


def submit_loop(t: Target, cfg: Config) -> list[Sample]:
    """``gbatch true`` N times in a bash loop; the per-call wall time."""
    t.fresh()
    deadline = int(time.time() + cfg.budget_for(t))
    done = subprocess.run(
        ["bash", "-c", _LOOP, "loop", str(cfg.submit_calls), str(deadline)],
        env=t.env,
        cwd=t.work,
        capture_output=True,
        text=True,
        timeout=cfg.budget_for(t) + 120,
        check=False,
    )
    calls, fails = [], 0
    for line in done.stdout.splitlines():
        if line == "fail":
            fails += 1
            continue
        s, e = (float(x) for x in line.split())
        calls.append(_ms(e - s))
    note = "" if len(calls) + fails >= cfg.submit_calls else f"cut at {len(calls)} calls"
    out = [Sample("submit.gbatch_ms", calls, note)]
    out.append(Sample("submit.gbatch_failed", [float(fails)]))
    return out


def submit_array(t: Target, cfg: Config) -> list[Sample]:
    """One ``gbatch --array 1-10000 true``; then ``gqueue -n 10`` while it drains.

    (The 1,000-task array's acceptance is timed by the throughput workload.)
    """
    key = "submit.array10k_s"
    t.fresh()
    t0 = time.perf_counter()
    try:
        done = t.cli(
            "gbatch",
            "--array",
            f"1-{cfg.array_size}",
            "true",
            check=False,
            timeout=cfg.array_timeout,
        )
    except subprocess.TimeoutExpired:
        return [Sample(key, [], f"no answer in {cfg.array_timeout:.0f} s")]
    spent = time.perf_counter() - t0
    if done.returncode != 0:
        msg = (done.stderr.strip().splitlines() or ["?"])[0][:70]
        return [Sample(key, [], f"exit {done.returncode}: {msg}")]
    n = len(submitted_ids(done.stdout))
    out = [Sample(key, [spent], "" if n == cfg.array_size else f"{n} accepted")]
    t1 = time.perf_counter()
    q = t.cli("gqueue", "-n", "10", check=False, timeout=120)
    if q.returncode == 0:
        out.append(Sample("submit.gqueue_busy_ms", [_ms(time.perf_counter() - t1)]))
    return out


# ------------------------------------------------------------ 2. dependency release


def chain(t: Target, cfg: Config) -> list[Sample]:
    """A gated head, then N-1 ``gbatch --depends-on @ true``; open the gate."""
    t.fresh()
    script, gate = t.gate_script("head")
    ids = t.submit(str(script))
    for _ in range(cfg.chain - 1):
        ids += t.submit("--depends-on", "@", "true")
    t_gate = time.time()
    gate.touch()
    jobs, complete = wait_final(t, ids, cfg.budget_for(t))
    links = _links(jobs, list(itertools.pairwise(ids)))
    out = [Sample("dep.chain_link_ms", links, "" if complete else f"{len(links)} links in budget")]
    ends = [j.end for j in jobs.values() if j.end is not None]
    if complete and ends:
        out.append(Sample("dep.chain_wall_s", [max(ends) - t_gate]))
    else:
        out.append(Sample("dep.chain_wall_s", [], f"> {cfg.budget_for(t):.0f} s (cut)"))
    out.append(Sample("dep.chain_misreported", [float(_misreported(t, jobs))]))
    return out


def fanout(t: Target, cfg: Config) -> list[Sample]:
    """A gated parent, a 50-task array depending on it, one job depending on all 50."""
    t.fresh()
    script, gate = t.gate_script("root")
    root = t.submit(str(script))[0]
    kids = t.submit("--array", f"1-{cfg.fan}", "--depends-on", str(root), "true")
    join = t.submit("--depends-on-all", ",".join(map(str, kids)), "true")[0]
    t_gate = time.time()
    gate.touch()
    jobs, complete = wait_final(t, [root, *kids, join], cfg.budget_for(t))
    release = _links(jobs, [(root, k) for k in kids])
    out = [Sample("dep.fan_release_ms", release, "" if complete else "cut")]
    if release:
        out.append(Sample("dep.fan_last_ms", [max(release)]))
    kid_ends = [jobs[k].end for k in kids if k in jobs and jobs[k].end is not None]
    j = jobs.get(join)
    if complete and j and j.start is not None and len(kid_ends) == len(kids):
        out.append(Sample("dep.join_ms", [_ms(j.start - max(kid_ends))]))
        out.append(Sample("dep.fan_wall_s", [(j.end or j.start) - t_gate]))
    else:
        out.append(Sample("dep.fan_wall_s", [], f"> {cfg.budget_for(t):.0f} s (cut)"))
    return out


# ------------------------------------------------------------ 3. throughput


def throughput(t: Target, cfg: Config) -> list[Sample]:
    """N independent ``true`` jobs (one array); jobs/s and whether any was misreported."""
    t.fresh()
    t0 = time.time()
    ids = t.submit("--array", f"1-{cfg.jobs}", "true")
    accepted = time.time() - t0
    jobs, complete = wait_final(t, ids, cfg.budget_for(t))
    final = [j for j in jobs.values() if j.state in FINAL]
    ends = [j.end for j in final if j.end is not None]
    out = [Sample("submit.array1k_ms", [_ms(accepted)])] if cfg.jobs == 1000 else []
    if ends:
        out.append(Sample("thr.jobs_per_s", [len(final) / max(max(ends) - t0, 1e-6)]))
    if complete and ends:
        out.append(Sample("thr.wall_s", [max(ends) - t0]))
    else:
        note = f"{len(final)}/{len(ids)} final at {cfg.budget_for(t):.0f} s (cut)"
        out.append(Sample("thr.wall_s", [], note))
    out.append(Sample("thr.misreported", [float(_misreported(t, jobs))]))
    states: dict[str, int] = {}
    for j in final:
        states[j.state] = states.get(j.state, 0) + 1
    out.append(Sample("thr.unfinished", [float(len(ids) - len(final))], json.dumps(states)))
    return out


# ------------------------------------------------------------ 3b. event cost vs queue size


def event_cost(t: Target, cfg: Config) -> list[Sample]:
    """The cost of one job end as the queue grows: ``--array 1-N%1 true`` (one task at a
    time, the others queued behind the throttle) with N = 1k, 10k, 100k (``--quick``:
    1k, 10k). Per tier: task end -> next task start (ms), and the daemon's CPU time per
    job end (ms), over ``cfg.events`` consecutive tasks once the submission is in."""
    if not isinstance(t, Ours):
        return []  # runqd has no array throttle to queue jobs behind
    out: list[Sample] = []
    for size in cfg.queue_tiers:
        label = f"{size // 1000}k"
        t.fresh()
        ids = t.submit("--array", f"1-{size}%1", "true", timeout=cfg.array_timeout * 5)
        pid = t.pid()
        if not ids or pid is None:
            out.append(Sample(f"event.link_ms@{label}", [], "submission failed"))
            continue
        first = _running_task(t, ids, time.monotonic() + cfg.budget)
        cpu0 = proc_stat(pid)["cpu_s"]
        wanted = ids[first : first + cfg.events + 1]
        jobs, _ = wait_final(t, wanted[:-1], cfg.budget)
        cpu1 = proc_stat(pid)["cpu_s"]
        links = _links(jobs | t.jobs(wanted[-1:]), list(itertools.pairwise(wanted)))
        ended = sum(1 for i in wanted[:-1] if i in jobs and jobs[i].state in FINAL)
        out.append(Sample(f"event.link_ms@{label}", links))
        if ended:
            out.append(Sample(f"event.cpu_ms@{label}", [_ms(cpu1 - cpu0) / ended]))
        t.teardown()
    return out


def _running_task(t: Ours, ids: list[int], deadline: float) -> int:
    """The index in ``ids`` of the first task not final yet (the throttle runs one)."""
    final = ",".join(f"'{state}'" for state in FINAL)
    sql = f"SELECT min(id) FROM jobs WHERE id BETWEEN ? AND ? AND state NOT IN ({final})"
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{t.db_path}?mode=ro", uri=True, timeout=10)
        try:
            (first,) = db.execute(sql, (ids[0], ids[-1])).fetchone()
        finally:
            db.close()
        if first is not None:
            return min(ids.index(first), len(ids) - 1)
        time.sleep(0.05)
    raise BenchError("no task of the throttled array is left to run")


# ------------------------------------------------------------ 4. listing (+ restart, RSS)


LISTINGS = {
    "list.default": ["gqueue"],
    "list.all_n10": ["gqueue", "-a", "-n", "10"],
    "list.j5": ["gqueue", "-j", "5"],
    "list.all": ["gqueue", "-a"],
    "list.tree": ["gqueue", "-t"],
}


def time_commands(
    t: Target, commands: dict[str, list[str]], max_runs: int
) -> dict[str, tuple[list[float], str]]:
    """Wall time (ms) of each command: hyperfine when installed, else a timing loop."""
    out: dict[str, tuple[list[float], str]] = {}
    hyperfine = shutil.which("hyperfine")
    for key, argv in commands.items():
        cmd = " ".join([t.bin(argv[0]), *argv[1:]])
        if hyperfine:
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                done = subprocess.run(
                    [
                        *(hyperfine, "-N", "--style", "none", "--warmup", "2", "-m", "3"),
                        *("-M", str(max_runs), "-i", "--export-json", tmp.name, cmd),
                    ],
                    env=t.env,
                    cwd=t.work,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=900,
                )
                if done.returncode != 0:
                    out[key] = ([], f"hyperfine failed: {done.stderr.strip()[:80]}")
                    continue
                result = json.loads(Path(tmp.name).read_text())["results"][0]
                codes = set(result.get("exit_codes") or [0])
                note = "" if codes == {0} else f"exit {sorted(codes)}"
                out[key] = ([_ms(x) for x in result["times"]], note)
        else:
            times = []
            for i in range(max_runs + 2):
                t0 = time.perf_counter()
                t.cli(*argv, check=False, stdout=subprocess.DEVNULL)
                if i >= 2:
                    times.append(_ms(time.perf_counter() - t0))
            out[key] = (times, "timing loop")
    return out


def _first_rows(t: Target, runs: int) -> list[float]:
    """``gqueue -a``: ms until its first job row can be read from its output."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with subprocess.Popen(
            [t.bin("gqueue"), "-a"], env=t.env, cwd=t.work, stdout=subprocess.PIPE
        ) as proc:
            assert proc.stdout is not None
            proc.stdout.readline()  # the header
            if proc.stdout.readline():
                times.append(_ms(time.perf_counter() - t0))
            proc.stdout.read()
    return times


def _active_jobs(t: Target, name: str) -> None:
    """A running gated job and two queued dependents, so the default view is not empty."""
    script, _ = t.gate_script(name)
    head = t.submit(str(script))[0]
    t.submit("--depends-on", str(head), "true")
    t.submit("--depends-on", str(head), "true")


def listing(t: Target, cfg: Config) -> list[Sample]:
    """gqueue views with 0, 10k and 100k finished jobs; restart time at 10k; RSS at 100k.

    Each tier gets a fresh set of active jobs (the previous set is let go), so the
    default view always shows one running and two queued jobs.
    """
    t.fresh()
    out: list[Sample] = []
    have = 0
    for tier in cfg.tiers:
        label = "0" if tier == 0 else f"{tier // 1000}k"
        if tier > have:
            add_history(t, tier - have)
            have = tier
        _active_jobs(t, f"hold{label}")
        pid = t.pid()
        if pid and tier == max(cfg.tiers):
            out.append(Sample(f"daemon.rss_{label}_mb", [proc_stat(pid)["rss_mb"]]))
        for key, (times, note) in time_commands(t, LISTINGS, cfg.hyperfine_max).items():
            out.append(Sample(f"{key}@{label}", times, note))
        if tier:
            out.append(Sample(f"list.all_first_row_ms@{label}", _first_rows(t, 3)))
        pid = t.pid()
        if pid and tier == max(cfg.tiers):
            st = proc_stat(pid)
            out.append(Sample(f"daemon.rss_{label}_listed_mb", [st["rss_mb"]]))
            out.append(Sample(f"daemon.hwm_{label}_mb", [st["hwm_mb"]]))
        if tier == 10_000:
            restarts = []
            for _ in range(cfg.restarts):
                t.down()
                restarts.append(t.up())
            out.append(Sample("daemon.restart_10k_s", restarts))
        (t.work / f"hold{label}.open").touch()
    return out


# ------------------------------------------------------------ 5. daemon cost


def idle(targets: list[Target], cfg: Config) -> dict[str, list[Sample]]:
    """Every target's empty daemon, side by side: RSS, CPU seconds and wake-ups when idle."""
    pids = {}
    for t in targets:
        t.fresh()
        pid = t.pid()
        if pid is None:
            raise BenchError(f"{t.name}: no daemon pid")
        pids[t.name] = pid
    time.sleep(3)  # let start-up settle
    before = {name: proc_stat(pid) for name, pid in pids.items()}
    time.sleep(cfg.idle_s)
    out: dict[str, list[Sample]] = {}
    for name, pid in pids.items():
        after = proc_stat(pid)
        b = before[name]
        out[name] = [
            Sample("idle.rss_mb", [after["rss_mb"]]),
            Sample("idle.cpu_s", [after["cpu_s"] - b["cpu_s"]], f"over {cfg.idle_s:.0f} s"),
            Sample("idle.wakeups_per_s", [(after["runs"] - b["runs"]) / cfg.idle_s]),
            Sample("idle.threads", [after["threads"]]),
        ]
    for t in targets:
        t.teardown()
    return out


# ------------------------------------------------------------ 6. client start-up


CLIENTS = {
    "client.python_pass": ["python", "-c", "pass"],
    "client.gqueue_help": ["gqueue", "--help"],
    "client.gqueue_empty": ["gqueue"],
    "client.gbatch_help": ["gbatch", "--help"],
    "client.gbatch_true": ["gbatch", "true"],
}


def clients(t: Target, cfg: Config) -> list[Sample]:
    """Each client command, and ``python -c pass`` (the floor) timed in turn with them,
    round after round, so each ratio compares times taken under the same load."""
    t.fresh()
    rounds = 4
    timed: dict[str, list[float]] = {key: [] for key in CLIENTS}
    notes: dict[str, str] = {}
    for _ in range(rounds):
        got = time_commands(t, CLIENTS, max(cfg.hyperfine_max * 2 // rounds, 3))
        for key, (times, note) in got.items():
            timed[key] += times
            notes[key] = notes.get(key) or note
    out = [Sample(key, times, notes[key]) for key, times in timed.items()]
    floor = median(timed["client.python_pass"]) if timed["client.python_pass"] else 0
    for key, times in timed.items():
        if floor and times and key != "client.python_pass":
            out.append(Sample(f"{key}_x_pass", [median(times) / floor]))
    cpu = _cpu_ms(t, rounds * 4)
    for key, times in cpu.items():
        out.append(Sample(f"{key}_cpu_ms", times))
        if key != "client.python_pass":
            ratio = median(times) / median(cpu["client.python_pass"])
            out.append(Sample(f"{key}_cpu_x_pass", [ratio]))
    return out


def _cpu_ms(t: Target, runs: int) -> dict[str, list[float]]:
    """CPU time (user + system, ms) of each client command: unlike wall time, hardly
    moved by what else the machine runs."""
    import resource

    got: dict[str, list[float]] = {key: [] for key in CLIENTS}
    for _ in range(runs):
        for key, argv in CLIENTS.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t.cli(*argv, check=False)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            got[key].append(_ms(spent))
    return got


Workload = Callable[[Target, Config], list[Sample]]

# (name, function, executors it runs on, repeat?)
WORKLOADS: list[tuple[str, Workload, tuple[str, ...], bool]] = [
    ("client start-up", clients, ("process",), False),
    ("submit loop", submit_loop, ("process", "tmux"), False),
    ("submit array", submit_array, ("process",), True),
    ("dependency chain", chain, ("process", "tmux"), True),
    ("fan-out + join", fanout, ("process", "tmux"), True),
    ("throughput", throughput, ("process", "tmux"), True),
    ("event cost", event_cost, ("process",), False),
    ("listing", listing, ("process",), False),
]


def median(values: list[float]) -> float:
    return statistics.median(values)
