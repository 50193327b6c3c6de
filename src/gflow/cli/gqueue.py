"""gqueue: list jobs — a table, a dependency tree, groups by state, JSON or CSV."""

from __future__ import annotations

import sys
import time

from gflow.cli.common import (
    EXIT_OK,
    Parser,
    UsageError,
    add_common,
    client,
    color_state,
    command_text,
    hms,
    limit_text,
    memory_text,
    now_local,
    run,
    safe,
    table,
    use_color,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

EXAMPLES = """
gqueue                       my queued, held and running jobs
gqueue -a -n -20             my last 20 jobs, finished ones included
gqueue -t                    dependency tree
gqueue -j 5 -f ST | tail -n 1
                             just the state code of job 5 (CD, F, R, ...), for scripts
gqueue -s Failed --since 1d -f JOBID,NAME,REASON
gqueue -u all -g             everyone's jobs, grouped by state
gqueue -w --interval 5       redraw every 5 seconds until Ctrl-C
gqueue completion bash       a shell completion script (also zsh, fish)
"""

DEFAULT_FIELDS = ["JOBID", "NAME", "ST", "TIME", "NODES", "NODELIST(REASON)"]
ACTIVE = "Queued,Hold,Running"
COMPLETED = "Finished,Failed,Cancelled,Timeout"
GROUP_ORDER = ["Running", "Queued", "Hold", "Finished", "Failed", "Cancelled", "Timeout"]


def _reason(job: dict[str, Any]) -> str:
    if job["reason"]:
        return str(job["reason"])
    if job["state"] == "Failed" and job["exit_code"] is not None:
        return f"ExitCode:{job['exit_code']}"
    return "-"


def _nodelist(job: dict[str, Any]) -> str:
    if job["state"] == "Running":
        return job.get("node") or ",".join(map(str, job["gpu_ids"])) or "-"
    reason = _reason(job)
    return f"({reason})" if reason != "-" else "-"


def _time(job: dict[str, Any], now: float) -> str:
    if job["start_time"] is None:
        return "-"
    return hms((job["end_time"] or now) - job["start_time"])


FIELDS: dict[str, Callable[[dict[str, Any], float], str]] = {
    "JOBID": lambda j, n: str(j["id"]),
    "NAME": lambda j, n: str(j["name"]),
    "ST": lambda j, n: str(j["st"]),
    "STATE": lambda j, n: str(j["state"]),
    "TIME": _time,
    "TIMELIMIT": lambda j, n: limit_text(j["time_limit"]),
    "MEMORY": lambda j, n: memory_text(j["memory_mb"]),
    "NODES": lambda j, n: str(j["gpus"]),
    "NODELIST(REASON)": lambda j, n: _nodelist(j),
    "USER": lambda j, n: str(j["user"]),
    "PROJECT": lambda j, n: j["project"] or "-",
    "PRIORITY": lambda j, n: str(j["priority"]),
    "DEPENDENCY": lambda j, n: j.get("remaining") or "-",
    "REASON": lambda j, n: _reason(j),
    "EXITCODE": lambda j, n: "-" if j["exit_code"] is None else str(j["exit_code"]),
    "COMMAND": lambda j, n: command_text(j["command"]),
    "SUBMITTED": lambda j, n: _clock(j["submit_time"]),
    "STARTED": lambda j, n: _clock(j["start_time"]),
    "ENDED": lambda j, n: _clock(j["end_time"]),
    "SLURM_ID": lambda j, n: j.get("slurm_id") or "-",
    "GPUS": lambda j, n: ",".join(map(str, j["gpu_ids"])) or "-",
}
ALIASES = {"NODELIST": "NODELIST(REASON)", "ID": "JOBID", "EXIT": "EXITCODE", "GRES": "NODES"}

SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda j: j["id"],
    "state": lambda j: (GROUP_ORDER.index(j["state"]), j["id"]),
    "time": lambda j: (j["start_time"] or 0, j["id"]),
    "name": lambda j: (j["name"], j["id"]),
    "gpus": lambda j: (j["gpus"], j["id"]),
    "nodes": lambda j: (j["gpus"], j["id"]),
    "priority": lambda j: (-j["priority"], j["id"]),
}


