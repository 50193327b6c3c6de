"""What a change of state tells whom: events, their targets, and what they say.

Pure: a change (a job, its old state, why) becomes :class:`Notice` values, one per
target — a configured webhook, the job's own ``--notify-url``, its ``--mail-user`` —
that :mod:`gflow.notifier` writes to the outbox in the same transaction. The words of
a webhook's ``text`` and of a mail are made here too.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gflow.model import Job, State
from gflow.parse import format_duration

if TYPE_CHECKING:
    from gflow.notifyconfig import Notifications

WEBHOOK = "webhook"
URL = "url"
MAIL = "mail"

_ENDED = {
    State.FINISHED: "job_completed",
    State.FAILED: "job_failed",
    State.CANCELLED: "job_cancelled",
    State.TIMEOUT: "job_timeout",
}
MAIL_TYPES_OF = {
    "job_started": {"BEGIN"},
    "job_completed": {"END"},
    "job_cancelled": {"END"},
    "job_failed": {"END", "FAIL"},
    "job_timeout": {"END", "FAIL", "TIMEOUT"},
    "job_requeued": {"REQUEUE"},
}
"""Which ``--mail-type`` values ask for a mail about each event."""
_VERBS = {
    "job_submitted": "was submitted",
    "job_requeued": "was queued again after a failure",
    "job_started": "started",
    "job_held": "was held",
    "job_released": "was released",
    "job_completed": "finished",
    "job_failed": "failed",
    "job_cancelled": "was cancelled",
    "job_timeout": "reached its time limit",
}
_SLURM_WORDS = {
    "job_started": "Began",
    "job_completed": "Ended",
    "job_cancelled": "Ended",
    "job_failed": "Failed",
    "job_timeout": "Failed",
    "job_requeued": "Requeued",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One delivery to make: ``error`` set means it can never be made (it is listed as
    failed, so the user sees why)."""

    event: str
    job_id: int | None
    uid: int | None
    channel: str
    target: str
    body: dict[str, Any]
    error: str | None = None


def event_of(job: Job, old: State | None, why: str | None) -> str | None:
    """The event a change of ``job`` from ``old`` is, or None (no event is told of it)."""
    if old is None:
        return "job_requeued" if job.retry_of is not None else "job_submitted"
    if job.state in _ENDED:
        return _ENDED[job.state]
    if job.state is State.RUNNING:
        return "job_started"
    if job.state is State.HOLD:
        return "job_held"
    if job.state is State.QUEUED and old is State.HOLD:
        return "job_released"
    return None


def job_fields(job: Job) -> dict[str, Any]:
    """What a notification says about a job: no command, environment or paths."""
    ran = job.end_time - job.start_time if job.start_time and job.end_time else None
    waited = job.start_time - job.submit_time if job.start_time else None
    return {
        "id": job.id,
        "name": job.name,
        "user": job.user,
        "project": job.project,
        "state": job.state.value,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "submit_time": job.submit_time,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "wait_seconds": waited,
        "run_seconds": ran,
        "gpus": list(job.gpu_ids),
        "array_id": job.group_id,
        "task_id": job.task_id,
        "attempt": job.attempt,
        "retry_of": job.retry_of,
    }


def body(event: str, now: float, host: str, **fields: Any) -> dict[str, Any]:
    """A notification's JSON: event, time, host, what it is about, and a ``text`` line
    (with ``content``, its copy for Discord) that chat webhooks show as is."""
    data: dict[str, Any] = {
        "event": event,
        "time": now,
        "time_iso": _iso(now),
        "host": host,
        **fields,
    }
    line = text_of(data)
    data["text"] = line
    data["content"] = line
    return data


def text_of(data: dict[str, Any]) -> str:
    """One line for people: ``gflow@box: job 12 (train, alice) failed (exit code 1) after
    3m 12s. More: gjob show 12``."""
    event, host = data["event"], data["host"]
    if event == "scheduler_online":
        return f"gflow@{host}: the scheduler is online (gflowd {data.get('version', '')})"
    if event == "gpu_available":
        gpus = ", ".join(map(str, data.get("gpus", [])))
        return f"gflow@{host}: GPU {gpus} free"
    job = data["job"]
    what = f"job {job['id']} ({job['name']}, {job['user']}) {_VERBS.get(event, event)}"
    if event == "job_failed" and job.get("exit_code") is not None:
        what += f" (exit code {job['exit_code']})"
    elif event in ("job_failed", "job_cancelled") and job.get("reason"):
        what += f" ({job['reason']})"
    if event in ("job_completed", "job_failed", "job_timeout") and job.get("run_seconds"):
        what += f" after {format_duration(job['run_seconds'])}"
    return f"gflow@{host}: {what}. More: gjob show {job['id']}"


