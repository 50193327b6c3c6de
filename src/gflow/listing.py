"""What the API says about jobs: their fields, and long listings streamed page by page.

A listing of the history is written as chunked JSON while it is read: the daemon holds
one page of rows at a time (fewer rows when they are large), and the event loop runs
between chunks, so a long listing neither grows the daemon's memory nor stalls other
requests and the jobs' events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from aiohttp import web

from gflow.deps import remaining_text
from gflow.host import Host, View
from gflow.jobrows import LIST_COLUMNS
from gflow.model import Job, State
from gflow.notices import shown_url
from gflow.store import JobFilter

CHUNK = 256 * 1024
"""Bytes written to the client at a time."""
PAGE_BYTES = 4 << 20
"""About how many bytes of jobs are read from the database at a time (and of their commands
at most, whatever the size of the rows before them)."""
PAGE = 2000
"""Rows read at a time at most (and the first page reads only FIRST_PAGE)."""
FIRST_PAGE = 64


def job_json(job: Job, view: View, *, deps: bool = False) -> dict[str, Any]:
    """Everything about a job (``gjob show``, ``gqueue -o json``): the listing fields and more."""
    data = compact_json(job, view, deps=deps)
    data.update(
        {
            "script": job.script,
            "workdir": job.workdir,
            "shared": job.shared,
            "gpu_memory_mb": job.gpu_memory_mb,
            "begin_at": job.begin_at,
            "conda_env": job.conda_env,
            "auto_close": job.auto_close,
            "dependency": job.deps.slurm_text() or None,
            "dep_text": job.dep_text,
            "auto_cancel": job.deps.auto_cancel,
            "any_of": job.deps.any_of,
            "params": job.params,
            "max_retries": job.max_retries,
            "attempt": job.attempt,
            "retry_of": job.retry_of,
            "redo_of": job.redo_of,
            "pid": job.pid,
            "executor": job.executor,
            "run_on": job.run_on,
            "log": view.engine.job_file(job, job.output) or str(view.engine.log_path(job)),
            "error_log": view.engine.job_file(job, job.error),
            "gflow_log": str(view.engine.log_path(job)),
            "output": job.output,
            "error": job.error,
            "cpus_per_task": job.cpus_per_task,
            "memory_enforcement": job.memory_enforcement,
            "stop_intent": job.stop_intent,
            "signal": job.signal,
            "kill_grace": view.engine.config.kill_grace,
            "tmux_socket": view.tmux_socket(job.uid),
            "mail_type": job.mail_type,
            "mail_user": job.mail_user,
            "notify_url": None if job.notify_url is None else shown_url(job.notify_url),
        }
    )
    if deps and not job.deps.is_empty:
        ev = view.engine.evals.get(job.id)
        data["pending"] = list(ev.pending) if ev and job.state.is_waiting else []
    return data


def _remaining(job: Job, view: View) -> str:
    if job.deps.is_empty or not job.state.is_waiting:
        return "-"
    return remaining_text(job.deps, view.engine.views(job.deps.parents()), time.time())


def compact_json(job: Job, view: View, *, deps: bool = False) -> dict[str, Any]:
    """The fields a listing shows (``gqueue``'s columns, tree and folding)."""
    reason = job.reason
    if job.state is State.QUEUED and reason is None:
        reason = view.engine.reasons.get(job.id)
    out: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "user": job.user,
        "uid": job.uid,
        "state": job.state.value,
        "st": job.state.code,
        "reason": reason,
        "exit_code": job.exit_code,
        "gpus": job.gpus,
        "gpu_ids": list(job.gpu_ids),
        "submit_time": job.submit_time,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "time_limit": job.time_limit,
        "memory_mb": job.memory_mb,
        "priority": job.priority,
        "project": job.project,
        "group_id": job.group_id,
        "task_id": job.task_id,
        "parents": sorted(job.deps.parents()),
        "command": list(job.command),
        "session": job.session,
        "slurm_id": job.slurm_id,
        "node": job.node,
    }
    if deps:
        out["remaining"] = _remaining(job, view)
    return out


