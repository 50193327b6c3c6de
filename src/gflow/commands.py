"""User requests on the engine: submit, cancel, hold, release, update, redo.

Each validates everything first, then writes in one transaction, then re-plans.
A refused request changes nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from gflow import graph, quotas, slurmsync
from gflow.batch import Expansion, expand, random_name
from gflow.deps import Clause, Dependency, DepRequest
from gflow.engine import Caller, Engine
from gflow.errors import Conflict, Forbidden, InvalidInput, NotFound, Refused
from gflow.limits import MAX_DEP_EDGES
from gflow.model import Job, Reason, State, StopIntent, Wake
from gflow.parse import RecentRef, TaskRef, format_memory_mb, parse_id_list
from gflow.placement import SLURM
from gflow.protocol import SubmitRequest
from gflow.stats import summarize


@dataclass(slots=True)
class Outcome:
    """What a control request did, per job, for the client to print."""

    done: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"jobs": self.done, "errors": self.errors}


# ------------------------------------------------------------ who may change what runs

RUN_FIELDS = frozenset({"command", "script", "workdir", "conda_env", "env", "output", "error"})
"""Fields that decide what a job runs or where: changed by anyone but the job's owner
they would run that person's code as the owner (an administrator's as root)."""


def check_may_change_run(job: Job, fields: Iterable[str], caller: Caller) -> None:
    """Only the owner of ``job`` (or root) may change what it runs or where.

    The one check for every path that applies such a change to an existing job's
    request (``update``, ``redo`` and its ``--cascade``); administrators may cancel,
    hold, update and redo other users' jobs, but not put words in their mouths.
    """
    touched = sorted(RUN_FIELDS.intersection(fields))
    if touched and job.uid != caller.uid and caller.uid != 0:
        raise Forbidden(
            f"job {job.id} belongs to {job.user}: only they (or root) may change "
            f"what it runs or where ({', '.join(touched)})"
        )


# ------------------------------------------------------------ selectors


def select(
    engine: Engine,
    text: str,
    caller: Caller,
    *,
    missing: list[int] | None = None,
    whole_groups: bool = True,
) -> list[int]:
    """Job ids named by a selector (``1,3,5-7``, ``@``, ``12_3``; an array id = all tasks).

    ``missing``: ids that name no job are put there instead of being refused.
    ``whole_groups`` False: where one job is meant, an array's id (or ``@`` right after
    one) is its first task.
    """
    refs = parse_id_list(text)
    known = engine.get_many(r for r in refs if isinstance(r, int))  # one query per 500 ids
    ids: list[int] = []
    for ref in refs:
        if isinstance(ref, (RecentRef, TaskRef)):
            target = graph.resolve_ref(ref, caller.uid, engine, lead="")
            if whole_groups or target.group is None:
                ids.extend(target.ids)
            else:
                ids.append(target.group)
            continue
        job = known.get(ref)
        if job is None:
            if missing is None:
                raise NotFound(f"job {ref} not found")
            missing.append(ref)
            continue
        members = engine.group_members(ref) if whole_groups and job.group_id == ref else [ref]
        ids.extend(members if len(members) > 1 else [ref])
    if not ids:  # e.g. @ naming a submission none of whose jobs is left
        raise NotFound(f"no job matches {text!r}")
    return list(dict.fromkeys(ids))


# ------------------------------------------------------------ submit


def _check_resources(engine: Engine, req: SubmitRequest | Job) -> None:
    """Refuse a request that could never run here, whatever else ends: not left queued."""
    if req.shared and req.gpu_memory_mb is None:
        raise Refused(
            "--shared needs --gpu-memory SIZE: the GPU memory each job uses decides how "
            "many jobs share a card"
        )
    if req.shared and req.gpus == 0:
        raise Refused("--shared needs --gpus 1 or more: the GPUs the job shares with others")
    if engine.placement.check(req.run_on, req.project) == SLURM:
        return  # the cluster's nodes, not this machine, decide; Slurm refuses what never fits
    if req.gpus > 0:
        _check_gpus(engine, req.gpus, req.gpu_memory_mb)
    if (
        req.memory_mb is not None
        and engine.memory_mb is not None
        and req.memory_mb > engine.memory_mb
    ):
        raise Refused(
            f"--memory {format_memory_mb(req.memory_mb)} can never fit: gflow hands out "
            f"{format_memory_mb(engine.memory_mb)} of host memory to jobs"
        )


def _check_gpus(engine: Engine, gpus: int, gpu_memory_mb: int | None) -> None:
    total = len(engine.gpu_slots)
    if not total:
        raise Refused(f"--gpus {gpus} can never run: this machine has no GPUs gflow can use")
    allowed = [s for s in engine.gpu_slots if s.allowed]
    if gpus > len(allowed):
        where = (
            f"this machine has {total} GPU(s)"
            if len(allowed) == total
            else f"only {len(allowed)} of the {total} GPUs may be used (gctl show-gpus)"
        )
        raise Refused(f"--gpus {gpus} can never run: {where}")
    if gpu_memory_mb is None:
        return
    big = sum(s.total_mib >= gpu_memory_mb for s in allowed)
    if big < gpus:
        wanted = format_memory_mb(gpu_memory_mb)
        where = (
            f"the largest usable GPU has {format_memory_mb(max(s.total_mib for s in allowed))}"
            if not big
            else f"only {big} usable GPU(s) have that much"
        )
        raise Refused(f"--gpu-memory {wanted} on {gpus} GPU(s) can never fit: {where}")


def _check_quota(engine: Engine, user: str, project: str | None, adding: int) -> None:
    """Refuse jobs that would put the user or project over its ``max_queued_jobs``."""
    if engine.quotas:
        quotas.check_queued(engine.quotas, engine.waiting_jobs(), user, project, adding)


def _before_targets(engine: Engine, resolved: graph.Resolved, caller: Caller) -> list[Job]:
    targets = []
    for _, target_id in resolved.before:
        target = engine.require(target_id)
        graph.check_before_target(target, caller.uid, caller.admin)
        targets.append(target)
    return targets


def _build(
    engine: Engine,
    req: SubmitRequest,
    exp: Expansion,
    caller: Caller,
    first: int,
    batch: int,
    now: float,
) -> tuple[list[Job], graph.Resolved]:
    resolved = graph.resolve(req.dependency, caller.uid, engine, is_array=exp.is_group)
    parents = list(resolved.dependency.parents())
    links = (len(parents) + len(resolved.corr)) * len(exp.tasks)
    if links > MAX_DEP_EDGES:
        raise Refused(
            f"{len(exp.tasks)} jobs each waiting for {len(parents)} make {links} dependency "
            f"links; one submission may make at most {MAX_DEP_EDGES} (use aftercorr, or wait "
            "for fewer jobs)"
        )
    for target in _before_targets(engine, resolved, caller):
        if graph.find_path(parents, target.id, engine.parents_of) is not None:
            raise Refused(
                f"Circular dependency detected: Job {target.id} would wait for Job "
                f"{first}, which already waits for Job {target.id}"
            )

    def task_of(member: int) -> int | None:
        job = engine.job(member)
        return job.task_id if job else None

    group_id = first if exp.is_group else None
    state = State.HOLD if req.hold else State.QUEUED
    auto_close = req.auto_close if req.auto_close is not None else engine.config.auto_close
    jobs = []
    for offset, task in enumerate(exp.tasks):
        jobs.append(
            Job(
                id=first + offset,
                uid=caller.uid,
                user=caller.user,
                name=task.name,
                command=task.command,
                workdir=req.workdir,
                submit_time=now,
                batch_id=batch,
                state=state,
                reason=Reason.HELD if req.hold else None,
                script=req.script,
                gpus=req.gpus,
                shared=req.shared,
                gpu_memory_mb=req.gpu_memory_mb,
                memory_mb=req.memory_mb,
                time_limit=req.time_limit,
                signal=req.signal,
                output=req.output,
                error=req.error,
                cpus_per_task=req.cpus_per_task,
                priority=req.priority,
                begin_at=req.begin_at,
                conda_env=req.conda_env,
                project=req.project,
                run_on=engine.placement.site_for(req.run_on, req.project),
                auto_close=auto_close,
                deps=resolved.for_task(task.task_id, task_of),
                dep_text=req.dependency.text,
                group_id=group_id,
                task_id=task.task_id,
                params=task.params,
                max_retries=req.max_retries,
                retry_on_timeout=req.retry_on_timeout,
                mail_type=req.mail_type,
                mail_user=req.mail_user,
                notify_url=req.notify_url,
            )
        )
    return jobs, resolved


def submit(engine: Engine, req: SubmitRequest, caller: Caller, now: float) -> list[Job]:
    """Create the jobs of one ``gbatch`` call, all or none."""
    _check_resources(engine, req)
    first = engine.store.next_job_id()
    exp = expand(req, first)
    _check_quota(engine, caller.user, req.project, len(exp.tasks))
    batch = engine.store.next_batch_id()
    jobs, resolved = _build(engine, req, exp, caller, first, batch, now)
    if req.dry_run:
        return jobs
    with engine.guarded():
        engine.store.insert_batch(caller.uid, req.env, first, len(jobs), now, batch, req.command)
        engine.create(jobs, now)
        if exp.is_group and exp.max_concurrent:
            engine.set_group_limit(first, exp.max_concurrent)
        for kind, target_id in resolved.before:
            clause = Clause(kind, tuple(j.id for j in jobs), group=first if exp.is_group else None)
            engine.attach_pool_clause(engine.jobs[target_id], clause, now)
        for job_id in [j.id for j in jobs] + [t for _, t in resolved.before]:
            if engine.judge(job_id, now):
                engine.settle_dependents([job_id], now)
    engine.schedule(now)
    return [engine.job(j.id) or j for j in jobs]


# ------------------------------------------------------------ cancel


FATES = {
    "cancelled": ("would be cancelled", "cancelled too", " (DependencyFailed:{})"),
    "never": ("would never start", "can never start", " (DependencyNeverSatisfied: job {})"),
    "blocked": ("would never start", "can never start", " (waits on job {}, which never starts)"),
    "released": ("would be released", "released", " (its dependency on job {} is met)"),
}
"""What a cancel does to a waiting dependent: (in a dry run, done, why)."""


def cancel(
    engine: Engine, text: str, caller: Caller, now: float, *, dry_run: bool = False
) -> Outcome:
    """Cancel the selected jobs; every dependent whose fate that decides is reported too
    (``dependent``: cancelled in turn, stranded, or released), as ``--dry-run`` predicts."""
    out = Outcome()
    ids = select(engine, text, caller)
    jobs = [engine.require(i) for i in ids]
    for job in jobs:
        engine.check_owner(job, caller)
    impact = _dependents(engine, [j.id for j in jobs if j.is_active], now, dry_run)
    if dry_run:
        for job in jobs:
            verdict = "would cancel" if job.is_active else f"already {job.state.value}"
            out.done.append(
                {"id": job.id, "name": job.name, "state": job.state.value, "action": verdict}
            )
        out.done.extend(impact)
        return out
    with engine.guarded():
        cancelled: list[int] = []
        for job in jobs:
            out.done.append(_cancel_one(engine, job, now, cancelled))
        # every named job first, then the cascade: a dependent that was named too is
        # cancelled by the user, not reported as "already Cancelled" by its parent
        engine.settle_dependents(cancelled, now)
    engine.schedule(now)
    out.done.extend(impact)
    return out


def _dependents(
    engine: Engine, roots: list[int], now: float, dry_run: bool
) -> list[dict[str, Any]]:
    """The waiting jobs whose fate cancelling ``roots`` decides, as the client shows them."""
    found = []
    for fate in graph.cancel_impact(
        roots,
        lambda i: engine.children.get(i, ()),
        lambda i: engine.jobs[i].deps,
        engine.views,
        now,
    ):
        kid = engine.jobs[fate.job_id]
        would, did, why = FATES[fate.fate]
        action = (would if dry_run else did) + why.format(fate.because)
        if fate.at is not None:
            minutes = max(1, math.ceil((fate.at - now) / 60))
            action = (
                f"{would if dry_run else did} {minutes} min later (after:{fate.because}+{minutes})"
            )
        found.append(
            {
                "id": kid.id,
                "name": kid.name,
                "state": kid.state.value,
                "action": action,
                "fate": fate.fate,
                "because": fate.because,
                "dependent": True,
            }
        )
    return found


def _cancel_one(engine: Engine, job: Job, now: float, cancelled: list[int]) -> dict[str, Any]:
    info: dict[str, Any] = {"id": job.id, "name": job.name}
    current = engine.jobs.get(job.id)
    if current is None:
        info["action"] = f"already {job.state.value}"
        return info
    if current.state.is_waiting and job.id in engine.launching:
        engine.put(current.replace(stop_intent=StopIntent.CANCEL), current.state, now, event=False)
        info["action"] = "stopping"
    elif current.state.is_waiting:
        engine.move(current, State.CANCELLED, now, reason=Reason.CANCELLED_BY_USER)
        cancelled.append(job.id)
        info["action"] = "cancelled"
    else:
        engine.begin_stop(current, StopIntent.CANCEL, now)
        info["action"] = "stopping"
    return info


# ------------------------------------------------------------ hold and release


def hold(engine: Engine, text: str, caller: Caller, now: float) -> Outcome:
    out = Outcome()
    jobs = _owned_waiting(engine, text, caller, {State.QUEUED}, "held", out)
    with engine.guarded():
        for job in jobs:
            if job.id in engine.launching:
                raise Conflict(f"job {job.id} is starting and cannot be held")
            engine.move(job, State.HOLD, now, reason=Reason.HELD)
            out.done.append({"id": job.id, "name": job.name, "action": "held"})
    return out


def release(
    engine: Engine, text: str, caller: Caller, now: float, at: float | None = None
) -> Outcome:
    out = Outcome()
    jobs = _owned_waiting(engine, text, caller, {State.HOLD}, "released", out)
    with engine.guarded():
        for job in jobs:
            begin = at if at is not None else job.begin_at
            moved = engine.move(job, State.QUEUED, now, begin_at=begin)
            if at is not None:
                engine.add_timer(at, Wake.BEGIN, moved.id)
            if engine.judge(moved.id, now):
                engine.settle_dependents([moved.id], now)
            out.done.append(
                {"id": job.id, "name": job.name, "action": "released", "begin_at": begin}
            )
    engine.schedule(now)
    return out


def _owned_waiting(
    engine: Engine, text: str, caller: Caller, states: set[State], verb: str, out: Outcome
) -> list[Job]:
    """The selected jobs in ``states``; others are noted in ``out.errors`` (all bad: refused)."""
    jobs = [engine.require(i) for i in select(engine, text, caller)]
    eligible = []
    for job in jobs:
        engine.check_owner(job, caller)
        current = engine.jobs.get(job.id, job)
        if current.state in states:
            eligible.append(current)
        else:
            allowed = " or ".join(s.value for s in sorted(states))
            out.errors.append(
                f"job {job.id} is {current.state.value}; only {allowed} jobs can be {verb}"
            )
    if not eligible:
        raise Conflict(out.errors[0])
    return eligible


# ------------------------------------------------------------ update


def update(
    engine: Engine,
    text: str,
    changes: dict[str, Any],
    caller: Caller,
    now: float,
    *,
    clear_deps: bool = False,
    dry_run: bool = False,
) -> Outcome:
    """Change waiting jobs, all checks first; ``clear_deps``: they no longer wait for any
    job; ``dry_run``: only say what would change (the same checks, the same refusals,
    nothing stored)."""
    if clear_deps:
        if "dependency" in changes and changes["dependency"].sets_dependency:
            raise InvalidInput(
                "--clear-deps", "with a dependency", "either --clear-deps or a new dependency"
            )
        given = changes.get("dependency", DepRequest())
        changes = {**changes, "dependency": given.merge(DepRequest(texts=("",)))}
    out = Outcome()
    jobs = _owned_waiting(engine, text, caller, {State.QUEUED, State.HOLD}, "updated", out)
    updated: list[Job] = []
    for job in jobs:
        if job.id in engine.launching:
            raise Conflict(f"job {job.id} is starting and cannot be updated")
        check_may_change_run(job, changes, caller)
        fields = {k: v for k, v in changes.items() if k != "dependency"}
        if "name" in fields and not (fields["name"] or "").strip():
            fields["name"] = random_name()
        new = job.replace(**fields)
        if "dependency" in changes:
            new = _new_deps(engine, new, changes["dependency"], caller)
        _check_resources(engine, new)
        updated.append(new)
    if dry_run:
        out.done = [
            {"id": n.id, "name": n.name, "action": "would update", "fields": sorted(changes)}
            for n in updated
        ]
        return out
    with engine.guarded():
        for new in updated:
            saved = engine.put(
                new.replace(reason=None if Reason.awaits_user(new.reason) else new.reason),
                new.state,
                now,
                event=False,
            )
            engine.withdraw(saved, now)  # a job already in Slurm is submitted again as updated
            engine.evals.pop(new.id, None)
            if engine.judge(new.id, now):
                engine.settle_dependents([new.id], now)
            if new.begin_at is not None:
                engine.add_timer(new.begin_at, Wake.BEGIN, new.id)
            out.done.append(
                {"id": new.id, "name": new.name, "action": "updated", "fields": sorted(changes)}
            )
    engine.schedule(now)
    return out


def _new_deps(engine: Engine, job: Job, req: DepRequest, caller: Caller) -> Job:
    """``job`` with the dependency ``req`` sets. What ``req`` does not say stays as it was:
    auto-cancel, and the ``on:N`` count with the releases ``before*`` jobs attached. An
    empty dependency (``-d ''``, ``-d 0``, ``--clear-deps``) clears it all."""
    auto = job.deps.auto_cancel if req.auto_cancel is None else req.auto_cancel
    if not req.sets_dependency:
        return job.replace(deps=replace(job.deps, auto_cancel=auto))
    if req.is_empty:
        return job.replace(deps=Dependency(auto_cancel=auto), dep_text=None)
    resolved = graph.resolve(req, caller.uid, engine)
    if resolved.corr or resolved.before:
        raise InvalidInput(
            "dependency",
            req.text or "",
            "after* or Slurm clauses (aftercorr and before* only at submission)",
        )
    graph.check_cycle(job.id, sorted(resolved.dependency.parents()), engine.parents_of)
    deps = replace(
        resolved.dependency,
        on_count=req.on_count or job.deps.on_count,
        on_pool=job.deps.on_pool,
        auto_cancel=auto,
    )
    return job.replace(deps=deps, dep_text=req.text)


# ------------------------------------------------------------ redo


def redo(
    engine: Engine,
    job_id: int,
    overrides: dict[str, Any],
    caller: Caller,
    now: float,
    *,
    cascade: bool = False,
    clear_deps: bool = False,
    again: bool = False,
) -> Outcome:
    """Submit a job again (a new id), optionally with the jobs its failure cancelled.

    A task of an array or sweep stays one (its task id, array id and parameters). A
    ``cascade`` over jobs already redone is refused, naming them, unless ``again``.
    """
    old = engine.require(job_id)
    engine.check_owner(old, caller)
    check_may_change_run(old, overrides, caller)
    if old.is_active:
        raise Conflict(
            f"job {job_id} is {old.state.value}; only finished jobs can be redone "
            "(use gjob update for waiting jobs)"
        )
    chain = [old]
    if cascade:
        chain += cancelled_by(engine, old.id, caller)
        if not again:
            _refuse_redone(engine, chain)
    first = engine.store.next_job_id()
    mapping = {src.id: first + offset for offset, src in enumerate(chain)}
    new_jobs: list[Job] = []
    for src in chain:
        new_id = mapping[src.id]
        deps = Dependency() if (clear_deps and src is old) else src.deps.replace_parents(mapping)
        new = src.again(new_id, now, deps=deps, redo_of=src.id)
        if src is old and overrides:
            new = new.replace(**{k: v for k, v in overrides.items() if k != "dependency"})
            if "dependency" in overrides:
                new = _new_deps(engine, new, overrides["dependency"], caller)
            _check_resources(engine, new)
        new_jobs.append(new)
    if engine.quotas:
        owners = Counter((j.user, j.project) for j in new_jobs)
        for (user, project), count in owners.items():
            _check_quota(engine, user, project, count)
    out = Outcome()
    with engine.guarded():
        env = engine.store.batch_env(old.batch_id)
        batch = engine.store.insert_batch(caller.uid, env, first, 1, now, None, new_jobs[0].command)
        new_jobs = [j.replace(batch_id=batch) if j.id == first else j for j in new_jobs]
        engine.create(new_jobs, now, why=lambda j: Reason.redo_of(j.redo_of or 0))
        if cascade:  # jobs still waiting on a redone one (--no-auto-cancel) follow it
            for src_id, new_id in mapping.items():
                engine.repoint(src_id, new_id, now, owner=None if caller.admin else caller.uid)
        for job in new_jobs:
            if engine.judge(job.id, now):
                engine.settle_dependents([job.id], now)
            out.done.append({"id": job.id, "name": job.name, "redo_of": job.redo_of})
    engine.schedule(now)
    return out


def _refuse_redone(engine: Engine, chain: list[Job]) -> None:
    """A cascade whose jobs were redone already would make a second set of them."""
    done = engine.store.redone([job.id for job in chain])
    if not done:
        return
    pairs = [f"job {old} as job {new}" for old, new in sorted(done.items())]
    shown = ", ".join(pairs[:5]) + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "")
    raise Conflict(
        f"already redone: {shown}; nothing was submitted "
        f"(gjob redo {chain[0].id} --cascade --again makes another set)"
    )


def cancelled_by(engine: Engine, root: int, caller: Caller) -> list[Job]:
    """The caller's jobs auto-cancelled because of ``root``, transitively, in dependency order.

    Another user's dependent is never re-created (it would run as that user).
    """
    found: dict[int, Job] = {root: engine.require(root)}
    level = [root]
    while level:  # one query per level of the graph: linear in the jobs found
        reasons = {Reason.dependency_failed(p): p for p in level}
        children: dict[int, list[Job]] = {p: [] for p in level}
        for child in engine.store.cancelled_because(list(reasons)):
            if child.uid == caller.uid or caller.admin:
                children[reasons[child.reason or ""]].append(child)
        level = []
        for parent in reasons.values():
            for child in children[parent]:
                if child.id not in found:
                    found[child.id] = child
                    level.append(child.id)
    del found[root]
    return list(found.values())


# ------------------------------------------------------------ limits, history, statistics


def set_limit(
    engine: Engine, job_id: int, limit: int, caller: Caller, now: float
) -> dict[str, Any]:
    """``gctl set-limit``: at most ``limit`` running jobs of the array or sweep ``job_id``
    belongs to (0: no limit)."""
    job = engine.require(job_id)
    engine.check_owner(job, caller)
    if job.group_id is None:
        raise InvalidInput("job", str(job_id), "a job that belongs to an array or sweep")
    with engine.guarded():
        engine.set_group_limit(job.group_id, limit or None)
    slurmsync.throttle(engine, job.group_id, limit)
    engine.schedule(now)
    members = engine.group_members(job.group_id)
    return {"group": job.group_id, "limit": limit or None, "jobs": len(members)}


def prune(engine: Engine, before: float) -> int:
    """Forget ended jobs that ended before ``before``, except the parents waiting jobs
    still judge their dependencies by; how many were removed."""
    return engine.store.prune(before, engine.children)


def stats(engine: Engine, uids: tuple[int, ...], since: float | None, now: float) -> dict[str, Any]:
    """``gstats``: totals, waits, run times and GPU-hours of these users' jobs."""
    summary = summarize(engine.store.stats_rows(uids, since), now)
    summary["since"] = since
    return summary
