"""gstats: how many jobs ran, how long they waited and ran, GPU-hours, success rate."""

from __future__ import annotations

import os

from gflow.cli.common import EXIT_OK, Parser, add_common, client, clock, hms, now_local, run

EXAMPLES = """
gstats                       my jobs, all time
gstats --since 7d            the last week
gstats --all-users -o json   everyone, as JSON
gstats completion bash       a shell completion script (also zsh, fish)
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATES = ["Finished", "Failed", "Cancelled", "Timeout", "Running", "Queued", "Hold"]


def build_parser() -> Parser:
    p = Parser("gstats", "Usage statistics of finished and active jobs.", EXAMPLES)
    add_common(p)
    p.add_argument("-u", "--user", metavar="USERS", help="users (default: you), or all")
    p.add_argument("-a", "--all-users", action="store_true", help="every user's jobs")
    p.add_argument("-t", "--since", metavar="WHEN", help="1h, 7d, today or an ISO date/time")
    p.add_argument("-o", "--output", choices=["table", "json", "csv"], default="table")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["completion"]:
        from gflow.cli.completion import completion_main

        return completion_main("gstats", build_parser(), argv[1:])
    args = build_parser().parse_args(argv)
    since = None
    if args.since:
        from gflow.parse import parse_since

        since = parse_since(args.since, now_local())
    users = "all" if args.all_users else (args.user or "me")
    stats = client(args).get("/v1/stats", users=users, since=since)
    shown = _login() if users == "me" else users
    print(render(stats, args.output, shown))
    return EXIT_OK


def _login() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def render(s: dict[str, Any], output: str, users: str) -> str:
    if output == "json":
        import json

        return json.dumps(s, indent=2)
    flat = [("total_jobs", s["total_jobs"])]
    flat += [(f"{st.lower()}_jobs", s["by_state"].get(st, 0)) for st in STATES]
    flat += [
        (k, s[k])
        for k in (
            "avg_wait_secs",
            "avg_runtime_secs",
            "total_gpu_hours",
            "jobs_with_gpus",
            "success_rate",
        )
    ]
    if output == "csv":
        return "metric,value\n" + "\n".join(f"{k},{'' if v is None else v}" for k, v in flat)
    total = s["total_jobs"] or 1
    since = clock(s["since"]) if s["since"] else "all time"
    rate = "-" if s["success_rate"] is None else f"{100 * s['success_rate']:.1f}%"
    lines = [f"Usage statistics  user: {users}  since: {since}", "─" * 60, "Jobs"]
    lines.append(f"  {'Total':<12}{s['total_jobs']}")
    for st in STATES:
        n = s["by_state"].get(st, 0)
        if n:
            lines.append(f"  {st:<12}{n} ({100 * n / total:.0f}%)")
    lines += [
        "Efficiency",
        f"  {'Avg wait':<12}{hms(s['avg_wait_secs'])}",
        f"  {'Avg runtime':<12}{hms(s['avg_runtime_secs'])}",
        f"  {'GPU-hours':<12}{s['total_gpu_hours']:.1f}h ({s['jobs_with_gpus']} jobs with GPUs)",
        f"  {'Success':<12}{rate} (Finished among Finished, Failed and Timeout)",
    ]
    return "\n".join(lines)


def entry() -> None:
    run("gstats", main)


if __name__ == "__main__":
    entry()
