"""Sending the outbox: webhooks by HTTP POST, mail by SMTP, never in the scheduler's way.

Pending notifications are read from the database (at start-up: all of them, so what a
crash left undelivered is sent; afterwards: the rows added since), queued per target,
and sent in order, one at a time per target and many targets at once. A webhook POST
is an aiohttp request on the event loop; a mail is ``smtplib`` in a thread of its own.
A failed try is retried after a delay that doubles from ``retry_first`` up to
``retry_max``, until ``retry_for`` seconds after the change; then the row is marked
failed (``gctl notifications`` lists it and can try it again). A row is marked
delivered only after the receiver accepted it; outcomes are written in batches, so a
crash between the two sends that notification again (at least once, never never: the
``delivery`` id in the body lets a receiver drop a repeat).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

from gflow import __version__, notices
from gflow.errors import GflowError
from gflow.notifyconfig import Mail, Notifications
from gflow.store import Store

log = logging.getLogger("gflow.delivery")

MAX_AT_ONCE = 16
"""Deliveries in flight at once (each to a different target)."""
URLS_AT_ONCE = 8
"""Of those, to users' own ``--notify-url`` endpoints: the rest stay for the configured
webhooks and mail, however slow the users' endpoints are."""
USER_AT_ONCE = 4
"""Of those, to one user's endpoints: one user's slow URLs do not hold back the others'."""
KEEP_DELIVERED = 86400.0
KEEP_FAILED = 30 * 86400.0
LOG_BYTES = 64 * 1024
FLUSH_DELAY = 0.25
"""Seconds outcomes gather before they are written (a crash in between sends again)."""
YIELD_FOR = 1.0
"""Seconds new sends wait at most for launches in progress."""

Key = tuple[str, str, int | None]
"""A queue of deliveries: channel, target, and for a job's own URL the uid that gave it."""


class Hopeless(str):
    """Why a delivery can never succeed as things are configured (no retry: it fails now,
    and ``gctl notifications --retry`` tries it again once the configuration is fixed)."""


