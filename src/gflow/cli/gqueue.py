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
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any

    Columns = dict[str, Sequence[Any]]
    """A block of jobs a column at a time (field name: its values, one per job)."""

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


def _text(key: str) -> Callable[[Columns, float], list[str]]:
    return lambda c, now: list(map(str, c[key]))


def _or_dash(key: str) -> Callable[[Columns, float], list[str]]:
    return lambda c, now: [v or "-" for v in c[key]]


def _each(key: str, text: Callable[[Any], str]) -> Callable[[Columns, float], list[str]]:
    """Each value's ``text``, computed once per distinct value of the block."""

    def column(c: Columns, now: float) -> list[str]:
        seen: dict[Any, str] = {}
        return [seen[v] if v in seen else seen.setdefault(v, text(v)) for v in c[key]]

    return column


def _reason(reason: str | None, state: str, exit_code: int | None) -> str:
    if reason:
        return str(reason)
    if state == "Failed" and exit_code is not None:
        return f"ExitCode:{exit_code}"
    return "-"


def _nodelist(state: str, node: str | None, gpu_ids: list[int], reason: Any, code: Any) -> str:
    if state == "Running":
        return node or ",".join(map(str, gpu_ids)) or "-"
    shown = _reason(reason, state, code)
    return f"({shown})" if shown != "-" else "-"


def _nodelists(c: Columns, now: float) -> list[str]:
    return [
        "-" if not r and s != "Running" and s != "Failed" else _nodelist(s, n, g, r, e)
        for s, n, g, r, e in zip(
            c["state"], c["node"], c["gpu_ids"], c["reason"], c["exit_code"], strict=True
        )
    ]


def _reasons(c: Columns, now: float) -> list[str]:
    return list(map(_reason, c["reason"], c["state"], c["exit_code"]))


def _times(c: Columns, now: float) -> list[str]:
    seen: dict[int, str] = {}
    out = []
    for start, end in zip(c["start_time"], c["end_time"], strict=True):
        if start is None:
            out.append("-")
            continue
        seconds = int((end or now) - start)
        text = seen.get(seconds)
        if text is None:
            text = seen[seconds] = hms(seconds)
        out.append(text)
    return out


def _clocks(key: str) -> Callable[[Columns, float], list[str]]:
    return lambda c, now: _clock_texts(c[key])


COLUMNS: dict[str, tuple[tuple[str, ...], Callable[[Columns, float], list[str]]]] = {
    "JOBID": (("id",), _text("id")),
    "NAME": (("name",), _text("name")),
    "ST": (("st",), _text("st")),
    "STATE": (("state",), _text("state")),
    "TIME": (("start_time", "end_time"), _times),
    "TIMELIMIT": (("time_limit",), _each("time_limit", limit_text)),
    "MEMORY": (("memory_mb",), _each("memory_mb", memory_text)),
    "NODES": (("gpus",), _text("gpus")),
    "NODELIST(REASON)": (("state", "node", "gpu_ids", "reason", "exit_code"), _nodelists),
    "USER": (("user",), _text("user")),
    "PROJECT": (("project",), _or_dash("project")),
    "PRIORITY": (("priority",), _text("priority")),
    "DEPENDENCY": (("remaining",), _or_dash("remaining")),
    "REASON": (("reason", "state", "exit_code"), _reasons),
    "EXITCODE": (("exit_code",), _each("exit_code", lambda v: "-" if v is None else str(v))),
    "COMMAND": (("command",), lambda c, now: list(map(command_text, c["command"]))),
    "SUBMITTED": (("submit_time",), _clocks("submit_time")),
    "STARTED": (("start_time",), _clocks("start_time")),
    "ENDED": (("end_time",), _clocks("end_time")),
    "SLURM_ID": (("slurm_id",), _or_dash("slurm_id")),
    "GPUS": (("gpu_ids",), lambda c, now: [",".join(map(str, g)) or "-" for g in c["gpu_ids"]]),
}
"""Each column: the job fields it is made of, and its text for a block of jobs."""
FOLD_KEYS = ("id", "name", "state", "reason", "group_id", "task_id")
"""What folding a run of waiting array tasks into one row looks at."""
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


