"""gflow on Slurm against plain Slurm, on the same cluster and the same work.

    .venv/bin/python bench/slurm.py [--chain 100] [--fanout 50] [--submits 20] [--out FILE]
                                    [--only plain|native|held] [--poll SECONDS]

Needs root: it starts the test cluster (``tests/slurm/cluster.sh``) or joins the one
test sessions use, and stops it afterwards only if it was the last to use it. Each
workload runs three ways, on the same cluster: by hand with ``sbatch --dependency``
("plain"); through gflow with the Slurm executor, Slurm holding the dependencies
("native"); and through gflow holding every dependency itself and submitting a job once
it can start ("held", ``native_dependencies = false``: a parent's end is seen by gflow's
``squeue`` poll).

* submit: one ``sbatch --parsable`` → the Slurm job id, per call (ms); for gflow, one
  ``gbatch`` until the job's Slurm id is recorded;
* chain: a gated head, then N-1 jobs each ``afterok`` on the one before; parent end →
  child start per link (ms) and gate → last end (s);
* fan-out: a gated parent, M children ``afterok`` on it, one join ``afterok`` on all M;
  parent end → child start per child (ms) and gate → join end (s).

Every job stamps its own start and end (``date +%s.%N`` into a file on the shared
directory), so latencies are what the work sees, at sub-second resolution (Slurm's own
times are whole seconds).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    name: str
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, values: Sequence[float]) -> None:
        self.samples.setdefault(key, []).extend(values)


def stamped(stamps: Path, tag: str, body: str = "true") -> str:
    """Shell code that records when it starts and ends (file ``stamps/tag``)."""
    f = stamps / tag
    return f"echo S $(date +%s.%N) > {f}; {body}; echo E $(date +%s.%N) >> {f}"


def read_stamps(stamps: Path, tag: str) -> tuple[float, float]:
    start = end = 0.0
    for line in (stamps / tag).read_text().splitlines():
        kind, value = line.split()
        if kind == "S":
            start = float(value)
        else:
            end = float(value)
    return start, end


def wait_files(paths: list[Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.exists() and "E " in p.read_text() for p in paths):
            return
        time.sleep(0.05)
    missing = [p.name for p in paths if not (p.exists() and "E " in p.read_text())]
    raise RuntimeError(f"timed out waiting for {len(missing)} jobs, e.g. {missing[:5]}")


# ------------------------------------------------------------------ submitters


class Plain:
    """``sbatch --parsable --dependency=...`` by hand."""

    name = "plain sbatch"

    def __init__(self, work: Path, poll: float = 0.0) -> None:
        self.work = work

    def submit(self, code: str, after: Sequence[str] = ()) -> str:
        args = ["sbatch", "--parsable", f"--chdir={self.work}", "--output=/dev/null"]
        if after:
            args.append("--dependency=afterok:" + ":".join(after))
        done = subprocess.run(
            [*args, "--wrap", code], capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout.strip().split(";")[0]

    def close(self) -> None:
        pass


class OnSlurm:
    """gflow with the Slurm executor: ``gbatch --depends-on`` (Slurm holds dependencies
    natively), or with ``held`` gflow holds every dependency and submits a job once it can
    start (``native_dependencies = false``, released by gflow's poll of ``squeue``)."""

    def __init__(self, work: Path, held: bool = False, poll: float = 2.0) -> None:
        sys.path.insert(0, str(REPO / "bench"))
        from targets import Ours

        self.name = f"gflow on Slurm, {'gflow holds' if held else 'native'} (poll {poll:g} s)"
        self.target = Ours("slurm")
        self.target.home = Path(tempfile.mkdtemp(prefix="gbs", dir="/tmp"))
        self.target.work = work
        self.target.env = {
            **self.target._env(),
            "GFLOW_SLURM__POLL_INTERVAL": str(poll),
            "GFLOW_SLURM__NATIVE_DEPENDENCIES": "false" if held else "true",
        }
        self.target.up()

    def submit(self, code: str, after: Sequence[str] = ()) -> str:
        args = ["--depends-on-all", ",".join(after)] if after else []
        return str(self.target.submit(*args, code)[0])

    def slurm_id(self, job: str, timeout: float = 60) -> str:
        """The job's Slurm id, once gflow has recorded it."""
        deadline = time.monotonic() + timeout
        db = sqlite3.connect(f"file:{self.target.db_path}?mode=ro", uri=True, timeout=10)
        try:
            while time.monotonic() < deadline:
                row = db.execute("SELECT slurm_id FROM jobs WHERE id=?", (int(job),)).fetchone()
                if row and row[0] and str(row[0]).isdigit():
                    return str(row[0])
                time.sleep(0.002)
        finally:
            db.close()
        raise RuntimeError(f"job {job} got no Slurm id in {timeout} s")

    def close(self) -> None:
        ids = _gflow_slurm_ids(self.target.db_path)
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, check=False)
        self.target.teardown()


def _gflow_slurm_ids(db_path: Path) -> list[str]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT slurm_id FROM jobs WHERE slurm_id GLOB '[0-9]*'").fetchall()
    finally:
        db.close()
    return [str(r[0]) for r in rows]


Submitter = Plain | OnSlurm
MAKERS: dict[str, Callable[[Path, float], Submitter]] = {
    "plain": Plain,
    "native": lambda work, poll: OnSlurm(work, False, poll),
    "held": lambda work, poll: OnSlurm(work, True, poll),
}


# ------------------------------------------------------------------ workloads


