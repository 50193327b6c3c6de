"""``gflow mcp``: the scheduler for AI agents, as an MCP server on stdin/stdout.

Built with the official MCP SDK on :class:`gflow.Client`, so an agent reaches gflowd the
way its user's commands do, as that user, and can never do more than the user. The tools
are of three kinds, marked in their annotations and descriptions:

* read tools (the queue, a job, a log, GPUs, statistics, queue pressure, reservations,
  a job's dependency tree, and a diagnosis of why a job waits or failed);
* preview tools, which say what a submission, an update or a cancellation would do
  (the daemon's dry runs) and change nothing;
* tools that change the scheduler's state (submit, cancel, hold, release, update, redo),
  whose descriptions ask the agent to have the user confirm first.

The job options of ``submit``, ``preview_submit``, ``update`` and ``preview_update`` are
the option table's (:data:`gflow.options.OPTIONS`), with its help as their descriptions.
Results are compact JSON; a refusal is a tool error carrying the CLI's one-line message.
Nothing but the protocol is written to stdout.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import time
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from gflow import triage, version
from gflow.errors import GflowError
from gflow.keywords import keywords
from gflow.options import BY_KEY, CHANGE, LIST, SUBMIT, SWITCH, Option, Whole
from gflow.records import Info, JobInfo
from gflow.sdk import Client

CONFIRM = (
    "Changes the scheduler's state: tell the user what it will do and get their "
    "confirmation before calling it (the preview tools show what would happen)."
)
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTROYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
MAX_LIST = 1000
MAX_LOG = 1 << 20
TREE_NODES = 500
TREE_LISTING = 10_000
"""Jobs submitted since a tree's root that are searched for its dependents."""
INSTRUCTIONS = (
    "gflow schedules jobs on this machine's GPUs, Slurm-style. Read tools are safe; "
    "preview tools show what a change would do; submit, cancel, hold, release, update "
    "and redo change the queue and need the user's confirmation. Job references are ids "
    "(42), lists and ranges (1,3,5-7), @ (the user's latest submission) or ARRAY_TASK."
)

Jobs = Annotated[str, Field(description="jobs: 42, 1,2,3, 1-5, @ (your latest), 12_3")]
One = Annotated[str, Field(description="one job: 42, @ (your latest submission), 12_3")]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def job_summary(job: JobInfo) -> dict[str, Any]:
    """A job in a few fields: what a listing shows."""
    out = {
        "id": job.id,
        "name": job.name,
        "user": job.user,
        "state": job.state,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "gpus": job.gpus,
        "gpu_ids": list(job.gpu_ids),
        "parents": list(job.parents),
        "group_id": job.group_id,
        "submit_time": job.submit_time,
        "start_time": job.start_time,
        "end_time": job.end_time,
    }
    return {k: v for k, v in out.items() if not _empty(v)}


def job_detail(job: JobInfo) -> dict[str, Any]:
    """Everything about a job that helps, without empty fields."""
    out = {
        **job_summary(job),
        "command": list(job.command),
        "script": job.script,
        "workdir": job.workdir,
        "time_limit": job.time_limit,
        "memory_mb": job.memory_mb,
        "gpu_memory_mb": job.gpu_memory_mb,
        "shared": job.shared or None,
        "priority": job.priority,
        "project": job.project,
        "dependency": job.dependency,
        "waiting_for": list(job.pending),
        "auto_cancel": None if job.auto_cancel else False,
        "params": dict(job.params) if job.params else None,
        "attempts": list(job.attempts) if len(job.attempts) > 1 else None,
        "max_retries": job.max_retries or None,
        "log": job.log,
        "events": [[e.time, e.old, e.new, e.reason] for e in job.events],
    }
    return {k: v for k, v in out.items() if not _empty(v)}


def tool_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A refusal or bad input becomes a tool error with its one-line message (the SDK
    hides the text of any other exception)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (GflowError, TypeError, ValueError, OSError, TimeoutError) as exc:
            raise ToolError(str(exc).replace("\n", "; ")) from exc

    return wrapper


def option_parameters(purpose: str) -> list[inspect.Parameter]:
    """The job options as tool parameters, typed and described from the option table."""
    return [
        inspect.Parameter(
            key,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                _json_type(BY_KEY[key]) | None,
                Field(description=f"{BY_KEY[key].help} (gbatch {BY_KEY[key].flag})"),
            ],
        )
        for key in keywords(purpose)
        if not (purpose == CHANGE and BY_KEY[key].update is not True)
    ]


