"""gjob: inspect and control single jobs — show, log, attach, hold, release, update, redo, wait."""

from __future__ import annotations

import argparse
import os
import sys
import time

from gflow.cli import jobopts
from gflow.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    Parser,
    UsageError,
    add_common,
    add_completion,
    client,
    clock,
    command_text,
    hms,
    limit_text,
    memory_text,
    now_local,
    run,
    safe,
    subcommand,
)
from gflow.options import CHANGE

EXAMPLES = """
gjob show 5                  everything about job 5 (also 5,6 or 3-7)
gjob log 5 --last 20         the last 20 lines of its output;  --follow to keep reading
gjob attach 5                its tmux session (detach with Ctrl-b d)
gjob hold 7; gjob release 7 --at 22:00
gjob update 7 --gpus 2 --priority 50 --depends-on 5
gjob redo 5 --cascade        run failed job 5 again, and the jobs its failure cancelled
gjob wait 5 && echo ok       block until job 5 ends; exit status = the job's
gjob close-sessions -s Finished
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

CHANGE_DESCRIPTION = """\
{what}. The job options are gbatch's (see gbatch --help); those that set
dependencies replace the job's dependencies."""
RECONNECT_FOR = 60.0  # seconds gjob wait keeps trying while gflowd is down
WAIT_CODES = {"Timeout": 124, "Cancelled": 125}


def build_parser() -> Parser:
    p = Parser("gjob", "Inspect and control jobs.", EXAMPLES)
    add_common(p)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    show = subcommand(sub, "show", "all details of jobs", "gjob show 5,6   gjob show @", ["s"])
    show.add_argument("ids", metavar="IDS", help="42, 1,2,3, 1-5, @, @~1")
    log = subcommand(
        sub,
        "log",
        "print a job's output",
        "gjob log 5 --last 50\ngjob log @ --follow          until my latest job ends",
        ["l"],
    )
    log.add_argument("id", metavar="JOB", nargs="?")
    log.add_argument(
        "-f",
        "--first",
        type=_count,
        metavar="N",
        nargs="?",
        const=-1,
        help="only the first N lines",
    )
    log.add_argument("-l", "--last", type=_count, metavar="N", help="only the last N lines")
    log.add_argument(
        "-F",
        "--follow",
        action="store_true",
        help="keep printing until the job ends (a waiting job: from its start)",
    )
    log.add_argument("--path", action="store_true", help="print the log file's path only")
    att = subcommand(
        sub, "attach", "attach to a job's tmux session", "gjob attach 5   (detach: Ctrl-b d)", ["a"]
    )
    att.add_argument("id", metavar="JOB")
    hold = subcommand(sub, "hold", "keep queued jobs from starting", "gjob hold 7,8", ["h"])
    hold.add_argument("ids", metavar="IDS")
    rel = subcommand(
        sub,
        "release",
        "let held jobs start again",
        "gjob release 7\ngjob release 7 --at 22:00       not before 10 pm (also now+1h)",
        ["r"],
    )
    rel.add_argument("ids", metavar="IDS")
    rel.add_argument("--at", metavar="WHEN", help="not before HH:MM, YYYY-MM-DD[THH:MM], now+N")
    upd = subcommand(
        sub,
        "update",
        "change queued or held jobs",
        "gjob update 7 --time-limit 2:00:00 --gpus 1\n"
        "gjob update 7 --depends-on-all 3,4\n"
        "gjob update 7 --command python train.py --lr 0.1   (--command comes last)",
        ["u"],
        description=CHANGE_DESCRIPTION.format(what="Change queued or held jobs"),
    )
    upd.add_argument("ids", metavar="IDS")
    jobopts.add(upd, CHANGE)
    upd.add_argument(
        "--clear-deps", action="store_true", help="drop its dependencies (also -d '' or -d 0)"
    )
    redo = subcommand(
        sub,
        "redo",
        "submit an ended job again as a new job",
        "gjob redo 5 --gpus 2\n"
        "gjob redo 5 --cascade        also redo the jobs its failure cancelled",
        description=CHANGE_DESCRIPTION.format(what="Submit an ended job again as a new job"),
    )
    redo.add_argument("id", metavar="JOB")
    jobopts.add(redo, CHANGE)
    redo.add_argument("--clear-deps", action="store_true", help="drop its dependencies")
    redo.add_argument(
        "--cascade",
        action="store_true",
        help="also redo the jobs its failure cancelled, wired to the new jobs",
    )
    redo.add_argument(
        "--again",
        action="store_true",
        help="with --cascade: make another set even if these jobs were redone already",
    )
    close = subcommand(
        sub,
        "close-sessions",
        "close tmux sessions of ended jobs",
        "gjob close-sessions -s Finished\ngjob close-sessions -a",
        ["close"],
    )
    close.add_argument("-a", "--all", action="store_true", help="every ended job")
    close.add_argument("-j", "--jobs", metavar="IDS")
    close.add_argument("-s", "--states", metavar="LIST", help="e.g. Finished,Failed or CD,F")
    close.add_argument("-p", "--pattern", metavar="GLOB", help="job names matching a pattern")
    wait = subcommand(
        sub,
        "wait",
        "block until jobs end; the exit status is the job's",
        "gjob wait 5 && echo ok\ngjob wait 5 6 --timeout 600     (also 5,6 or 5-6)",
        description="Block until jobs end; the exit status is the job's. A job that fails and "
        "is retried (--max-retries) is followed to its last attempt.",
    )
    wait.add_argument("ids", metavar="IDS", nargs="+", help="42, 1,2,3, 1-5, @, 12_3")
    wait.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long")
    add_completion(sub, "gjob")
    return p


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: expected a whole number >= 0")
    return int(text)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    name = {
        "s": "show",
        "l": "log",
        "a": "attach",
        "h": "hold",
        "r": "release",
        "u": "update",
        "close": "close-sessions",
    }.get(args.cmd, args.cmd)
    if name == "completion":
        from gflow.cli.completion import print_completion

        return print_completion("gjob", build_parser(), args.shell)
    handler = {
        "show": _show,
        "log": _log,
        "attach": _attach,
        "hold": _hold,
        "release": _release,
        "update": _update,
        "redo": _redo,
        "close-sessions": _close,
        "wait": _wait,
    }[name]
    return handler(args)


