"""One exception tree for the whole product.

Every error a user can cause is a :class:`GflowError`; the API maps each class to
an HTTP status and the CLIs print its message on one line.
"""

from __future__ import annotations


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