def _clock_texts(stamps: Any) -> list[str]:
    """:func:`_clock` of each time, each minute's local date and time looked up once."""
    minutes: dict[int, str | None] = {}
    out = []
    for ts in stamps:
        if ts is None:
            out.append("-")
            continue
        try:
            second = int(ts // 1)
        except (OverflowError, ValueError):
            out.append(_clock(ts))
            continue
        minute = second // 60
        if minute not in minutes:
            minutes[minute] = _minute_text(minute * 60)
        head = minutes[minute]
        out.append(_clock(ts) if head is None else f"{head}{second - minute * 60:02d}")
    return out


def _minute_text(start: int) -> str | None:
    """``YYYY-MM-DDTHH:MM:`` of the local minute beginning at ``start``; None when the
    minute is not one on the local clock (an offset in seconds, a change of offset)."""
    try:
        first, last = time.localtime(start), time.localtime(start + 59)
    except (OverflowError, OSError, ValueError):
        return None
    if first.tm_sec != 0 or last.tm_sec != 59 or first[:5] != last[:5]:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:", first)


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
        if name not in COLUMNS:
            from gflow.errors import InvalidInput

            raise InvalidInput("field", raw.strip(), ", ".join(COLUMNS))
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
        "fields": _wanted(fields) if args.output != "json" and _streams(args) else None,
    }


def _wanted(fields: list[str]) -> str:
    """The job fields a streamed table or CSV is made of (the daemon sends only these)."""
    return ",".join(_keys(fields, fold=True))


def _keys(fields: list[str], fold: bool) -> list[str]:
    """The job fields the columns ``fields`` are made of, and folding's when ``fold``."""
    keys = dict.fromkeys(FOLD_KEYS if fold else ())
    for name in fields:
        keys.update(dict.fromkeys(COLUMNS[name][0]))
    return list(keys)


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
        return _csv(fields, _rows(_cells(jobs, None, fields, now, True)))
    if not jobs:
        return "No jobs found."
    color = use_color()
    if args.tree:
        return _table(fields, _tree_rows(jobs, fields, now), color)
    expand = args.expand or bool(args.jobs)
    if args.group:
        blocks = []
        for state in GROUP_ORDER:
            part = [j for j in jobs if j["state"] == state]
            if part:
                rows = _rows(_cells(part, None, fields, now, expand))
                blocks.append(f"{state} ({len(part)})\n{'─' * 60}\n{_table(fields, rows, color)}")
        return "\n\n".join(blocks)
    return _table(fields, _rows(_cells(jobs, None, fields, now, expand)), color)


BLOCK = 2000
"""Jobs of a long listing laid out at a time: the first block sets the column widths (a
listing this short looks as if laid out whole); a later row wider than them widens them."""


def _streams(args: Any) -> bool:
    """Whether the listing can be printed while it arrives (in the daemon's id order)."""
    return args.sort == "id" and not (args.tree or args.group or args.tmux)


def _stream(args: Any, fields: list[str], chunks: Iterator[bytes]) -> int:
    from gflow.jsontext import head_and_batches

    head, batches = head_and_batches(chunks, "jobs")
    now = head.get("now") or time.time()
    names = head.get("fields")
    out = sys.stdout
    if args.output == "json":
        _json_out(batches, names, out)
    elif args.output == "csv":
        _csv_out(fields, _blocks(batches, names, fold=False), names, now, out)
    else:
        expand = args.expand or bool(args.jobs)
        blocks = _blocks(batches, names, fold=not expand)
        _table_out(fields, blocks, names, now, expand, out, head.get("widest") or {})
    if head.get("missing"):
        print(f"gqueue: note: no {_ids_text(head['missing'])}", file=sys.stderr)
    _cluster_note(head)
    return EXIT_OK