def _clock(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def build_parser() -> Parser:
    p = Parser("gqueue", "List jobs. By default: your queued, held and running jobs.", EXAMPLES)
    add_common(p)
    p.add_argument("-a", "--all", action="store_true", help="every state, finished included")
    p.add_argument("-c", "--completed", action="store_true", help="only finished jobs")
    p.add_argument("-s", "--states", metavar="LIST", help="e.g. Running,PD,F")
    p.add_argument("-j", "--jobs", metavar="IDS", help="e.g. 5 or 1,3,7-9 or @ (any state)")
    p.add_argument("-N", "--names", metavar="LIST", help="job names")
    p.add_argument("-u", "--user", metavar="LIST", help="users, or all (default: you)")
    p.add_argument("-P", "--project", metavar="LIST", help="project codes")
    p.add_argument("--since", metavar="WHEN", help="1h, 2d, today or an ISO date/time")
    p.add_argument("-r", "--sort", choices=sorted(SORTS), default="id")
    p.add_argument("-n", "--limit", type=int, metavar="N", help="first N; negative: last N")
    p.add_argument(
        "-f",
        "--format",
        metavar="FIELDS",
        help="columns, e.g. JOBID,NAME,ST,TIME,TIMELIMIT,MEMORY,USER,DEPENDENCY",
    )
    p.add_argument("-g", "--group", action="store_true", help="group by state")
    p.add_argument("-t", "--tree", action="store_true", help="dependency tree")
    p.add_argument("-T", "--tmux", action="store_true", help="only jobs with a tmux session")
    p.add_argument("-w", "--watch", action="store_true", help="redraw until Ctrl-C")
    p.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="for -w (default 2)"
    )
    p.add_argument("-o", "--output", choices=["table", "json", "csv"], default="table")
    p.add_argument("-e", "--expand", action="store_true", help="one row per array task")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["completion"]:
        from gflow.cli.completion import completion_main

        return completion_main("gqueue", build_parser(), argv[1:])
    args = build_parser().parse_args(argv)
    if not 0.1 <= args.interval <= 86400:
        raise UsageError(f"invalid --interval {args.interval:g}: expected 0.1 to 86400 seconds")
    fields = _fields(args.format)
    query = _query(args, fields)
    api = client(args)
    if not args.watch and _streams(args):
        return _stream(args, fields, api.stream("/v1/jobs", **query))
    if not args.watch:
        answer = _as_dicts(api.get("/v1/jobs", **query))
        print(render(args, fields, answer))
        if answer.get("missing"):
            print(f"gqueue: note: no {_ids_text(answer['missing'])}", file=sys.stderr)
        _cluster_note(answer)
        return EXIT_OK
    return _watch(args, fields, query, api)


def _as_dicts(answer: dict[str, Any]) -> dict[str, Any]:
    """A listing of compact rows (``view=rows``) as one dict per job."""
    names = answer.get("fields")
    if names:
        answer["jobs"] = [dict(zip(names, row, strict=True)) for row in answer["jobs"]]
    return answer


def _watch(args: Any, fields: list[str], query: dict[str, Any], api: Any) -> int:
    """Redraw every ``--interval`` seconds (in place on a terminal) until Ctrl-C."""
    clear = "\033[H\033[2J" if sys.stdout.isatty() else ""
    try:
        while True:
            answer = _as_dicts(api.get("/v1/jobs", **query))
            text = render(args, fields, answer)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            sys.stdout.write(
                f"{clear}{stamp}  (every {args.interval:g}s, Ctrl-C to stop)\n\n{text}\n"
            )
            sys.stdout.flush()
            _cluster_note(answer)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        if clear:
            print()
        return EXIT_OK