ROW_FIELDS = (
    *("id", "name", "user", "uid", "state", "st", "reason", "exit_code", "gpus", "gpu_ids"),
    *("submit_time", "start_time", "end_time", "time_limit", "memory_mb", "priority"),
    *("project", "group_id", "task_id", "parents", "command", "session", "slurm_id", "node"),
)
"""The fields of :func:`compact_json` in the order of a row of ``view=rows`` (then
``remaining`` when dependencies are asked for)."""


def row_fields(deps: bool) -> list[str]:
    return [*ROW_FIELDS, "remaining"] if deps else list(ROW_FIELDS)


def widest(jobs: list[Job]) -> dict[str, int]:
    """The longest id and name of ``jobs`` (as :meth:`gflow.store.Store.widest`)."""
    top = max((j.id for j in jobs), default=0)
    return {"JOBID": len(str(top)), "NAME": max((len(j.name) for j in jobs), default=0)}


def as_row(item: dict[str, Any], fields: list[str]) -> list[Any]:
    """A job's listing fields as one compact row (no field names repeated per job)."""
    return [item[key] for key in fields]


def row_json(row: tuple[Any, ...], view: View, deps: bool) -> dict[str, Any]:
    """:func:`compact_json` straight from a listing row (no Job object for history).

    The command comes decoded (:meth:`gflow.store.Store.query_rows`); a row that cannot
    be read is listed as such rather than breaking the listing.
    """
    try:
        return _row_json(row, view, deps)
    except Exception:  # one damaged row must not break everyone's listing
        return _unreadable(row[0], view, deps)


def _unreadable(job_id: int, view: View, deps: bool) -> dict[str, Any]:
    placeholder = Job(job_id, -1, "?", "(unreadable)", ("?",), "/", 0.0, state=State.FAILED)
    out = compact_json(placeholder, view, deps=deps)
    out["reason"] = "InvalidJobData:unreadable row"
    return out


ROW = LIST_COLUMNS[:-1]
"""The columns of a listing row (:meth:`gflow.store.Store.query_rows`), by name."""


def _row_json(row: tuple[Any, ...], view: View, deps: bool) -> dict[str, Any]:
    r = dict(zip(ROW, row, strict=True))
    live = view.engine.jobs.get(r["id"])
    if live is not None:
        return compact_json(live, view, deps=deps)
    parents: list[int] = []
    if r["deps"]:
        data = json.loads(r["deps"])
        parents = sorted(
            {int(p) for key in ("clauses", "on_pool") for c in data[key] for p in c[1]}
        )
    gpu_ids = r["gpu_ids"]
    out: dict[str, Any] = {
        **{k: r[k] for k in ("id", "name", "user", "uid", "state", "reason", "exit_code")},
        "st": State(r["state"]).code,
        "gpus": r["gpus"],
        "gpu_ids": [int(g) for g in gpu_ids.split(",")] if gpu_ids else [],
        **{k: r[k] for k in ("submit_time", "start_time", "end_time", "time_limit")},
        **{k: r[k] for k in ("memory_mb", "priority", "project", "group_id", "task_id")},
        "parents": parents,
        "command": list(r["command"]),
        "session": f"gflow-{r['id']}",
        "slurm_id": r["slurm_id"],
        "node": r["node"],
    }
    if deps:
        out["remaining"] = "-"
    return out