def _blocks(batches: Iterator[list[Any]], names: Any, fold: bool) -> Iterator[list[Any]]:
    """The jobs in lists of :data:`BLOCK`, cut as if they came one by one; when folding,
    a run of waiting tasks of one array that may go on is kept for the next list, so it
    is still folded into one row (a list then ends at the first job after it)."""
    may_fold = _fold_test(names) if fold else None
    buf: list[Any] = []
    scanned = BLOCK  # the jobs past BLOCK already known to be foldable
    for batch in batches:
        buf.extend(batch)
        while len(buf) >= BLOCK:
            cut = BLOCK
            if may_fold is not None:
                while cut > 0 and may_fold(buf[cut - 1]):
                    cut -= 1
                if cut == 0:
                    scanned = max(scanned, BLOCK)
                    while scanned < len(buf) and may_fold(buf[scanned]):
                        scanned += 1
                    if scanned == len(buf):
                        break
                    cut, scanned = scanned + 1, BLOCK
            yield buf[:cut]
            buf = buf[cut:]
    if buf:
        yield buf


def _fold_test(names: Any) -> Callable[[Any], bool]:
    """Whether a job (a row of ``names``, or a dict) is a waiting array task."""
    if names is None:
        return lambda job: job["group_id"] is not None and job["state"] in WAITING
    group, state = names.index("group_id"), names.index("state")
    return lambda row: row[group] is not None and row[state] in WAITING


WAITING = ("Queued", "Hold")


def _columns(jobs: list[Any], names: Any, keys: Iterable[str]) -> Columns:
    """The ``keys`` of ``jobs`` (rows of ``names``, or dicts) a column at a time."""
    if names is None:
        return {k: [j.get(k) for j in jobs] for k in keys}
    values = list(zip(*jobs, strict=True)) if jobs else [() for _ in names]
    at = dict(zip(names, values, strict=True))
    return {k: at[k] if k in at else [None] * len(jobs) for k in keys}


def _cells(
    jobs: list[Any], names: Any, fields: list[str], now: float, expand: bool
) -> list[list[str]]:
    """The text of each column for ``jobs``, shown :func:`safe`; unless ``expand``, with
    runs of waiting tasks of one array folded into one ``first-last`` row."""
    c = _columns(jobs, names, _keys(fields, fold=not expand))
    cells = [COLUMNS[name][1](c, now) for name in fields]
    if not expand:
        cells = _folded(c, cells, fields)
    return [col if all(map(str.isprintable, col)) else list(map(safe, col)) for col in cells]


def _rows(cells: list[list[str]]) -> list[list[str]]:
    return [list(row) for row in zip(*cells, strict=True)]


def _folded(c: Columns, cells: list[list[str]], fields: list[str]) -> list[list[str]]:
    """``cells`` with each run of three or more waiting tasks of one array (consecutive
    ids, one state, reason and name) as one row: ``first-last`` and ``name[a-b]``."""
    groups, states = c["group_id"], c["state"]
    if groups.count(None) == len(groups) or not any(
        g is not None and s in WAITING for g, s in zip(groups, states, strict=True)
    ):
        return cells
    ids, names, tasks = c["id"], c["name"], c["task_id"]
    kept: list[int] = []
    spans: list[tuple[int, int, int]] = []
    i, count = 0, len(ids)
    while i < count:
        j = i
        while j + 1 < count and _foldable(c, i, j + 1):
            j += 1
        if j - i >= 2:
            spans.append((len(kept), i, j))
        else:
            j = i
        kept.append(i)
        i = j + 1
    cells = [[col[i] for i in kept] for col in cells]
    for k, name in enumerate(fields):
        for at, i, j in spans:
            if name == "JOBID":
                cells[k][at] = f"{ids[i]}-{ids[j]}"
            elif name == "NAME":
                cells[k][at] = f"{names[i]}[{tasks[i]}-{tasks[j]}]"
    return cells


