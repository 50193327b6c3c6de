"""Rendering: templates with the page's common values, rows in words, live updates.

The same row template draws a job in the queue page and in the events that update it,
so a row looks the same whether it came with the page or a moment later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jinja2
from aiohttp import web

from gflow import __version__
from gflow.actions import Caller
from gflow.cli.common import hms, limit_text, memory_text
from gflow.errors import NotFound
from gflow.model import Job
from gflow.web import explain
from gflow.web.backend import Backend
from gflow.web.hub import sse


def _clock(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


FILTERS: dict[str, Callable[..., str]] = {
    "clock": _clock,
    "hms": hms,
    "limit": limit_text,
    "memory": memory_text,
    "num": _num,
}


def decorate(
    row: dict[str, Any], live: Job | None, ctx: explain.Context, now: float
) -> dict[str, Any]:
    """A listing row plus what a page shows of it: its state in words, its run time."""
    start, end = row["start_time"], row["end_time"]
    return {
        **row,
        "words": explain.phrase(row, live, ctx),
        "elapsed": hms((end or now) - start) if start is not None else "-",
    }


def job_id_of(request: web.Request) -> int:
    text = request.match_info.get("id", "")
    if not text.isdigit() or len(text) > 12:
        raise NotFound(f"job {text[:20]!r} not found: a job id is a number")
    return int(text)


class Renderer:
    def __init__(self, env: jinja2.Environment, backend: Backend, key_of: Callable[[int], str]):
        self.env = env
        self.backend = backend
        self.key_of = key_of
        self.version = __version__
        self._row = env.get_template("_macros.html").module.row  # type: ignore[attr-defined]

    def page(
        self,
        request: web.Request,
        template: str,
        partial: str,
        *,
        status: int = 200,
        **values: Any,
    ) -> web.Response:
        """The whole page, or only its live part when the script asks (``?partial=1``)."""
        caller: Caller = request["caller"]
        values.setdefault("data", {})
        values.setdefault("error", None)
        name = partial if request.query.get("partial") == "1" else template
        html = self.env.get_template(name).render(
            caller=caller, key=self.key_of(caller.uid), version=self.version, **values
        )
        return web.Response(text=html, status=status, content_type="text/html")

    def message(
        self, request: web.Request, status: int, heading: str, message: str
    ) -> web.Response:
        caller: Caller | None = request.get("caller")
        if caller is None:
            return web.Response(text=message, status=status)
        html = self.env.get_template("message.html").render(
            caller=caller,
            key=self.key_of(caller.uid),
            version=self.version,
            page="",
            title=heading,
            heading=heading,
            message=message,
            data={},
        )
        return web.Response(text=html, status=status, content_type="text/html")

    def login(self, reason: str) -> web.Response:
        html = self.env.get_template("login.html").render(reason=reason)
        return web.Response(text=html, status=401, content_type="text/html")

    def changes(self, ids: set[int], gpus: bool) -> bytes:
        """The events for one burst of changes: each job's new state and queue row."""
        out = b""
        if ids:
            ctx = self.backend.context()
            now = time.time()
            items = []
            for job_id, job in sorted(self.backend.jobs(sorted(ids)).items()):
                row = decorate(self.backend.row(job), self.backend.live(job_id), ctx, now)
                items.append(
                    {
                        "id": job_id,
                        "state": job.state.value,
                        "st": job.state.code,
                        "parents": row["parents"],
                        "row": str(self._row(row)),
                    }
                )
            out += sse("jobs", json.dumps(items))
        if gpus:
            out += sse("gpus", "{}")
        return out
