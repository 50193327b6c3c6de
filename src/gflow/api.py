"""The HTTP+JSON API the clients speak, on the Unix socket (and optionally loopback TCP).

Every handler identifies the caller from the kernel, validates the body into a
protocol object, calls one engine command, drains the engine's actions, and answers
only after the store committed. Errors become ``{"error": ..., "kind": ...}`` with a
4xx status; anything unexpected is a 500 with one line, logged with its traceback.
Which handler answers which request is in :mod:`gflow.routes`; the handlers see the
daemon through the small :class:`Server` interface, not the runtime.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from gflow import admin, commands, condaenv, graph, limits, listing, routes
from gflow.engine import Caller
from gflow.errors import Conflict, Forbidden, GflowError, InvalidInput, NotFound
from gflow.host import Admin, Host, View
from gflow.identity import is_admin, peer_credentials, uid_of, user_name
from gflow.limits import LATEST, MAX_DIGITS, MAX_ID, MAX_SPEC, MAX_UID, MAX_WAIT
from gflow.model import ACTIVE_STATES, Job, State
from gflow.placement import SLURM
from gflow.protocol import SubmitRequest, selector, update_changes
from gflow.store import JobFilter

if TYPE_CHECKING:
    from gflow.metrics import Metrics
    from gflow.tcpauth import Verifier
    from gflow.web.server import Dashboard

log = logging.getLogger("gflow.api")
MAX_BODY = 64 * 1024 * 1024
MAX_USERS = 1000  # user names in one listing's users= filter
MAX_CONDA_CHECKS = 4  # conda runs one update or redo may cause (one per submission and directory)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server(Admin, Protocol):
    """What the HTTP server needs of the daemon besides the runtime controls."""

    @property
    def tcp_auth(self) -> Verifier: ...

    @property
    def web(self) -> Dashboard | None: ...

    @property
    def metrics(self) -> Metrics | None: ...


class Api:
    def __init__(self, rt: Server) -> None:
        self.rt = rt

    # ------------------------------------------------------------ plumbing

    def caller(self, request: web.Request) -> Caller:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None and sock.family.name == "AF_UNIX":
            _, uid, gid = peer_credentials(sock)
        elif self.rt.system:
            if request.method != "GET":
                raise Forbidden(
                    "TCP access to the system gflowd is read-only; use the "
                    "Unix socket to change anything"
                )
            return Caller(-1, -1, "tcp-reader")
        elif request.get("signed"):
            uid, gid = self.rt.uid, os.getgid()
        else:
            raise Forbidden(
                "TCP clients must sign each request with the token in "
                f"{self.rt.paths.token_file} (the gflow commands do, with GFLOW_TCP=1)"
            )
        return caller_for(self.rt, uid, gid)

    @web.middleware
    async def deadline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The whole request (head and body) within the connection's idle timeout; the
        answer may then take as long as it takes."""
        body = request.read() if request.body_exists else None
        if not await self.rt.listener.deliver(request.transport, body):
            seconds = self.rt.listener.idle_timeout
            resp = web.json_response(
                {"error": f"the request did not arrive within {seconds:g} s", "kind": "timeout"},
                status=408,
            )
            resp.force_close()
            return resp
        if not self.rt.system and _is_tcp(request):
            request["signed"] = self.rt.tcp_auth.check(
                request.headers.get("Authorization", ""),
                request.method,
                request.raw_path,
                await request.read(),
                time.time(),
            )
        return await handler(request)

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except GflowError as exc:
            return web.json_response({"error": exc.message, "kind": exc.kind}, status=exc.status)
        except web.HTTPException as exc:
            return web.json_response({"error": exc.reason, "kind": "http"}, status=exc.status)
        except Exception as exc:  # the handler boundary: one line out, traceback to the log
            log.exception("internal error on %s %s", request.method, request.path)
            return web.json_response(
                {"error": f"internal error: {type(exc).__name__}: {exc}", "kind": "internal"},
                status=500,
            )

    @staticmethod
    async def body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            data = json.loads(raw or b"{}", parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise InvalidInput(
                "request body", raw[:40].decode("utf-8", "replace"), "a JSON object"
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput("request body", limits.brief(data), "a JSON object")
        return data

    def done(self, payload: Any, status: int = 200) -> web.Response:
        self.rt.drain()
        return web.json_response(payload, status=status)

    # ------------------------------------------------------------ jobs

    async def submit(self, request: web.Request) -> web.Response:
        caller = self.caller(request)
        req = SubmitRequest.from_json(await self.body(request))
        await self.check_conda(req, caller)
        jobs = commands.submit(self.rt.engine, req, caller, time.time())
        if req.dry_run:
            dry = [listing.job_json(j, self.rt) for j in jobs]
            return self.done({"jobs": dry, "dry_run": True})
        out = [
            {"id": j.id, "name": j.name, "state": j.state.value, "reason": j.reason} for j in jobs
        ]
        self.rt.submitted(caller.uid)
        return self.done({"jobs": out, "dry_run": False}, 201)

    async def check_conda(self, req: SubmitRequest, caller: Caller) -> None:
        """A conda environment the job could not activate is refused now, not when the
        job runs (on a Slurm cluster the nodes' conda decides, so it is not asked)."""
        if not req.conda_env:
            return
        engine = self.rt.engine
        run_as = engine.known_identity(caller.uid)
        if engine.placement.check(req.run_on, req.project) != SLURM and run_as is not False:
            await condaenv.check(req.conda_env, req.env, req.workdir, run_as)

    async def list_jobs(self, request: web.Request) -> web.StreamResponse:
        caller = self.caller(request)
        q = request.query
        missing: list[int] = []
        ids = (
            commands.select(self.rt.engine, q["ids"], caller, missing=missing)
            if q.get("ids")
            else []
        )
        if missing and not ids:
            raise NotFound(f"job {missing[0]} not found")
        flt = JobFilter(
            states=tuple(State.parse(s).value for s in _csv(q.get("states"))),
            ids=tuple(ids),
            names=tuple(_csv(q.get("names"))),
            uids=uids_of(q.get("users", "me"), caller),
            projects=tuple(_csv(q.get("projects"))),
            since=_since(q),
            limit=_int(q, "limit", -MAX_ID, MAX_ID),
        )
        deps = q.get("deps") == "1"
        compact = q.get("view") in ("compact", "rows")
        as_rows = q.get("view") == "rows"
        fields = _fields(q.get("fields"), listing.row_fields(deps)) if as_rows else None
        head: dict[str, Any] = {"fields": fields} if fields is not None else {}
        if flt.states and set(flt.states) <= {s.value for s in ACTIVE_STATES}:
            view = listing.compact_json if compact else listing.job_json
            jobs = flt.pick(sorted(self.rt.engine.jobs.values(), key=lambda j: j.id))
            head["widest"] = listing.widest(jobs)
            items: Iterator[Any] = (view(j, self.rt, deps=deps) for j in jobs)
            if as_rows:
                items = (listing.as_row(item, head["fields"]) for item in items)
            rows = listing.encoded(items)
        else:
            rows = listing.history(self.rt, flt, deps=deps, compact=compact, fields=fields)
            if not flt.limit:
                head["widest"] = self.rt.engine.store.widest(flt)
        if missing:
            head["missing"] = missing
        slurm = self.rt.slurm
        if slurm is not None and not slurm.status.reachable:  # gqueue says so
            head["slurm"] = slurm.status.json()
        return await listing.stream(request, self.rt, rows, head)

    async def show(self, request: web.Request) -> web.StreamResponse:
        caller = self.caller(request)
        eng = self.rt.engine
        one = request.query.get("one") == "1"
        ids = commands.select(eng, request.query.get("ids", ""), caller, whole_groups=not one)
        if one and len(ids) != 1:
            raise InvalidInput(
                "job", request.query.get("ids", ""), "exactly one job (42, @, @~1 or 12_3)"
            )
        for job_id in ids:
            eng.require(job_id)
        return await listing.stream(request, self.rt, listing.encoded(self._shown(ids)))

    def _shown(self, ids: list[int]) -> Iterator[dict[str, Any]]:
        eng = self.rt.engine
        for job_id in ids:
            job = eng.job(job_id)
            if job is None:  # it was pruned meanwhile
                continue
            yield show_json(job, self.rt)

    async def control(self, request: web.Request) -> web.Response:
        caller = self.caller(request)
        data = await self.body(request)
        verb = request.match_info["verb"]
        if verb in ("update", "redo"):
            await self.check_new_conda(verb, data, caller)
        return self.done(control(self.rt, verb, data, caller))

    async def check_new_conda(self, verb: str, data: dict[str, Any], caller: Caller) -> None:
        """A conda environment that ``gjob update`` or ``gjob redo`` gives is checked as
        at submission: by the job's user, in its directory and environment, before
        anything changes. A request the command refuses anyway is left to it."""
        engine = self.rt.engine
        try:
            texts = data.get("options")
            changes = update_changes(data.get("changes") or None, texts, required=False)
            name = changes.get("conda_env")
            if not name:
                return
            key = "id" if verb == "redo" else "ids"
            jobs = [engine.require(i) for i in commands.select(engine, selector(data, key), caller)]
            for job in jobs:
                engine.check_owner(job, caller)
                commands.check_may_change_run(job, changes, caller)
            asked = {
                (job.uid, job.batch_id, changes.get("workdir", job.workdir)): None
                for job in jobs
                if engine.placement.check(changes.get("run_on", job.run_on), job.project) != SLURM
            }
        except GflowError:
            return
        checks = [
            condaenv.check(name, engine.store.batch_env(batch_id), workdir, run_as)
            for uid, batch_id, workdir in list(asked)[:MAX_CONDA_CHECKS]
            if (run_as := engine.known_identity(uid)) is not False
        ]
        # together, so the answer comes within one check's time limit
        for outcome in await asyncio.gather(*checks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def wait(self, request: web.Request) -> web.Response:
        """Until the jobs have ended (``any=1``: until one has, and then only the ended
        ones are listed; with ``after=ID``, also until the caller submits a job newer
        than ``ID``, and the answer says the caller's ``newest``). A job that was retried
        stands for its newest attempt (unless ``retries=0``): that one is listed, and
        ``attempts`` maps the id asked for to it."""
        caller = self.caller(request)
        eng, q = self.rt.engine, request.query
        named = commands.select(eng, q.get("ids", ""), caller)
        timeout = _float(q, "timeout", 0.0, MAX_WAIT)
        timeout = 30.0 if timeout is None else timeout
        first = q.get("any") == "1"
        after = _int(q, "after", 0, MAX_ID) if first else None
        # a job that failed and was retried stands for its newest attempt, as in dependencies
        newest = q.get("retries") != "0"
        ids = [graph.latest_attempt(n, eng) for n in named] if newest else named
        active = [i for i in ids if i in eng.jobs]
        ready = first and (
            len(active) < len(ids) or (after is not None and self._newest(caller) > after)
        )
        if active and not ready:
            submitter = caller.uid if after is not None else None
            await self.rt.wait_for(active, timeout, first=first, submitter=submitter)
        if newest:  # a retry made meanwhile
            ids = [graph.latest_attempt(n, eng) for n in named]
        view = listing.compact_json if q.get("view") == "compact" else listing.job_json
        jobs = [view(eng.require(i), self.rt) for i in ids if not (first and i in eng.jobs)]
        answer: dict[str, Any] = {"jobs": jobs, "done": all(i not in eng.jobs for i in ids)}
        retried = {str(n): i for n, i in zip(named, ids, strict=True) if n != i}
        if retried:  # the newest attempt listed for each retried job that was named
            answer["attempts"] = retried
        if after is not None:
            answer["newest"] = self._newest(caller)
        return self.done(answer)

    def _newest(self, caller: Caller) -> int:
        """The id of the caller's latest job (0: none yet)."""
        latest = self.rt.engine.recent_submissions(caller.uid, 1)
        return latest[0][0] + latest[0][1] - 1 if latest else 0

    # ------------------------------------------------------------ daemon

    async def health(self, request: web.Request) -> web.Response:
        self.caller(request)
        return self.done(admin.status(self.rt))

    async def info(self, request: web.Request) -> web.Response:
        self.caller(request)
        return self.done(admin.info(self.rt))

    async def shutdown(self, request: web.Request) -> web.Response:
        caller = self.caller(request)
        if not caller.admin:
            raise Forbidden("only an administrator may stop the system gflowd")
        asyncio.get_running_loop().call_soon(self.rt.stop)
        return self.done({"stopping": True})

    async def admin(self, request: web.Request) -> web.Response:
        caller = self.caller(request)
        data = await self.body(request)
        name = request.match_info["verb"]
        verb = routes.ADMIN_VERBS.get(name)
        if verb is None:
            raise web.HTTPNotFound(reason=f"unknown admin action {name}")
        if verb.admins and self.rt.system and not caller.admin:
            raise Forbidden(f"gctl {name} is for administrators of the system gflowd")
        answer = verb.run(self.rt, data, caller)
        return self.done(await answer if inspect.isawaitable(answer) else answer)

    async def stats(self, request: web.Request) -> web.Response:
        caller = self.caller(request)
        q = request.query
        uids = uids_of(q.get("users", "me"), caller)
        return self.done(commands.stats(self.rt.engine, uids, _since(q), time.time()))

    async def web_token(self, request: web.Request) -> web.Response:
        """``gflow web``: the caller's dashboard token and address (Unix socket only)."""
        caller = self.caller(request)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is None or sock.family.name != "AF_UNIX":
            raise Forbidden("dashboard tokens are given over the Unix socket only")
        if self.rt.web is None:
            raise Conflict(
                "the dashboard is off: set web = true in the [daemon] table of "
                f"{self.rt.paths.config_file} (or GFLOW_DAEMON__WEB=1) and restart gflowd"
            )
        data = await self.body(request)
        current = data.get("token")
        if current is not None and not isinstance(current, str):
            raise InvalidInput("token", repr(current)[:20], "the token text")
        return self.done(self.rt.web.issue(caller.uid, current, bool(data.get("renew"))))

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus metrics: for whoever may read this daemon, or a scraper holding the
        ``[metrics] bearer_token_file`` token."""
        metrics = self.rt.metrics
        if metrics is None:
            raise web.HTTPNotFound(reason="metrics are turned off here ([metrics] enabled)")
        if not self._scraper(request):
            self.caller(request)
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    def _scraper(self, request: web.Request) -> bool:
        token = self.rt.notify_conf.metrics_token
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.deadline, self.errors], client_max_size=MAX_BODY)
        app.add_routes(
            [web.route(method, path, getattr(self, name)) for method, path, name in routes.ROUTES]
        )
        return app


def _is_tcp(request: web.Request) -> bool:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family != socket.AF_UNIX


def control(host: Host, verb: str, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """One ``/v1/jobs/<verb>`` request (cancel, hold, release, update, redo) by ``caller``."""
    command = routes.JOB_VERBS.get(verb)
    if command is None:
        raise web.HTTPNotFound(reason=f"unknown action {verb}")
    return command(host.engine, data, caller, time.time()).to_json()


def caller_for(rt: Host, uid: int, gid: int) -> Caller:
    """Who ``uid`` is to this daemon: refused if it serves another user; an administrator
    on a system daemon by ``admin_group``, on a per-user daemon the user and root."""
    if not rt.system and uid not in (rt.uid, 0):
        raise Forbidden(f"this gflowd serves {user_name(rt.uid)} only")
    admin = is_admin(uid, rt.config.admin_group) if rt.system else uid in (rt.uid, 0)
    return Caller(uid, gid, user_name(uid), admin)


def uids_of(text: str, caller: Caller) -> tuple[int, ...]:
    """The users a listing asks for (``me``, names, uids; ``all`` or nothing: everyone)."""
    names = _csv(text)
    if not names or "all" in names or "*" in names:
        return ()
    if len(names) > MAX_USERS:
        raise InvalidInput("users", f"{len(names)} names", f"at most {MAX_USERS} users")
    uids = []
    for name in names:
        if name == "me":
            uids.append(caller.uid)
        elif name.isascii() and name.isdigit():
            uids.append(_whole_text("users", name, 0, MAX_UID))
        else:
            uid = uid_of(name)
            if uid is None:
                raise InvalidInput("user", name, "an existing user name or all")
            uids.append(uid)
    return tuple(uids)


def show_json(job: Job, view: View) -> dict[str, Any]:
    """``gjob show``: everything about a job, its state changes and its retry attempts."""
    data = listing.job_json(job, view, deps=True)
    events = view.engine.events_of(job.id)
    data["events"] = [{"time": t, "from": a, "to": b, "reason": r} for t, a, b, r in events]
    data["attempts"] = view.engine.attempts_of(job.id)
    return data


def _csv(text: str | None) -> list[str]:
    if text is not None:
        limits.text(text, "query", MAX_SPEC)
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _no_constant(name: str) -> Any:
    """JSON's NaN and Infinity are not numbers a scheduler can wait for."""
    raise ValueError(f"{name} is not allowed")


def _float(q: Any, key: str, lo: float, hi: float) -> float | None:
    value = q.get(key)
    if value in (None, ""):
        return None
    try:
        number = float(value) if len(value) <= 64 else math.nan
    except ValueError:
        number = math.nan
    if not lo <= number <= hi:
        raise InvalidInput(key, value, f"a number from {lo:g} to {hi:g}")
    return number


def _since(q: Any) -> float | None:
    return _float(q, "since", -LATEST, LATEST)


def _fields(text: str | None, known: list[str]) -> list[str]:
    """The fields a listing's rows hold (``fields=id,name,st``, one at least; default: all), in
    the order of ``known``."""
    if text is None:
        return known
    asked = set(_csv(text))
    if not asked or not asked <= set(known):
        raise InvalidInput("fields", text, "a comma-separated list of " + ", ".join(known))
    return [f for f in known if f in asked]


def _int(q: Any, key: str, lo: int, hi: int) -> int | None:
    value = q.get(key)
    if value in (None, ""):
        return None
    return _whole_text(key, value, lo, hi)


def _whole_text(key: str, value: str, lo: int, hi: int) -> int:
    digits = value.strip().removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_DIGITS):
        raise InvalidInput(key, value, f"a whole number from {lo} to {hi}")
    number = int(value)
    if not lo <= number <= hi:
        raise InvalidInput(key, value, f"a whole number from {lo} to {hi}")
    return number
