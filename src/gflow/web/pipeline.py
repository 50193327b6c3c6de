"""Which jobs a graph shows: a job's whole pipeline, or what is active now.

A pipeline is everything connected to a job by dependencies, in either direction
(parents, children, their other parents...). Parents are read from each job; children
from one scan of the jobs submitted since the oldest job found so far.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gflow.model import Job
from gflow.web.backend import Backend
from gflow.web.layout import Edge

MAX_NODES = 2000


@dataclass(frozen=True, slots=True)
class Graph:
    jobs: dict[int, Job]
    edges: tuple[Edge, ...]
    truncated: bool


def edges_of(job: Job) -> list[Edge]:
    """The job's incoming edges, labelled with the dependency type."""
    out = []
    for clause in job.deps.clauses:
        label = clause.type.value + (f"+{clause.delay // 60}m" if clause.delay else "")
        out += [Edge(p, job.id, label) for p in clause.parents]
    for clause in job.deps.on_pool:
        out += [Edge(p, job.id, f"on:{clause.type.value}") for p in clause.parents]
    return out


def _children_since(backend: Backend, first: int) -> dict[int, set[int]]:
    kids: dict[int, set[int]] = {}
    for job_id, raw in backend.store.with_deps_from(first):
        data = json.loads(raw)
        for key in ("clauses", "on_pool"):
            for clause in data.get(key, []):  # [type, parents, delay(, group)]
                for parent in clause[1]:
                    kids.setdefault(int(parent), set()).add(job_id)
    return kids


def component(backend: Backend, job_id: int, limit: int = MAX_NODES) -> Graph:
    """The pipeline ``job_id`` belongs to (at most ``limit`` jobs, nearest first)."""
    jobs: dict[int, Job] = {}
    frontier = [job_id]
    kids: dict[int, set[int]] = {}
    scanned_from: int | None = None
    truncated = False
    while frontier:
        found = backend.jobs([i for i in frontier if i not in jobs])
        if len(jobs) + len(found) > limit:
            found = dict(sorted(found.items())[: max(limit - len(jobs), 0)])
            truncated = True
        jobs.update(found)
        lowest = min(jobs, default=job_id)
        if scanned_from is None or lowest < scanned_from:
            kids, scanned_from = _children_since(backend, lowest), lowest
        nxt: set[int] = set()
        for job in found.values():
            nxt |= job.deps.parents()
            nxt |= kids.get(job.id, set())
        frontier = sorted(nxt - jobs.keys()) if not truncated else []
    return Graph(jobs, _edges(jobs), truncated)


def active(backend: Backend, limit: int = MAX_NODES) -> Graph:
    """Queued, held and running jobs, with the parents they wait for."""
    now = backend.active()
    truncated = len(now) > limit
    jobs = {j.id: j for j in now[:limit]}
    parents = {p for j in jobs.values() for p in j.deps.parents()} - jobs.keys()
    room = max(limit - len(jobs), 0)
    extra = backend.jobs(sorted(parents)[:room])
    truncated = truncated or len(parents) > room
    jobs.update(extra)
    return Graph(jobs, _edges(jobs), truncated)


def _edges(jobs: dict[int, Job]) -> tuple[Edge, ...]:
    return tuple(e for j in jobs.values() for e in edges_of(j) if e.parent in jobs)
