"""Turn samples into the table, the goal verdicts and the JSON document."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

UNITS = {"_per_s": "/s", "_ms": "ms", "_s": "s", "_mb": "MB"}

LABELS = {
    "client.python_pass": "python -c pass (the floor)",
    "client.gbatch_true": "gbatch true",
    "client.gqueue_help": "gqueue --help",
    "client.gqueue_empty": "gqueue, empty queue",
    "client.gbatch_help": "gbatch --help",
    "submit.gbatch_ms": "gbatch true, per call (bash loop)",
    "submit.gbatch_failed": "gbatch calls that failed",
    "submit.array1k_ms": "gbatch --array 1-1000 accepted (throughput)",
    "submit.array10k_s": "gbatch --array 1-10000 true accepted",
    "submit.gqueue_busy_ms": "gqueue -n 10 right after the 10k array",
    "dep.chain_link_ms": "chain: parent end -> child start",
    "dep.chain_wall_s": "100-job chain: gate -> last end",
    "dep.chain_misreported": "chain jobs not Finished/0",
    "dep.fan_release_ms": "fan-out: parent end -> each child start",
    "dep.fan_last_ms": "fan-out: parent end -> last child start",
    "dep.join_ms": "join: last child end -> join start",
    "dep.fan_wall_s": "fan-out+join: gate -> join end",
    "thr.jobs_per_s": "1000 true jobs: jobs completed per s",
    "thr.wall_s": "1000 true jobs: submit -> last end",
    "thr.misreported": "1000 true jobs: not Finished/exit 0",
    "thr.unfinished": "1000 true jobs: not final at the end",
    "event.link_ms": "throttled array: task end -> next start",
    "event.cpu_ms": "daemon CPU per job end",
    "list.default": "gqueue",
    "list.all_n10": "gqueue -a -n 10",
    "list.j5": "gqueue -j 5",
    "list.all": "gqueue -a",
    "list.all_first_row_ms": "gqueue -a: its first row",
    "list.tree": "gqueue -t",
    "daemon.restart_10k_s": "restart (up -> healthy), 10k history",
    "daemon.rss_100k_mb": "RSS, 100k history, after start",
    "daemon.rss_100k_listed_mb": "RSS, 100k history, after the listings",
    "daemon.hwm_100k_mb": "peak RSS, 100k history",
    "daemon.rss_10k_mb": "RSS, 10k history, after start",
    "daemon.rss_10k_listed_mb": "RSS, 10k history, after the listings",
    "daemon.hwm_10k_mb": "peak RSS, 10k history",
    "idle.rss_mb": "RSS, idle, empty",
    "idle.cpu_s": "CPU seconds while idle",
    "idle.wakeups_per_s": "wake-ups per second while idle",
    "idle.threads": "threads",
}

HIGHER_IS_BETTER = {"thr.jobs_per_s"}
COUNTS = {
    "submit.gbatch_failed",
    "dep.chain_misreported",
    "thr.misreported",
    "thr.unfinished",
    "idle.threads",
}


def label(key: str) -> str:
    base, _, tier = key.partition("@")
    if base.endswith("_cpu_x_pass"):
        return f"{LABELS.get(base[: -len('_cpu_x_pass')], base)}: CPU, times python's"
    if base.endswith("_cpu_ms"):
        return f"{LABELS.get(base[: -len('_cpu_ms')], base)}: CPU time"
    if base.endswith("_x_pass"):
        return f"{LABELS.get(base[: -len('_x_pass')], base)}: times python -c pass"
    text = LABELS.get(base, base)
    kind = "queued" if base.startswith("event.") else "history"
    return f"{text}  [{tier} {kind}]" if tier else text


def unit(key: str) -> str:
    if key.split("@")[0] in COUNTS:
        return ""
    base = key.split("@")[0]
    if base.endswith("_x_pass"):
        return "x"
    if base.endswith("_cpu_ms"):
        return "ms"
    if base.startswith(("list.", "client.")):
        return "ms"
    for suffix, u in UNITS.items():
        if base.endswith(suffix):
            return u
    return ""


@dataclass(frozen=True, slots=True)
class Goal:
    key: str
    executor: str | None  # None: every executor
    op: str  # "<=", "<", "==", "flat"
    limit: float
    text: str


GOALS = [
    Goal("dep.chain_link_ms", "process", "<=", 10, "parent end -> dependent start <= 10 ms"),
    Goal("dep.chain_link_ms", "tmux", "<=", 50, "parent end -> dependent start <= 50 ms"),
    Goal("dep.chain_wall_s", "process", "<", 3, "100-job chain < 3 s"),
    Goal("thr.wall_s", None, "<", 20, "1,000 true jobs all Finished < 20 s"),
    Goal("thr.misreported", None, "==", 0, "none misreported"),
    Goal("thr.unfinished", None, "==", 0, "none left unfinished"),
    Goal("submit.gbatch_ms", None, "<=", 35, "gbatch <= 35 ms median"),
    Goal("submit.array10k_s", None, "<", 1, "10,000-job array accepted < 1 s"),
    Goal("list.all_n10@10k", None, "<=", 60, "gqueue -a -n 10, 10k history <= 60 ms"),
    Goal("list.j5@10k", None, "<=", 60, "gqueue -j 5, 10k history <= 60 ms"),
    Goal("list.default", None, "flat", 1.25, "gqueue flat as history grows (<= 1.25x + 5 ms)"),
    Goal("daemon.restart_10k_s", None, "<=", 1, "restart to healthy, 10k jobs <= 1 s"),
    Goal("daemon.rss_100k_mb", None, "<=", 60, "RSS <= 60 MB with 100k history"),
    Goal("daemon.rss_100k_listed_mb", None, "<=", 60, "... and after listing it"),
    Goal("idle.wakeups_per_s", None, "<=", 1, "idle daemon wakes <= 1/s"),
    Goal("dep.fan_last_ms", None, "<=", 75, "50-job fan-out: last child started <= 75 ms"),
    Goal("thr.wall_s", "process", "<=", 2, "1,000 true jobs <= 2 s"),
    Goal("thr.wall_s", "tmux", "<=", 4, "1,000 true jobs <= 4 s"),
    Goal("list.all@100k", None, "<=", 1200, "gqueue -a, 100k history <= 1.2 s"),
    Goal("list.all_first_row_ms@100k", None, "<=", 100, "gqueue -a, first row <= 100 ms"),
    Goal("event.cpu_ms", None, "flat", 2.0, "CPU per job end, 1k -> 100k queued <= 2x + 5 ms"),
    Goal("event.link_ms", None, "flat", 2.0, "end -> next start, 1k -> 100k queued <= 2x + 5 ms"),
    Goal("client.gqueue_empty_x_pass", None, "<=", 1.6, "gqueue, empty <= 1.6x python -c pass"),
    Goal("client.gbatch_true_x_pass", None, "<=", 1.6, "gbatch true <= 1.6x python -c pass"),
    Goal("client.gqueue_empty_cpu_x_pass", None, "<=", 1.6, "gqueue, empty: CPU <= 1.6x python's"),
    Goal("client.gbatch_true_cpu_x_pass", None, "<=", 1.6, "gbatch true: CPU <= 1.6x python's"),
]


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def _fmt(value: float, u: str) -> str:
    if u == "" and float(value).is_integer():
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3f}"


def check_goals(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    verdicts = []
    for goal in GOALS:
        for target, metrics in results.items():
            kind, executor = target.split("/")
            if kind != "gflow" or (goal.executor and goal.executor != executor):
                continue
            verdict = _judge(goal, metrics)
            if verdict is not None:
                verdicts.append({"target": target, "goal": goal.text, "key": goal.key, **verdict})
    return verdicts


def _judge(goal: Goal, metrics: dict[str, Any]) -> dict[str, Any] | None:
    if goal.op == "flat":
        tiers = sorted(
            (k for k in metrics if k.startswith(goal.key + "@") and metrics[k]["stats"]),
            key=lambda k: _tier(k.split("@")[1]),
        )
        if len(tiers) < 2:
            return None
        lo, hi = metrics[tiers[0]]["stats"]["median"], metrics[tiers[-1]]["stats"]["median"]
        ok = hi <= lo * goal.limit + 5
        return {"value": f"{lo:.1f} -> {hi:.1f} ms", "pass": ok}
    m = metrics.get(goal.key)
    if m is None:
        return None
    st = m["stats"]
    if st is None:
        return {"value": m.get("note") or "no value", "pass": False}
    value = st["max"] if goal.op == "==" else st["median"]
    ok = {
        "<=": value <= goal.limit,
        "<": value < goal.limit,
        "==": value == goal.limit,
    }[goal.op]
    return {"value": f"{_fmt(value, unit(goal.key))} {unit(goal.key)}".strip(), "pass": ok}


def _tier(text: str) -> int:
    return int(text[:-1]) * 1000 if text.endswith("k") else int(text)


def ratio_text(key: str, ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    if not ours or not theirs or key.split("@")[0] in COUNTS:
        return ""
    a, b = ours["median"], theirs["median"]
    if a <= 0 or b <= 0:
        return ""
    factor = a / b if key in HIGHER_IS_BETTER else b / a
    return f"{factor:.2f}x faster" if factor >= 1 else f"{1 / factor:.2f}x slower"


def table(results: dict[str, dict[str, Any]], verdicts: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for metrics in results.values():
        for key in metrics:
            if key not in keys:
                keys.append(key)
    lines = []
    head = (
        f"{'metric':<50} {'target':<14} {'median':>9} {'min':>9} {'max':>9} {'n':>4}  "
        f"{'vs runqd':<14} note"
    )
    lines += [head, "-" * len(head)]
    section = ""
    for key in keys:
        sec = key.split(".")[0]
        if sec != section:
            if section:
                lines.append("")
            section = sec
        first = True
        for target, metrics in results.items():
            m = metrics.get(key)
            if m is None:
                continue
            u = unit(key)
            st = m["stats"]
            name = label(key) + (f" ({u})" if u else "") if first else ""
            first = False
            if st is None:
                cells = f"{'-':>9} {'-':>9} {'-':>9} {0:>4}"
            else:
                cells = (
                    f"{_fmt(st['median'], u):>9} {_fmt(st['min'], u):>9} "
                    f"{_fmt(st['max'], u):>9} {st['n']:>4}"
                )
            vs = ""
            kind, ex = target.split("/")
            if kind == "gflow":
                other = results.get(f"runqd/{ex}", {}).get(key)
                vs = ratio_text(key.split("@")[0], st, other["stats"] if other else None)
            note = m.get("note", "")
            for v in verdicts:
                if v["target"] == target and v["key"] == key:
                    note = (note + " " if note else "") + ("PASS" if v["pass"] else "FAIL")
            lines.append(f"{name[:50]:<50} {target:<14} {cells}  {vs:<14} {note}".rstrip())
    return "\n".join(lines)


def goals_text(verdicts: list[dict[str, Any]]) -> str:
    lines = ["", "Targets of issue 8 (gflow only):"]
    for v in verdicts:
        mark = "PASS" if v["pass"] else "FAIL"
        lines.append(f"  {mark}  {v['target']:<14} {v['goal']:<52} {v['value']}")
    return "\n".join(lines)
