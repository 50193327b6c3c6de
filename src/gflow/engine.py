"""The daemon's core: the active jobs, their dependency graph, resources and timers.

The engine is synchronous and does no process I/O. Every event handler writes the
store inside one transaction, updates memory, re-plans, and leaves *actions*
(launch, signal, watch, close a session) in :attr:`Engine.outbox` for the runtime to
perform. A test drives it directly with an explicit ``now``.

Memory holds only active jobs (Queued, Hold, Running); history stays in SQLite.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gflow import jobenv, jobfiles, jobsignal, scheduler, slurmsync
from gflow.actions import (
    Action,
    Caller,
    CloseSession,
    Ended,
    Launch,
    Signal,
    SlurmControl,
    Watch,
)
from gflow.config import DaemonConfig, Paths
from gflow.deps import Clause, Evaluation, ParentView, Verdict, evaluate
from gflow.errors import Conflict, Forbidden, NotFound, StoreError
from gflow.launchspec import Inherited, LaunchSpec, RunAs, execs, job_script, render_command
from gflow.model import (
    BROKEN_END,
    SUBMITTING,
    Job,
    Reason,
    State,
    StopIntent,
    Wake,
    job_problem,
    transition,
)
from gflow.placement import LOCAL, SLURM, Placement
from gflow.quotas import QuotaTable
from gflow.reservations import Reservation, next_changes
from gflow.scheduler import GpuSlot, Resources
from gflow.store import Store
from gflow.waitqueue import WaitQueue

if TYPE_CHECKING:
    from gflow.cgroup import CgroupMemory

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
QUICK_DEPTH = 1000
"""Waiting jobs a pass on an event plans at least (the first, in planning order)."""
FULL_EVERY = 1.0
"""Seconds at least between two full passes over a longer queue (see Engine._among)."""
log = logging.getLogger("gflow.engine")


@dataclass(frozen=True, slots=True)
class Started:
    """A job's process exists: its pid, start time in ticks, and when it began."""

    job_id: int
    pid: int | None
    pid_start: int | None
    started: float | None = None


@dataclass(frozen=True, slots=True)
class Exited:
    """A job's process ended with this exit code (None: unknown), at ``end_time``."""

    job_id: int
    exit_code: int | None
    end_time: float | None = None


@dataclass(order=True, slots=True)
class _Timer:
    when: float
    seq: int
    kind: Wake = field(compare=False)
    job_id: int = field(compare=False)
    step: int = field(compare=False, default=0)