def submit_latency(s: Submitter, count: int) -> Result:
    r = Result("submit")
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        job = s.submit("true")
        if isinstance(s, OnSlurm):
            s.slurm_id(job)
        times.append((time.perf_counter() - t0) * 1000)
    r.add("submit → Slurm id (ms)", times)
    return r


def chain(s: Submitter, stamps: Path, links: int) -> Result:
    gate = stamps / "gate-chain"
    ids = [s.submit(stamped(stamps, "c0", f"while [ ! -e {gate} ]; do sleep 0.05; done"))]
    for i in range(1, links):
        ids.append(s.submit(stamped(stamps, f"c{i}"), after=[ids[-1]]))
    opened = time.time()
    gate.touch()
    wait_files([stamps / f"c{i}" for i in range(links)], timeout=30 + links * 10)
    times = [read_stamps(stamps, f"c{i}") for i in range(links)]
    r = Result("chain")
    r.add(
        "parent end → child start (ms)",
        [(times[i][0] - times[i - 1][1]) * 1000 for i in range(1, links)],
    )
    r.add("gate → last end (s)", [times[-1][1] - opened])
    return r


def fanout(s: Submitter, stamps: Path, width: int) -> Result:
    gate = stamps / "gate-fan"
    parent = s.submit(stamped(stamps, "p", f"while [ ! -e {gate} ]; do sleep 0.05; done"))
    kids = [s.submit(stamped(stamps, f"k{i}"), after=[parent]) for i in range(width)]
    s.submit(stamped(stamps, "join"), after=kids)
    opened = time.time()
    gate.touch()
    wait_files([stamps / "join"], timeout=60 + width * 10)
    p_end = read_stamps(stamps, "p")[1]
    r = Result("fan-out")
    r.add(
        "parent end → child start (ms)",
        [(read_stamps(stamps, f"k{i}")[0] - p_end) * 1000 for i in range(width)],
    )
    last_kid = max(read_stamps(stamps, f"k{i}")[1] for i in range(width))
    r.add("last child end → join start (ms)", [(read_stamps(stamps, "join")[0] - last_kid) * 1000])
    r.add("gate → join end (s)", [read_stamps(stamps, "join")[1] - opened])
    return r


# ------------------------------------------------------------------ running


def join_slurm() -> Any:
    """The test cluster, started if needed and held (shared with test sessions) until left."""
    sys.path.insert(0, str(REPO))
    from tests.slurm.cluster import Cluster

    cluster = Cluster()
    why = cluster.join()
    if why is not None:
        raise SystemExit(f"no Slurm: {why}")
    return cluster


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return (
        f"median {statistics.median(values):.1f}  min {min(values):.1f}  "
        f"max {max(values):.1f}  n={len(values)}"
    )


def run_all(
    makers: list[Callable[[Path], Submitter]], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    for make in makers:
        work = Path(tempfile.mkdtemp(prefix="gflow-bench-slurm-", dir="/tmp"))
        s = make(work)
        print(f"-- {s.name}", file=sys.stderr, flush=True)
        try:
            got: dict[str, list[float]] = {}
            parts = [submit_latency(s, args.submits)]
            if args.chain:
                parts.append(chain(s, work, args.chain))
            if args.fanout:
                parts.append(fanout(s, work, args.fanout))
            for part in parts:
                for key, values in part.samples.items():
                    got[f"{part.name}: {key}"] = values
            results[s.name] = got
        finally:
            s.close()
    return results


GOAL = 1.10
"""gflow on Slurm, Slurm holding the dependencies, adds at most 10% to plain Slurm."""
GOAL_KEYS = (
    "chain: parent end → child start (ms)",
    "chain: gate → last end (s)",
    "fan-out: parent end → child start (ms)",
    "fan-out: gate → join end (s)",
)
"""The figures the goal is about: the work itself. Not one submission's latency: gbatch is
a Python process (some 40 ms to start) where sbatch is a C program."""


def report(results: dict[str, dict[str, list[float]]]) -> None:
    """Every figure with its ratio of medians to plain sbatch; the goal where it applies."""
    plain = results.get(Plain.name, {})
    for target, metrics in results.items():
        print(f"== {target}")
        for key, values in metrics.items():
            line = f"  {key:45s} {summary(values)}"
            if target != Plain.name and plain.get(key):
                ratio = statistics.median(values) / max(statistics.median(plain[key]), 1e-9)
                line += f"  ({ratio:.2f}× plain)"
                if "native" in target and key in GOAL_KEYS:
                    line += f"  goal <= {GOAL:.2f}×: {'met' if ratio <= GOAL else 'MISSED'}"
            print(line)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/slurm.py", description=__doc__.split("\n")[0])
    p.add_argument("--chain", type=int, default=100, help="links of the chain (0: skip)")
    p.add_argument("--fanout", type=int, default=50, help="children of the fan-out (0: skip)")
    p.add_argument("--submits", type=int, default=20, help="timed submissions")
    p.add_argument(
        "--out", type=Path, help="every sample as JSON (default bench/results/slurm-<time>.json)"
    )
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(MAKERS),
        help="run only these (repeatable; default: all)",
    )
    p.add_argument("--poll", type=float, default=2.0, help="gflow's poll_interval (s)")
    args = p.parse_args(argv)
    makers = [
        (lambda work, k=k: MAKERS[k](work, args.poll)) for k in MAKERS if k in (args.only or MAKERS)
    ]
    cluster = join_slurm()
    try:
        results = run_all(makers, args)
    finally:
        cluster.leave()
    report(results)
    out = args.out or REPO / "bench" / "results" / f"slurm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"samples: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