# ------------------------------------------------------------ show


def _show(args: argparse.Namespace) -> int:
    answer = client(args).get("/v1/show", ids=args.ids)
    blocks = [_describe(job, answer["now"]) for job in answer["jobs"]]
    print(("\n\n" + "=" * 72 + "\n\n").join(blocks))
    return EXIT_OK


def _describe(j: dict[str, Any], now: float) -> str:
    def kv(*pairs: tuple[str, Any]) -> str:
        return "  " + "  ".join(f"{k}={'-' if v in (None, '') else v}" for k, v in pairs)

    cmd = command_text(j["command"], j["script"])
    run_time = (j["end_time"] or now) - j["start_time"] if j["start_time"] else None
    lines = [
        f"Job {j['id']} ({j['name']})",
        kv(
            ("State", f"{j['state']} ({j['st']})"),
            ("Reason", j["reason"]),
            ("ExitCode", j["exit_code"]),
        ),
        kv(("User", j["user"]), ("Project", j["project"]), ("Priority", j["priority"])),
        kv(("Command", cmd)),
        kv(("WorkDir", j["workdir"])),
    ]
    if j["group_id"] is not None:
        lines.append(kv(("ArrayJob", j["group_id"]), ("TaskID", j["task_id"])))
    if j["params"]:
        lines.append(kv(*sorted(j["params"].items())))
    lines += [
        "Resources:",
        kv(
            ("GPUs", j["gpus"]),
            ("GPUIDs", ",".join(map(str, j["gpu_ids"]))),
            ("Sharing", "shared" if j["shared"] else "exclusive"),
            ("GPUMemory", memory_text(j["gpu_memory_mb"]) if j["gpu_memory_mb"] else None),
        ),
        kv(
            ("Memory", memory_text(j["memory_mb"]) if j["memory_mb"] else None),
            ("MemoryEnforcement", j["memory_enforcement"]),
            ("CondaEnv", j["conda_env"]),
            ("CPUsPerTask", j.get("cpus_per_task")),
        ),
    ]
    if j["dependency"]:
        lines += [
            "Dependencies:",
            kv(
                ("Dependency", j["dependency"]),
                ("AsTyped", j["dep_text"]),
                ("AutoCancel", "yes" if j["auto_cancel"] else "no"),
            ),
            kv(
                ("Remaining", j.get("remaining")),
                ("WaitingFor", ",".join(map(str, j.get("pending", []))) or None),
            ),
        ]
    lines += [
        "Timing:",
        kv(
            ("Submitted", clock(j["submit_time"])),
            ("Started", clock(j["start_time"])),
            ("Ended", clock(j["end_time"])),
        ),
        kv(
            ("RunTime", hms(run_time)),
            ("TimeLimit", limit_text(j["time_limit"])),
            ("Begin", clock(j["begin_at"]) if j["begin_at"] else None),
        ),
        *_stopping(j),
        "Execution:",
        kv(
            ("Executor", j["executor"] or j.get("run_on")),
            ("SlurmJobId", j.get("slurm_id")),
            ("Node", j.get("node")),
            ("TmuxSession", j["session"] if j["executor"] == "tmux" else None),
            ("PID", j["pid"]),
        ),
        kv(("Log", j["log"]), ("ErrorLog", j.get("error_log"))),
    ]
    attempts = j.get("attempts") or []
    if len(attempts) > 1 or j["retry_of"] or j["redo_of"]:
        lines += [
            "Attempts:",
            kv(
                ("Chain", ",".join(map(str, attempts))),
                ("MaxRetries", j["max_retries"]),
                ("RetryOf", j["retry_of"]),
                ("RedoOf", j["redo_of"]),
            ),
        ]
    if j.get("events"):
        lines.append("History:")
        for e in j["events"]:
            reason = f" ({e['reason']})" if e["reason"] else ""
            if e["from"] == e["to"]:  # a signal sent, the state unchanged
                lines.append(f"  {clock(e['time'])}  {e['to']}: {e['reason']}")
            else:
                lines.append(f"  {clock(e['time'])}  {e['from'] or 'new'} -> {e['to']}{reason}")
    return "\n".join(map(safe, lines))


