"""``gflow.AsyncClient``: :class:`gflow.Client`'s methods as coroutines, for asyncio code.

The operations are the same steps (:mod:`gflow.steps`); only the exchange with the
daemon differs: the socket is connected as the synchronous client connects it (a local
connect does not block), then written and read through asyncio streams.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import socket
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

from gflow import steps
from gflow.client import Client as Transport
from gflow.client import decode, parse_response
from gflow.errors import DaemonUnavailable, GflowError
from gflow.records import Action, Info, JobInfo, Stats
from gflow.sdk import FOLLOW_EVERY, Client, Job, paths_of, translate

T = TypeVar("T")


class AsyncClient:
    """The scheduler from asyncio code: ``await gf.submit(...)``, ``await gf.wait(job)``.

    Takes the same arguments as :class:`gflow.Client`; the handles it returns
    (:class:`gflow.Job`) are bound to a synchronous client of the same daemon.
    """

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        config: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.transport = Transport(
            paths_of(home, config), config, timeout=timeout, fallback=home is None
        )
        self.sync = Client(home=home, config=config, timeout=timeout)

    async def run(self, work: steps.Steps[T]) -> T:
        reply: Any = None
        error: GflowError | None = None
        while True:
            try:
                step = work.throw(error) if error is not None else work.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            reply, error = None, None
            if isinstance(step, steps.Pause):
                await asyncio.sleep(step.seconds)
                continue
            try:
                reply = await self._request(step)
            except GflowError as exc:
                error = translate(exc)

    async def _request(self, step: steps.Request) -> Any:
        sock, signed = self.transport.connect()
        try:
            query = dict(step.query or {})
            data = self.transport.frame(step.method, step.path, step.body, query, signed)
            sock.setblocking(False)
            if sock.family == socket.AF_UNIX:
                reader, writer = await asyncio.open_unix_connection(sock=sock)
            else:
                reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        try:
            async with asyncio.timeout(self.transport.timeout):
                writer.write(data)
                await writer.drain()
                raw = await reader.read()
        except (OSError, TimeoutError) as exc:
            raise DaemonUnavailable(f"lost the connection to gflowd ({exc})") from exc
        finally:
            writer.close()
        status, body = parse_response(raw)
        return decode(status, body)

    # ------------------------------------------------------------ the API

    async def submit(
        self,
        command: str | Sequence[str] | None = None,
        /,
        *,
        script: str | os.PathLike[str] | None = None,
        args: Sequence[Any] = (),
        workdir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Job:
        """As :meth:`gflow.Client.submit`."""
        body = steps.submission(
            command, script=script, args=args, workdir=workdir, env=env, options=options
        )
        return self.sync.handle(await self.run(steps.submit(body)))

    async def preview(
        self,
        command: str | Sequence[str] | None = None,
        /,
        *,
        script: str | os.PathLike[str] | None = None,
        args: Sequence[Any] = (),
        workdir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> list[JobInfo]:
        """As :meth:`gflow.Client.preview`."""
        body = steps.submission(
            command,
            script=script,
            args=args,
            workdir=workdir,
            env=env,
            options=options,
            caller="preview",
        )
        return await self.run(steps.preview(body))

    async def jobs(
        self,
        *,
        ids: Any = None,
        states: str | Iterable[str] | None = None,
        names: str | Iterable[str] | None = None,
        users: str | Iterable[str] | None = None,
        projects: str | Iterable[str] | None = None,
        since: Any = None,
        limit: int | None = None,
        all: bool = False,
        completed: bool = False,
    ) -> list[JobInfo]:
        """As :meth:`gflow.Client.jobs`."""
        return await self.run(
            steps.jobs(
                ids=ids,
                states=states,
                names=names,
                users=users,
                projects=projects,
                since=since,
                limit=limit,
                all=all,
                completed=completed,
            )
        )

    async def job(self, job: Any) -> JobInfo:
        return await self.run(steps.one(job))

    async def wait(self, jobs: Any, timeout: float | None = None) -> list[JobInfo]:
        return await self.run(steps.wait(jobs, timeout))

    async def info(self) -> Info:
        return await self.run(steps.info())

    async def stats(self, *, users: str | Iterable[str] | None = None, since: Any = None) -> Stats:
        return await self.run(steps.stats(users, since))

    @overload
    async def log(
        self,
        job: Any,
        *,
        first: int | None = ...,
        last: int | None = ...,
        max_bytes: int | None = ...,
        follow: Literal[False] = ...,
    ) -> str: ...

    @overload
    async def log(
        self,
        job: Any,
        *,
        first: int | None = ...,
        last: int | None = ...,
        max_bytes: int | None = ...,
        follow: Literal[True],
    ) -> AsyncIterator[str]: ...

    async def log(
        self,
        job: Any,
        *,
        first: int | None = None,
        last: int | None = None,
        max_bytes: int | None = None,
        follow: bool = False,
    ) -> str | AsyncIterator[str]:
        """As :meth:`gflow.Client.log`; with ``follow``, an async iterator of pieces."""
        info = await self.job(job)
        if follow:
            return self._follow(info, first, last, max_bytes)
        return steps.log_text(steps.log_path(info), first, last, max_bytes)[0]

    async def _follow(
        self, info: JobInfo, first: int | None, last: int | None, max_bytes: int | None
    ) -> AsyncIterator[str]:
        path, seen, active = info.log or "", 0, info.is_active
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if os.path.exists(path):
            text, seen = steps.log_text(path, first, last, max_bytes)
            if text:
                yield text
        while True:
            chunk = steps.read_from(path, seen)
            if chunk:
                seen += len(chunk)
                yield decoder.decode(chunk)
            elif not active:
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield rest
                return
            else:
                try:
                    await self.run(steps.wait(info.id, FOLLOW_EVERY, retries=False))
                    active = False
                except TimeoutError:
                    pass

    async def cancel(self, jobs: Any, *, dry_run: bool = False) -> list[Action]:
        body = {"ids": steps.selector(jobs), "dry_run": dry_run}
        return await self.run(steps.control("cancel", body))

    async def hold(self, jobs: Any) -> list[Action]:
        return await self.run(steps.control("hold", {"ids": steps.selector(jobs)}))

    async def release(self, jobs: Any, *, at: Any = None) -> list[Action]:
        body = {"ids": steps.selector(jobs), "at": steps.release_at(at)}
        return await self.run(steps.control("release", body))

    async def update(
        self, jobs: Any, *, clear_deps: bool = False, dry_run: bool = False, **options: Any
    ) -> list[Action]:
        texts = steps.change_options(options, "update")
        body = {
            "ids": steps.selector(jobs),
            "options": texts,
            "clear_deps": clear_deps,
            "dry_run": dry_run,
        }
        return await self.run(steps.control("update", body))

    async def redo(
        self, job: Any, *, cascade: bool = False, clear_deps: bool = False, **options: Any
    ) -> list[Job]:
        body = {
            "id": steps.selector(job),
            "options": steps.change_options(options, "redo"),
            "cascade": cascade,
            "clear_deps": clear_deps,
        }
        done = await self.run(steps.control("redo", body))
        return [Job(a.id, name=a.name, client=self.sync) for a in done]
