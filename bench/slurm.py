"""gflow on Slurm against plain Slurm, on the same cluster and the same work.

    .venv/bin/python bench/slurm.py [--chain 100] [--fanout 50] [--submits 20] [--out FILE]

Needs a Slurm (as root, ``tests/slurm/cluster.sh start`` starts the test cluster; it is
stopped afterwards only if this script started it). Workloads, each run by hand with
``sbatch --dependency`` ("plain"):

* submit: one ``sbatch --parsable`` → the Slurm job id, per call (ms);
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"


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

    def __init__(self, work: Path) -> None:
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


Submitter = Plain


# ------------------------------------------------------------------ workloads


def submit_latency(s: Submitter, count: int) -> Result:
    r = Result("submit")
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        s.submit("true")
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


def ensure_slurm() -> bool:
    """True if this script started the test cluster (and so must stop it)."""
    done = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise SystemExit(f"no Slurm: {(done.stderr or done.stdout).strip()}")
    return done.returncode == 0


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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/slurm.py", description=__doc__.split("\n")[0])
    p.add_argument("--chain", type=int, default=100, help="links of the chain (0: skip)")
    p.add_argument("--fanout", type=int, default=50, help="children of the fan-out (0: skip)")
    p.add_argument("--submits", type=int, default=20, help="timed submissions")
    p.add_argument("--out", type=Path, help="write every sample as JSON here")
    args = p.parse_args(argv)
    started = ensure_slurm()
    try:
        results = run_all([Plain], args)
    finally:
        if started:
            subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, check=False)
    for target, metrics in results.items():
        print(f"== {target}")
        for key, values in metrics.items():
            print(f"  {key:55s} {summary(values)}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