STOPS = {"timeout": "TimeLimit", "cancel": "Cancelled"}


def _stopping(j: dict[str, Any]) -> list[str]:
    """Why and how a job is (or was) stopped, and its warning signal, if it has those."""
    pairs = []
    if j.get("signal"):
        pairs.append(("Signal", j["signal"]))
        if j["time_limit"] and j["start_time"]:
            seconds = int(j["signal"].rsplit("@", 1)[1])
            due = j["start_time"] + max(0, j["time_limit"] - seconds)
            pairs.append(("SignalAt", clock(due)))
    if j.get("stop_intent"):
        pairs.append(("Stop", STOPS.get(j["stop_intent"], j["stop_intent"])))
        if j["stop_intent"] == "timeout" and j["start_time"] and j["time_limit"]:
            pairs.append(("StopAt", clock(j["start_time"] + j["time_limit"])))
        pairs.append(("Sequence", f"SIGINT,SIGTERM,SIGKILL {j['kill_grace']:g}s apart"))
    return ["  " + "  ".join(f"{k}={v}" for k, v in pairs)] if pairs else []


# ------------------------------------------------------------ log and attach


def _one(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """The one job ``text`` names (an array's id, or ``@`` after one: its first task)."""
    jobs = client(args).get("/v1/show", ids=text, one="1")["jobs"]
    job: dict[str, Any] = jobs[0]
    return job


def _log_args(args: argparse.Namespace) -> None:
    """``-f`` is ``--first N`` here; ``tail -f``'s habit is ``--follow`` (``-F``)."""
    if args.first == -1 or (args.id is None and args.first is not None):
        raise UsageError(
            "-f is --first N here (the first N lines); to keep printing as the job writes "
            "use --follow (-F)",
            "gjob log",
        )
    if args.id is None:
        raise UsageError("the following arguments are required: JOB", "gjob log")


def _log(args: argparse.Namespace) -> int:
    _log_args(args)
    job = _one(args, args.id)
    if args.path:
        print(job["log"])
        return EXIT_OK
    if args.follow and not os.path.exists(job["log"]):
        job = _until_started(args, job)
        if job["start_time"] is None:
            print(
                f"gjob: error: job {job['id']} ended ({job['state']}) without starting",
                file=sys.stderr,
            )
            return EXIT_REFUSED
    try:
        fh = _open_log(job)
    except FileNotFoundError:
        print(
            f"gjob: error: the log of job {job['id']} is not available "
            f"(state {job['state']}; a log appears when the job starts)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    except PermissionError:
        print(f"gjob: error: cannot read {job['log']}: permission denied", file=sys.stderr)
        return EXIT_REFUSED
    with fh:
        offset = _print_log(fh, args.first, args.last)
    sys.stdout.flush()
    if args.follow:
        return _follow(args, job, offset)
    return EXIT_OK


def _open_log(job: dict[str, Any]) -> BinaryIO:
    """The job's output (its ``-o`` file, or its log), opened as the user who asks. When
    an ``-o`` file is missing, gflow's own log of the job says why (it could not be
    written), if it says anything."""
    try:
        return open(job["log"], "rb")
    except FileNotFoundError:
        own = job.get("gflow_log")
        if own and own != job["log"] and os.path.getsize(own):
            job["log"] = own
            return open(own, "rb")
        raise


def _print_log(fh: BinaryIO, first: int | None, last: int | None) -> int:
    """Print the lines asked for, reading no more of the file than they need; the offset
    up to which the log has been seen."""
    from gflow.cli import logtail

    if first is None and last is None:
        logtail.copy(fh, sys.stdout)
        return fh.tell()
    end = fh.seek(0, os.SEEK_END)
    if first is None:
        data = logtail.last_lines(fh, last or 0, end)
    else:
        fh.seek(0)
        data = logtail.first_lines(fh, first)
        if last is not None:
            import io

            data = logtail.last_lines(io.BytesIO(data), last, len(data))
    sys.stdout.write(data.decode(errors="replace"))
    return end


def _until_started(args: argparse.Namespace, job: dict[str, Any]) -> dict[str, Any]:
    """The job once its log exists, or once it ended without one (a waiting job)."""
    api = client(args)
    if job["state"] in ("Queued", "Hold"):
        print(
            f"gjob: job {job['id']} is {job['state']}; its log follows when it starts "
            "(Ctrl-C to stop)",
            file=sys.stderr,
        )
    while not os.path.exists(job["log"]) and job["state"] in ("Queued", "Hold", "Running"):
        time.sleep(0.25)
        job = api.get("/v1/show", ids=str(job["id"]), one="1")["jobs"][0]
    return job


def _follow(args: argparse.Namespace, job: dict[str, Any], offset: int) -> int:
    api = client(args)
    state = job["state"]
    while True:
        with open(job["log"], "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        if chunk:
            offset += len(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        elif state not in ("Queued", "Hold", "Running"):
            return EXIT_OK
        else:
            time.sleep(0.25)
            state = api.get("/v1/show", ids=str(job["id"]), one="1")["jobs"][0]["state"]


def _attach(args: argparse.Namespace) -> int:
    job = _one(args, args.id)
    if job["executor"] != "tmux" or not job["tmux_socket"]:
        print(
            f"gjob: error: job {job['id']} does not run under tmux (executor "
            f"{job['executor'] or 'none yet'}); use: gjob log {job['id']} --follow",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    # gflow's tmux server is not the one a user may be in: attach as a client of its own
    # (nested inside the user's tmux when TMUX is set; detach with the inner prefix).
    argv = ["tmux", "-S", job["tmux_socket"], "attach-session", "-t", f"={job['session']}"]
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    print(f"Attaching to tmux session '{job['session']}' for job {job['id']}...", flush=True)
    try:
        os.execvpe("tmux", argv, env)
    except OSError as exc:
        print(f"gjob: error: cannot run tmux: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_REFUSED


# ------------------------------------------------------------ control


def _report(answer: dict[str, Any], verb: str) -> int:
    for job in answer["jobs"]:
        print(f"Job {job['id']} {verb}.")
    return _errors(answer)


def _errors(answer: dict[str, Any]) -> int:
    """Jobs the daemon skipped (wrong state): one line each, and a non-zero exit."""
    for message in answer.get("errors", []):
        print(f"gjob: error: {message}", file=sys.stderr)
    return EXIT_REFUSED if answer.get("errors") else EXIT_OK


def _hold(args: argparse.Namespace) -> int:
    return _report(client(args).post("/v1/jobs/hold", {"ids": args.ids}), "put on hold")


def _release(args: argparse.Namespace) -> int:
    at = None
    if args.at:
        from gflow.parse import parse_begin

        at = parse_begin(args.at, now_local())
    answer = client(args).post("/v1/jobs/release", {"ids": args.ids, "at": at})
    suffix = f" (not before {clock(at)})" if at else ""
    return _report(answer, "released back to the queue" + suffix)


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The job options given, as typed: the daemon parses them as it does gbatch's."""
    options = jobopts.given(args, CHANGE)
    if "begin" in options:
        options["utc_offset"] = time.localtime().tm_gmtoff
    return options


def _update(args: argparse.Namespace) -> int:
    options = _changes(args)
    if not options and not args.clear_deps:
        raise UsageError(
            "nothing to update: give at least one option such as --gpus 1", "gjob update"
        )
    body = {"ids": args.ids, "options": options, "clear_deps": args.clear_deps}
    answer = client(args).post("/v1/jobs/update", body)
    for job in answer["jobs"]:
        print(f"Job {job['id']} updated: {', '.join(job['fields'])}.")
    return _errors(answer)


def _redo(args: argparse.Namespace) -> int:
    body = {
        "id": args.id,
        "options": _changes(args),
        "cascade": args.cascade,
        "clear_deps": args.clear_deps,
        "again": args.again,
    }
    answer = client(args).post("/v1/jobs/redo", body)
    for job in answer["jobs"]:
        name = safe(job["name"])
        print(f"Submitted batch job {job['id']} ({name}) as a redo of job {job['redo_of']}")
    return EXIT_OK


def _close(args: argparse.Namespace) -> int:
    if not (args.all or args.jobs or args.states or args.pattern):
        raise UsageError(
            "no filter given: use -a, -j IDS, -s STATES or -p GLOB", "gjob close-sessions"
        )
    api = client(args)
    ids = None
    if args.jobs or args.pattern:
        query = {"ids": args.jobs, "users": "me", "states": None}
        jobs = api.get("/v1/jobs", **query)["jobs"]
        if args.pattern:
            import fnmatch

            jobs = [j for j in jobs if fnmatch.fnmatch(j["name"], args.pattern)]
        ids = [j["id"] for j in jobs]
        if not ids:
            print("gjob close-sessions: no matching jobs", file=sys.stderr)
            return EXIT_OK
    states = None
    if args.states:
        from gflow.model import State

        states = [State.parse(s).value for s in args.states.split(",")]
    answer = api.post("/v1/admin/close-sessions", {"ids": ids, "states": states})
    for job_id in answer["closed"]:
        print(f"gflow-{job_id}")
    print(f"Closed {len(answer['closed'])} session(s).", file=sys.stderr)
    return EXIT_OK


def _wait(args: argparse.Namespace) -> int:
    from gflow.errors import DaemonUnavailable

    api = client(args)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    answered: float | None = None  # a daemon that was never reached is not waited for
    while True:
        left = 30.0 if deadline is None else min(30.0, deadline - time.monotonic())
        try:
            answer = api.get("/v1/wait", ids=",".join(args.ids), timeout=max(left, 0.01))
        except DaemonUnavailable:  # gflowd restarting mid-wait: keep trying for a minute
            if answered is None or time.monotonic() - answered > RECONNECT_FOR:
                raise
            time.sleep(0.5)
            continue
        answered = time.monotonic()
        if answer["done"]:
            break
        if deadline is not None and time.monotonic() >= deadline:
            print(
                f"gjob: error: timed out after {args.timeout:g}s; jobs still active",
                file=sys.stderr,
            )
            return 124
    for job in answer["jobs"]:
        if job["state"] != "Finished":
            code = WAIT_CODES.get(job["state"], job["exit_code"] or 1)
            return int(code)
    return EXIT_OK


def entry() -> None:
    run("gjob", main)


if __name__ == "__main__":
    entry()
