"""Real receivers for notifications: an HTTP server and an SMTP server, in this process.

:class:`WebhookReceiver` answers each POST with the next status of a script (then 200),
or holds it until released; :class:`MailSink` is aiosmtpd, answering ``451`` to the
first ``refuse`` messages. Both record what they were sent.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Hit = dict[str, Any]


class WebhookReceiver:
    def __init__(self, statuses: list[int] | None = None, port: int = 0) -> None:
        self.statuses = list(statuses or [])
        self.hits: list[Hit] = []
        self.arrived = 0
        """POSTs read, answered or not (a held one is not answered yet)."""
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(size)
                receiver.arrived += 1
                receiver.hold.wait(60)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.hits.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "raw": raw,
                            "body": json.loads(raw),
                            "status": status,
                        }
                    )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender is gone (killed)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self, event: str | None = None, job: int | None = None) -> list[Hit]:
        """The deliveries answered with a 2xx, of this event and job if given."""
        with self.lock:
            hits = list(self.hits)
        return [
            h
            for h in hits
            if 200 <= h["status"] < 300
            and (event is None or h["body"]["event"] == event)
            and (job is None or h["body"].get("job", {}).get("id") == job)
        ]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailSink:
    """aiosmtpd on 127.0.0.1; ``refuse``: how many messages to answer ``451`` first;
    ``tls``: a certificate for 127.0.0.1, which makes the server ask for STARTTLS and then
    for ``login`` (user name, password) before it takes a message."""

    def __init__(
        self,
        refuse: int = 0,
        tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[dict[str, Any]] = []
        self.logins: list[str] = []
        self.refused = 0
        self.refuse = refuse
        sink = self

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            given = (data.login.decode(), data.password.decode())
            if given != login:
                return AuthResult(success=False, handled=False)
            sink.logins.append(given[0])
            return AuthResult(success=True)

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.refused < sink.refuse:
                    sink.refused += 1
                    return "451 4.3.0 try again later"
                from email import message_from_bytes, policy

                msg = message_from_bytes(envelope.content, policy=policy.default)
                body = msg.get_body(("plain",))
                sink.messages.append(
                    {
                        "from": envelope.mail_from,
                        "to": list(envelope.rcpt_tos),
                        "subject": str(msg["Subject"]),
                        "text": body.get_content() if body else "",
                        "tls": session.ssl is not None,
                    }
                )
                return "250 OK"

        secure: dict[str, Any] = {}
        if tls is not None:
            secure = {"tls_context": tls, "require_starttls": True}
            if login is not None:
                secure |= {"authenticator": authenticate, "auth_required": True}
        sessions: list[Any] = []
        self.sessions = sessions

        class Recording(Controller):
            def factory(self) -> Any:
                smtp = super().factory()  # type: ignore[no-untyped-call]
                sessions.append(smtp)
                return smtp

        self.port = free_port()
        self.controller = Recording(Handler(), hostname="127.0.0.1", port=self.port, **secure)
        self.controller.start()

    def close(self) -> None:
        """Hang up on every client first: aiosmtpd's stop closes its loop with them
        still open, and their sockets would be reported unclosed in a later test."""
        loop = self.controller.loop
        asyncio.run_coroutine_threadsafe(self._hang_up(), loop).result(10)
        self.controller.stop()

    async def _hang_up(self) -> None:
        for smtp in self.sessions:
            if smtp.transport is not None:
                smtp.transport.abort()
        for _ in range(3):  # the transports' connection_lost callbacks run
            await asyncio.sleep(0)
