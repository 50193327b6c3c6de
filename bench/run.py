"""gflow's benchmark: every workload of issue 8 against a fresh daemon, as a table and JSON.

    .venv/bin/python bench/run.py [--vs] [--quick] [--out results.json] [--only NAME]

``--vs`` runs the same workloads against the Rust gflow (PyPI ``runqd``, expected in
/tmp/runqd-venv or $GFLOW_BENCH_RUNQD) in the same run, alternating run by run, and
prints how many times faster or slower we are. ``--quick`` does one run of each with
smaller loops (about two minutes). See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import check_goals, goals_text, stats, table
from targets import (
    PYCACHE,
    REPO,
    RUNQD_BIN,
    BenchError,
    Target,
    make_targets,
    warm_bytecode,
)
from workloads import WORKLOADS, Config, Sample, idle


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    p.add_argument("--vs", action="store_true", help="also run the Rust gflow (runqd)")
    p.add_argument("--quick", action="store_true", help="one short run of each workload")
    p.add_argument("--out", type=Path, help="JSON file (default bench/results/<time>.json)")
    p.add_argument("--only", action="append", help="run only workloads whose name has this")
    p.add_argument(
        "--homes",
        default="/tmp",
        help="directory for the daemons' homes (e.g. /dev/shm: without the disk's file costs)",
    )
    args = p.parse_args(argv)
    Target.homes = args.homes
    if args.vs and not (RUNQD_BIN / "gflowd").exists():
        print(f"--vs needs runqd in {RUNQD_BIN} (pip install runqd msgpack)", file=sys.stderr)
        return 2
    cfg = Config.make(args.quick)
    warm_bytecode()
    targets = make_targets(args.vs, cfg.executors)
    samples: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}
    notes: dict[str, dict[str, list[str]]] = {t.name: {} for t in targets}
    errors: list[str] = []
    started = time.time()
    meta = _meta(args, cfg)  # the commit and load as the run starts

    def record(target: str, got: list[Sample]) -> None:
        for s in got:
            samples[target].setdefault(s.key, []).extend(s.values)
            if s.note and s.note not in notes[target].setdefault(s.key, []):
                notes[target][s.key].append(s.note)

    def wanted(name: str) -> bool:
        return not args.only or any(o in name for o in args.only)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # tear the daemons down on kill, too
    signal.signal(signal.SIGHUP, interrupted)
    try:
        for name, fn, executors, repeat in WORKLOADS:
            if not wanted(name):
                continue
            runs = cfg.reps if repeat else 1
            chosen = [t for t in targets if t.executor in executors]
            cut: set[str] = set()
            for rep in range(runs):
                for t in chosen:  # alternate targets run by run
                    if t.name in cut:
                        continue
                    t0 = time.monotonic()
                    _progress(f"{name} [{t.name}] run {rep + 1}/{runs}")
                    try:
                        record(t.name, fn(t, cfg))
                    except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
                        errors.append(f"{name} [{t.name}]: {exc}")
                        _progress(f"  error: {exc}")
                        cut.add(t.name)
                    finally:
                        t.teardown()
                    if time.monotonic() - t0 > cfg.budget_for(t) / 2:
                        cut.add(t.name)  # this slow, one run says enough
        if wanted("idle"):
            _progress(f"idle daemons, {cfg.idle_s:.0f} s, side by side")
            try:
                for target, got in idle(targets, cfg).items():
                    record(target, got)
            except (BenchError, OSError) as exc:
                errors.append(f"idle: {exc}")
    except KeyboardInterrupt:
        errors.append("interrupted")
    finally:
        for t in targets:
            t.teardown()

    results = _results(targets, samples, notes)
    verdicts = check_goals(results)
    doc = {
        "meta": {**meta, "seconds": time.time() - started},
        "results": results,
        "goals": verdicts,
        "errors": errors,
    }
    print()
    print(table(results, verdicts))
    print(goals_text(verdicts))
    if errors:
        print("\nErrors:\n  " + "\n  ".join(errors))
    out = args.out or REPO / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {out} ({doc['meta']['seconds']:.0f} s)")
    return 0 if not errors else 1


def _results(
    targets: list[Target],
    samples: dict[str, dict[str, list[float]]],
    notes: dict[str, dict[str, list[str]]],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in targets:
        metrics = {}
        for key, values in samples[t.name].items():
            metrics[key] = {
                "stats": stats(values),
                "samples": [round(v, 4) for v in values],
                "note": "; ".join(notes[t.name].get(key, [])),
            }
        out[t.name] = metrics
    return out


def _meta(args: argparse.Namespace, cfg: Config) -> dict[str, Any]:
    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    runqd = ""
    if args.vs:
        done = subprocess.run(
            [str(RUNQD_BIN / "gbatch"), "--version"], capture_output=True, text=True, check=False
        )
        runqd = done.stdout.strip()
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "homes": args.homes,
        "vs": args.vs,
        "commit": git("rev-parse", "HEAD"),
        "src_dirty": bool(git("status", "--porcelain", "--", "src")),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "kernel": platform.release(),
        "load_before": os.getloadavg(),
        "runqd": runqd,
        "bytecode": f"gflow's clients and daemon run with PYTHONPYCACHEPREFIX={PYCACHE}",
        "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "notes"},
        "history": "inserted with the daemon stopped: gflow via gflow.store (one batch, "
        "one Finished job and three events per job); runqd by appending to state.msgpack",
    }


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
