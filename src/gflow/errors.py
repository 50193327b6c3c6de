"""One exception tree for the whole product.

Every error a user can cause is a :class:`GflowError`; the API maps each class to
an HTTP status and the CLIs print its message on one line.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class GflowError(Exception):
    """Root of every error gflow raises on purpose."""

    status = 400
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(GflowError):
    """A value does not have the expected form; the message names field and form."""

    kind = "invalid"
    field = ""

    def __init__(self, field: str, value: object, expected: str) -> None:
        try:
            shown = value if isinstance(value, str) else repr(value)
        except ValueError:  # an integer too long to print
            shown = "a huge number"
        if len(shown) > 200:
            shown = shown[:197] + "..."
        super().__init__(f"invalid {field} {shown!r}: expected {expected}")
        self.field = field


class Refused(GflowError):
    """A well-formed request the scheduler will not carry out (bad id, cycle...)."""

    kind = "refused"


class NotFound(Refused):
    status = 404
    kind = "not_found"


class Conflict(Refused):
    """The job is not in a state that allows the request."""

    status = 409
    kind = "conflict"


class NotAllDone(Conflict):
    """Some of the selected jobs were changed and others were not (wrong state); the
    message has a line per job refused, ``done`` what was done."""

    def __init__(self, message: str, done: list[Any]) -> None:
        super().__init__(message)
        self.done = done


class Forbidden(Refused):
    """The caller does not own the job and is not an administrator."""

    status = 403
    kind = "forbidden"


class StoreError(GflowError):
    """The database refused a write (disk full, read-only, corrupt)."""

    status = 503
    kind = "store"


class DaemonUnavailable(GflowError):
    """The client could not reach gflowd."""

    status = 503
    kind = "unavailable"


class JobFailed(GflowError):
    """A job ended without the result a caller waited for (:mod:`gflow.futures`)."""

    kind = "job_failed"

    def __init__(self, message: str, job_id: int, state: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state


class Unpicklable(GflowError):
    """A function, its arguments or its result could not be pickled for a job."""

    kind = "unpicklable"


def from_answer(message: str, kind: str) -> GflowError:
    """The error a daemon's answer names by its ``kind``, with the daemon's message."""
    classes = (InvalidInput, Refused, NotFound, Conflict, Forbidden, StoreError, DaemonUnavailable)
    cls = next((c for c in classes if c.kind == kind), GflowError)
    exc = cls.__new__(cls)
    GflowError.__init__(exc, message)
    if cls is GflowError and kind:
        exc.kind = kind
    return exc
