"""``gflow.Executor``: Python functions run as gflow jobs, behind ``concurrent.futures``.

``ex.submit(fn, *args)`` pickles the function (with cloudpickle: closures and functions
of the running script too) and its arguments into a folder of the submitting user, and
submits a job that runs ``python -m gflow.runner FOLDER`` with this interpreter, in this
directory and environment. The job writes the result, or the exception and its
traceback, next to them (:mod:`gflow.runner`); a watcher thread per executor waits on
the daemon for the jobs to end and completes their futures. ``ex.map`` makes one job
array. The folder outlives both processes: ``gflow.Job(id).result()`` reads a result
later, from anywhere the user can read it.

The daemon never opens these folders: only the submitter and its jobs, as that user.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from gflow import keywords, runner, steps
from gflow.errors import DaemonUnavailable, GflowError, InvalidInput, JobFailed, Unpicklable
from gflow.options import SUBMIT
from gflow.sdk import Client, Job, translate
from gflow.states import State

T = TypeVar("T")

NOT_FOR_EXECUTOR = {
    "array": "map() makes the array",
    "param": "call submit() or map() once per value",
    "param_file": "call submit() or map() once per row",
    "name_template": "a function job has one name",
}
RECONNECT_FOR = 300.0
"""Seconds the futures wait for an unreachable gflowd (a restart) before they fail."""
WAIT_SLICE = 30.0
"""Seconds one wait on the daemon lasts at most (then it is asked again)."""
BUSY_PAUSE = 0.1
"""Seconds the watcher waits for a submission on its way before it waits on the daemon."""
MAX_SELECTOR = 50_000
"""Characters of job ids one wait names (the rest are waited for next)."""
LOG_TAIL = 5


class Future(concurrent.futures.Future[Any]):
    """The result of one call run as a gflow job.

    ``id`` is the job's id (``gjob show``, ``gflow.Job(id).result()``); ``cancel()``
    cancels the job, queued or running. Passed as an argument to another submission, a
    future makes that job wait for this one and stands for its result there.
    """

    def __init__(
        self, executor: Executor, job_id: int, folder: str, task: str, pos: int, head: bool
    ) -> None:
        super().__init__()
        self._executor = executor
        self.id = job_id
        self.folder, self.task, self.pos = folder, task, pos
        self.head = head
        """Whether the job is the first task of an array (its id names the whole array)."""

    @property
    def job(self) -> Job:
        return Job(self.id, client=self._executor.client)

    def cancel(self) -> bool:
        if self.done():
            return self.cancelled()
        return self._executor.cancel_jobs([self]) > 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (runner.Ref, (self.folder, self.task, self.pos))

    def __repr__(self) -> str:
        return f"<gflow.Future of job {self.id} {self._state.lower()}>"


class Executor(concurrent.futures.Executor):
    """Run Python functions as gflow jobs: ``with gflow.Executor(gpus=1, time="1:00:00")
    as ex: fut = ex.submit(train, cfg)``.

    The keywords are gbatch's options, for every job the executor submits. ``python``:
    the interpreter of the jobs (default: this one); ``folder``: where functions,
    arguments and results are kept (default: ``executor/`` in gflow's data directory,
    ``$GFLOW_HOME`` or ``~/.local/share/gflow``); they stay there until removed.
    """

    def __init__(
        self,
        *,
        client: Client | None = None,
        folder: str | os.PathLike[str] | None = None,
        python: str | None = None,
        **options: Any,
    ) -> None:
        for key, why in NOT_FOR_EXECUTOR.items():
            if key in options:
                raise TypeError(f"Executor() does not take {key}= ({why})")
        keywords.options(options, SUBMIT, "Executor")
        self.client = client or Client()
        self.options = options
        self.python = python or sys.executable
        self.folder = os.fspath(folder) if folder is not None else None
        self._lock = threading.Lock()
        self._pending: dict[int, list[Future]] = {}
        self._futures: list[Future] = []
        self._watcher: threading.Thread | None = None
        self._quiet = threading.Condition(self._lock)
        self._busy = 0
        self._after = 0
        self._closed = False

    # ------------------------------------------------------------ submitting

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, after: Any = None, **kwargs: Any
    ) -> Future:
        """Run ``fn(*args, **kwargs)`` as a job; ``after``: futures or jobs it waits for
        (futures among the arguments are waited for, and replaced by their results)."""
        parents = _parents(after, [*args, *kwargs.values()])
        folder = self._new_folder(fn)
        self._write(folder, fn, [[(args, kwargs)]], chunk=0)
        with self._submitting():
            job = self._submit(folder, fn, parents, array=None)
            future = Future(self, job.id, folder, "0", 0, head=False)
            self._track([future])
        return future

    def map_array(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        chunksize: int = 1,
        after: Any = None,
    ) -> list[Future]:
        """One future per call ``fn(*items)``, run as one job array (a task per
        ``chunksize`` calls)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]]
        calls = [(args, {}) for args in zip(*iterables, strict=False)]
        if not calls:
            return []
        parents = _parents(after, [a for args, _ in calls for a in args])
        chunks = [calls[i : i + chunksize] for i in range(0, len(calls), chunksize)]
        folder = self._new_folder(fn)
        self._write(folder, fn, chunks, chunk=chunksize)
        with self._submitting():
            job = self._submit(folder, fn, parents, array=f"0-{len(chunks) - 1}")
            futures = [
                Future(self, job.tasks[c].id, folder, str(c), pos, head=c == 0)
                for c, chunk in enumerate(chunks)
                for pos in range(len(chunk))
            ]
            self._track(futures)
        return futures

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """``fn`` over the items, as one job array; the results in order."""
        end = None if timeout is None else time.monotonic() + timeout
        futures = self.map_array(fn, *iterables, chunksize=chunksize)

        def results() -> Iterator[T]:
            left = list(reversed(futures))
            try:
                while left:
                    wait = None if end is None else end - time.monotonic()
                    value: T = left[-1].result(wait)
                    left.pop()
                    yield value
            finally:
                self.cancel_jobs(left)

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            futures = list(self._futures)
        if cancel_futures:
            self.cancel_jobs([f for f in futures if not f.done()])
        if wait:
            concurrent.futures.wait(futures)

    def cancel_jobs(self, futures: list[Future]) -> int:
        """Cancel the jobs of these futures (one request); how many were cancelled."""
        live = [f for f in futures if not f.done()]
        if not live:
            return 0
        ids = sorted({f.id for f in live})
        try:
            done = self.client.cancel([Job(i) for i in ids])
        except GflowError as exc:
            done = getattr(exc, "done", [])
        cancelled = {a.id for a in done}
        with self._lock:
            hit = [f for i in cancelled for f in self._pending.pop(i, [])]
        hit += [f for f in live if f.id in cancelled]
        return sum(super(Future, f).cancel() for f in dict.fromkeys(hit))

    # ------------------------------------------------------------ the folder

    def _root(self) -> str:
        return self.folder or str(self.client.transport.paths.data_dir / "executor")

    def _new_folder(self, fn: Callable[..., Any]) -> str:
        if self._closed:
            raise RuntimeError("cannot submit to a gflow.Executor after shutdown")
        root = self._root()
        os.makedirs(root, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = os.path.join(root, f"{stamp}-{secrets.token_hex(4)}-{_name(fn)[:40]}")
        os.mkdir(folder, 0o700)
        os.mkdir(os.path.join(folder, runner.INPUT), 0o700)
        os.mkdir(os.path.join(folder, runner.RESULT), 0o700)
        return folder

    def _write(
        self, folder: str, fn: Callable[..., Any], chunks: list[list[Any]], chunk: int
    ) -> None:
        import pickle

        import cloudpickle

        setup = {
            "path": [os.path.abspath(p) if p else os.getcwd() for p in sys.path],
            "python": sys.executable,
            "version": sys.version.split()[0],
            "chunk": chunk,
        }
        try:
            data = pickle.dumps(setup) + cloudpickle.dumps(fn, protocol=runner.PROTOCOL)
            inputs = [cloudpickle.dumps(calls, protocol=runner.PROTOCOL) for calls in chunks]
        except Exception as exc:
            raise Unpicklable(
                f"cannot send {_name(fn)} to a job: it or its arguments cannot be pickled "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        runner.write(os.path.join(folder, runner.FUNCTION), data)
        for index, blob in enumerate(inputs):
            runner.write(os.path.join(folder, runner.INPUT, f"{index}.pkl"), blob)

    def _submit(
        self, folder: str, fn: Callable[..., Any], parents: list[str], array: str | None
    ) -> Job:
        command = [self.python, *runner.COMMAND, folder]
        options = dict(self.options)
        options.setdefault("name", _name(fn))
        if parents:
            mine = options.get("depends_on_all")
            options["depends_on_all"] = [*([] if mine is None else [mine]), *parents]
        if array is not None:
            command.append("--array")
            options["array"] = array
        body = steps.submission(
            command,
            script=None,
            args=(),
            workdir=None,
            env=None,
            options=options,
            conda_default=False,
        )
        try:
            return self.client.handle(self.client.run(steps.submit(body)))
        except BaseException:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            raise

    # ------------------------------------------------------------ watching

    @contextlib.contextmanager
    def _submitting(self) -> Iterator[None]:
        """Around a submission: the watcher knows one is on its way, not yet tracked."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._quiet.notify_all()

    def _track(self, futures: list[Future]) -> None:
        with self._lock:
            self._futures += futures
            for future in futures:
                self._pending.setdefault(future.id, []).append(future)
            if self._busy <= 1:  # no other submission on its way: these are the newest
                self._after = max(self._after, *(f.id for f in futures))
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="gflow-executor", daemon=True
                )
                self._watcher.start()

    def _watch(self) -> None:
        """Wait on the daemon until a pending job ends or a job is submitted, settle what
        ended, and again, until nothing is pending; a gflowd restart is waited out.

        A wait ends when this user submits (``after``): a future made meanwhile is
        watched from the next wait on. The newest job the daemon reports is taken as
        seen only when no submission of this executor is on its way, so none is missed.
        """
        unreachable: float | None = None
        while True:
            with self._lock:
                self._quiet.wait_for(lambda: not self._busy, timeout=BUSY_PAUSE)
                if not self._pending:
                    self._watcher = None
                    return
                query = {
                    "ids": _selector(self._pending),
                    "any": 1,
                    "view": "compact",
                    "after": self._after,
                    "timeout": WAIT_SLICE,
                }
            try:
                answer = self.client.transport.request("GET", "/v1/wait", query=query)
            except DaemonUnavailable as exc:
                unreachable = unreachable or time.monotonic()
                if time.monotonic() - unreachable > RECONNECT_FOR:
                    self._fail_all(translate(exc))
                else:
                    time.sleep(0.5)
                continue
            except GflowError as exc:
                self._fail_all(translate(exc))
                continue
            unreachable = None
            with self._lock:
                if not self._busy:
                    self._after = max(self._after, answer.get("newest", 0))
            try:
                asked = {new: int(n) for n, new in answer.get("attempts", {}).items()}
                for job in answer["jobs"]:
                    self._settle(job, asked.get(job["id"], job["id"]))
            except Exception as exc:  # the thread's boundary: no future is left waiting
                self._fail_all(GflowError(f"internal error while watching jobs: {exc!r}"))

    def _settle(self, job: dict[str, Any], asked: int) -> None:
        """Complete the futures of job ``asked`` from ``job``: the job, or its newest
        attempt when it was retried."""
        with self._lock:
            futures = [f for f in self._pending.pop(asked, []) if not f.done()]
            for future in futures:
                if future.id != job["id"]:
                    future.id, future.head = job["id"], False
        if not futures:
            return
        try:
            if job["state"] != State.FINISHED and self._retried(job["id"], futures):
                return
        except DaemonUnavailable:  # asked again once gflowd answers
            with self._lock:
                self._pending.setdefault(job["id"], []).extend(futures)
            return
        except GflowError as exc:
            for future in futures:
                _complete(future, exception=translate(exc))
            return
        try:
            values = outcome(self.client, job, futures[0].folder, futures[0].task)
            if max(f.pos for f in futures) >= len(values):
                raise GflowError(
                    f"job {job['id']} left {len(values)} result(s) for more calls: "
                    "its result file was changed"
                )
        except BaseException as exc:
            for future in futures:
                _complete(future, exception=exc)
        else:
            for future in futures:
                _complete(future, value=values[future.pos])

    def _retried(self, job_id: int, futures: list[Future]) -> bool:
        """Whether the job was retried (``max_retries``): its futures then follow the
        new attempt."""
        if not self.options.get("max_retries"):
            return False
        latest = self.client.job(job_id).attempts[-1:]
        if not latest or latest[0] == job_id:
            return False
        with self._lock:
            for future in futures:
                future.id, future.head = latest[0], False
            self._pending.setdefault(latest[0], []).extend(futures)
        return True

    def _fail_all(self, exc: GflowError) -> None:
        with self._lock:
            futures = [f for fs in self._pending.values() for f in fs]
            self._pending.clear()
        for future in futures:
            error = exc
            if isinstance(exc, DaemonUnavailable):
                error = DaemonUnavailable(
                    f"{exc.message}; job {future.id} goes on, and gflow.Job({future.id})"
                    ".result() reads its result later"
                )
            _complete(future, exception=error)


# ------------------------------------------------------------ results


def outcome(client: Client, job: dict[str, Any], folder: str, task: str) -> list[Any]:
    """The values a task's calls returned; raises what the function raised (with the
    job's traceback as a note), or :class:`JobFailed` when the job left no result."""
    found = runner.read(folder, task)
    state = job["state"]
    if state == State.FINISHED and found is not None and found[0] == runner.OK:
        values: list[Any] = found[1]
        return values
    if state == State.FAILED and found is not None and found[0] == runner.ERROR:
        error: BaseException = found[1]
        error.add_note(f"(raised in gflow job {job['id']}; its traceback:)\n{found[2].rstrip()}")
        raise error
    raise JobFailed(_ended(client, job, folder, finished=state == State.FINISHED), job["id"], state)


def _ended(client: Client, job: dict[str, Any], folder: str, finished: bool) -> str:
    if finished:
        return f"job {job['id']} ({job['name']}) finished but left no result in {folder}"
    how = job["state"] + (f" ({job['reason']})" if job.get("reason") else "")
    if job.get("exit_code") not in (None, 0):
        how += f", exit code {job['exit_code']}"
    text = f"job {job['id']} ({job['name']}) ended {how} without a result"
    with contextlib.suppress(GflowError, OSError):
        tail = client.log(job["id"], last=LOG_TAIL).strip()
        if tail:
            text += "; the end of its log:\n" + tail
    return text


def stored_result(client: Client, job_id: int, timeout: float | None = None) -> Any:
    """What the :class:`Executor` job ``job_id`` returned: waits for it to end (and for
    its retries), then reads its folder. A task of a ``map`` with ``chunksize`` > 1
    returns the list of its calls' values."""
    info = client.job(job_id)
    folder, task, chunked = _call_of(info)
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        ref = f"{info.group_id}_{info.task_id}" if info.id == info.group_id else info.id
        left = None if end is None else max(end - time.monotonic(), 0)
        ended = client.wait(ref, left)[0]  # its newest attempt, when it was retried
        if ended.id != info.id:
            info = client.job(ended.id)
        attempts = client.job(info.id).attempts if not ended.ok else ()
        if not attempts or attempts[-1] == info.id:
            break
        info = client.job(attempts[-1])
    record = {"id": ended.id, "name": ended.name, "state": ended.state}
    record.update(reason=ended.reason, exit_code=ended.exit_code)
    values = outcome(client, record, folder, task)
    return values if chunked else values[0]


def _call_of(info: Any) -> tuple[str, str, bool]:
    """The folder, task and chunking of an Executor job, from its command (``python -c
    ... FOLDER [--array]``)."""
    words = list(info.command)
    if tuple(words[1:3]) not in (runner.COMMAND, ("-m", "gflow.runner")) or len(words) not in (
        4,
        5,
    ):
        raise InvalidInput(
            "job", str(info.id), "a job made by gflow.Executor (its command runs gflow.runner)"
        )
    folder, array = words[3], words[4:] == ["--array"]
    task = str(info.task_id) if array else "0"
    import pickle

    with open(os.path.join(folder, runner.FUNCTION), "rb") as fh:
        chunk = pickle.load(fh).get("chunk", 0)
    return folder, task, chunk > 1


# ------------------------------------------------------------ helpers


def _complete(future: Future, value: Any = None, exception: BaseException | None = None) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(value)


def _parents(after: Any, arguments: list[Any]) -> list[str]:
    """The jobs a submission waits for: ``after`` and the futures among its arguments."""
    if after is None:
        named = []
    elif isinstance(after, (list, tuple, set)):
        named = list(after)
    else:
        named = [after]
    found = named + [a for a in arguments if isinstance(a, Future)]
    refs = []
    for item in found:
        if isinstance(item, Future) and item.head:
            refs.append(f"{item.id}_{item.task}")  # the task, not its whole array
        else:
            refs.append(keywords.job_ref(item))
    return list(dict.fromkeys(refs))


def _selector(pending: dict[int, list[Future]]) -> str:
    """The pending jobs as one selector: ranges of ids, and an array's first task by its
    task (its id alone would name the whole array)."""
    parts: list[str] = []
    plain = []
    for job_id, futures in sorted(pending.items()):
        head = next((f for f in futures if f.head), None)
        if head is not None:
            parts.append(f"{job_id}_{head.task}")
        else:
            plain.append(job_id)
    start = prev = None
    for job_id in [*plain, 0]:
        if prev is not None and job_id == prev + 1:
            prev = job_id
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = job_id
    text = ",".join(parts)
    return text if len(text) <= MAX_SELECTOR else text[: text.rindex(",", 0, MAX_SELECTOR)]


def _name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name).replace("<", "").replace(">", "") or "function"