def _json_type(option: Option) -> Any:
    if option.kind.form == SWITCH:
        return bool
    if option.kind.form == LIST:
        return list[str]
    if isinstance(option.kind, Whole) and not option.kind.gres:
        return int
    if option.key == "gpus":
        return int
    return str


def with_options(
    fn: Callable[..., Any], purpose: str, leading: list[inspect.Parameter]
) -> Callable[..., Any]:
    """``fn(**kwargs)`` with a signature the SDK reads: ``leading`` then the options."""
    params = [*leading, *option_parameters(purpose)]
    fn.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    return fn


def _given(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


class Tools:
    """The tools, over one client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # ------------------------------------------------------------ read

    def queue(
        self,
        states: Annotated[
            str | None,
            Field(description="states such as Running,PD,F (default: queued, held, running)"),
        ] = None,
        all: Annotated[bool, Field(description="every state, finished ones included")] = False,
        users: Annotated[str | None, Field(description="user names, or all (default: you)")] = None,
        ids: Annotated[str | None, Field(description="only these jobs: 5, 1,3,7-9, @")] = None,
        names: Annotated[str | None, Field(description="only jobs with these names")] = None,
        since: Annotated[str | None, Field(description="1h, 2d, today or an ISO date")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_LIST, description="at most this many")] = 100,
    ) -> str:
        """List jobs like gqueue: by default your queued, held and running jobs; the most
        recent ``limit`` of them."""
        found = self.client.jobs(
            states=states, all=all, users=users, ids=ids, names=names, since=since, limit=-limit
        )
        return compact({"jobs": [job_summary(j) for j in found], "count": len(found)})

    def job(self, id: One) -> str:
        """Everything about one job: command, resources, dependency, timing, history."""
        return compact(job_detail(self.client.job(id)))

    def log(
        self,
        id: One,
        first: Annotated[int | None, Field(ge=0, description="only the first N lines")] = None,
        last: Annotated[
            int | None, Field(ge=0, description="only the last N lines (default 100)")
        ] = None,
        max_bytes: Annotated[
            int, Field(ge=1, le=MAX_LOG, description="at most this many bytes (the end)")
        ] = 20000,
    ) -> str:
        """A job's output (stdout and stderr): by default its last 100 lines."""
        if first is None and last is None:
            last = 100
        text = self.client.log(id, first=first, last=last, max_bytes=max_bytes)
        return compact({"id": id, "text": text})

    def gpus(self) -> str:
        """The machine's GPUs (which job holds each, foreign processes, reservations),
        host memory for jobs, and the daemon's status."""
        from gflow.cli.ginfo import gpu_state

        raw = self.client.transport.get("/v1/info")
        info = Info.from_json(raw)
        return compact(
            {
                "gpus": [
                    {
                        "index": g.index,
                        "name": g.name,
                        "memory_mib": g.memory_total_mib,
                        "state": gpu_state(r),
                    }
                    for g, r in zip(info.gpus, raw["gpus"], strict=True)
                ],
                "memory_mb": info.memory_mb,
                "executor": info.executor,
                "jobs": info.status.get("jobs", {}),
                "version": info.status.get("version"),
            }
        )

    def stats(
        self,
        since: Annotated[str | None, Field(description="1h, 7d, today or an ISO date")] = None,
        all_users: Annotated[bool, Field(description="everyone's jobs, not only yours")] = False,
    ) -> str:
        """Usage statistics like gstats: jobs by state, average wait and run time,
        GPU-hours, success rate."""
        found = self.client.stats(users="all" if all_users else None, since=since)
        return compact({k: v for k, v in vars_of(found).items() if v is not None})

    def queue_pressure(self) -> str:
        """How busy the machine is, for everyone: jobs by state, why queued jobs wait,
        GPUs asked for against GPUs idle, and each user's share."""
        active = self.client.jobs(users="all", limit=None)
        info = self.client.info()
        reasons: dict[str, int] = {}
        users: dict[str, dict[str, int]] = {}
        for job in active:
            share = users.setdefault(job.user, {"running": 0, "queued": 0, "held": 0, "gpus": 0})
            if job.state == "Running":
                share["running"] += 1
                share["gpus"] += job.gpus
            elif job.state == "Hold":
                share["held"] += 1
            else:
                share["queued"] += 1
                reasons[job.reason or "Waiting"] = reasons.get(job.reason or "Waiting", 0) + 1
        queued = [j for j in active if j.state == "Queued"]
        return compact(
            {
                "running": sum(1 for j in active if j.state == "Running"),
                "queued": len(queued),
                "held": sum(1 for j in active if j.state == "Hold"),
                "queued_by_reason": reasons,
                "gpus_total": len(info.gpus),
                "gpus_idle": sum(1 for g in info.gpus if g.idle),
                "gpus_asked_by_queued": sum(j.gpus for j in queued),
                "users": users,
            }
        )

    def reservations(self, all: Annotated[bool, Field(description="past ones too")] = False) -> str:
        """GPU reservations (gctl reserve list): who, which GPUs, when."""
        answer = self.client.transport.post("/v1/admin/reserve", {"action": "list", "all": all})
        return compact({"reservations": answer["reservations"]})

    def dependency_tree(
        self,
        id: One,
        depth: Annotated[int, Field(ge=1, le=50, description="levels up and down")] = 10,
    ) -> str:
        """The jobs a job waits for (up) and the jobs that wait for it (down), with
        their states."""
        root = self.client.job(id)
        ancestors = self._ancestors(root, depth)
        later = self.client.jobs(
            all=True, users=root.user, since=root.submit_time - 1, limit=TREE_LISTING
        )
        children: dict[int, list[JobInfo]] = {}
        for job in later:
            for parent in job.parents:
                children.setdefault(parent, []).append(job)
        count = [0]

        def down(job: JobInfo, level: int) -> dict[str, Any]:
            count[0] += 1
            node: dict[str, Any] = {"id": job.id, "name": job.name, "state": job.state}
            kids = children.get(job.id, []) if level < depth else []
            if kids and count[0] < TREE_NODES:
                node["children"] = [down(k, level + 1) for k in kids if count[0] < TREE_NODES]
            return node

        return compact({"waits_for": ancestors, "tree": down(root, 0)})

    def _ancestors(self, root: JobInfo, depth: int) -> list[dict[str, Any]]:
        seen: dict[int, dict[str, Any]] = {}
        level = list(root.parents)
        for _ in range(depth):
            fresh = [p for p in dict.fromkeys(level) if p not in seen][:TREE_NODES]
            if not fresh:
                break
            found = self.client.jobs(ids=fresh, all=True)
            level = []
            for job in found:
                seen.setdefault(
                    job.id,
                    {
                        "id": job.id,
                        "name": job.name,
                        "state": job.state,
                        "parents": list(job.parents),
                    },
                )
                level += job.parents
        return list(seen.values())

    def diagnose(self, id: One) -> str:
        """Why a job is waiting, or why it failed, was cancelled or timed out, in words,
        with the end of its log and what to do next."""
        job = self.client.job(id)
        parents = self.client.jobs(ids=list(job.parents), all=True) if job.parents else []
        info = self.client.info() if job.state == "Queued" else None
        log_tail = None
        if job.log and os.path.exists(job.log):
            try:
                log_tail = self.client.log(job.id, last=triage.TAIL_LINES, max_bytes=4000)
            except (GflowError, OSError):
                log_tail = None
        return compact(triage.diagnose(job, parents, info, log_tail, now=time.time()))

    # ------------------------------------------------------------ preview

    def preview_submit(self, command: str, workdir: str | None = None, **options: Any) -> str:
        """What submit would make (names, commands, GPUs, tasks); nothing is submitted."""
        made = self.client.preview(command, workdir=workdir, **_given(options))
        return compact(
            {"would_submit": [job_summary(j) | {"command": list(j.command)} for j in made]}
        )

    def preview_cancel(self, ids: Jobs) -> str:
        """What cancel would do: the jobs named, and the queued jobs waiting on them that
        would be cancelled too or never start."""
        done = self.client.cancel(ids, dry_run=True)
        return compact({"would": [vars_of(a) for a in done]})

    def preview_update(self, ids: Jobs, **options: Any) -> str:
        """What update would change on each job, checked by the daemon; nothing changes."""
        done = self.client.update(ids, dry_run=True, **_given(options))
        return compact({"would": [vars_of(a) for a in done]})

    # ------------------------------------------------------------ change

    def submit(self, command: str, workdir: str | None = None, **options: Any) -> str:
        """Submit a job: a shell command line, run in ``workdir`` with the server's
        environment. Options as gbatch's."""
        job = self.client.submit(command, workdir=workdir, **_given(options))
        return compact({"submitted": [{"id": t.id, "name": t.name} for t in job.tasks]})

    def cancel(self, ids: Jobs) -> str:
        """Cancel jobs: queued ones at once, running ones by signal; queued jobs that
        depend on them are cancelled too unless submitted with no_auto_cancel."""
        return compact({"done": [vars_of(a) for a in self.client.cancel(ids)]})

    def hold(self, ids: Jobs) -> str:
        """Keep queued jobs from starting until released."""
        return compact({"done": [vars_of(a) for a in self.client.hold(ids)]})

    def release(
        self,
        ids: Jobs,
        at: Annotated[str | None, Field(description="not before: 22:00, now+1h")] = None,
    ) -> str:
        """Let held jobs start again."""
        return compact({"done": [vars_of(a) for a in self.client.release(ids, at=at)]})

    def update(self, ids: Jobs, **options: Any) -> str:
        """Change queued or held jobs (options as gbatch's; dependency options replace
        the job's dependencies)."""
        return compact({"done": [vars_of(a) for a in self.client.update(ids, **_given(options))]})

    def redo(
        self,
        id: One,
        cascade: Annotated[
            bool, Field(description="also redo the jobs its failure cancelled")
        ] = False,
        **options: Any,
    ) -> str:
        """Submit an ended job again as a new job, with options changed as given."""
        made = self.client.redo(id, cascade=cascade, **_given(options))
        return compact({"submitted": [{"id": j.id, "name": j.name} for j in made]})


def vars_of(record: Any) -> dict[str, Any]:
    """A record's fields without the empty ones (None, False, empty lists)."""
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(record).items() if not _empty(v)}


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, (list, tuple)) and not value)