def _foldable(c: Columns, first: int, other: int) -> bool:
    group, state = c["group_id"], c["state"]
    return (
        group[first] is not None
        and group[other] == group[first]
        and c["id"][other] == c["id"][first] + (other - first)
        and state[other] == state[first]
        and state[first] in WAITING
        and c["reason"][other] == c["reason"][first]
        and c["name"][other] == c["name"][first]
    )


def _table_out(
    fields: list[str],
    blocks: Iterator[list[Any]],
    names: Any,
    now: float,
    expand: bool,
    out: Any,
    widest: Any,
) -> None:
    """The table, a block at a time, its columns at least as wide as the daemon said the
    longest id and name are (a listing from the database)."""
    paint = fields.index("ST") if "ST" in fields and use_color() else -1
    widths: list[int] = []
    for block in blocks:
        cells = _cells(block, names, fields, now, expand)
        head = not widths
        if head:
            widths = [max(len(f), int(widest.get(f, 0))) for f in fields]
        widths = [max(w, *map(len, col)) for w, col in zip(widths, cells, strict=True)]
        text = _lines(cells, widths, paint)
        if head:
            text = _lines([[f] for f in fields], widths, -1) + "\n" + text
        out.write(text + "\n")
    if not widths:
        out.write("No jobs found.\n")


def _lines(cells: list[list[str]], widths: list[int], paint: int) -> str:
    """The rows of ``cells`` laid out in ``widths``, two spaces apart, without trailing
    blanks; the ST column ``paint`` (if not -1) coloured."""
    last = len(cells) - 1
    specs = [f"%-{w}s" for w in widths[:last]] + ["%s"]
    if paint >= 0:
        pad = widths[paint] if paint < last else 0
        cells = [*cells]
        cells[paint] = [color_state(v, True) + " " * (pad - len(v)) for v in cells[paint]]
        specs[paint] = "%s"
    pattern = "  ".join(specs)
    rows = zip(*cells, strict=True)
    ends = "\n".join(cells[last]) + "\n"
    if ends[0] == "\n" or " \n" in ends or "\n\n" in ends:  # blanks to strip at the end
        return "\n".join([(pattern % row).rstrip() for row in rows])
    from itertools import chain

    return "\n".join([pattern] * len(cells[last])) % tuple(chain.from_iterable(rows))


def _csv_out(
    fields: list[str], blocks: Iterator[list[Any]], names: Any, now: float, out: Any
) -> None:
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for block in blocks:
        writer.writerows(zip(*_cells(block, names, fields, now, True), strict=True))


def _json_out(batches: Iterator[list[Any]], names: Any, out: Any) -> None:
    """What ``json.dumps({"jobs": [...], "total": N}, indent=2)`` prints, job by job."""
    import json

    total = 0
    for block in _blocks(batches, names, fold=False):
        if names is not None:
            block = [dict(zip(names, row, strict=True)) for row in block]
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
    drawn: list[tuple[dict[str, Any], str]] = []
    stack: list[tuple[int, str, str]] = [(root, "", "") for root in reversed(roots)]
    seen: set[int] = set()
    while stack:
        job_id, lead, branch = stack.pop()
        if job_id in seen:  # a cycle in the data: drawn once
            continue
        seen.add(job_id)
        drawn.append((listed[job_id], lead + branch))
        children = kids.get(job_id, [])
        deeper = lead + ("" if not branch else ("  " if branch == "└─" else "│ "))
        if len(deeper) > 2 * TREE_DEPTH:
            deeper = "…" + deeper[-(2 * TREE_DEPTH - 1) :]
        for n in range(len(children) - 1, -1, -1):
            stack.append((children[n], deeper, "└─" if n == len(children) - 1 else "├─"))
    rows = _rows(_cells([job for job, _ in drawn], None, fields, now, True))
    for row, (job, prefix) in zip(rows, drawn, strict=True):
        others = [p for p in job["parents"] if p in listed][1:]
        for k, f in enumerate(fields):
            if f == "JOBID":
                row[k] = prefix + row[k]
            elif f == "NAME" and others:
                row[k] += f" (also after {','.join(map(str, others))})"
    return rows


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
