"""The ``[mail]``, ``[notifications]`` and ``[metrics]`` tables of the configuration file.

Read when gflowd starts (and on ``gflowd reload``). A value of the wrong form stops the
start with one line that names the key and, where it helps, its line in the file: a
webhook whose ``url`` is not ``http://`` or ``https://`` is refused this way. Secrets
(the SMTP credentials, a webhook's HMAC key, the scraper's bearer token) live in files
of their own that only root or the daemon's user may read; a file others can read is
refused with a message that says how to fix it.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from gflow.addresses import is_address, is_http_url
from gflow.errors import GflowError, InvalidInput

EVENTS = (
    "job_submitted",
    "job_started",
    "job_completed",
    "job_failed",
    "job_cancelled",
    "job_timeout",
    "job_held",
    "job_released",
    "job_requeued",
    "gpu_available",
    "scheduler_online",
)
"""Every event a webhook can ask for."""
MAX_SECRET = 64 * 1024
SECURITY = ("none", "starttls", "tls")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host"})


class ConfigError(GflowError):
    """The configuration file holds something gflowd cannot use."""

    kind = "invalid"


@dataclass(frozen=True, slots=True)
class Webhook:
    """One ``[[notifications.webhooks]]`` entry."""

    url: str
    events: frozenset[str] = frozenset(EVENTS)
    users: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    headers: tuple[tuple[str, str], ...] = ()
    secret: bytes | None = None

    def wants(self, event: str, user: str | None, project: str | None) -> bool:
        """Whether this hook is told of ``event`` about a job of ``user`` in ``project``
        (events that are about no job pass the user and project filters)."""
        if event not in self.events:
            return False
        if self.users and user is not None and user not in self.users:
            return False
        return not (self.projects and user is not None and project not in self.projects)


@dataclass(frozen=True, slots=True)
class Mail:
    """The ``[mail]`` table: how gflowd reaches an SMTP server, and whom it writes to."""

    host: str | None = None
    port: int = 25
    security: str = "none"
    username: str | None = None
    password: str | None = None
    sender: str = ""
    domain: str | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    log_lines: int = 20

    def address_of(self, user: str) -> str | None:
        """The address of a user who gave no ``--mail-user``: from ``[mail.addresses]``,
        else ``user@domain``; None when the configuration names neither."""
        if user in self.addresses:
            return self.addresses[user]
        return f"{user}@{self.domain}" if self.domain else None


@dataclass(frozen=True, slots=True)
class Notifications:
    """Everything about notifications and metrics the configuration says."""

    webhooks: tuple[Webhook, ...] = ()
    mail: Mail = field(default_factory=Mail)
    retry_for: float = 86400.0
    retry_first: float = 5.0
    retry_max: float = 600.0
    timeout: float = 10.0
    job_urls: bool = True
    metrics: bool = True
    metrics_token: str | None = None
    host: str = field(default_factory=socket.gethostname)

    def webhook(self, url: str) -> Webhook | None:
        return next((w for w in self.webhooks if w.url == url), None)


# ------------------------------------------------------------ loading


def load(path: Path, daemon_uid: int | None = None) -> Notifications:
    """The notification settings of the configuration file at ``path`` (defaults if none)."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Notifications()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("config file", str(path), f"a readable file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("config file", str(path), f"valid TOML ({exc})") from None
    reader = _Reader(path, text, os.getuid() if daemon_uid is None else daemon_uid)
    return reader.notifications(data)


