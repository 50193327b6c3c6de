"""``gflow.Client``: the Python API over gflowd's HTTP API, and ``gflow.Job``, a handle
on a job.

The client speaks to the daemon the CLI speaks to, through the same socket (or, with
``GFLOW_TCP``, the same signed loopback TCP) and as the same user; every option is a
gbatch option by its keyword, and every refusal raises the class of
:mod:`gflow.errors` the CLI turns into its one-line message, with that message.
"""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from gflow import steps
from gflow.client import Client as Transport
from gflow.client import RemoteError
from gflow.errors import DaemonUnavailable, GflowError, from_answer
from gflow.records import Action, Info, JobInfo, Stats

if TYPE_CHECKING:
    from gflow.config import Paths

T = TypeVar("T")
START_HINT = "is gflowd running? start it with: gflowd up"
FOLLOW_EVERY = 0.25
"""Seconds between looks at a followed log while its job runs."""


def translate(exc: GflowError) -> GflowError:
    """A transport's error as the API raises it: the class the daemon's answer names,
    and for an unreachable daemon, how to start one."""
    if isinstance(exc, RemoteError):
        return from_answer(exc.message, exc.kind)
    if isinstance(exc, DaemonUnavailable) and START_HINT not in exc.message:
        return DaemonUnavailable(f"{exc.message}; {START_HINT}")
    return exc


def paths_of(home: str | os.PathLike[str] | None, config: str | None) -> Paths | None:
    """The installation under ``home`` (as ``GFLOW_HOME`` would name it), if given."""
    if home is None:
        return None
    from pathlib import Path

    from gflow.config import Paths

    root = Path(home).expanduser().absolute()
    config_file = Path(config).expanduser().absolute() if config else root / "gflow.toml"
    return Paths(config_file, root, root)