def _ids_text(ids: list[int]) -> str:
    """``job 158`` or ``jobs 158-160, 170``: ids folded into ranges."""
    ids = sorted(set(ids))
    runs: list[str] = []
    start = prev = ids[0]
    for job_id in [*ids[1:], None]:
        if job_id is not None and job_id == prev + 1:
            prev = job_id
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if job_id is not None:
            start = prev = job_id
    shown = ", ".join(runs[:10]) + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")
    return ("job " if len(ids) == 1 else "jobs ") + shown


def _cluster_note(answer: dict[str, Any]) -> None:
    """One line on stderr when gflowd cannot reach the Slurm controller."""
    if answer.get("slurm"):
        from gflow.cli.ginfo import slurm_text

        print(f"gqueue: note: Slurm {slurm_text(answer['slurm'])}", file=sys.stderr)


def _fields(text: str | None) -> list[str]:
    if not text:
        return DEFAULT_FIELDS
    out = []
    for raw in text.split(","):
        name = raw.strip().upper()
        name = ALIASES.get(name, name)
        if name not in FIELDS:
            from gflow.errors import InvalidInput

            raise InvalidInput("field", raw.strip(), ", ".join(FIELDS))
        out.append(name)
    return out


def _query(args: Any, fields: list[str]) -> dict[str, Any]:
    states = args.states
    if args.all:
        states = None
    elif args.completed:
        states = COMPLETED
    elif states is None and not (args.jobs or args.names):
        states = ACTIVE
    users = args.user or ("all" if args.jobs else "me")
    since = None
    if args.since:
        from gflow.parse import parse_since

        since = parse_since(args.since, now_local())
    limit = args.limit if args.sort == "id" and not args.tree else None
    deps = "1" if "DEPENDENCY" in fields or args.tree else None
    return {
        "states": states,
        "ids": args.jobs,
        "names": args.names,
        "users": users,
        "projects": args.project,
        "since": since,
        "limit": limit,
        "deps": deps,
        "view": None if args.output == "json" or args.tmux else "rows",
    }


def render(args: Any, fields: list[str], answer: dict[str, Any]) -> str:
    jobs: list[dict[str, Any]] = answer["jobs"]
    now = answer["now"]
    jobs.sort(key=SORTS[args.sort])
    if args.limit and (args.sort != "id" or args.tree):
        jobs = jobs[: args.limit] if args.limit > 0 else jobs[args.limit :]
    if args.tmux:
        jobs = _with_sessions(jobs, args)
    if args.output == "json":
        import json

        return json.dumps({"jobs": jobs, "total": len(jobs)}, indent=2)
    if args.output == "csv":
        return _csv(fields, [[FIELDS[f](j, now) for f in fields] for j in jobs])
    if not jobs:
        return "No jobs found."
    color = use_color()
    if args.tree:
        return _table(fields, _tree_rows(jobs, fields, now), color)
    if args.group:
        blocks = []
        for state in GROUP_ORDER:
            part = [j for j in jobs if j["state"] == state]
            if part:
                rows = _rows(part, fields, now, args.expand or bool(args.jobs))
                blocks.append(f"{state} ({len(part)})\n{'─' * 60}\n{_table(fields, rows, color)}")
        return "\n\n".join(blocks)
    return _table(fields, _rows(jobs, fields, now, args.expand or bool(args.jobs)), color)


BLOCK = 2000
"""Jobs of a long listing laid out at a time: the first block sets the column widths (a
listing this short looks as if laid out whole); a later row wider than them widens them."""


def _streams(args: Any) -> bool:
    """Whether the listing can be printed while it arrives (in the daemon's id order)."""
    return args.sort == "id" and not (args.tree or args.group or args.tmux)


