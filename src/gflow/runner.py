"""The job's side of :class:`gflow.Executor`: ``python -c "from gflow.runner import main;
main()" FOLDER`` (the same as ``python -m gflow.runner FOLDER``, without runpy).

A submission's folder belongs to the user who submitted it (the job runs as that user;
the daemon never opens it). It holds::

    function.pkl        how the submitter's Python was set up, then the function
    input/<task>.pkl    the (args, kwargs) of each call the task makes
    result/<task>.pkl   ("ok", [value, ...]) or ("error", exception, traceback text)

One job runs one task: task 0, or for :meth:`gflow.Executor.map` the array task
``$GFLOW_ARRAY_TASK_ID``, which may make several calls (``chunksize``). A result is
written to a temporary name and renamed, so a reader never sees half of one; the job
exits 0 when every call returned and 1 when one raised.

Kept light: each job is a fresh interpreter, and this is its start-up. The C pickler
reads what cloudpickle wrote (cloudpickle is imported only when a function defined in a
script, or a closure, needs it); :mod:`traceback` only when a call raised.
"""

from __future__ import annotations

import _pickle as pickle
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

FUNCTION = "function.pkl"
INPUT = "input"
RESULT = "result"
PROTOCOL = 5
OK = "ok"
ERROR = "error"


def task_of(env: dict[str, str] | os._Environ[str], array: bool) -> str:
    return env.get("GFLOW_ARRAY_TASK_ID", "") if array else "0"


def write(path: str, data: bytes) -> None:
    """``data`` at ``path``, private to the user, appearing whole or not at all."""
    part = f"{path}.{os.getpid()}.part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(part, path)


def dumps(value: Any) -> bytes:
    """``value`` pickled: plainly when it can be, else by cloudpickle (a lambda, a class
    made at run time)."""
    try:
        return pickle.dumps(value, protocol=PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        import cloudpickle

        data: bytes = cloudpickle.dumps(value, protocol=PROTOCOL)
        return data


def error_result(exc: BaseException, trace: str) -> bytes:
    """An error result; an exception that cannot be pickled is sent as a RuntimeError
    with its type and message."""
    try:
        return dumps((ERROR, exc, trace))
    except Exception:
        stand_in = RuntimeError(f"{type(exc).__name__}: {exc}")
        return dumps((ERROR, stand_in, trace))


def _load(folder: str, task: str) -> tuple[Any, list[Any]]:
    with open(os.path.join(folder, FUNCTION), "rb") as fh:
        setup = pickle.load(fh)
        for entry in setup["path"]:
            if entry not in sys.path:
                sys.path.append(entry)
        try:
            fn = pickle.load(fh)
            with open(os.path.join(folder, INPUT, f"{task}.pkl"), "rb") as inp:
                calls = pickle.load(inp)
        except Exception as exc:
            from gflow.errors import Unpicklable

            raise Unpicklable(
                f"this job's Python ({sys.executable}, {sys.version.split()[0]}) cannot "
                f"unpickle what {setup['python']} ({setup['version']}) pickled: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return fn, calls


class Ref:
    """A future passed as an argument to a later submission: it stands for the future's
    result, read when the later job runs (after the earlier one succeeded)."""

    def __init__(self, folder: str, task: str, pos: int) -> None:
        self.folder, self.task, self.pos = folder, task, pos

    def value(self) -> Any:
        outcome = read(self.folder, self.task)
        if outcome is None or outcome[0] != OK:
            raise RuntimeError(f"no result in {self.folder} for task {self.task}")
        return outcome[1][self.pos]


def read(folder: str, task: str) -> tuple[Any, ...] | None:
    """The result of a task, None while there is none."""
    try:
        with open(os.path.join(folder, RESULT, f"{task}.pkl"), "rb") as fh:
            outcome: tuple[Any, ...] = pickle.load(fh)
    except FileNotFoundError:
        return None
    return outcome


def _arguments(value: Any) -> Any:
    return value.value() if isinstance(value, Ref) else value


COMMAND = ("-c", "from gflow.runner import main; main()")
"""How a job's Python is told to run this (its arguments follow)."""


def run(folder: str, task: str) -> int:
    """Make the task's calls and write its result; the job's exit status."""
    target = os.path.join(folder, RESULT, f"{task}.pkl")
    try:
        fn, calls = _load(folder, task)
        values = []
        for args, kwargs in calls:
            args = [_arguments(a) for a in args]
            kwargs = {k: _arguments(v) for k, v in kwargs.items()}
            values.append(fn(*args, **kwargs))
    except BaseException as exc:
        import traceback

        trace = traceback.format_exc()
        sys.stderr.write(trace)
        write(target, error_result(exc, trace))
        return 1
    try:
        data = dumps((OK, values))
    except Exception as exc:
        import traceback

        from gflow.errors import Unpicklable

        trace = traceback.format_exc()
        sys.stderr.write(trace)
        problem = Unpicklable(f"the result of the job's function cannot be pickled: {exc}")
        write(target, error_result(problem, trace))
        return 1
    write(target, data)
    return 0


def main(argv: list[str] | None = None) -> NoReturn:
    """The job's entry: ``FOLDER [--array]``; exits with the job's status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2) or (len(argv) == 2 and argv[1] != "--array"):
        sys.stderr.write("usage: python -m gflow.runner FOLDER [--array]\n")
        sys.exit(2)
    task = task_of(os.environ, len(argv) == 2)
    if not task.isdigit():
        sys.stderr.write(
            "gflow.runner: this job is a task of an array but has no GFLOW_ARRAY_TASK_ID "
            "(was it run again outside its array?)\n"
        )
        sys.exit(2)
    sys.exit(run(os.path.abspath(argv[0]), task))


if __name__ == "__main__":
    from gflow import runner  # this module by its name: the Ref that arguments unpickle to

    runner.main()