class _Reader:
    def __init__(self, path: Path, text: str, uid: int) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.uid = uid

    # ---------------------------------------------------------- tables

    def notifications(self, data: dict[str, Any]) -> Notifications:
        table = self._table(data, "notifications")
        mail = self.mail(self._table(data, "mail"))
        metrics = self._table(data, "metrics")
        known = {"webhooks", "retry_for", "retry_first", "retry_max", "timeout", "job_urls"}
        self._known("notifications", table, known)
        self._known("metrics", metrics, {"enabled", "bearer_token_file"})
        hooks = table.get("webhooks", [])
        if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
            self._fail("notifications.webhooks", hooks, "[[notifications.webhooks]] tables")
        token_file = metrics.get("bearer_token_file")
        return Notifications(
            webhooks=tuple(self.webhook(i, h) for i, h in enumerate(hooks)),
            mail=mail,
            retry_for=self._number("notifications", table, "retry_for", 86400.0, 1, 366 * 86400),
            retry_first=self._number("notifications", table, "retry_first", 5.0, 0.01, 86400),
            retry_max=self._number("notifications", table, "retry_max", 600.0, 0.01, 86400),
            timeout=self._number("notifications", table, "timeout", 10.0, 0.1, 600),
            job_urls=self._flag("notifications", table, "job_urls", True),
            metrics=self._flag("metrics", metrics, "enabled", True),
            metrics_token=None
            if token_file is None
            else self._secret("metrics.bearer_token_file", token_file).decode().strip(),
        )

    def webhook(self, index: int, raw: dict[str, Any]) -> Webhook:
        where = f"notifications.webhooks[{index + 1}]"
        self._known(where, raw, {"url", "events", "users", "projects", "headers", "secret_file"})
        url = raw.get("url")
        if not isinstance(url, str) or not is_http_url(url):
            self._fail(f"{where}.url", url, "an http:// or https:// URL", self._line(index, "url"))
        events = self._names(where, raw, "events", index)
        if events and "*" not in events:
            unknown = sorted(events - set(EVENTS))
            if unknown:
                self._fail(
                    f"{where}.events",
                    unknown[0],
                    f'some of {", ".join(EVENTS)} (or "*")',
                    self._line(index, "events"),
                )
        headers = raw.get("headers", {})
        if not isinstance(headers, dict):
            self._fail(f"{where}.headers", headers, "a table of header = value")
        for name, value in headers.items():
            ok_value = isinstance(value, str) and len(value) <= 4096 and value.isprintable()
            if not _HEADER_NAME.match(name) or name.lower() in _RESERVED_HEADERS or not ok_value:
                self._fail(
                    f"{where}.headers.{name}",
                    value,
                    "a header name (not Content-Type, Content-Length or Host) and one line",
                    self._line(index, "headers"),
                )
        secret = raw.get("secret_file")
        return Webhook(
            url=url,
            events=frozenset(EVENTS) if not events or "*" in events else frozenset(events),
            users=self._names(where, raw, "users", index),
            projects=self._names(where, raw, "projects", index),
            headers=tuple(sorted(headers.items())),
            secret=None if secret is None else self._secret(f"{where}.secret_file", secret),
        )

    def mail(self, raw: dict[str, Any]) -> Mail:
        known = {
            "host",
            "port",
            "security",
            "credentials_file",
            "from",
            "domain",
            "addresses",
            "timeout",
            "log_lines",
        }
        self._known("mail", raw, known)
        host = raw.get("host")
        if host is not None and (not isinstance(host, str) or not host.strip()):
            self._fail("mail.host", host, "a host name")
        security = raw.get("security", "none")
        if security not in SECURITY:
            self._fail("mail.security", security, " or ".join(SECURITY))
        addresses = raw.get("addresses", {})
        if not isinstance(addresses, dict) or not all(
            isinstance(v, str) and is_address(v) for v in addresses.values()
        ):
            self._fail("mail.addresses", addresses, 'a table of user = "address@host"')
        sender = raw.get("from", f"gflow@{socket.getfqdn()}")
        if not isinstance(sender, str) or not is_address(sender):
            self._fail("mail.from", sender, "an address such as gflow@lab.example.org")
        domain = raw.get("domain")
        if domain is not None and not (isinstance(domain, str) and is_address(f"x@{domain}")):
            self._fail("mail.domain", domain, "a domain such as lab.example.org")
        user, password = None, None
        if raw.get("credentials_file") is not None:
            user, password = self._credentials(raw["credentials_file"])
        default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
        return Mail(
            host=host,
            port=int(self._number("mail", raw, "port", default_port, 1, 65535)),
            security=security,
            username=user,
            password=password,
            sender=sender,
            domain=domain,
            addresses=dict(addresses),
            timeout=self._number("mail", raw, "timeout", 30.0, 0.1, 600),
            log_lines=int(self._number("mail", raw, "log_lines", 20, 0, 1000)),
        )

    # ---------------------------------------------------------- secrets

    def _credentials(self, name: Any) -> tuple[str, str]:
        lines = self._secret("mail.credentials_file", name).decode().splitlines()
        if len(lines) < 2 or not lines[0].strip():
            self._fail(
                "mail.credentials_file",
                name,
                "a file with the user name and the password on two lines",
            )
        return lines[0].strip(), lines[1]

    def _secret(self, key: str, name: Any) -> bytes:
        if not isinstance(name, str) or not name.startswith("/"):
            self._fail(key, name, "an absolute path")
        return read_secret(Path(name), self.uid, key)

    # ---------------------------------------------------------- values

    @staticmethod
    def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise InvalidInput(f"config {name}", repr(table)[:80], f"a [{name}] table")
        return table

    def _known(self, where: str, raw: dict[str, Any], keys: set[str]) -> None:
        for key in raw:
            if key not in keys:
                self._fail("key", f"{where}.{key}", f"one of {', '.join(sorted(keys))}")

    def _names(self, where: str, raw: dict[str, Any], key: str, index: int) -> frozenset[str]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail(f"{where}.{key}", value, "a list of names", self._line(index, key))
        return frozenset(value)

    def _number(
        self, where: str, raw: dict[str, Any], key: str, default: float, lo: float, hi: float
    ) -> float:
        value = raw.get(key, default)
        if type(value) not in (int, float) or not lo <= value <= hi:
            self._fail(f"{where}.{key}", value, f"a number from {lo:g} to {hi:g}")
        return float(value)

    def _flag(self, where: str, raw: dict[str, Any], key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self._fail(f"{where}.{key}", value, "true or false")
        return value

    def _line(self, index: int, key: str) -> int | None:
        """The line of ``key`` in the ``index``-th ``[[notifications.webhooks]]`` table."""
        header = re.compile(r"^\s*\[\[\s*notifications\s*\.\s*webhooks\s*\]\]")
        starts = [n for n, line in enumerate(self.lines) if header.match(line)]
        if index >= len(starts):
            return None
        pattern = re.compile(rf"^\s*(\"{key}\"|{key})\s*=|^\s*\[\s*notifications\.webhooks\.{key}")
        for n in range(starts[index] + 1, len(self.lines)):
            if self.lines[n].lstrip().startswith("["):
                if pattern.match(self.lines[n]):
                    return n + 1
                break
            if pattern.match(self.lines[n]):
                return n + 1
        return starts[index] + 1

    def _fail(self, key: str, value: Any, expected: str, line: int | None = None) -> NoReturn:
        where = f" ({self.path} line {line})" if line else f" ({self.path})"
        shown = value if isinstance(value, str) else repr(value)
        raise ConfigError(f"invalid config {key} {shown[:200]!r}{where}: expected {expected}")


def read_secret(path: Path, daemon_uid: int, key: str = "secret file") -> bytes:
    """The contents of a secret file that only root or the daemon's user can read.

    The file must be a regular file (not a symbolic link), owned by root or by
    ``daemon_uid``, with no permission for its group or others.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"config {key}: cannot open {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"config {key}: {path} is not a regular file")
        if info.st_uid not in (0, daemon_uid):
            raise ConfigError(
                f"config {key}: {path} belongs to uid {info.st_uid}; it must belong to "
                "root or to the user gflowd runs as"
            )
        if info.st_mode & 0o077:
            raise ConfigError(
                f"config {key}: {path} is readable by others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); make it private: chmod 600 {path}"
            )
        data = os.read(fd, MAX_SECRET + 1)
    finally:
        os.close(fd)
    if not data.strip() or len(data) > MAX_SECRET:
        raise ConfigError(f"config {key}: {path} must hold a secret of 1 to {MAX_SECRET} bytes")
    return data.strip()