class Client:
    """The scheduler, from Python.

    ``Client()`` talks to the gflowd the command-line tools would (``$GFLOW_HOME``, else
    your own daemon, else the system one); ``home=`` names an installation directly.
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

    # ------------------------------------------------------------ running steps

    def run(self, work: steps.Steps[T]) -> T:
        """Carry out an operation of :mod:`gflow.steps` over the socket."""
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
                time.sleep(step.seconds)
                continue
            try:
                reply = self.transport.request(
                    step.method, step.path, step.body, dict(step.query or {})
                )
            except GflowError as exc:
                error = translate(exc)

    # ------------------------------------------------------------ submitting

    def submit(
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
        """Submit a command (a string is shell code, a list is words) or a ``script=``
        (its ``# GFLOW`` and ``#SBATCH`` lines read as gbatch reads them); every gbatch
        option is a keyword: ``gpus=1, time="2:00:00", depends_on=prep, array="1-10"``.

        The job runs in ``workdir`` (default: here) with ``env`` (default: this
        process's environment). For an array or a sweep the handle names the whole
        group (its first job's id) and ``tasks`` lists every job made.
        """
        body = steps.submission(
            command, script=script, args=args, workdir=workdir, env=env, options=options
        )
        return self.handle(self.run(steps.submit(body)))

    def preview(
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
        """The jobs :meth:`submit` would make with the same arguments; nothing is submitted."""
        body = steps.submission(
            command,
            script=script,
            args=args,
            workdir=workdir,
            env=env,
            options=options,
            caller="preview",
        )
        return self.run(steps.preview(body))

    def handle(self, made: list[dict[str, Any]]) -> Job:
        first = made[0]
        tasks = tuple(Job(j["id"], name=j["name"], client=self) for j in made)
        return Job(first["id"], name=first["name"], tasks=tasks, client=self)

    # ------------------------------------------------------------ reading

    def jobs(
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
        """Jobs as ``gqueue`` lists them: by default your queued, held and running ones.

        ``all`` / ``completed`` as ``gqueue -a`` / ``-c``; ``states`` such as
        ``"Running,F"``; ``users="all"``; ``since`` a time, ``"1h"`` or ``"today"``;
        ``limit`` negative for the last ones.
        """
        return self.run(
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

    def job(self, job: Any) -> JobInfo:
        """Everything about one job (``gjob show``), with its history and attempts."""
        return self.run(steps.one(job))

    def wait(self, jobs: Any, timeout: float | None = None) -> list[JobInfo]:
        """Block until the jobs have ended (an array: all its tasks; a job that is
        retried: its newest attempt, which is listed); TimeoutError after ``timeout``
        seconds. A gflowd restart meanwhile is waited out."""
        return self.run(steps.wait(jobs, timeout))

    def info(self) -> Info:
        """The GPUs, who holds them, and the daemon's status (``ginfo``)."""
        return self.run(steps.info())

    def stats(self, *, users: str | Iterable[str] | None = None, since: Any = None) -> Stats:
        """Usage statistics (``gstats``): yours by default, ``users="all"`` for everyone."""
        return self.run(steps.stats(users, since))

    @overload
    def log(
        self,
        job: Any,
        *,
        first: int | None = ...,
        last: int | None = ...,
        max_bytes: int | None = ...,
        follow: Literal[False] = ...,
    ) -> str: ...

    @overload
    def log(
        self,
        job: Any,
        *,
        first: int | None = ...,
        last: int | None = ...,
        max_bytes: int | None = ...,
        follow: Literal[True],
    ) -> Iterator[str]: ...

    def log(
        self,
        job: Any,
        *,
        first: int | None = None,
        last: int | None = None,
        max_bytes: int | None = None,
        follow: bool = False,
    ) -> str | Iterator[str]:
        """A job's output: all of it, its ``first`` or ``last`` lines, at most
        ``max_bytes``; with ``follow``, an iterator of pieces until the job ends."""
        info = self.job(job)
        if follow:
            return self._follow(info, first, last, max_bytes)
        return steps.log_text(steps.log_path(info), first, last, max_bytes)[0]

    def _follow(
        self, info: JobInfo, first: int | None, last: int | None, max_bytes: int | None
    ) -> Iterator[str]:
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
                    self.run(steps.wait(info.id, FOLLOW_EVERY, retries=False))
                    active = False
                except TimeoutError:
                    pass

    # ------------------------------------------------------------ changing

    def cancel(self, jobs: Any, *, dry_run: bool = False) -> list[Action]:
        """Cancel jobs (queued ones at once, running ones by signal); their waiting
        dependents are cancelled too unless submitted with ``no_auto_cancel``; what the
        cancel does to each dependent is listed after the jobs (``dependent``). With
        ``dry_run``, what would happen."""
        return self.run(steps.control("cancel", {"ids": steps.selector(jobs), "dry_run": dry_run}))

    def hold(self, jobs: Any) -> list[Action]:
        """Keep queued jobs from starting."""
        return self.run(steps.control("hold", {"ids": steps.selector(jobs)}))

    def release(self, jobs: Any, *, at: Any = None) -> list[Action]:
        """Let held jobs start again (``at``: not before then, e.g. ``"22:00"``)."""
        body = {"ids": steps.selector(jobs), "at": steps.release_at(at)}
        return self.run(steps.control("release", body))

    def update(
        self, jobs: Any, *, clear_deps: bool = False, dry_run: bool = False, **options: Any
    ) -> list[Action]:
        """Change queued or held jobs, with gbatch's options as keywords (those that set
        dependencies replace the job's dependencies; ``clear_deps`` drops them); with
        ``dry_run``, what would change, checked by the daemon."""
        texts = steps.change_options(options, "update")
        body = {
            "ids": steps.selector(jobs),
            "options": texts,
            "clear_deps": clear_deps,
            "dry_run": dry_run,
        }
        return self.run(steps.control("update", body))

    def redo(
        self, job: Any, *, cascade: bool = False, clear_deps: bool = False, **options: Any
    ) -> list[Job]:
        """Submit an ended job again as a new job, options changed as given; with
        ``cascade`` also the jobs its failure cancelled, wired to the new ones."""
        body = {
            "id": steps.selector(job),
            "options": steps.change_options(options, "redo"),
            "cascade": cascade,
            "clear_deps": clear_deps,
        }
        done = self.run(steps.control("redo", body))
        return [Job(a.id, name=a.name, client=self) for a in done]


class Job:
    """A handle on a job by its id (for an array or a sweep, on the whole group).

    ``gflow.Job(12).result()`` reads what a job made by :class:`gflow.Executor`
    returned, from any process, at any later time.
    """

    __slots__ = ("_client", "id", "name", "tasks")

    def __init__(
        self,
        id: int,
        *,
        name: str | None = None,
        tasks: Sequence[Job] = (),
        client: Client | None = None,
    ) -> None:
        self.id = int(id)
        self.name = name
        self.tasks: tuple[Job, ...] = tuple(tasks) or (self,)
        self._client = client

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    def __repr__(self) -> str:
        shown = f", name={self.name!r}" if self.name else ""
        return f"gflow.Job({self.id}{shown})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("gflow.Job", self.id))

    def info(self) -> JobInfo:
        return self.client.job(self.id)

    def wait(self, timeout: float | None = None) -> JobInfo:
        """Block until the job (an array: every task) has ended; its record."""
        ended = self.client.wait(self.id, timeout)
        return next((j for j in ended if j.id == self.id), ended[0])

    def result(self, timeout: float | None = None) -> Any:
        """What the function of this :class:`gflow.Executor` job returned (waiting for it
        to end); its exception, with the job's traceback, if it raised."""
        from gflow.futures import stored_result

        return stored_result(self.client, self.id, timeout)

    def log(self, *, first: int | None = None, last: int | None = None) -> str:
        return self.client.log(self.id, first=first, last=last)

    def cancel(self) -> list[Action]:
        return self.client.cancel(self.id)
