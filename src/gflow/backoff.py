"""A retry timer for work that failed for want of a resource that comes back.

Used when the system runs short of file descriptors or processes: nothing polls; one
timer fires after a delay that doubles with each failure in a row, and anything that
frees the resource (a job's end) can fire it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Backoff:
    """Run ``callback`` once, ``first`` seconds after a failure, doubling up to ``cap``
    while failures continue; a success starts over from ``first``."""

    def __init__(self, callback: Callable[[], None], first: float = 0.05, cap: float = 2.0):
        self._callback = callback
        self._first = first
        self._cap = cap
        self._delay = first
        self._handle: asyncio.Handle | None = None

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def failed(self) -> None:
        """Something must be tried again: arm the timer (if it is not armed already)."""
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self._delay, self._fire)
            self._delay = min(self._delay * 2, self._cap)

    def succeeded(self) -> None:
        self._delay = self._first

    def now(self) -> None:
        """Something was freed: if anything waits, try it at once."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = asyncio.get_running_loop().call_soon(self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._callback()
