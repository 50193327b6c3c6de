"""The outbox: notifications written in the transaction of the change they tell of.

:meth:`Notifier.changed` is the engine's ``on_state`` listener: inside the change's
transaction it writes one outbox row per target (:mod:`gflow.notices` decides which), so
a change that is committed always has its notifications, and one rolled back has none.
:mod:`gflow.delivery` sends them afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from gflow import notices
from gflow.model import Job, State
from gflow.notices import Notice
from gflow.notifyconfig import Notifications
from gflow.store import NoticeRow, Store


class Notifier:
    def __init__(
        self, store: Store, conf: Notifications, busy_gpus: Callable[[int], set[int]]
    ) -> None:
        self.store = store
        self.conf = conf
        self.busy_gpus = busy_gpus
        """The GPUs held by jobs other than the one given (running or being launched)."""
        self.written = False
        """Rows were written since the deliverer last looked."""

    def changed(self, job: Job, old: State | None, why: str | None, now: float) -> None:
        made = notices.for_change(job, old, why, now, self.conf)
        if job.is_final and old is State.RUNNING and job.gpu_ids and self._wants_gpus():
            freed = sorted(set(job.gpu_ids) - self.busy_gpus(job.id))
            if freed:
                made += notices.for_system("gpu_available", now, self.conf, gpus=freed)
        self.write(made, now)

    def system(self, event: str, now: float, **fields: object) -> None:
        """An event about no job (``scheduler_online``), in its own transaction."""
        made = notices.for_system(event, now, self.conf, **fields)
        if made:
            with self.store.tx():
                self.write(made, now)

    def write(self, made: Iterable[Notice], now: float) -> None:
        rows = [self._row(n, now) for n in made]
        if rows:
            self.store.add_notifications(rows)
            self.written = True

    def _row(self, n: Notice, now: float) -> NoticeRow:
        state = "failed" if n.error else "pending"
        return (
            now,
            n.event,
            n.job_id,
            n.uid,
            n.channel,
            n.target,
            json.dumps(n.body, separators=(",", ":")),
            state,
            now,
            now + self.conf.retry_for,
            n.error,
        )

    def _wants_gpus(self) -> bool:
        return any("gpu_available" in hook.events for hook in self.conf.webhooks)