def for_change(
    job: Job, old: State | None, why: str | None, now: float, conf: Notifications
) -> list[Notice]:
    """Every notification a change of ``job``'s state makes."""
    event = event_of(job, old, why)
    if event is None:
        return []
    data = body(event, now, conf.host, job=job_fields(job))
    out = [
        Notice(event, job.id, job.uid, WEBHOOK, hook.url, data)
        for hook in conf.webhooks
        if hook.wants(event, job.user, job.project)
    ]
    if job.notify_url:
        off = None if conf.job_urls else "per-job URLs are turned off ([notifications] job_urls)"
        out.append(Notice(event, job.id, job.uid, URL, job.notify_url, data, off))
    if job.mail_type and MAIL_TYPES_OF.get(event, set()) & set(job.mail_type.split(",")):
        out.append(_mail(job, event, data, conf))
    return out


def _mail(job: Job, event: str, data: dict[str, Any], conf: Notifications) -> Notice:
    mail = conf.mail
    given = job.mail_user
    address = given if given and "@" in given else mail.address_of(given or job.user)
    error = None
    if not mail.host:
        error = "mail is not set up on this machine ([mail] host in the configuration)"
    elif address is None:
        error = f"no mail address for {given or job.user}: use --mail-user or set [mail] domain"
    return Notice(event, job.id, job.uid, MAIL, address or (given or job.user), data, error)


def for_system(event: str, now: float, conf: Notifications, **fields: Any) -> list[Notice]:
    """The webhooks' notifications of an event about no job (``gpu_available``,
    ``scheduler_online``)."""
    data = body(event, now, conf.host, **fields)
    return [
        Notice(event, None, None, WEBHOOK, hook.url, data)
        for hook in conf.webhooks
        if hook.wants(event, None, None)
    ]


def mail_text(data: dict[str, Any], log_name: str, log_tail: str) -> tuple[str, str]:
    """The subject and text of a job's mail, Slurm-like: what happened, how, the last lines
    of its log, and the command that shows more."""
    job, event = data["job"], data["event"]
    word = _SLURM_WORDS.get(event, event)
    if event == "job_started":
        how = f"Queued time {_clock(job.get('wait_seconds'))}"
    else:
        how = f"Run time {_clock(job.get('run_seconds'))}, {job['state'].upper()}"
        if job.get("exit_code") is not None:
            how += f", ExitCode {job['exit_code']}"
    subject = f"gflow Job_id={job['id']} Name={job['name']} {word}, {how}"
    lines = [
        f"{data['text']}",
        "",
        f"Job:        {job['id']} ({job['name']})",
        f"User:       {job['user']}" + (f", project {job['project']}" if job["project"] else ""),
        f"Host:       {data['host']}",
        f"State:      {job['state']}" + (f" ({job['reason']})" if job.get("reason") else ""),
        f"Exit code:  {'-' if job.get('exit_code') is None else job['exit_code']}",
        f"Submitted:  {_iso(job['submit_time'])}",
        f"Started:    {_iso(job['start_time']) if job.get('start_time') else '-'}",
        f"Ended:      {_iso(job['end_time']) if job.get('end_time') else '-'}",
        f"Run time:   {_clock(job.get('run_seconds'))}",
    ]
    if log_tail:
        lines += ["", f"Last lines of its log ({log_name}):", "", log_tail.rstrip("\n")]
    lines += ["", f"More: gjob show {job['id']}    gjob log {job['id']}", ""]
    return subject, "\n".join(lines)


def shown_url(url: str) -> str:
    """A URL as a listing or a log may show it: without its path, which may hold a token
    (a chat webhook's secret), nor a user name or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def _clock(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _iso(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="seconds")