def _stream(args: Any, fields: list[str], chunks: Iterator[bytes]) -> int:
    from gflow.jsontext import head_and_items

    head, jobs = head_and_items(chunks, "jobs")
    now = head.get("now") or time.time()
    names = head.get("fields")
    if names:
        jobs = (dict(zip(names, row, strict=True)) for row in jobs)
    out = sys.stdout
    if args.output == "json":
        _json_out(jobs, out)
    elif args.output == "csv":
        _csv_out(fields, jobs, now, out)
    else:
        _table_out(args, fields, jobs, now, out, head.get("widest") or {})
    if head.get("missing"):
        print(f"gqueue: note: no {_ids_text(head['missing'])}", file=sys.stderr)
    _cluster_note(head)
    return EXIT_OK


def _blocks(jobs: Iterator[dict[str, Any]], fold: bool) -> Iterator[list[dict[str, Any]]]:
    """The jobs in lists of about :data:`BLOCK`; a run of waiting tasks of one array that
    may go on is kept for the next list, so it is still folded into one row."""
    block: list[dict[str, Any]] = []
    cut = 0  # where the trailing run of waiting array tasks begins
    for job in jobs:
        block.append(job)
        if not (fold and _may_fold(job)):
            cut = len(block)
        if len(block) >= BLOCK and cut > 0:
            yield block[:cut]
            block, cut = block[cut:], 0
    if block:
        yield block


def _may_fold(job: dict[str, Any]) -> bool:
    return job["group_id"] is not None and job["state"] in ("Queued", "Hold")


def _table_out(
    args: Any, fields: list[str], jobs: Iterator[Any], now: float, out: Any, widest: Any
) -> None:
    """The table, a block at a time, its columns at least as wide as the daemon said the
    longest id and name are (a listing from the database)."""
    color = use_color()
    st = fields.index("ST") if "ST" in fields else -1
    widths: list[int] = []
    expand = args.expand or bool(args.jobs)
    for block in _blocks(jobs, not expand):
        rows = [[safe(c) for c in row] for row in _rows(block, fields, now, expand)]
        first = not widths
        if first:
            widths = [max(len(f), int(widest.get(f, 0))) for f in fields]
            rows.insert(0, list(fields))
        columns = zip(*rows, strict=True)
        widths = [max(w, *map(len, col)) for w, col in zip(widths, columns, strict=True)]
        if color and st >= 0:
            lines = []
            for index, row in enumerate(rows):
                cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
                cells.append(row[-1])
                if not (first and index == 0):
                    cells[st] = color_state(row[st], True) + cells[st][len(row[st]) :]
                lines.append("  ".join(cells).rstrip())
        else:
            pattern = "  ".join([*(f"{{:<{w}}}" for w in widths[:-1]), "{}"])
            lines = [pattern.format(*row).rstrip() for row in rows]
        out.write("\n".join(lines) + "\n")
    if not widths:
        out.write("No jobs found.\n")


def _csv_out(fields: list[str], jobs: Iterator[Any], now: float, out: Any) -> None:
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for block in _blocks(jobs, fold=False):
        writer.writerows([safe(FIELDS[f](j, now)) for f in fields] for j in block)


def _json_out(jobs: Iterator[Any], out: Any) -> None:
    """What ``json.dumps({"jobs": [...], "total": N}, indent=2)`` prints, job by job."""
    import json

    total = 0
    for block in _blocks(jobs, fold=False):
        text = ",\n".join(json.dumps(job, indent=2) for job in block)
        out.write(('{\n  "jobs": [\n' if not total else ",\n") + _indent(text, "    "))
        total += len(block)
    if total:
        out.write(f'\n  ],\n  "total": {total}\n}}\n')
    else:
        out.write(json.dumps({"jobs": [], "total": 0}, indent=2) + "\n")


def _indent(text: str, prefix: str) -> str:
    return prefix + text.replace("\n", "\n" + prefix)


def _table(fields: list[str], rows: list[list[str]], color: bool) -> str:
    st = fields.index("ST") if "ST" in fields else -1
    return table(fields, rows, lambda i, cell: color_state(cell, color) if i == st else cell)


