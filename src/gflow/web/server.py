"""The dashboard's HTTP server on loopback TCP, run by gflowd beside its API.

Who is asking comes from the personal token (``?token=`` once, then an HttpOnly
cookie, or ``Authorization: Bearer``); the page then acts with that user's rights
through the same functions as the API. Requests must name this server in ``Host``
(no DNS rebinding), and a change (POST) made with the cookie must come from a page of
this server (``Origin``). Nothing here logs a URL's query, so tokens never reach a log.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from gflow.errors import Conflict, Forbidden, GflowError, InvalidInput, NotFound
from gflow.listener import Listener
from gflow.web import logs
from gflow.web.backend import Backend
from gflow.web.hub import Hub, Subscriber, sse
from gflow.web.pages import Pages, environment
from gflow.web.tokens import Entry, Tokens
from gflow.web.views import Renderer, job_id_of

if TYPE_CHECKING:
    from gflow.host import Admin

log = logging.getLogger("gflow.web")

HOST = "127.0.0.1"
PORT_SETTING = "web_port"
STATIC = Path(__file__).with_name("static")
MAX_STREAMS = 128  # open event streams (pages and logs) in all
MAX_STREAMS_PER_USER = 32
MAX_BODY = 64 * 1024
PUBLIC = ("/static/", "/hello")
VERBS = ("cancel", "hold", "release", "redo")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class Dashboard:
    def __init__(self, rt: Admin) -> None:
        self.config = rt.config
        self.backend = Backend(rt)
        self.tokens = Tokens(rt.engine.store)
        self.renderer = Renderer(environment(), self.backend, self._key)
        self.pages = Pages(self.backend, self.renderer)
        self.hub = Hub(self.renderer.changes)
        self.watcher = logs.Watcher()
        self.streams: set[asyncio.Event] = set()
        self.runner: web.AppRunner | None = None
        self.listener: Listener | None = None
        self.port: int | None = None
        self.error: str | None = None
        self.stopping = False

    @property
    def cookie(self) -> str:
        return f"gflow_{self.port}"

    def _key(self, uid: int) -> str:
        entry = self.tokens.by_uid.get(uid)
        return entry.key.hex() if entry else ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self.deadline, self.guard], client_max_size=MAX_BODY)
        p = self.pages
        app.add_routes(
            [
                web.get("/", p.queue),
                web.get("/graph", p.graph),
                web.get("/gpus", p.gpus),
                web.get("/stats", p.stats),
                web.get("/job/{id}", p.job),
                web.get("/job/{id}/log", self.log_stream),
                web.get("/job/{id}/log.txt", self.log_file),
                web.get("/events", self.events),
                web.get("/hello", self.hello),
                web.post("/api/jobs/{verb}", self.act),
                web.get("/api/redo-plan", self.redo_plan),
                web.static("/static", STATIC, append_version=False),
            ]
        )
        self.runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            keepalive_timeout=self.config.idle_timeout,
        )
        await self.runner.setup()
        assert self.runner.server is not None
        self.listener = Listener(
            self.runner.server,
            per_user=self.config.max_connections_per_user,
            total=self.config.max_connections_per_user,
            idle_timeout=self.config.idle_timeout,
        )
        self._listen()

    def _listen(self) -> None:
        """On the configured port, else the one used before, else any free one."""
        assert self.listener is not None
        fixed = self.config.web_port
        remembered = self.backend.store.setting(PORT_SETTING)
        for port in dict.fromkeys([fixed or remembered or 0, fixed or 0]):
            try:
                sock = socket.create_server((HOST, port))
            except OSError as exc:
                self.error = f"the dashboard cannot listen on {HOST}:{port} ({exc.strerror})"
                continue
            self.listener.serve(sock)
            self.error = None
            self.port = int(sock.getsockname()[1])
            break
        if self.error is not None:
            log.error("%s; set another web_port", self.error)
            return
        if not fixed and self.port != remembered:
            with self.backend.store.tx():
                self.backend.store.set_setting(PORT_SETTING, self.port)
        log.info("dashboard on http://%s:%s/ (gflow web prints your address)", HOST, self.port)

    async def stop(self) -> None:
        self.stopping = True
        self.hub.drop(lambda s: True)
        for wake in self.streams:
            wake.set()
        if self.listener is not None:
            self.listener.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.watcher.close()

    # ------------------------------------------------------------ tokens (Unix socket)

    def issue(self, uid: int, current: str | None, renew: bool) -> dict[str, Any]:
        """A user's token and personal address (``gflow web``), asked over the Unix socket."""
        if self.error is not None or self.port is None:
            raise GflowError(f"{self.error or 'the dashboard is not listening'}; set web_port")
        token, revoked = self.tokens.issue(uid, current, renew)
        if revoked is not None:
            self.hub.drop(lambda s: s.digest == revoked)
        return {
            "token": token,
            "port": self.port,
            "url": f"http://{HOST}:{self.port}/?token={token}",
            "new": token != current,
        }

    # ------------------------------------------------------------ who is asking

    @web.middleware
    async def deadline(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The request within the connection's idle timeout, as on the API's socket."""
        body = request.read() if request.body_exists else None
        assert self.listener is not None
        if not await self.listener.deliver(request.transport, body):
            response = web.Response(status=408, text="the request did not arrive in time\n")
            response.force_close()
            return response
        return await handler(request)  # type: ignore[no-any-return]

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:
            response = exc
        except GflowError as exc:
            response = self._error(request, exc.status, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the handler boundary: the path only, never the query
            log.exception("dashboard error on %s %s", request.method, request.path)
            response = self._error(request, 500, f"internal error: {type(exc).__name__}")
        if not response.prepared:
            response.headers.update(SECURITY_HEADERS)
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _guarded(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.host not in (f"{HOST}:{self.port}", f"localhost:{self.port}"):
            return web.Response(status=421, text="this server answers to 127.0.0.1 only\n")
        if request.path.startswith(PUBLIC):
            return await handler(request)  # type: ignore[no-any-return]
        entry, how = self._credentials(request)
        if entry is None:
            reason = (
                "This address's token is not valid (it was replaced with --new-token, or "
                "it belongs to another installation)."
                if how
                else "This page needs your personal token."
            )
            return self._unauthorized(request, reason)
        if how == "query" and request.method == "GET":
            return self._sign_in(request, entry)
        if request.method != "GET" and how == "cookie":
            origin = request.headers.get("Origin")
            if origin not in (f"http://{request.host}",):
                return web.json_response(
                    {"error": "refused: the request did not come from this dashboard"}, status=403
                )
        request["caller"] = self.backend.caller(entry.uid)
        request["entry"] = entry
        return await handler(request)  # type: ignore[no-any-return]

    def _credentials(self, request: web.Request) -> tuple[Entry | None, str]:
        if "token" in request.query:
            return self.tokens.identify(request.query["token"]), "query"
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.tokens.identify(auth[7:].strip()), "bearer"
        cookie = request.cookies.get(self.cookie)
        if cookie is not None:
            return self.tokens.identify(cookie), "cookie"
        return None, ""

    def _sign_in(self, request: web.Request, entry: Entry) -> web.StreamResponse:
        """Trade the token in the address for a cookie, and take it out of the address."""
        rest = [(k, v) for k, v in request.query.items() if k != "token"]
        target = request.path + ("?" + urlencode(rest) if rest else "")
        response = web.HTTPSeeOther(location=target)
        response.set_cookie(
            self.cookie,
            request.query["token"],
            httponly=True,
            samesite="Strict",
            path="/",
        )
        return response

    def _wants_json(self, request: web.Request) -> bool:
        return request.path.startswith(("/api/", "/events")) or request.path.endswith("/log")

    def _unauthorized(self, request: web.Request, reason: str) -> web.StreamResponse:
        if self._wants_json(request):
            hint = f"{reason} Run 'gflow web' for your address."
            return web.json_response({"error": hint, "kind": "unauthorized"}, status=401)
        return self.renderer.login(reason)

    def _error(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        if self._wants_json(request) or request.method != "GET":
            return web.json_response({"error": message}, status=status)
        heading = {404: "Not found", 403: "Not allowed"}.get(status, "Cannot show this")
        return self.renderer.message(request, status, heading, message)

    async def hello(self, request: web.Request) -> web.Response:
        """Proof for a page about to reconnect that this is its own daemon (no cookie sent)."""
        uid, nonce = request.query.get("u", ""), request.query.get("n", "")
        if not uid.isdigit() or not 16 <= len(nonce) <= 64 or not nonce.isalnum():
            raise InvalidInput("hello", f"u={uid[:12]} n={nonce[:12]}", "u=UID and n=NONCE")
        return web.json_response({"proof": self.tokens.proof(int(uid), nonce)})

    # ------------------------------------------------------------ live

    def _admit(self, request: web.Request, open_now: int) -> None:
        mine = sum(1 for s in self.hub.subscribers if s.uid == request["caller"].uid)
        if open_now >= MAX_STREAMS or mine >= MAX_STREAMS_PER_USER or self.stopping:
            raise web.HTTPServiceUnavailable(text="too many open dashboard pages\n")

    async def _event_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        response.headers.update(SECURITY_HEADERS)
        await response.prepare(request)
        return response

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The page's live stream: a ``hello``, then ``jobs`` / ``gpus`` / ``reset`` events."""
        self._admit(request, len(self.hub.subscribers))
        entry: Entry = request["entry"]
        sub = Subscriber(entry.uid, entry.digest)
        self.hub.subscribers.add(sub)
        try:
            response = await self._event_stream(request)
            hello = json.dumps(self.backend.daemon())
            await response.write(b"retry: 1000\n" + sse("hello", hello))
            while (data := await sub.next()) is not None:
                await response.write(data)
        except ConnectionResetError:
            pass
        finally:
            self.hub.subscribers.discard(sub)
        return response

    async def log_stream(self, request: web.Request) -> web.StreamResponse:
        """A job's log as events: ``chunk`` (text and the next offset), then ``end``."""
        caller = request["caller"]
        job_id = job_id_of(request)
        job = self.backend.job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if caller.uid not in (0, job.uid):
            raise web.HTTPForbidden(text=f"the log of job {job_id} belongs to {job.user}\n")
        self._admit(request, len(self.streams) + len(self.hub.subscribers))
        offset = _offset(request.query.get("offset"))
        wake = asyncio.Event()
        self.streams.add(wake)
        unwatch = self.hub.watch(job_id, wake.set)
        follow = _Follow(self, job_id, caller, offset, wake)
        try:
            response = await self._event_stream(request)
            await follow.run(response)
        except ConnectionResetError:
            pass
        finally:
            unwatch()
            follow.close()
            self.streams.discard(wake)
        return response

    async def log_file(self, request: web.Request) -> web.StreamResponse:
        """The whole log, as ``gjob log`` prints it, to the same readers."""
        job_id = job_id_of(request)
        if self.backend.job(job_id) is None:
            raise NotFound(f"job {job_id} not found")
        fd = logs.open_log(self.backend.log_path(job_id), job_id, request["caller"])
        try:
            response = web.StreamResponse(
                headers={"Content-Type": "text/plain; charset=utf-8", **SECURITY_HEADERS}
            )
            await response.prepare(request)
            offset = 0
            while data := os.pread(fd, 256 * 1024, offset):
                offset += len(data)
                await response.write(data)
            await response.write_eof()
        finally:
            os.close(fd)
        return response

    # ------------------------------------------------------------ actions

    async def act(self, request: web.Request) -> web.Response:
        """Cancel / hold / release / redo, exactly as ``POST /v1/jobs/<verb>`` does them."""
        verb = request.match_info["verb"]
        if verb not in VERBS:
            raise NotFound(f"unknown action {verb[:20]}")
        if request.content_type != "application/json":
            raise InvalidInput("Content-Type", request.content_type, "application/json")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("request body", "(not JSON)", "a JSON object") from None
        if not isinstance(data, dict):
            raise InvalidInput("request body", repr(data)[:40], "a JSON object")
        return web.json_response(self.backend.control(verb, data, request["caller"]))

    async def redo_plan(self, request: web.Request) -> web.Response:
        text = request.query.get("id", "")
        if not text.isdigit() or len(text) > 12:
            raise InvalidInput("id", text[:20], "a job id")
        jobs = self.backend.redo_plan(
            int(text), request["caller"], request.query.get("cascade") == "1"
        )
        if jobs[0].is_active:
            raise Conflict(f"job {text} is {jobs[0].state.value}; only ended jobs can be redone")
        out = [{"id": j.id, "name": j.name, "state": j.state.value} for j in jobs]
        return web.json_response({"jobs": out})


def _offset(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput("offset", text[:20], "a byte offset")
    return int(text)


class _Follow:
    """One log stream: wait for the log, send what is there, then what the job writes."""

    def __init__(
        self, board: Dashboard, job_id: int, caller: Any, offset: int | None, wake: asyncio.Event
    ) -> None:
        self.board = board
        self.job_id = job_id
        self.caller = caller
        self.offset = offset
        self.wake = wake
        self.fd: int | None = None
        self.unwatch: Any = None
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.skipped = False

    def close(self) -> None:
        if self.unwatch is not None:
            self.unwatch()
        if self.fd is not None:
            os.close(self.fd)

    async def run(self, response: web.StreamResponse) -> None:
        told = False
        while not self.board.stopping:
            job = self.board.backend.job(self.job_id)
            ended = job is None or job.is_final
            if self.fd is None:
                problem = self._open()
                if problem is not None and (ended or isinstance(problem, Forbidden)):
                    note = "no log: it never ran" if ended else problem.message
                    await response.write(sse("end", json.dumps({"note": note})))
                    return
                if problem is not None:
                    if not told:
                        note = "the log appears when the job starts"
                        await response.write(sse("waiting", json.dumps({"note": note})))
                        told = True
                    await self._wait()
                    continue
                opened = {"o": self.offset, "skipped": self.skipped}
                await response.write(sse("opened", json.dumps(opened)))
            await self._send(response)
            if ended:
                await response.write(sse("end", json.dumps({"o": self.offset})))
                return
            await self._wait()

    async def _wait(self) -> None:
        await self.wake.wait()
        self.wake.clear()

    def _open(self) -> GflowError | None:
        """Open the log (None), or say why not yet (NotFound) or never (Forbidden)."""
        path = self.board.backend.log_path(self.job_id)
        try:
            self.fd = logs.open_log(path, self.job_id, self.caller)
        except (NotFound, Forbidden) as exc:
            return exc
        if self.offset is None:
            self.offset = logs.start_offset(self.fd)
            self.skipped = self.offset > 0
        self.unwatch = self.board.watcher.watch(self.fd, self.wake.set)
        return None

    async def _send(self, response: web.StreamResponse) -> None:
        assert self.fd is not None and self.offset is not None
        while data := os.pread(self.fd, logs.CHUNK, self.offset):
            self.offset += len(data)
            chunk = {"o": self.offset, "t": self.decoder.decode(data)}
            await response.write(sse("chunk", json.dumps(chunk)))