def describe(fn: Callable[..., Any], confirm: bool = False) -> str:
    """A tool's description: its docstring as one paragraph, and for a tool that changes
    the queue, the request to confirm."""
    text = " ".join((inspect.getdoc(fn) or "").replace("``", "").split())
    return f"{text} {CONFIRM}" if confirm else text


def build(client: Client | None = None) -> MCPServer[Any]:
    """The server and its tools."""
    tools = Tools(client or Client())
    server: MCPServer[Any] = MCPServer(
        "gflow", instructions=INSTRUCTIONS, version=version(), log_level="WARNING"
    )
    command = inspect.Parameter(
        "command",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[str, Field(description="a shell command line, e.g. python train.py")],
    )
    workdir = inspect.Parameter(
        "workdir",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None, Field(description="where it runs (default: the server's directory)")
        ],
    )
    ids = inspect.Parameter("ids", inspect.Parameter.KEYWORD_ONLY, annotation=Jobs)
    one = inspect.Parameter("id", inspect.Parameter.KEYWORD_ONLY, annotation=One)
    cascade = inspect.Parameter(
        "cascade",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, Field(description="also redo the jobs its failure cancelled")],
    )
    read: list[Callable[..., Any]] = [
        tools.queue,
        tools.job,
        tools.log,
        tools.gpus,
        tools.stats,
        tools.queue_pressure,
        tools.reservations,
        tools.dependency_tree,
        tools.diagnose,
        tools.preview_cancel,
    ]
    for fn in read:
        server.add_tool(
            tool_errors(fn), description=describe(fn), annotations=READ, structured_output=False
        )
    optioned: list[tuple[str, Callable[..., Any], str, list[inspect.Parameter], Any, bool]] = [
        ("preview_submit", tools.preview_submit, SUBMIT, [command, workdir], READ, False),
        ("preview_update", tools.preview_update, CHANGE, [ids], READ, False),
        ("submit", tools.submit, SUBMIT, [command, workdir], CHANGES, True),
        ("update", tools.update, CHANGE, [ids], CHANGES, True),
        ("redo", tools.redo, CHANGE, [one, cascade], CHANGES, True),
    ]
    for name, method, purpose, leading, hints, confirm in optioned:
        fn = with_options(tool_errors(method), purpose, leading)
        text = describe(method, confirm)
        server.add_tool(fn, name=name, description=text, annotations=hints, structured_output=False)
    for fn, hints in ((tools.cancel, DESTROYS), (tools.hold, CHANGES), (tools.release, CHANGES)):
        text = describe(fn, confirm=True)
        server.add_tool(
            tool_errors(fn), description=text, annotations=hints, structured_output=False
        )
    return server


def serve(config: str | None = None) -> None:
    """Run the server on stdin/stdout until the client closes it."""
    import anyio

    server = build(Client(config=config))
    anyio.run(server.run_stdio_async)