def _rows(
    jobs: list[dict[str, Any]], fields: list[str], now: float, expand: bool
) -> list[list[str]]:
    """Rows, with runs of waiting tasks of one array folded into one ``first-last`` row."""
    rows: list[list[str]] = []
    i = 0
    while i < len(jobs):
        j = i
        if not expand:
            while j + 1 < len(jobs) and _foldable(jobs[i], jobs[j + 1], j + 1 - i):
                j += 1
        row = [FIELDS[f](jobs[i], now) for f in fields]
        if j - i >= 2:
            for k, f in enumerate(fields):
                if f == "JOBID":
                    row[k] = f"{jobs[i]['id']}-{jobs[j]['id']}"
                elif f == "NAME":
                    row[k] = f"{jobs[i]['name']}[{jobs[i]['task_id']}-{jobs[j]['task_id']}]"
        else:
            j = i
        rows.append(row)
        i = j + 1
    return rows


def _foldable(first: dict[str, Any], other: dict[str, Any], offset: int) -> bool:
    return (
        first["group_id"] is not None
        and other["group_id"] == first["group_id"]
        and other["id"] == first["id"] + offset
        and other["state"] == first["state"]
        and first["state"] in ("Queued", "Hold")
        and other["reason"] == first["reason"]
        and other["name"] == first["name"]
    )


TREE_DEPTH = 32  # levels drawn; a deeper chain keeps the width of this many


def _tree_rows(jobs: list[dict[str, Any]], fields: list[str], now: float) -> list[list[str]]:
    """The jobs as a forest under their first listed parent, drawn without recursion (a
    chain of any depth), its indentation capped at :data:`TREE_DEPTH` levels."""
    listed = {j["id"]: j for j in jobs}
    kids: dict[int, list[int]] = {}
    roots: list[int] = []
    for job in jobs:
        parents = [p for p in job["parents"] if p in listed]
        if parents:
            kids.setdefault(parents[0], []).append(job["id"])
        else:
            roots.append(job["id"])
    rows: list[list[str]] = []
    stack: list[tuple[int, str, str]] = [(root, "", "") for root in reversed(roots)]
    seen: set[int] = set()
    while stack:
        job_id, lead, branch = stack.pop()
        if job_id in seen:  # a cycle in the data: drawn once
            continue
        seen.add(job_id)
        rows.append(_tree_row(listed[job_id], fields, now, lead + branch, listed))
        children = kids.get(job_id, [])
        deeper = lead + ("" if not branch else ("  " if branch == "└─" else "│ "))
        if len(deeper) > 2 * TREE_DEPTH:
            deeper = "…" + deeper[-(2 * TREE_DEPTH - 1) :]
        for n in range(len(children) - 1, -1, -1):
            stack.append((children[n], deeper, "└─" if n == len(children) - 1 else "├─"))
    return rows


def _tree_row(
    job: dict[str, Any], fields: list[str], now: float, prefix: str, listed: dict[int, Any]
) -> list[str]:
    row = [FIELDS[f](job, now) for f in fields]
    others = [p for p in job["parents"] if p in listed][1:]
    for k, f in enumerate(fields):
        if f == "JOBID":
            row[k] = prefix + row[k]
        elif f == "NAME" and others:
            row[k] += f" (also after {','.join(map(str, others))})"
    return row


def _csv(fields: list[str], rows: list[list[str]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([safe(cell) for cell in row] for row in rows)
    return buf.getvalue().rstrip("\n")


def _with_sessions(jobs: list[dict[str, Any]], args: Any) -> list[dict[str, Any]]:
    """Only the jobs whose tmux session is still open (none with the process executor)."""
    import subprocess

    alive: dict[str, set[str]] = {}
    for sock in {j["tmux_socket"] for j in jobs if j.get("tmux_socket")}:
        try:
            done = subprocess.run(
                ["tmux", "-S", sock, "list-sessions", "-F", "#{session_name}"],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        alive[sock] = set(done.stdout.split())
    return [j for j in jobs if j["session"] in alive.get(j.get("tmux_socket") or "", ())]


def entry() -> None:
    run("gqueue", main)


if __name__ == "__main__":
    entry()