class Engine:
    def __init__(
        self,
        store: Store,
        paths: Paths,
        config: DaemonConfig,
        *,
        executor_name: str = "process",
        run_as: RunAs | None = None,
    ) -> None:
        self.store = store
        self.paths = paths
        self.config = config
        self.executor_name = executor_name
        self.placement = Placement(local=executor_name)
        """Where jobs run: here, on a Slurm cluster or either (set by the runtime)."""
        self.slurm_book = slurmsync.Book()
        self.jobs: dict[int, Job] = {}
        self.children: dict[int, set[int]] = {}
        self.evals: dict[int, Evaluation] = {}
        self.launching: dict[int, tuple[int, ...]] = {}
        self.waiting = WaitQueue()
        self.running: set[int] = set()
        self._touched: set[int] = set()
        self._next_full = 0.0
        self._catch_up = False
        self._full_pass = False
        self.broken: list[tuple[int, str, str]] = []
        self._shared_root: Path | None = None
        self.reasons: dict[int, str] = {}
        self.outbox: list[Action] = []
        self.gpu_slots: tuple[GpuSlot, ...] = ()
        self.group_limits: dict[int, int] = {}
        self.quotas = QuotaTable()
        self.reservations: tuple[Reservation, ...] = ()
        self.memory_mb: int | None = config.memory_mb
        self.cgroups: CgroupMemory | None = None
        self.inherited = Inherited()
        self.rng = random.Random()
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._env_cache: dict[int, dict[str, str]] = {}
        self._tasks_cache: dict[int, jobenv.TaskRange] = {}
        self.host = socket.gethostname().split(".")[0]
        self.identity: Callable[[int], RunAs | None] = lambda uid: run_as
        self.on_change: Callable[[int | None], None] = _unwatched
        """Told the id of every job whose state or wait reason changed (None: the GPUs),
        inside the change's transaction: a watcher reads the outcome after it."""
        self.exit_status: Callable[[Job], int | None] = lambda job: None
        """How an ended job's executor says it ended, when its result file does not."""
        self.on_state: Callable[[Job, State | None, str | None, float], None] = _untold
        """Told of every change of a job's state (the job as it is now, its old state,
        None for a new job, and the event's reason) inside the change's transaction, after
        its event is written and before memory moves on: notifications and metrics."""
        self.on_pass: Callable[[float], None] = _untimed
        """Told how long each scheduling pass took (seconds)."""

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """(Re)build memory from the database: the database is the only truth."""
        active, self.broken = self.store.load_active()
        self.jobs = {j.id: j for j in active}
        self.children = {}
        self.evals = {}
        self.waiting = WaitQueue()
        self.running = set()
        for job in self.jobs.values():
            self._index(job)
        self.group_limits = self.store.group_limits()
        self.quotas = QuotaTable(self.store.quotas())
        self.reservations = tuple(self.store.reservations(live_after=0.0))

    def _index(self, job: Job) -> None:
        """Derived indexes: dependents per parent, and queued jobs not yet launching."""
        if job.state is State.QUEUED and job.id not in self.launching:
            self.waiting.add(job.id, scheduler.sort_key(job))
        elif job.state is State.RUNNING:
            self.running.add(job.id)
        if job.state.is_waiting and not job.deps.is_empty:
            for parent in job.deps.parents():
                self.children.setdefault(parent, set()).add(job.id)

    def _unindex(self, job: Job) -> None:
        self.waiting.discard(job.id)
        self.running.discard(job.id)
        for parent in job.deps.parents():
            kids = self.children.get(parent)
            if kids is not None:
                kids.discard(job.id)
                if not kids:
                    del self.children[parent]

    # ------------------------------------------------------------ lookups

    def job(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id) or self.store.get(job_id)

    def get_many(self, ids: Iterable[int]) -> dict[int, Job]:
        """The jobs of these ids that exist, from memory or (in batches) the database."""
        found: dict[int, Job] = {}
        missing = []
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is None:
                missing.append(job_id)
            else:
                found[job_id] = job
        found.update(self.store.get_many(missing))
        return found

    def require(self, job_id: int) -> Job:
        job = self.job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def group_members(self, group_id: int) -> list[int]:
        return self.store.group_members(group_id)

    def group_tasks(self, group_id: int) -> list[int]:
        return self.store.group_tasks(group_id)

    def array_task(self, group_id: int, task_id: int) -> int | None:
        return self.store.array_task(group_id, task_id)

    def recent_submissions(self, uid: int, count: int) -> list[tuple[int, int]]:
        return self.store.recent_batches(uid, count)

    def latest_by_name(self, uid: int, name: str) -> int | None:
        return self.store.latest_by_name(uid, name)

    def attempts_of(self, job_id: int) -> list[int]:
        return self.store.attempts_of(job_id)

    def parents_of(self, job_id: int) -> set[int]:
        job = self.job(job_id)
        return job.deps.parents() if job else set()

    @staticmethod
    def check_owner(job: Job, caller: Caller) -> None:
        if job.uid != caller.uid and not caller.admin:
            raise Forbidden(f"job {job.id} belongs to {job.user}")

    def views(self, ids: Iterable[int]) -> dict[int, ParentView]:
        out: dict[int, ParentView] = {}
        missing = []
        for i in ids:
            job = self.jobs.get(i)
            if job is None:
                missing.append(i)
            else:
                out[i] = _view(job)
        for i, job in self.store.get_many(missing).items():
            out[i] = _view(job)
        return out

    # ------------------------------------------------------------ writing

    def put(self, job: Job, old: State | None, now: float, *, event: bool = True) -> Job:
        """Persist ``job`` (inside the caller's transaction) and mirror it in memory."""
        self.store.save(job)
        if event and old is not job.state:
            self.record([(job, old, job.reason)], now)
        self.remember(job)
        return job

    def record(self, changes: Sequence[tuple[Job, State | None, str | None]], now: float) -> None:
        """Write the events of these changes of state (job as it is now, old state, reason)
        and tell :attr:`on_state` of each: the one place a change of state is recorded."""
        self.store.record_events([(j.id, old, j.state, why) for j, old, why in changes], now)
        for job, old, why in changes:
            self.on_state(job, old, why, now)

    def remember(self, job: Job) -> None:
        self.on_change(job.id)
        self._touched.add(job.id)
        previous = self.jobs.get(job.id)
        if previous is not None:
            self._unindex(previous)
        if job.is_active:
            self.jobs[job.id] = job
            self._index(job)
        else:
            self.jobs.pop(job.id, None)
            self.evals.pop(job.id, None)
            self.reasons.pop(job.id, None)
            self.launching.pop(job.id, None)

    def create(
        self, jobs: Sequence[Job], now: float, why: Callable[[Job], str] | None = None
    ) -> None:
        """The one way jobs come into being (a submission, a redo, a retry), inside the
        caller's transaction: stored with their first event (its reason ``why``, else the
        job's own), then known to memory and the graph, with a timer for a begin time."""
        for job in jobs:
            if not job.state.is_waiting or job.start_time is not None:
                raise ValueError(f"job {job.id} is new: it must wait, not be {job.state.value}")
        self.store.insert_jobs(jobs)
        self.record([(j, None, why(j) if why else j.reason) for j in jobs], now)
        for job in jobs:
            self.remember(job)
        for when in sorted({j.begin_at for j in jobs if j.begin_at is not None}):
            self.add_timer(when, Wake.BEGIN, jobs[0].id)

    def set_group_limit(self, group_id: int, limit: int | None) -> None:
        """At most ``limit`` running jobs of an array or sweep (None: no limit), inside the
        caller's transaction."""
        self.store.set_group_limit(group_id, limit)
        if limit:
            self.group_limits[group_id] = limit
        else:
            self.group_limits.pop(group_id, None)

    def events_of(self, job_id: int) -> list[tuple[float, str | None, str, str | None]]:
        """A job's changes of state: (time, from, to, reason), oldest first."""
        return self.store.events_of(job_id)

    def move(
        self,
        job: Job,
        new: State,
        now: float,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        at: float | None = None,
        observed: bool = False,
        **changes: Any,
    ) -> Job:
        """The one way a job changes state: :func:`transition`, stored with its event.

        For a job in Slurm, a change gflow decides (not one it ``observed`` in Slurm) is
        carried out there too: cancel, hold, release."""
        moved = transition(job, new, now, reason=reason, exit_code=exit_code, at=at, **changes)
        self.put(moved, job.state, now)
        if moved.is_final:
            self.outbox.append(Ended(moved.id))
        if not observed and job.slurm_id not in (None, SUBMITTING):
            verb = "cancel" if moved.is_final else {State.HOLD: "hold"}.get(new, "release")
            if new is not State.RUNNING and (verb != "release" or job.state is State.HOLD):
                self.outbox.append(SlurmControl(verb, (str(job.slurm_id),)))
        return moved

    def withdraw(self, job: Job, now: float) -> Job:
        """Take a waiting job back from Slurm, to submit it again as it now is."""
        return slurmsync.withdraw(self, job, now)

    def log_path(self, job: Job) -> Path:
        """Where a job's output goes (a Slurm job's: on the directory the nodes share)."""
        root = self._shared_root if self._shared_root and self.site(job) == SLURM else None
        return (root / "logs" if root else self.paths.logs_dir) / f"{job.id}.log"

    def run_path(self, job: Job) -> Path:
        """A job's run directory (a Slurm job's: on the directory the nodes share)."""
        root = self._shared_root if self._shared_root and self.site(job) == SLURM else None
        return (root / "run" if root else self.paths.run_dir) / str(job.id)

    def use_shared_dir(self, root: Path) -> None:
        """Run files and logs of Slurm jobs under ``root`` (a directory every node sees)."""
        self._shared_root = root

    def guarded(self) -> _Guard:
        """A transaction that rebuilds memory from the database if the write fails."""
        return _Guard(self)

    @contextmanager
    def isolated(
        self, job_id: int, now: float, pid: int | Callable[[], int | None] | None = None
    ) -> Iterator[None]:
        """Handle one job's event inside the current transaction, so that its data cannot
        drop the others' events: if handling it fails (a value out of range, a row the
        database refuses), that part alone is undone and the job is ended with a reason
        that says why (:meth:`quarantine`; ``pid``: its process to kill, or how to find
        it). A write the
        database refuses as a whole (:class:`StoreError`) still fails the transaction."""
        mark = len(self.outbox)
        try:
            with self.store.savepoint():
                yield
        except StoreError:
            raise
        except Exception as exc:
            del self.outbox[mark:]
            job = self.jobs.get(job_id)
            problem = (job_problem(job) if job else None) or _describe(exc)
            log.exception("job %s: its data broke the handling of an event", job_id)
            self.load()  # memory as the database says, with this event undone
            if self.quarantine(job_id, problem, now, pid() if callable(pid) else pid):
                self.settle_dependents([job_id], now)

    def quarantine(self, job_id: int, problem: str, now: float, pid: int | None = None) -> bool:
        """End one job whose stored data the engine cannot handle; the others carry on.

        A waiting job is cancelled and a running one failed, with reason
        ``InvalidJobData:<problem>``. Only its state, reason and end time are written, so
        the bad value is never handled again; ``pid``'s process group is killed. False when
        the job has already ended (or does not exist).
        """
        job = self.jobs.get(job_id)
        raw = job.state.value if job is not None else self.store.state_of(job_id)
        old = next((s for s in State if s.value == raw), None)
        new = BROKEN_END.get(old) if old is not None else None
        if raw is None or new is None:
            return False
        log.error("job %s ended as %s: %s", job_id, new.value, problem)
        self.store.end_broken(job_id, raw, new, Reason.invalid_data(problem), now)
        ended = self.store.get(job_id)
        if ended is not None and old is not None:
            self.on_state(ended, old, ended.reason, now)
        if job is not None:
            self._unindex(job)
        for index in (self.jobs, self.evals, self.reasons, self.launching):
            index.pop(job_id, None)
        if pid:
            self.outbox.append(Signal(job_id, pid, signal.SIGKILL))
        self.outbox.append(Ended(job_id))
        return True

    # ------------------------------------------------------------ dependencies

    def settle_dependents(self, changed: Iterable[int], now: float) -> None:
        """Re-judge the waiting children of jobs that started or ended; cascade cancels."""
        work = list(changed)
        while work:
            parent = work.pop()
            for child_id in sorted(self.children.get(parent, ())):
                cancelled = self.judge(child_id, now)
                if cancelled:
                    work.append(child_id)

    def judge(self, job_id: int, now: float) -> bool:
        """Evaluate one waiting job's dependency; True if it got auto-cancelled."""
        job = self.jobs.get(job_id)
        if job is None or not job.state.is_waiting or job.deps.is_empty:
            return False
        try:
            views = self.views(job.deps.parents())
            ev = evaluate(job.deps, views, now)
        except (ArithmeticError, ValueError, TypeError) as exc:  # its data, not the parents'
            return self.quarantine(job_id, job_problem(job) or _describe(exc), now)
        self.evals[job_id] = ev
        self._touched.add(job_id)
        if ev.verdict is Verdict.NEVER:
            if job.deps.auto_cancel:
                culprit = ev.culprit if ev.culprit is not None else 0
                self.move(job, State.CANCELLED, now, reason=Reason.dependency_failed(culprit))
                return True
            if job.reason != Reason.NEVER:
                self.put(job.replace(reason=Reason.NEVER), job.state, now, event=False)
            return False
        if ev.wake_at is not None:
            self.add_timer(ev.wake_at, Wake.DEPENDENCY, job_id)
        unknown = next((p for p in ev.pending if views[p].exit_unknown), None)
        reason = Reason.parent_exit_unknown(unknown) if unknown is not None else None
        changed = reason != job.reason and (reason is not None or Reason.awaits_user(job.reason))
        if changed and job.state is State.QUEUED:
            self.put(job.replace(reason=reason), job.state, now, event=False)
        return False

    def repoint(self, old: int, new: int, now: float, *, owner: int | None = None) -> None:
        """Make still-waiting dependents of ``old`` wait for ``new`` instead (retry, redo).

        ``after`` clauses stay on ``old`` (it started or ended: they are met for good);
        a dependent that was marked never-satisfiable is judged afresh against ``new``.
        ``owner``: only that user's dependents (a redo must not rewire others' jobs).
        """
        for child_id in sorted(self.children.get(old, ())):
            child = self.jobs[child_id]
            if child.state.is_waiting and owner in (None, child.uid):
                reason = None if Reason.awaits_user(child.reason) else child.reason
                child = self.put(
                    child.replace(
                        deps=child.deps.replace_parent(old, new, keep_after=True), reason=reason
                    ),
                    child.state,
                    now,
                    event=False,
                )
                self.withdraw(child, now)
                if self.judge(child_id, now):
                    self.settle_dependents([child_id], now)

    def attach_pool_clause(self, target: Job, clause: Clause, now: float) -> None:
        self.put(
            target.replace(deps=target.deps.with_pool_clause(clause)),
            target.state,
            now,
            event=False,
        )

    # ------------------------------------------------------------ timers

    def add_timer(self, when: float, kind: Wake, job_id: int, step: int = 0) -> None:
        if not math.isfinite(when):  # a timer that can never fire must not block the heap
            return
        heapq.heappush(self._timers, _Timer(when, next(self._seq), kind, job_id, step))

    def next_wake(self) -> float | None:
        return self._timers[0].when if self._timers else None

    def tick(self, now: float) -> None:
        """Fire every timer that is due, then re-plan once."""
        due: list[_Timer] = []
        while self._timers and self._timers[0].when <= now:
            due.append(heapq.heappop(self._timers))
        if not due:
            return
        try:
            with self.guarded():
                for timer in due:
                    with self.isolated(timer.job_id, now):
                        self._fire(timer, now)
        except BaseException:
            for timer in due:  # nothing was written: they are still due
                heapq.heappush(self._timers, timer)
            raise
        self.schedule(now)

    def arm_reservations(self, now: float, *only: Reservation) -> None:
        """Re-plan exactly when windows open and close (``only`` these; else all live ones)."""
        if not only:
            self.reservations = tuple(r for r in self.reservations if r.end > now)
        for when in next_changes(only or self.reservations, now):
            self.add_timer(when, Wake.REPLAN, 0)

    def _fire(self, timer: _Timer, now: float) -> None:
        if timer.kind is Wake.REPLAN:  # a reservation window opened or closed; tick() re-plans
            self.reservations = tuple(r for r in self.reservations if r.end > now)
            self._next_full = now  # (or a quick pass left jobs unplanned): plan them all
            return
        if timer.kind is Wake.CLOSE:
            ended = self.store.get(timer.job_id)
            if ended is not None and not ended.is_active:
                self.close_session(ended)
            return
        job = self.jobs.get(timer.job_id)
        if job is None:
            return
        if timer.kind is Wake.BEGIN:
            self._next_full = now
            return
        if timer.kind is Wake.DEPENDENCY:
            if self.judge(job.id, now):
                self.settle_dependents([job.id], now)
        elif timer.kind is Wake.LIMIT and job.state is State.RUNNING and job.stop_intent is None:
            self.begin_stop(job, StopIntent.TIMEOUT, now)
        elif timer.kind is Wake.WARN and job.state is State.RUNNING and job.stop_intent is None:
            self._warn(job, now)
        elif timer.kind is Wake.KILL and job.state is State.RUNNING and job.pid:
            self._stop_signal(job, timer.step, now)

    def arm_limits(self, job: Job, began: float, *, unless_before: float | None = None) -> None:
        """The timers of a running job's time limit, and of its ``--signal`` before it
        (not if that was due before ``unless_before``: gflowd was down then, and may
        have sent it)."""
        if not job.time_limit:
            return
        self.add_timer(began + job.time_limit, Wake.LIMIT, job.id)
        if job.signal:
            when = max(began, began + job.time_limit - jobsignal.parse(job.signal).seconds)
            if unless_before is None or when >= unless_before:
                self.add_timer(when, Wake.WARN, job.id)

    def _warn(self, job: Job, now: float) -> None:
        """Send the job its ``--signal``: to every process, or (``B:``) its command only;
        a job on Slurm gets it through ``scancel --signal`` (every process of the job)."""
        assert job.signal is not None
        spec = jobsignal.parse(job.signal)
        if job.slurm_id is not None and job.slurm_id != SUBMITTING:
            self.outbox.append(SlurmControl("signal", (job.slurm_id,), spec.number))
        elif job.pid:
            self.outbox.append(Signal(job.id, job.pid, spec.number, group=not spec.batch_only))
        else:
            return
        self.store.record_event(job.id, job.state, job.state, Reason.warning_signal(str(spec)), now)

    def begin_stop(self, job: Job, intent: StopIntent, now: float) -> None:
        """Record why a running job is being stopped, then SIGINT → SIGTERM → SIGKILL."""
        if job.stop_intent is None:
            job = self.put(job.replace(stop_intent=intent), job.state, now, event=False)
        if job.slurm_id is not None and job.slurm_id != SUBMITTING:
            self.outbox.append(SlurmControl("cancel", (job.slurm_id,)))  # Slurm's own sequence
            return
        self._stop_signal(job, 0, now)

    def _stop_signal(self, job: Job, step: int, now: float) -> None:
        """Step ``step`` of the stop sequence, recorded in the job's history; the next
        step is due ``kill_grace`` later."""
        assert job.pid is not None
        sig = STOP_SIGNALS[step]
        reason = Reason.stop_signal(job.stop_intent, sig.name)
        self.store.record_event(job.id, job.state, job.state, reason, now)
        self.outbox.append(Signal(job.id, job.pid, sig))
        if step + 1 < len(STOP_SIGNALS):
            self.add_timer(now + self.config.kill_grace, Wake.KILL, job.id, step + 1)

    # ------------------------------------------------------------ scheduling

    def _singleton_blocked(self, job: Job) -> bool:
        """Slurm's singleton: another job of this user and name runs, or is ahead and ready.

        Jobs that still wait for their own dependencies (or are held) do not block, so
        a singleton can never deadlock with a same-named job that depends on it.
        """
        for other in self.jobs.values():
            if other.id == job.id or other.uid != job.uid or other.name != job.name:
                continue
            if other.state is State.RUNNING or other.id in self.launching:
                return True
            if other.id < job.id and other.state is State.QUEUED and self._deps_met(other):
                return True
        return False

    def _deps_met(self, job: Job) -> bool:
        if job.deps.is_empty:
            return True
        ev = self.evals.get(job.id)
        return ev is not None and ev.verdict is Verdict.SATISFIED

    def runnable(self, now: float, among: Iterable[int] | None = None) -> list[Job]:
        """Queued jobs whose dependencies and begin time allow a start (of those ``among``,
        else of all waiting), best first; sets wait reasons."""
        out: list[Job] = []
        for job_id in list(self.waiting if among is None else among):
            job = self.jobs.get(job_id)  # a cascade below may have ended it
            if job is None or job.state is not State.QUEUED or job_id in self.launching:
                continue
            if job.reason == Reason.NEVER:
                continue
            if not self._here(job):
                continue
            if not job.deps.is_empty:
                ev = self.evals.get(job.id)
                if ev is None:
                    if self.judge(job.id, now):  # memory was reloaded: judge afresh
                        self.settle_dependents([job.id], now)
                        continue
                    ev = self.evals.get(job.id)
                if ev is None or ev.verdict is not Verdict.SATISFIED:
                    self.set_reason(job.id, Reason.DEPENDENCY)
                    continue
                if job.deps.singleton and self._singleton_blocked(job):
                    self.set_reason(job.id, Reason.DEPENDENCY)
                    continue
            if job.begin_at is not None and job.begin_at > now:
                self.set_reason(job.id, Reason.BEGIN_TIME)
                continue
            out.append(job)
        out.sort(key=scheduler.sort_key)
        return self._singletons_alone(out)

    def _here(self, job: Job) -> bool:
        """The job runs on this machine (else on Slurm, or nowhere until configured)."""
        site = self.site(job)
        if not self.placement.allows(site):
            self.set_reason(job.id, Reason.NO_EXECUTOR)
            return False
        return site == LOCAL

    def set_reason(self, job_id: int, reason: str) -> None:
        """Why a queued job waits (kept in memory only: it changes with every pass)."""
        if self.reasons.get(job_id) != reason:
            self.reasons[job_id] = reason
            self.on_change(job_id)

    def _singletons_alone(self, candidates: list[Job]) -> list[Job]:
        """A singleton does not start in the same pass as a same-named job planned before it."""
        seen: set[tuple[int, str]] = set()
        kept: list[Job] = []
        for job in candidates:
            key = (job.uid, job.name)
            if job.deps.singleton and key in seen:
                self.set_reason(job.id, Reason.DEPENDENCY)
                continue
            seen.add(key)
            kept.append(job)
        return kept

    def resources(self) -> Resources:
        return Resources(
            self.gpu_slots,
            self.memory_mb,
            self.config.max_running,
            self.quotas,
            self.reservations,
            2 * self.config.kill_grace,  # SIGINT, then SIGTERM and SIGKILL this far apart
        )

    def waiting_jobs(self) -> list[Job]:
        """Queued and held jobs, except those being launched."""
        return [j for j in self.jobs.values() if j.state.is_waiting and j.id not in self.launching]

    def holding(self) -> list[Job]:
        running = [self.jobs[i] for i in sorted(self.running)]
        running += [self.jobs[i].replace(gpu_ids=g) for i, g in self.launching.items()]
        return running

    def site(self, job: Job) -> str:
        """Where ``job`` runs: ``local`` or ``slurm``."""
        return self.placement.site_for(job.run_on, job.project)

    def schedule(self, now: float) -> None:
        """Start what can start now: launches here, submissions to Slurm, to the outbox."""
        began = time.perf_counter()
        self._full_pass = False
        try:
            self._schedule(now)
        finally:
            spent = time.perf_counter() - began
            if self._full_pass:
                self._planned_all(now, spent)
            self.on_pass(spent)

    def _schedule(self, now: float) -> None:
        if self.placement.slurm:
            slurmsync.plan(self, now)
        among = self._among(now)
        self._full_pass = among is None
        candidates = self.runnable(now, among)
        if not candidates:
            return
        try:
            decided = self._plan(candidates, now)
        except Exception:  # one job's data broke the plan: end that job, plan the rest
            decided = self._plan(self._plannable(candidates, now), now)
        for job_id, reason in decided.reasons.items():
            self.set_reason(job_id, reason)
        for start in decided.starts:
            self.launching[start.job_id] = start.gpu_ids
            self.waiting.discard(start.job_id)
            self.set_reason(start.job_id, Reason.LAUNCHING)
            self.outbox.append(Launch(start.job_id, start.gpu_ids))

    def _among(self, now: float) -> list[int] | None:
        """The waiting jobs this pass plans (None: all of them).

        With more than :data:`QUICK_DEPTH` waiting, a pass plans the first
        :data:`QUICK_DEPTH` in planning order and the jobs that changed since the last
        pass, so a job's end costs the same with a thousand or a hundred thousand queued.
        The others keep the reasons they had until a full pass plans them all: at most
        once a second (or once per 20 times its own length), on a timer set only while
        quick passes left jobs unplanned, so an idle daemon still does nothing.
        """
        touched, self._touched = self._touched, set()
        if len(self.waiting) <= QUICK_DEPTH or now >= self._next_full:
            return None
        if not self._catch_up:
            self._catch_up = True
            self.add_timer(self._next_full, Wake.REPLAN, 0)
        among = self.waiting.first(QUICK_DEPTH)
        return list(dict.fromkeys([*among, *(i for i in touched if i in self.waiting)]))

    def _planned_all(self, now: float, spent: float) -> None:
        """After a full pass: when the next one is due if quick passes follow."""
        self._next_full = now + max(FULL_EVERY, 20 * spent)
        self._catch_up = False

    def _plan(self, candidates: list[Job], now: float) -> scheduler.Plan:
        return scheduler.plan(
            candidates,
            self.holding(),
            self.resources(),
            self.group_limits,
            now,
            strategy=self.config.gpu_allocation_strategy,
            rng=self.rng,
        )

    def _plannable(self, candidates: list[Job], now: float) -> list[Job]:
        """The candidates that can be planned on their own; the others are ended."""
        kept = []
        for job in candidates:
            try:
                self._plan([job], now)
            except Exception as exc:
                with self.guarded():
                    if self.quarantine(job.id, job_problem(job) or _describe(exc), now):
                        self.settle_dependents([job.id], now)
            else:
                kept.append(job)
        return kept

    def next_launch(self, job_id: int, now: float) -> LaunchSpec | None:
        """The spec to start a planned job with, or None if it must not start any more.

        A job cancelled while it waited for its turn to launch is cancelled here, cleanly.
        """
        job = self.jobs.get(job_id)
        if job is None or job.state is not State.QUEUED or job_id not in self.launching:
            self.launching.pop(job_id, None)
            return None
        if job.stop_intent is StopIntent.CANCEL:
            self.launching.pop(job_id, None)
            with self.guarded(), self.isolated(job_id, now):
                self.move(job, State.CANCELLED, now, reason=Reason.CANCELLED_BY_USER)
                self.settle_dependents([job_id], now)
            self.schedule(now)
            return None
        return self.launch_spec(job, self.launching[job_id])

    def launch_spec(self, job: Job, gpu_ids: tuple[int, ...]) -> LaunchSpec:
        tasks = self._task_range(job.group_id) if job.group_id is not None else None
        env = jobenv.variables(job, gpu_ids, self._batch_env(job.batch_id), tasks)
        command = render_command(job.command, job.script)
        enforcement = self.memory_enforcement(job)
        script = job_script(
            command,
            job.workdir,
            job.conda_env,
            job.memory_mb,
            rlimit=enforcement == "rlimit",
            inherited=self.inherited,
        )
        return LaunchSpec(
            job.id,
            self.run_path(job),
            self.log_path(job),
            env,
            script,
            job.memory_mb,
            self.identity(job.uid),
            gpu_ids,
            self.cgroups.job_dir(job.id)
            if self.cgroups is not None and enforcement == "cgroup"
            else None,
            output=self.job_file(job, job.output),
            error=self.job_file(job, job.error),
            direct=execs(job.command, job.script, job.conda_env),
        )

    def job_file(self, job: Job, pattern: str | None) -> str | None:
        """The file a job's ``-o``/``-e`` pattern names (None: none given)."""
        if pattern is None:
            return None
        names = jobfiles.Names(job.id, job.name, job.user, job.group_id, job.task_id, self.host)
        return jobfiles.expand(pattern, names, job.workdir)

    def _task_range(self, group_id: int) -> jobenv.TaskRange | None:
        found = self._tasks_cache.get(group_id)
        if found is None:
            shape = self.store.task_range(group_id)
            if shape is None:
                return None
            found = jobenv.TaskRange(*shape)
            if len(self._tasks_cache) > 64:
                self._tasks_cache.clear()
            self._tasks_cache[group_id] = found
        return found

    def memory_enforcement(self, job: Job) -> str | None:
        """How ``job``'s ``--memory`` is enforced: ``cgroup`` (v2 ``memory.max``, for jobs
        that run as the daemon's own user) or ``rlimit`` (``ulimit -d``); None: no limit."""
        if not job.memory_mb:
            return None
        if self.cgroups is not None and self.known_identity(job.uid) is None:
            return "cgroup"
        return "rlimit"

    def known_identity(self, uid: int) -> RunAs | Literal[False] | None:
        """Who ``uid``'s jobs run as; False when the user no longer exists (``userdel``)."""
        try:
            return self.identity(uid)
        except KeyError:
            return False

    def _batch_env(self, batch_id: int) -> dict[str, str]:
        env = self._env_cache.get(batch_id)
        if env is None:
            env = self.store.batch_env(batch_id)
            if len(self._env_cache) > 64:
                self._env_cache.clear()
            self._env_cache[batch_id] = env
        return env

    # ------------------------------------------------------------ process events

    def job_started(
        self,
        job_id: int,
        pid: int | None,
        pid_start: int | None,
        now: float,
        started: float | None = None,
    ) -> None:
        """The job's process exists (``started``: when it began, if known before ``now``)."""
        self.jobs_started([Started(job_id, pid, pid_start, started)], now)

    def jobs_started(self, starts: list[Started], now: float) -> None:
        """Several processes exist: one transaction for all of them.

        Each job stays marked as launching until the change is committed, so a failed
        write can never make it look startable again.
        """
        waited_on = False
        with self.guarded():
            for st in starts:
                job = self.jobs.get(st.job_id)
                if job is None or job.state is not State.QUEUED:
                    continue
                waited_on = waited_on or st.job_id in self.children
                with self.isolated(st.job_id, now, pid=st.pid):
                    self._record_start(job, st, now)
        for st in starts:
            self.launching.pop(st.job_id, None)
        if waited_on:  # only an "after" dependent can have become startable
            self.schedule(now)

    def _record_start(self, job: Job, st: Started, now: float) -> None:
        began = st.started or now
        job = self.move(
            job,
            State.RUNNING,
            now,
            at=began,
            gpu_ids=self.launching.get(job.id, ()),
            pid=st.pid,
            pid_start=st.pid_start,
            executor=self.executor_name,
            memory_enforcement=self.memory_enforcement(job),
        )
        self.reasons.pop(job.id, None)
        self.arm_limits(job, began)
        if job.stop_intent is StopIntent.CANCEL:  # cancelled while it was being launched
            self.begin_stop(job, StopIntent.CANCEL, now)
        self.settle_dependents([job.id], now)

    def launch_failed(self, job_id: int, message: str, now: float) -> None:
        self.launching.pop(job_id, None)
        job = self.jobs.get(job_id)
        if job is None or job.state is not State.QUEUED:
            return
        with self.guarded(), self.isolated(job_id, now):
            self.move(job, State.CANCELLED, now, reason=Reason.system_error(message))
            self.settle_dependents([job_id], now)
        self.schedule(now)

    def job_exited(
        self, job_id: int, exit_code: int | None, now: float, end_time: float | None = None
    ) -> None:
        self.jobs_exited([Exited(job_id, exit_code, end_time)], now)

    def jobs_exited(self, exits: list[Exited], now: float) -> None:
        """Several processes ended: one transaction, then one scheduling pass."""
        unrecorded = [
            Started(e.job_id, None, None, None)
            for e in exits
            if e.job_id in self.launching
            and (job := self.jobs.get(e.job_id)) is not None
            and job.state is State.QUEUED
        ]
        if unrecorded:  # their start could not be recorded when they began
            self.jobs_started(unrecorded, now)
        with self.guarded():
            for e in exits:
                job = self.jobs.get(e.job_id)
                if job is not None and job.state is State.RUNNING:
                    with self.isolated(e.job_id, now):
                        self.finish(job, e.exit_code, now, e.end_time)
        self.schedule(now)

    def finish(self, job: Job, exit_code: int | None, now: float, end_time: float | None) -> None:
        state, reason = _outcome(job.stop_intent, exit_code)
        self.conclude(job, state, reason, exit_code, now, end_time)

    def conclude(
        self,
        job: Job,
        state: State,
        reason: str | None,
        exit_code: int | None,
        now: float,
        end_time: float | None,
        *,
        observed: bool = False,
    ) -> None:
        """A running job ended in ``state``: retry it if it asks for that, settle dependents."""
        # an unknown code is not taken for a failure: no retry, and no cascade (see judge)
        retry = self._retry_of(job, state, now) if reason is not Reason.EXIT_UNKNOWN else None
        final = self.move(
            job, state, now, reason=reason, exit_code=exit_code, at=end_time, observed=observed
        )
        if final.executor == SLURM:
            if retry is None:
                self.settle_dependents([job.id], now)
            return
        if final.executor == "tmux":
            self.keep_session(final, now)
        if retry is None:
            self.settle_dependents([job.id], now)

    def keep_session(self, job: Job, now: float) -> None:
        """Close an ended job's tmux session when it has been kept ``session_keep``
        seconds after the job's end (at once with ``--auto-close``)."""
        keep = 0.0 if job.auto_close or self.config.auto_close else self.config.session_keep
        ended = job.end_time if job.end_time is not None else now
        if ended + keep <= now:
            self.close_session(job)
        else:
            self.add_timer(ended + keep, Wake.CLOSE, job.id)

    def close_session(self, job: Job) -> None:
        run_as = self.known_identity(job.uid)
        if run_as is not False:
            self.outbox.append(CloseSession(job.id, run_as))

    def _retry_of(self, job: Job, state: State, now: float) -> Job | None:
        wants = state is State.FAILED or (state is State.TIMEOUT and job.retry_on_timeout)
        if not wants or job.attempt >= job.max_retries:
            return None
        new_id = self.store.next_job_id()
        retry = job.again(new_id, now, attempt=job.attempt + 1, retry_of=job.id)
        self.create([retry], now, why=lambda _: Reason.retry_of(job.id))
        self.repoint(job.id, new_id, now)
        return retry

    # ------------------------------------------------------------ GPUs

    def set_gpus(self, slots: tuple[GpuSlot, ...], now: float) -> None:
        if slots != self.gpu_slots:
            self.on_change(None)
        self.gpu_slots = slots
        self.schedule(now)