class Deliveries:
    def __init__(
        self,
        store: Store,
        conf: Notifications,
        logs_dir: Path,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.conf = conf
        self.logs_dir = logs_dir
        self.busy_elsewhere = busy
        """True while jobs are being launched: new sends wait (at most ``YIELD_FOR``), so
        the launching threads do not wait for the interpreter behind them."""
        self._yielding_since: float | None = None
        self.queues: dict[Key, list[tuple[int, float]]] = {}
        self.busy: set[Key] = set()
        self.last = 0
        self.delivered = 0
        self.sent: dict[str, int] = {}
        """Deliveries accepted, per channel (since start-up)."""
        self.tries_failed: dict[str, int] = {}
        """Tries that failed, per channel (since start-up)."""
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: list[tuple[int, int, float]] = []
        self._again: list[tuple[int, int, float, str]] = []
        self._failed: list[tuple[int, int, float, str]] = []
        self._flush_pending = False
        self._tries: dict[int, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._mailer: ThreadPoolExecutor | None = None
        self._closing = False

    # ------------------------------------------------------------ queueing

    def start(self) -> None:
        """Queue everything pending (what a crash or a stop left undelivered)."""
        with contextlib.suppress(GflowError):
            now = time.time()
            self.store.prune_notifications(now - KEEP_DELIVERED, now - KEEP_FAILED)
        self.wake()

    def wake(self) -> None:
        """Rows may have been added: queue them and send what is due."""
        self.add(self.store.pending_notifications(self.last))

    def add(self, rows: Sequence[tuple[int, str, str, float, int | None]]) -> None:
        for notice_id, channel, target, next_try, uid in rows:
            key = (channel, target, uid if channel == notices.URL else None)
            queue = self.queues.setdefault(key, [])
            if not any(i == notice_id for i, _ in queue):
                bisect.insort(queue, (notice_id, next_try))
            self.last = max(self.last, notice_id)
        self.dispatch()

    def dispatch(self) -> None:
        """Start every delivery that is due; arm one timer for the next."""
        if self._closing or self._yielding():
            return
        now = time.time()
        soonest: float | None = None
        for key, queue in list(self.queues.items()):
            if not queue:
                del self.queues[key]
                continue
            if key in self.busy:
                continue
            notice_id, when = queue[0]
            if when > now:
                soonest = when if soonest is None else min(soonest, when)
            elif len(self.busy) < MAX_AT_ONCE and self._room_for(key):
                self.busy.add(key)
                task = asyncio.ensure_future(self._deliver(key, notice_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._arm(soonest)

    def _room_for(self, key: Key) -> bool:
        """Whether a delivery to a user's own URL may start now (configured targets may
        whenever a slot is free)."""
        if key[0] != notices.URL:
            return True
        urls = [k for k in self.busy if k[0] == notices.URL]
        return len(urls) < URLS_AT_ONCE and sum(k[2] == key[2] for k in urls) < USER_AT_ONCE

    def _yielding(self) -> bool:
        """Whether to leave the interpreter to launches for now (the runtime dispatches
        again when they are done; a timer does after ``YIELD_FOR`` in any case)."""
        if not self.queues or not self.busy_elsewhere():
            self._yielding_since = None
            return False
        now = time.monotonic()
        if self._yielding_since is None:
            self._yielding_since = now
        if now - self._yielding_since >= YIELD_FOR:
            self._yielding_since = None
            return False
        self._arm(time.time() + YIELD_FOR)
        return True

    def _arm(self, when: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if when is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, when - time.time()) + 0.001, self.dispatch)

    # ------------------------------------------------------------ one delivery

    async def _deliver(self, key: Key, notice_id: int) -> None:
        try:
            row = self.store.notification(notice_id)
            if row is None or row["state"] != "pending" or _key_of(row) != key[:2]:
                self._pop(key, notice_id)
                return
            error = await self._send(row)
            self._settle(key, row, error)
        except Exception:  # the delivery loop's boundary: one row must not stop the rest
            log.exception("notification %s could not be sent", notice_id)
            self._pop(key, notice_id)
        finally:
            self.busy.discard(key)
            if not self._closing:
                self.dispatch()

    def _settle(self, key: Key, row: dict[str, Any], error: str | None) -> None:
        notice_id, channel, now = row["id"], row["channel"], time.time()
        attempts = self._tries.pop(notice_id, row["attempts"]) + 1
        if error is None:
            self._pop(key, notice_id)
            self._done.append((notice_id, attempts, now))
            self.sent[channel] = self.sent.get(channel, 0) + 1
        else:
            self.tries_failed[channel] = self.tries_failed.get(channel, 0) + 1
            target = _shown(row)
            if now >= row["deadline"] or isinstance(error, Hopeless):
                self._pop(key, notice_id)
                self._failed.append((notice_id, attempts, now, error))
                log.error(
                    "notification %s (%s to %s) given up after %d tries: %s",
                    *(notice_id, row["event"], target, attempts, error),
                )
            else:
                at = min(now + self._delay(attempts), row["deadline"])
                self._tries[notice_id] = attempts  # written a moment later (flush)
                self._replace(key, notice_id, at)
                self._again.append((notice_id, attempts, at, error))
                log.warning(
                    "notification %s (%s to %s) failed (%s); try %d in %.0f s",
                    *(notice_id, row["event"], target, error, attempts + 1, at - now),
                )
        self._flush_soon()

    def _delay(self, attempts: int) -> float:
        base = min(self.conf.retry_first * 2.0 ** min(attempts - 1, 30), self.conf.retry_max)
        return base * random.uniform(0.9, 1.0)

    def _pop(self, key: Key, notice_id: int) -> None:
        queue = self.queues.get(key, [])
        self.queues[key] = [entry for entry in queue if entry[0] != notice_id]

    def _replace(self, key: Key, notice_id: int, at: float) -> None:
        self._pop(key, notice_id)
        bisect.insort(self.queues[key], (notice_id, at))

    async def _send(self, row: dict[str, Any]) -> str | None:
        """None when the receiver took it, else why not."""
        data = json.loads(row["body"])
        data["delivery"] = row["id"]
        if row["channel"] == notices.MAIL:
            return await self._mail(row, data)
        return await self._post(row, data)

    # ------------------------------------------------------------ webhooks

    async def _post(self, row: dict[str, Any], data: dict[str, Any]) -> str | None:
        payload = json.dumps(data, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"gflow/{__version__}",
            "X-Gflow-Event": row["event"],
            "X-Gflow-Delivery": str(row["id"]),
        }
        if row["channel"] == notices.WEBHOOK:
            hook = self.conf.webhook(row["target"])
            if hook is None:
                return Hopeless("this webhook is no longer in the configuration")
            headers.update(hook.headers)
            if hook.secret:
                mac = hmac.new(hook.secret, payload, hashlib.sha256).hexdigest()
                headers["X-Gflow-Signature-256"] = f"sha256={mac}"
        try:
            session = self._http()
            timeout = aiohttp.ClientTimeout(total=self.conf.timeout)
            async with session.post(
                row["target"],
                data=payload,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                await resp.content.read(LOG_BYTES)
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status} {resp.reason or ''}".strip()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return _describe(exc)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_AT_ONCE), trust_env=True
            )
        return self._session

    # ------------------------------------------------------------ mail

    async def _mail(self, row: dict[str, Any], data: dict[str, Any]) -> str | None:
        mail = self.conf.mail
        if not mail.host:
            return Hopeless("mail is not set up on this machine ([mail] host in the configuration)")
        job_id = data["job"]["id"]
        log_path = self.logs_dir / f"{job_id}.log"
        tail = _tail(log_path, mail.log_lines) if data["event"] != "job_started" else ""
        subject, text = notices.mail_text(data, str(log_path), tail)
        if self._mailer is None:
            self._mailer = ThreadPoolExecutor(1, thread_name_prefix="gflow-mail")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._mailer, send_mail, mail, row["target"], subject, text
        )

    # ------------------------------------------------------------ outcomes

    def _flush_soon(self) -> None:
        """Outcomes are written together, a moment later: one commit for many deliveries
        keeps the disk's syncs off the scheduler's way."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write the outcomes gathered since the last flush, in one transaction."""
        self._flush_pending = False
        done, again, failed = self._done, self._again, self._failed
        if not (done or again or failed):
            return
        self._done, self._again, self._failed = [], [], []
        try:
            self.store.settle_notifications(done, again, failed)
        except GflowError as exc:  # kept: written with the next outcomes
            log.error("could not record notification outcomes: %s", exc.message)
            self._done, self._again, self._failed = done + self._done, again, failed
            return
        self.delivered += len(done)
        if self.delivered >= 256:
            self.delivered = 0
            with contextlib.suppress(GflowError):
                now = time.time()
                self.store.prune_notifications(now - KEEP_DELIVERED, now - KEEP_FAILED)

    async def close(self) -> None:
        """Stop sending (what is pending stays pending) and write the outcomes known."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.flush()
        if self._session is not None:
            await self._session.close()
        if self._mailer is not None:
            self._mailer.shutdown(wait=False, cancel_futures=True)

    def backlog(self) -> int:
        return sum(len(q) for q in self.queues.values())


def send_mail(mail: Mail, to: str, subject: str, text: str) -> str | None:
    """Send one mail (in a worker thread); None when the server took it, else why not."""
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["From"] = mail.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    assert mail.host is not None
    try:
        if mail.security == "tls":
            context = ssl.create_default_context()
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                mail.host, mail.port, timeout=mail.timeout, context=context
            )
        else:
            server = smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout)
        with server:
            if mail.security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if mail.username and mail.password is not None:
                server.login(mail.username, mail.password)
            server.send_message(msg)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return _describe(exc)
    return None


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a job's log (at most 64 KiB of it), never following a
    link."""
    if lines <= 0:
        return ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, LOG_BYTES, max(0, size - LOG_BYTES))
    except OSError:
        return ""
    finally:
        os.close(fd)
    text = data.decode("utf-8", "replace")
    kept = text.splitlines()[-lines:]
    return "\n".join("".join(c if c.isprintable() or c == "\t" else "?" for c in x) for x in kept)


def _shown(row: dict[str, Any]) -> str:
    """A target as the daemon log may show it: a URL without its path (which may hold a
    token), an address as is."""
    if row["channel"] == notices.MAIL:
        return str(row["target"])
    return notices.shown_url(row["target"])


def _key_of(row: dict[str, Any]) -> tuple[str, str]:
    return row["channel"], row["target"]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
