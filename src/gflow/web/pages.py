"""The dashboard's pages: queue, graph, job, GPUs, statistics (server-rendered HTML).

Every page answers ``?partial=1`` with only its live part, which the page's script
fetches again when events say it changed. Query parameters are validated like any
request: a bad filter gets a message on the page (status 400), never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from gflow.actions import Caller
from gflow.errors import GflowError, InvalidInput, NotFound
from gflow.model import ACTIVE_STATES, FINAL_STATES, Job, State
from gflow.store import JobFilter
from gflow.web import charts, explain, layout, pipeline
from gflow.web.backend import Backend
from gflow.web.views import Renderer, decorate, job_id_of

STATE_CHOICES = [
    ("", "any state"),
    ("active", "active (queued, held, running)"),
    ("ended", "ended"),
    *((s.value, f"{s.value} ({s.code})") for s in State),
]
SIZES = (25, 50, 100, 200)
COLUMNS = [
    ("id", "ID", "num"),
    ("name", "Name", ""),
    ("user", "User", ""),
    ("project", "Project", "wide"),
    ("state", "ST", ""),
    ("start_time", "Time", "num"),
    ("gpus", "GPUs", "num"),
    ("", "Where, or why not yet", ""),
]
SORT_KEYS = {key for key, _, _ in COLUMNS if key} | {"priority", "submit_time", "end_time"}
LABELLED_EDGES = 150  # edge labels drawn up to this many edges (always in the tooltip)
MAX_PAGE = 100_000


@dataclass(frozen=True, slots=True)
class QueueQuery:
    state: str = ""
    user: str = "all"
    project: str = ""
    name: str = ""
    sort: str = "-id"
    page: int = 1
    size: int = 50

    @property
    def states(self) -> tuple[str, ...]:
        if self.state == "active":
            return tuple(sorted(s.value for s in ACTIVE_STATES))
        if self.state == "ended":
            return tuple(sorted(s.value for s in FINAL_STATES))
        return (State.parse(self.state).value,) if self.state else ()

    def link(self, **changes: Any) -> str:
        q = replace(self, **changes)
        params = {
            k: v
            for k, v in (
                ("state", q.state),
                ("user", q.user),
                ("project", q.project),
                ("name", q.name),
                ("sort", q.sort),
                ("page", q.page),
                ("size", q.size),
            )
            if v != getattr(QueueQuery, k)
        }
        return "/?" + urlencode(params) if params else "/"


def _text(query: Mapping[str, str], key: str, default: str, limit: int = 200) -> str:
    value = query.get(key, default).strip()
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(key, value[:40], f"at most {limit} characters")
    return value


def _number(query: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    text = query.get(key, "").strip()
    if not text:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise InvalidInput(key, text[:40], f"a whole number from {lo} to {hi}")
    return int(text)


def parse_queue(query: Mapping[str, str]) -> QueueQuery:
    sort = _text(query, "sort", "-id", 20)
    if sort.removeprefix("-") not in SORT_KEYS:
        raise InvalidInput(
            "sort", sort, f"one of {', '.join(sorted(SORT_KEYS))} (- for descending)"
        )
    q = QueueQuery(
        state=_text(query, "state", ""),
        user=_text(query, "user", "all") or "all",
        project=_text(query, "project", "", 64),
        name=_text(query, "name", ""),
        sort=sort,
        page=_number(query, "page", 1, 1, MAX_PAGE),
        size=_number(query, "size", 50, 1, max(SIZES)),
    )
    q.states  # noqa: B018 - validates the state
    return q


class Pages:
    def __init__(self, backend: Backend, renderer: Renderer) -> None:
        self.backend = backend
        self.r = renderer

    # ------------------------------------------------------------ queue

    async def queue(self, request: web.Request) -> web.Response:
        caller: Caller = request["caller"]
        try:
            q = parse_queue(request.query)
            values = self._queue(q, caller)
            status = 200
        except GflowError as exc:
            q, status = QueueQuery(), 400
            values = {"rows": [], "total": 0, "error": exc.message, "prev_link": None}
            values["next_link"] = None
        return self.r.page(
            request,
            "queue.html",
            "_queue_table.html",
            status=status,
            page="queue",
            title="Queue",
            q=q,
            state_choices=STATE_CHOICES,
            sizes=SIZES,
            columns=COLUMNS,
            sort_link=lambda key: q.link(sort=_toggle(q.sort, key), page=1),
            **values,
        )

    def _queue(self, q: QueueQuery, caller: Caller) -> dict[str, Any]:
        flt = JobFilter(
            states=q.states,
            uids=self.backend.uids(q.user, caller),
            projects=(q.project,) if q.project else (),
        )
        offset = (q.page - 1) * q.size
        rows, total = self.backend.page(
            flt, q.name or None, q.sort.removeprefix("-"), q.sort.startswith("-"), offset, q.size
        )
        ctx = self.backend.context()
        now = time.time()
        shown = [decorate(r, self.backend.live(r["id"]), ctx, now) for r in rows]
        return {
            "rows": shown,
            "total": total,
            "first": offset + 1,
            "last": offset + len(shown),
            "prev_link": q.link(page=q.page - 1) if q.page > 1 else None,
            "next_link": q.link(page=q.page + 1) if offset + len(shown) < total else None,
        }

    # ------------------------------------------------------------ job

    async def job(self, request: web.Request) -> web.Response:
        caller: Caller = request["caller"]
        job_id = job_id_of(request)
        job = self.backend.job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        values = self.job_values(job, caller)
        return self.r.page(
            request,
            "job.html",
            "_job.html",
            page="job",
            title=f"Job {job.id}",
            data={"job": job.id, "related": ",".join(map(str, values["related"]))},
            **values,
        )

    def job_values(self, job: Job, caller: Caller) -> dict[str, Any]:
        b = self.backend
        now = time.time()
        data = decorate(b.show(job), b.live(job.id), b.context(), now)
        related = b.jobs(sorted(job.deps.parents()) + b.children(job.id) + data["attempts"])

        def brief(ids: list[int]) -> list[dict[str, Any]]:
            return [
                {"id": i, "name": j.name, "st": j.state.code, "state": j.state.value}
                for i in ids
                if (j := related.get(i)) is not None
            ]

        may_act = b.may_act(job, caller)
        return {
            "j": data,
            "parents": brief(sorted(job.deps.parents())),
            "children": brief(b.children(job.id)),
            "attempts": brief(data["attempts"]),
            "may_act": may_act,
            "may_read_log": caller.uid in (0, job.uid),  # who may open it (logs.may_read)
            "actions": _actions(job) if may_act else [],
            "related": sorted(related),
        }

    # ------------------------------------------------------------ graph

    async def graph(self, request: web.Request) -> web.Response:
        text = request.query.get("job", "").strip()
        error = None
        root: int | None = None
        if text:
            if not text.isdigit() or len(text) > 12:
                error = InvalidInput("job", text[:40], "a job id").message
            elif self.backend.job(int(text)) is None:
                error = f"job {text} not found"
            else:
                root = int(text)
        g = pipeline.component(self.backend, root) if root else pipeline.active(self.backend)
        if error:
            g = pipeline.Graph({}, (), False)
        lay = layout.layout(g.jobs, g.edges)
        return self.r.page(
            request,
            "graph.html",
            "_graph.html",
            status=400 if error else 200,
            page="graph",
            title="Graph",
            data={"root": root or ""},
            root=root,
            g=g,
            lay=lay,
            error=error,
            labels=len(lay.edges) <= LABELLED_EDGES,
            node_w=layout.NODE_W,
            node_h=layout.NODE_H,
            legend=[(s.code, s.value) for s in State],
        )

    # ------------------------------------------------------------ GPUs

    async def gpus(self, request: web.Request) -> web.Response:
        info = self.backend.gpus()
        owners = {j.id: j.user for j in self.backend.holding()}
        cards = [_card(c, owners) for c in info["gpus"]]
        reservations = self.backend.reservations()
        return self.r.page(
            request,
            "gpus.html",
            "_gpus.html",
            page="gpus",
            title="GPUs",
            cards=cards,
            reservations=reservations,
            timeline=_timeline(reservations, time.time()),
            memory=self.backend.host_memory(),
        )

    # ------------------------------------------------------------ stats

    async def stats(self, request: web.Request) -> web.Response:
        caller: Caller = request["caller"]
        user, days, error = "all", 30, None
        try:
            user = _text(request.query, "user", "all") or "all"
            days = _number(request.query, "days", 30, 1, 3650)
            uids = self.backend.uids(user, caller)
        except GflowError as exc:
            error, uids = exc.message, (caller.uid,)
        now = time.time()
        since = now - days * 86400
        rows = self.backend.store.usage_rows(uids, since)
        shown = [
            charts.per_day(rows, now, min(days, 31)),
            charts.gpu_hours(rows, now, "user"),
            charts.gpu_hours(rows, now, "project"),
            charts.waits(rows),
        ]
        return self.r.page(
            request,
            "stats.html",
            "_stats.html",
            status=400 if error else 200,
            page="stats",
            title="Statistics",
            q={"user": user, "days": days},
            s=self.backend.stats(uids, since),
            charts=shown,
            error=error,
        )


def _toggle(current: str, key: str) -> str:
    if current == key:
        return "-" + key
    if current == "-" + key:
        return key
    return "-" + key if key in ("id", "start_time", "submit_time", "end_time", "gpus") else key


def _actions(job: Job) -> list[tuple[str, str]]:
    if job.state is State.QUEUED:
        return [("hold", "Hold"), ("cancel", "Cancel…")]
    if job.state is State.HOLD:
        return [("release", "Release"), ("cancel", "Cancel…")]
    if job.state is State.RUNNING:
        return [("cancel", "Cancel…")]
    return [("redo", "Redo…")]


def _card(c: dict[str, Any], owners: dict[int, str]) -> dict[str, Any]:
    """One GPU, with its memory bar: jobs, unmanaged processes, free room."""
    total = max(int(c["memory_total_mib"]), 1)
    scale = 300 / total
    segments: list[dict[str, Any]] = []
    x = 0.0
    jobs = [{**j, "user": owners.get(j["id"], "?")} for j in c["jobs"]]
    for j in jobs:
        mib = j["gpu_memory_mb"] if j["shared"] and j["gpu_memory_mb"] else total
        w = min(mib * scale, 300 - x)
        segments.append(
            {
                "x": round(x, 1),
                "w": round(w, 1),
                "cls": "job",
                "label": f"job {j['id']} {j['name']}",
            }
        )
        x += w
    if c["foreign_mib"]:
        w = min(c["foreign_mib"] * scale, 300 - x)
        segments.append(
            {"x": round(x, 1), "w": round(w, 1), "cls": "foreign", "label": "unmanaged"}
        )
    exclusive = any(not j["shared"] for j in jobs)
    state = (
        "in use, whole card"
        if exclusive
        else f"shared by {len(jobs)} job(s)"
        if jobs
        else "unmanaged processes"
        if c["foreign_pids"]
        else "idle"
    )
    declared = sum(j["gpu_memory_mb"] or 0 for j in jobs if j["shared"])
    summary = f"{c['memory_used_mib']} of {total} MiB used"
    if declared:
        summary += f"; {declared} MiB declared by shared jobs"
    return {**c, "jobs": jobs, "segments": segments, "state": state, "summary": summary}


def _timeline(reservations: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """Reservation windows per GPU from now on (a day at least, a week at most)."""
    end = min(max([r["end"] for r in reservations] + [now + 86400]), now + 7 * 86400)
    width, left = 720, 60
    scale = (width - left - 10) / (end - now)
    gpus = sorted({g for r in reservations for g in r["gpu_ids"]})
    rows = []
    for i, gpu in enumerate(gpus):
        bars = []
        for r in reservations:
            if gpu not in r["gpu_ids"]:
                continue
            a, b = max(r["start"], now), min(r["end"], end)
            if b <= a:
                continue
            bars.append(
                {
                    "x": round(left + (a - now) * scale, 1),
                    "w": max(round((b - a) * scale, 1), 2),
                    "user": r["user"],
                    "state": r["state"],
                    "label": f"#{r['id']} {r['user']} {explain.when(r['start'])} – "
                    f"{explain.when(r['end'])}",
                }
            )
        rows.append({"gpu": gpu, "y": 22 + i * 26, "bars": bars})
    step = 3600 * (6 if end - now <= 2 * 86400 else 24)
    ticks = []
    t = now - now % step + step
    while t < end:
        fmt = "%H:%M" if step < 86400 else "%m-%d"
        ticks.append(
            {
                "x": round(left + (t - now) * scale, 1),
                "label": time.strftime(fmt, time.localtime(t)),
            }
        )
        t += step
    return {"rows": rows, "ticks": ticks, "width": width, "height": 26 + 26 * len(gpus), "end": end}


def environment() -> jinja2.Environment:
    """Templates from the package, every value escaped."""
    from gflow.web.views import FILTERS

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gflow.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env
