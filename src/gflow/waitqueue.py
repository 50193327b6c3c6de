"""The queued jobs that wait for a start, kept in planning order (best first).

A scheduling pass on an event looks at the front of this order and at the jobs that
changed, not at every queued job (:meth:`gflow.engine.Engine.schedule`); keeping the
order costs a binary search per change instead of a sort per pass.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

Key = tuple[int, int]
""":func:`gflow.scheduler.sort_key` of a job: (-priority, id)."""


class WaitQueue:
    """Job ids with their planning keys; a set of ids to ``in``, ``len`` and iterate."""

    def __init__(self) -> None:
        self._keys: dict[int, Key] = {}
        self._order: list[Key] = []

    def add(self, job_id: int, key: Key) -> None:
        old = self._keys.get(job_id)
        if old == key:
            return
        if old is not None:
            self.discard(job_id)
        self._keys[job_id] = key
        bisect.insort(self._order, key)

    def discard(self, job_id: int) -> None:
        key = self._keys.pop(job_id, None)
        if key is not None:
            del self._order[bisect.bisect_left(self._order, key)]

    def first(self, count: int) -> list[int]:
        """The ids of the first ``count`` jobs in planning order."""
        return [key[1] for key in self._order[:count]]

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._keys))
