"""The Python API's cost: ``Client().submit`` per call, and ``Executor.map`` over 1,000
trivial calls (submit → every result back), on the process executor.

    .venv/bin/python bench/python_api.py [--calls 1000] [--submits 200] [--runs 3] [--out FILE]

A fresh daemon in a temporary home (as ``bench/run.py`` boots it); the measurements run
in a child process whose environment points at it, as a user's script would. ``map`` is
timed three ways: a builtin (``abs``: the job unpickles it by reference and imports
nothing, so this is gflow's own cost), a function defined in the running script (by
value: each job imports cloudpickle), and the builtin with ``chunksize=10`` (a job per
ten calls). Each ``map`` runs ``--runs`` times, the three ways in turn; the medians are
printed, with the fastest run. The goal: 1,000 calls in under 10 s, the time going to
the jobs' interpreters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from targets import Ours, warm_bytecode  # noqa: E402

GOAL = 10.0
MAP_BY_REFERENCE = "map_by_reference"
MAP_BY_VALUE = "map_by_value"
MAP_CHUNKSIZE_10 = "map_chunksize_10"


def inner(calls: int, submits: int, runs: int) -> dict[str, Any]:
    """Run in the child: the timings, in seconds (every run of each ``map``)."""
    import gflow

    out: dict[str, Any] = {}
    samples = []
    for _ in range(submits):
        t0 = time.perf_counter()
        gflow.Client().submit("true")
        samples.append(time.perf_counter() - t0)
    out["submit_median"] = statistics.median(samples)
    out["submit_min"] = min(samples)
    gflow.Client().wait("1-" + str(submits), timeout=600)

    def local(x: int) -> int:
        return abs(x)

    variants = [(MAP_BY_REFERENCE, abs, 1), (MAP_BY_VALUE, local, 1), (MAP_CHUNKSIZE_10, abs, 10)]
    for _ in range(runs):
        for name, fn, chunk in variants:
            with gflow.Executor() as ex:
                t0 = time.perf_counter()
                results = list(ex.map(fn, range(calls), chunksize=chunk))
                out.setdefault(name, []).append(time.perf_counter() - t0)
            assert results == list(range(calls)), name
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--submits", type=int, default=200)
    p.add_argument("--runs", type=int, default=3, help="runs of each map (the median is shown)")
    p.add_argument("--out", type=Path)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        print(json.dumps(inner(args.calls, args.submits, args.runs)))
        return 0
    warm_bytecode()
    load_before = os.getloadavg()[0]
    target = Ours("process")
    try:
        target.fresh()
        argv = [sys.executable, str(Path(__file__)), "--inner", "--calls", str(args.calls)]
        argv += ["--submits", str(args.submits), "--runs", str(args.runs)]
        done = subprocess.run(
            argv, env=target.env, cwd=target.work, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        target.teardown()
    n = args.calls
    print(
        f"Client().submit per call: median {result['submit_median'] * 1000:.1f} ms, "
        f"min {result['submit_min'] * 1000:.1f} ms ({args.submits} calls)"
    )
    for key in (MAP_BY_REFERENCE, MAP_BY_VALUE, MAP_CHUNKSIZE_10):
        wall = statistics.median(result[key])
        verdict = "meets" if wall < GOAL else "misses"
        goal = f"; the median {verdict} the {GOAL:g} s goal" if n == 1000 else ""
        print(
            f"Executor.map, {n} calls, {key[4:].replace('_', ' ')}: median {wall:.1f} s, "
            f"{wall / n * 1000:.1f} ms per call, fastest {min(result[key]):.1f} s "
            f"({len(result[key])} runs{goal})"
        )
    result["load_before"], result["load"] = load_before, os.getloadavg()[0]
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
