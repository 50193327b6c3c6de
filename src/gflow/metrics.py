"""Prometheus metrics of the daemon: ``GET /metrics``, in the text format.

Counters and histograms are fed by the engine's ``on_state`` listener (submissions,
starts, ends by final state, queue wait, run time, dependency release) and its
scheduling passes; gauges are read when scraped (jobs by state, user and project;
GPUs; memory; the notification backlog). Labels hold user names and projects, never
job names: on a shared machine ``gqueue -a`` already shows everyone's jobs by user and
project, so the labels tell a scraper nothing a local user cannot see, and their number
stays small.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as CounterMetric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

from gflow import __version__
from gflow.model import FINAL_STATES, Job, State

if TYPE_CHECKING:
    from gflow.host import Admin

MIB = 1024 * 1024
WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)
RUN_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
RELEASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PASS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    CONTENT_TYPE = CONTENT_TYPE_LATEST

    def __init__(self, rt: Admin) -> None:
        self.rt = rt
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.submitted = CounterMetric(
            "gflow_jobs_submitted", "Jobs created (submissions, retries, redos)", registry=r
        )
        self.started = CounterMetric("gflow_jobs_started", "Jobs that started", registry=r)
        self.ended = CounterMetric(
            "gflow_jobs_ended", "Jobs that ended, by final state", ["state"], registry=r
        )
        for state in FINAL_STATES:
            self.ended.labels(state.value)
        self.wait = Histogram(
            "gflow_job_queue_wait_seconds",
            "From submission to start",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.run = Histogram(
            "gflow_job_run_seconds", "From start to end", buckets=RUN_BUCKETS, registry=r
        )
        self.release = Histogram(
            "gflow_dependency_release_seconds",
            "From the parent event a job waited for (end, or start for after:) to its start",
            buckets=RELEASE_BUCKETS,
            registry=r,
        )
        self.passes = Histogram(
            "gflow_schedule_pass_seconds",
            "Time of one scheduling pass (deciding what starts)",
            buckets=PASS_BUCKETS,
            registry=r,
        )
        r.register(_Snapshot(rt))
        ProcessCollector(registry=r)

    def changed(self, job: Job, old: State | None, why: str | None, now: float) -> None:
        """The engine's ``on_state`` listener."""
        if old is None:
            self.submitted.inc()
        elif job.state is State.RUNNING:
            self.started.inc()
            start = job.start_time if job.start_time is not None else now
            self.wait.observe(max(0.0, start - job.submit_time))
            if not job.deps.is_empty:
                self._released(job, start)
        elif job.is_final:
            self.ended.labels(job.state.value).inc()
            if job.start_time is not None and job.end_time is not None:
                self.run.observe(max(0.0, job.end_time - job.start_time))

    def _released(self, job: Job, start: float) -> None:
        views = self.rt.engine.views(job.deps.parents())
        times = [
            t
            for view in views.values()
            for t in (view.end_time or view.start_time,)
            if t is not None and t <= start
        ]
        if times:
            self.release.observe(start - max(times))

    def scheduled(self, seconds: float) -> None:
        self.passes.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot:
    """Gauges read at scrape time from the engine, the GPUs and the outbox."""

    def __init__(self, rt: Admin) -> None:
        self.rt = rt

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        yield from self._gpus()
        yield from self._memory()
        yield from self._notifications()
        info = GaugeMetricFamily("gflow_info", "The running gflowd", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        up = GaugeMetricFamily("gflow_start_time_seconds", "When gflowd started")
        up.add_metric([], self.rt.started)
        yield up

    def _jobs(self) -> Iterator[Metric]:
        counts: Counter[tuple[str, str, str]] = Counter(
            (j.state.value, j.user, j.project or "") for j in self.rt.engine.jobs.values()
        )
        jobs = GaugeMetricFamily(
            "gflow_jobs",
            "Active jobs (Queued, Hold, Running) by state, user and project ('' for none)",
            labels=["state", "user", "project"],
        )
        for labels, n in sorted(counts.items()):
            jobs.add_metric(list(labels), n)
        yield jobs

    def _gpus(self) -> Iterator[Metric]:
        eng, snapshot = self.rt.engine, {g.index: g for g in self.rt.gpus.snapshot}
        held: Counter[int] = Counter(g for j in eng.holding() for g in j.gpu_ids)
        allocated = GaugeMetricFamily(
            "gflow_gpu_jobs", "gflow jobs holding each GPU", labels=["gpu"]
        )
        allowed = GaugeMetricFamily(
            "gflow_gpu_allowed", "1 if gflow may hand the GPU out", labels=["gpu"]
        )
        foreign = GaugeMetricFamily(
            "gflow_gpu_foreign_processes",
            "Processes gflow did not start on the GPU",
            labels=["gpu"],
        )
        total = GaugeMetricFamily("gflow_gpu_memory_total_bytes", "GPU memory", labels=["gpu"])
        used = GaugeMetricFamily(
            "gflow_gpu_memory_used_bytes", "GPU memory in use (NVML)", labels=["gpu"]
        )
        util = GaugeMetricFamily(
            "gflow_gpu_utilization_ratio", "GPU busy time, 0 to 1 (NVML)", labels=["gpu"]
        )
        for slot in eng.gpu_slots:
            gpu = [str(slot.index)]
            allocated.add_metric(gpu, held.get(slot.index, 0))
            allowed.add_metric(gpu, 1 if slot.allowed else 0)
            foreign.add_metric(gpu, len(slot.foreign_pids))
            total.add_metric(gpu, slot.total_mib * MIB)
            info = snapshot.get(slot.index)
            if info is not None:
                used.add_metric(gpu, info.memory_used_mib * MIB)
                if info.utilization is not None:
                    util.add_metric(gpu, info.utilization)
        yield from (allocated, allowed, foreign, total, used, util)

    def _memory(self) -> Iterator[Metric]:
        eng = self.rt.engine
        reserved = sum(j.memory_mb or 0 for j in eng.holding())
        held = GaugeMetricFamily(
            "gflow_memory_reserved_bytes", "Host memory held by running jobs' --memory"
        )
        held.add_metric([], reserved * MIB)
        yield held
        if eng.memory_mb is not None:
            limit = GaugeMetricFamily(
                "gflow_memory_limit_bytes", "Host memory gflow hands out to jobs"
            )
            limit.add_metric([], eng.memory_mb * MIB)
            yield limit

    def _notifications(self) -> Iterator[Metric]:
        counts = self.rt.engine.store.notification_counts()
        stored = GaugeMetricFamily(
            "gflow_notifications", "Notifications not delivered, by state", labels=["state"]
        )
        for state in ("pending", "failed"):
            stored.add_metric([state], counts.get(state, 0))
        yield stored
        deliveries = self.rt.deliveries
        sent = CounterMetricFamily(
            "gflow_notifications_delivered", "Notifications delivered", labels=["channel"]
        )
        failed = CounterMetricFamily(
            "gflow_notification_tries_failed", "Delivery tries that failed", labels=["channel"]
        )
        for channel in ("webhook", "url", "mail"):
            sent.add_metric([channel], deliveries.sent.get(channel, 0))
            failed.add_metric([channel], deliveries.tries_failed.get(channel, 0))
        yield sent
        yield failed
