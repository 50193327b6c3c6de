"""Everything the dashboard asks of the daemon, in one place.

The pages never reach into the runtime or the engine themselves: they go through
:class:`Backend`, which reuses the API's own functions (the same listings, the same
``gjob show``, the same permission checks and actions as the command line).
"""

from __future__ import annotations

import os
import pwd
import time
from typing import TYPE_CHECKING, Any

from gflow import admin, api, commands, listing, quotas
from gflow.actions import Caller
from gflow.errors import Forbidden
from gflow.model import Job
from gflow.store import JobFilter
from gflow.web.explain import Context

if TYPE_CHECKING:
    from pathlib import Path

    from gflow.host import Admin
    from gflow.store import Store


class Backend:
    def __init__(self, rt: Admin) -> None:
        self.rt = rt

    @property
    def store(self) -> Store:
        return self.rt.engine.store

    @property
    def started(self) -> float:
        return self.rt.started

    # ------------------------------------------------------------ who

    def caller(self, uid: int) -> Caller:
        """The caller a token stands for, with the rights the API gives that user."""
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
        return api.caller_for(self.rt, uid, gid)

    def may_act(self, job: Job, caller: Caller) -> bool:
        """What the API would answer to cancel / hold / release / redo of ``job``."""
        try:
            self.rt.engine.check_owner(job, caller)
        except Forbidden:
            return False
        return True

    def uids(self, text: str, caller: Caller) -> tuple[int, ...]:
        return api.uids_of(text, caller)

    # ------------------------------------------------------------ jobs

    def job(self, job_id: int) -> Job | None:
        return self.rt.engine.job(job_id)

    def live(self, job_id: int) -> Job | None:
        return self.rt.engine.jobs.get(job_id)

    def jobs(self, ids: list[int]) -> dict[int, Job]:
        found = self.store.get_many([i for i in ids if i not in self.rt.engine.jobs])
        found.update({i: j for i in ids if (j := self.rt.engine.jobs.get(i)) is not None})
        return found

    def active(self) -> list[Job]:
        return sorted(self.rt.engine.jobs.values(), key=lambda j: j.id)

    def row(self, job: Job) -> dict[str, Any]:
        return listing.compact_json(job, self.rt, deps=True)

    def rows(self, raw: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [listing.row_json(r, self.rt, True) for r in raw]

    def page(
        self, flt: JobFilter, name: str | None, order: str, descending: bool, offset: int, size: int
    ) -> tuple[list[dict[str, Any]], int]:
        raw, total = self.store.page(
            flt, name_part=name, order=order, descending=descending, offset=offset, size=size
        )
        return self.rows(raw), total

    def show(self, job: Job) -> dict[str, Any]:
        return api.show_json(job, self.rt)

    def children(self, job_id: int) -> list[int]:
        return sorted(self.rt.engine.children.get(job_id, ()))

    def log_path(self, job_id: int) -> Path:
        job = self.rt.engine.job(job_id)
        return self.rt.engine.log_path(job) if job else self.rt.paths.log_of(job_id)

    # ------------------------------------------------------------ actions

    def control(self, verb: str, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """Exactly ``POST /v1/jobs/<verb>``: the same checks, one transaction, then act."""
        result = api.control(self.rt, verb, data, caller)
        self.rt.drain()
        return result

    def redo_plan(self, job_id: int, caller: Caller, cascade: bool) -> list[Job]:
        """The jobs ``gjob redo`` would submit again (with ``--cascade``: and its victims)."""
        job = self.rt.engine.require(job_id)
        self.rt.engine.check_owner(job, caller)
        return [job, *(commands.cancelled_by(self.rt.engine, job_id, caller) if cascade else [])]

    # ------------------------------------------------------------ machine

    def context(self) -> Context:
        """What :mod:`gflow.web.explain` needs to put wait reasons in words."""
        eng = self.rt.engine
        holding = eng.holding()
        busy = {g for j in holding for g in j.gpu_ids}
        idle = [s for s in eng.gpu_slots if s.allowed and not s.unmanaged and s.index not in busy]
        return Context(
            pending={i: ev.pending for i, ev in eng.evals.items()},
            gpus_total=len(eng.gpu_slots),
            gpus_idle=len(idle),
            memory_mb=eng.memory_mb,
            memory_used_mb=sum(j.memory_mb or 0 for j in holding),
            max_running=self.rt.config.max_running,
            group_limits=eng.group_limits,
            quotas=eng.quotas,
            quota_use=quotas.usage(eng.waiting_jobs(), holding) if eng.quotas else {},
        )

    def gpus(self) -> dict[str, Any]:
        return admin.info(self.rt)

    def holding(self) -> list[Job]:
        return self.rt.engine.holding()

    def reservations(self) -> list[dict[str, Any]]:
        now = time.time()
        return [r.to_json(now) for r in self.rt.engine.reservations if r.end > now]

    def host_memory(self) -> dict[str, int | None]:
        """Host memory in MB: the machine's, what gflow hands out, and what jobs reserved."""
        info: dict[str, int] = {}
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    key, _, rest = line.partition(":")
                    info[key] = int(rest.split()[0]) // 1024
        except (OSError, ValueError, IndexError):
            pass
        return {
            "total": info.get("MemTotal"),
            "available": info.get("MemAvailable"),
            "limit": self.rt.engine.memory_mb,
            "reserved": sum(j.memory_mb or 0 for j in self.holding()),
        }

    def stats(self, uids: tuple[int, ...], since: float | None) -> dict[str, Any]:
        return commands.stats(self.rt.engine, uids, since, time.time())

    def daemon(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "started": self.rt.started}