def _outcome(intent: StopIntent | None, exit_code: int | None) -> tuple[State, Reason | None]:
    """How a job whose process ended ends: as it was stopped, else by its exit code."""
    if intent is StopIntent.TIMEOUT:
        return State.TIMEOUT, Reason.TIME_LIMIT
    if intent is StopIntent.CANCEL:
        return State.CANCELLED, Reason.CANCELLED_BY_USER
    if exit_code == 0:
        return State.FINISHED, None
    return State.FAILED, None if exit_code is not None else Reason.EXIT_UNKNOWN


def _untimed(seconds: float) -> None:
    """Nobody times the scheduling passes."""


def _untold(job: Job, old: State | None, why: str | None, now: float) -> None:
    """Nobody listens to changes of state (an engine without a runtime)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:150]


def _unwatched(job_id: int | None) -> None:
    """Nobody watches the engine's changes (no dashboard is open)."""


def _view(job: Job) -> ParentView:
    unknown = job.state is State.FAILED and job.reason == Reason.EXIT_UNKNOWN
    return ParentView(job.state, job.start_time, job.end_time, unknown)


class _Guard:
    """``with engine.guarded():`` — one transaction; on failure memory is reloaded."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tx = engine.store.tx()
        self.mark = 0

    def __enter__(self) -> None:
        self.mark = len(self.engine.outbox)  # actions of earlier, committed changes stay
        self.tx.__enter__()

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        try:
            self.tx.__exit__(kind, exc, tb)  # type: ignore[arg-type]
        except StoreError:
            self._undo()
            raise
        if exc is not None:
            self._undo()

    def _undo(self) -> None:
        del self.engine.outbox[self.mark :]
        self.engine.load()


__all__ = [
    "Action",
    "Caller",
    "CloseSession",
    "Conflict",
    "Ended",
    "Engine",
    "Launch",
    "Signal",
    "Watch",
]