def history(
    view: View,
    flt: JobFilter,
    *,
    deps: bool,
    compact: bool,
    fields: Sequence[str] | None = None,
) -> Iterator[bytes]:
    """The jobs matching ``flt`` from the database, read and encoded page by page (a
    negative ``limit``: the last ones); ``fields``: as compact rows of these fields."""
    store = view.engine.store
    after, left = 0, flt.limit or None
    if left is not None and left < 0:
        after, left = store.start_of_last(flt, -left), None
    size = FIRST_PAGE
    commands = fields is None or "command" in fields
    while left is None or left > 0:
        want = size if left is None else min(size, left)
        if commands:  # the size guessed from the last page may not fit the next commands
            want = store.fitting(flt, after, want, PAGE_BYTES)
        items: list[Any]
        if fields is not None:
            found = store.listing_page(fields, flt, after, want)
            items = listed_rows(found, fields, view, deps)
            ids = [r[0] for r in found]
        elif compact:
            found = store.query_rows(flt, after, want)
            items = [row_json(r, view, deps) for r in found]
            ids = [r[0] for r in found]
        else:
            page = store.query_page(flt, after, want)
            items = [_full(i, job, view, deps) for i, job in page]
            ids = [i for i, _ in page]
        encoded = json.dumps(items, separators=(",", ":")).encode()[1:-1]  # comma-separated
        if encoded:
            yield encoded
        if not ids or len(ids) < want:
            return
        after = ids[-1]
        left = None if left is None else left - len(ids)
        size = max(1, min(PAGE, PAGE_BYTES * len(ids) // max(len(encoded), 1)))


def listed_rows(
    page: list[tuple[Any, ...]], fields: Sequence[str], view: View, deps: bool
) -> list[Any]:
    """Compact rows of ``fields`` from :meth:`gflow.store.Store.listing_page`, converted
    a column at a time; a live job as the engine holds it, a row that cannot be read as
    such (it must not break everyone's listing)."""
    if not page:
        return []
    columns: list[Any] = list(zip(*page, strict=True))
    ids = columns[0]
    bad: set[int] = set()
    for k, name in enumerate(fields, 1):
        convert = _CONVERT.get(name)
        if convert is not None:
            columns[k] = _converted(convert, columns[k], ids, bad)
    rows: list[Any] = list(zip(*columns[1:], strict=True))
    live = view.engine.jobs
    for i in [i for i, job_id in enumerate(ids) if job_id in live or job_id in bad]:
        job = live.get(ids[i])
        item = (
            _unreadable(ids[i], view, deps) if job is None else compact_json(job, view, deps=deps)
        )
        rows[i] = as_row(item, list(fields))
    return rows


def _converted(
    convert: Callable[[Any], Any], values: Sequence[Any], ids: Sequence[int], bad: set[int]
) -> list[Any]:
    try:
        return [convert(v) for v in values]
    except Exception:  # a damaged row: found, and the others converted
        out = []
        for job_id, value in zip(ids, values, strict=True):
            try:
                out.append(convert(value))
            except Exception:
                bad.add(job_id)
                out.append(None)
        return out


def _gpu_list(text: str | None) -> list[int]:
    return [int(g) for g in text.split(",")] if text else []


def _parents(text: str | None) -> list[int]:
    if not text:
        return []
    data = json.loads(text)
    return sorted({int(p) for key in ("clauses", "on_pool") for c in data[key] for p in c[1]})


def _known(code: str | None) -> str:
    if code is None:
        raise ValueError("unknown state")
    return code


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "gpu_ids": _gpu_list,
    "parents": _parents,
    "command": list,
    "st": _known,
}
"""What :meth:`gflow.store.Store.listing_page` reads of these fields as a row holds them."""


def _full(job_id: int, job: Job | None, view: View, deps: bool) -> dict[str, Any]:
    live = view.engine.jobs.get(job_id, job)
    return _unreadable(job_id, view, deps) if live is None else job_json(live, view, deps=deps)


def encoded(items: Iterable[Any]) -> Iterator[bytes]:
    return (_encode(item) for item in items)


def _encode(item: Any) -> bytes:
    return json.dumps(item).encode()


async def stream(
    request: web.Request,
    host: Host,
    jobs: Iterable[bytes],
    extra: dict[str, Any] | None = None,
) -> web.StreamResponse:
    """``{"now": ..., (extra), "jobs": [...]}`` written while ``jobs`` is produced."""
    host.drain()
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    buf = bytearray(b'{"now": %.6f, ' % time.time())
    for key, value in (extra or {}).items():
        buf += json.dumps(key).encode() + b": " + json.dumps(value).encode() + b", "
    buf += b'"jobs": ['
    for count, item in enumerate(jobs):
        if count:
            buf += b","
        buf += item
        if len(buf) >= CHUNK:
            await resp.write(bytes(buf))
            buf.clear()
            await asyncio.sleep(0)  # the others' requests and the jobs' events go on
        elif count % 256 == 255:
            await asyncio.sleep(0)  # many small rows: let the others in now and then
    buf += b"]}"
    await resp.write(bytes(buf))
    await resp.write_eof()
    return resp
