"""Mail and webhooks, delivered to real receivers; an outbox that a kill -9 cannot empty."""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

import gflow
from gflow.delivery import MAX_AT_ONCE, USER_AT_ONCE
from tests.e2e.receivers import MailSink, WebhookReceiver, free_port
from tests.helpers import Gflow

FAST = "[notifications]\nretry_first = 0.05\nretry_max = 0.2\n"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def sink() -> Iterator[MailSink]:
    s = MailSink()
    yield s
    s.close()


def secret_file(g: Gflow, value: str = "s3cret", mode: int = 0o600) -> Path:
    path = g.home / "hook.secret"
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def configure(g: Gflow, text: str) -> None:
    (g.home / "gflow.toml").write_text(text)


def webhook(url: str, events: str = '"*"', extra: str = "") -> str:
    return f'[[notifications.webhooks]]\nurl = "{url}"\nevents = [{events}]\n{extra}'


def notices(g: Gflow, job: int | None = None) -> list[dict[str, object]]:
    db = g.db()
    try:
        rows = db.execute(
            "SELECT id, event, job_id, channel, state, attempts, last_error FROM notifications"
            + ("" if job is None else f" WHERE job_id = {int(job)}")
            + " ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    keys = ("id", "event", "job", "channel", "state", "attempts", "error")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_a_webhook_retried_after_500s_is_accepted_once_signed(
    make_gflow: Callable[..., Gflow], receiver: WebhookReceiver
) -> None:
    g = make_gflow()
    secret = secret_file(g)
    configure(
        g,
        FAST
        + webhook(
            receiver.url,
            '"job_failed", "job_completed"',
            f'secret_file = "{secret}"\nheaders = {{ X-Team = "vision" }}\n',
        ),
    )
    receiver.statuses = [500, 500, 500]
    g.start()
    bad = g.submit("--name", "broken", "sh", "-c", "exit 3")
    g.until(lambda: receiver.accepted("job_failed", bad), what="the failure to be delivered")
    good = g.submit("--name", "fine", "true")
    g.until(lambda: receiver.accepted("job_completed", good), what="the success to be delivered")

    tries = [h for h in receiver.hits if h["body"].get("job", {}).get("id") == bad]
    assert [h["status"] for h in tries] == [500, 500, 500, 200]
    assert len({h["headers"]["x-gflow-delivery"] for h in tries}) == 1
    hit = receiver.accepted("job_failed", bad)[0]
    mac = hmac.new(b"s3cret", hit["raw"], hashlib.sha256).hexdigest()
    assert hit["headers"]["x-gflow-signature-256"] == f"sha256={mac}"
    assert hit["headers"]["x-team"] == "vision"
    assert hit["headers"]["x-gflow-event"] == "job_failed"
    body = hit["body"]
    assert body["job"]["name"] == "broken" and body["job"]["exit_code"] == 3
    assert body["job"]["state"] == "Failed" and body["host"]
    assert f"job {bad} (broken" in body["text"] and "exit code 3" in body["text"]
    assert body["content"] == body["text"]
    g.until(lambda: [n["state"] for n in notices(g, bad)] == ["delivered"], what="marked")
    assert notices(g, bad)[0]["attempts"] == 4


def test_a_notification_outlives_a_kill_9_between_the_change_and_its_delivery(
    make_gflow: Callable[..., Gflow], receiver: WebhookReceiver
) -> None:
    g = make_gflow()
    configure(g, FAST + webhook(receiver.url, '"job_completed"'))
    g.start()
    receiver.hold.clear()  # the first POST is held: the change is committed, not delivered
    job = g.submit("true")
    g.until(lambda: receiver.arrived, what="the POST")
    g.until_state(job, "Finished")
    assert [n["state"] for n in notices(g, job)] == ["pending"]
    g.kill9()
    receiver.hold.set()
    g.start()
    g.until(lambda: receiver.accepted("job_completed", job), what="delivery after the restart")
    g.until(lambda: [n["state"] for n in notices(g, job)] == ["delivered"], what="marked")
    assert len({h["headers"]["x-gflow-delivery"] for h in receiver.accepted()}) == 1


def test_mail_on_failure_only_and_a_busy_server_is_tried_again(
    make_gflow: Callable[..., Gflow], sink: MailSink
) -> None:
    g = make_gflow()
    mail = f'[mail]\nhost = "127.0.0.1"\nport = {sink.port}\nfrom = "gflow@box.test"\n'
    configure(g, FAST + mail)
    sink.refuse = 2
    g.start()
    fine = g.submit("--mail-type=FAIL", "--mail-user=ana@lab.test", "true")
    bad = g.submit(
        "--name", "train", "--mail-type", "FAIL", "--mail-user", "ana@lab.test",
        "sh", "-c", "echo step 1; echo loss is nan; exit 4",
    )  # fmt: skip
    g.until(lambda: sink.messages, timeout=60, what="the mail")
    g.until_state(fine, "Finished")
    assert notices(g, fine) == []
    [mail] = sink.messages
    assert mail["to"] == ["ana@lab.test"] and mail["from"] == "gflow@box.test"
    assert f"Job_id={bad} Name=train Failed" in mail["subject"]
    assert "ExitCode 4" in mail["subject"]
    assert "loss is nan" in mail["text"] and f"gjob show {bad}" in mail["text"]
    g.until(lambda: notices(g, bad)[0]["state"] == "delivered", what="the mail marked")
    assert notices(g, bad)[0]["attempts"] == 3


def test_unreachable_receivers_are_retried_listed_and_retried_by_hand(
    make_gflow: Callable[..., Gflow], receiver: WebhookReceiver
) -> None:
    g = make_gflow()
    configure(
        g,
        "[notifications]\nretry_first = 0.05\nretry_max = 0.1\nretry_for = 1\n"
        + webhook("http://127.0.0.1:9/closed", '"job_completed"')
        + '[mail]\nhost = "127.0.0.1"\nport = 9\n',
    )
    g.start()
    receiver.statuses = [503] * 1000
    job = g.submit("--mail-type", "END", "--mail-user", "bo@lab.test", "--notify-url",
                   receiver.url, "true")  # fmt: skip
    g.until(
        lambda: len(notices(g, job)) == 5 and {n["state"] for n in notices(g, job)} == {"failed"},
        timeout=60,
        what="the deliveries to be given up",
    )
    shown = g.run("gctl", "notifications", "--failed").stdout
    assert "webhook http://127.0.0.1:9/…" in shown and "mail bo@lab.test" in shown
    assert "url http://127.0.0.1:" in shown and "/hook" not in shown
    assert "HTTP 503" in shown and "Error" in shown
    logged = (g.home / "gflowd.log").read_text()
    assert "failed (" in logged and "given up after" in logged
    assert "/closed" not in logged and "/hook" not in logged  # a URL's path may be a token
    assert g.run("gqueue").returncode == 0  # the daemon never fell over
    receiver.statuses = []
    retried = g.run("gctl", "notifications", "--retry", "all").stdout
    assert retried.startswith("Retrying 5 notification(s)")
    g.until(lambda: receiver.accepted("job_completed", job), what="the retried delivery")


def test_a_receiver_that_is_down_gets_the_delivery_once_it_is_up(
    make_gflow: Callable[..., Gflow],
) -> None:
    port = free_port()
    g = make_gflow()
    configure(g, FAST + webhook(f"http://127.0.0.1:{port}/hook", '"job_completed"'))
    g.start()
    job = g.submit("true")
    g.until(
        lambda: any(n["attempts"] >= 2 for n in notices(g, job)), what="tries that found no one"
    )
    [down] = notices(g, job)
    assert down["state"] == "pending" and "onnect" in str(down["error"])
    late = WebhookReceiver(port=port)
    try:
        g.until(lambda: late.accepted("job_completed", job), what="the delivery once it is up")
        g.until(lambda: notices(g, job)[0]["state"] == "delivered", what="marked")
        assert len(late.hits) == 1
    finally:
        late.close()


def test_every_event_reaches_the_webhooks_that_ask_for_it(
    make_gflow: Callable[..., Gflow], receiver: WebhookReceiver
) -> None:
    vision = WebhookReceiver()
    g = make_gflow(GFLOW_FAKE_GPUS="1")
    configure(
        g,
        FAST
        + webhook(receiver.url)
        + webhook(vision.url, '"job_completed", "job_cancelled"', 'projects = ["vision"]\n'),
    )
    try:
        g.start()
        g.until(lambda: receiver.accepted("scheduler_online"), what="the daemon's start")
        held = g.submit("--hold", "-P", "vision", "-g", "1", "true")
        g.run("gjob", "release", str(held))
        assert g.wait(held) == 0
        other = g.submit("--begin", "now+1h", "true")
        g.run("gjob", "hold", str(other))
        g.run("gcancel", str(other))
        told = ["job_submitted", "job_released", "job_started", "job_completed"]
        g.until(
            lambda: (
                all(receiver.accepted(e, held) for e in told)
                and receiver.accepted("gpu_available")
                and receiver.accepted("job_held", other)
                and receiver.accepted("job_cancelled", other)
            ),
            what="every event",
        )
        assert receiver.accepted("gpu_available")[0]["body"]["gpus"] == [0]
        g.until(lambda: vision.accepted("job_completed", held), what="the project's hook")
        assert [h["body"]["job"]["id"] for h in vision.accepted()] == [held]
    finally:
        vision.close()


def test_mail_over_starttls_signs_in_with_the_credentials_file_to_the_users_address(
    make_gflow: Callable[..., Gflow], tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    sink = MailSink(tls=tls, login=("gflow", "pa ss"))
    g = make_gflow(SSL_CERT_FILE=str(tmp_path / "ca.pem"))
    credentials = secret_file(g, "gflow\npa ss")
    configure(
        g,
        FAST + f'[mail]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "starttls"\n'
        f'from = "gflow@box.test"\ndomain = "lab.test"\ncredentials_file = "{credentials}"\n',
    )
    try:
        g.start()
        job = g.submit("--name", "eval", "--mail-type", "BEGIN,END", "sh", "-c", "echo done")
        g.until(lambda: len(sink.messages) == 2, what="two mails")
        me = g.job(job)["user"]
        assert [m["to"] for m in sink.messages] == [[f"{me}@lab.test"]] * 2
        assert all(m["tls"] for m in sink.messages) and sink.logins == ["gflow", "gflow"]
        began, ended = sorted(sink.messages, key=lambda m: "Began" not in m["subject"])
        assert f"Job_id={job} Name=eval Began" in began["subject"]
        assert f"Job_id={job} Name=eval Ended" in ended["subject"]
        assert "FINISHED, ExitCode 0" in ended["subject"] and "done" in ended["text"]
    finally:
        sink.close()


def test_one_users_slow_urls_hold_back_neither_the_configured_webhooks_nor_others(
    make_gflow: Callable[..., Gflow], receiver: WebhookReceiver
) -> None:
    stuck = WebhookReceiver()
    stuck.hold.clear()  # never answers while the test runs
    g = make_gflow()
    configure(g, FAST + "timeout = 120\n" + webhook(receiver.url, '"job_completed"'))
    try:
        g.start()
        client = gflow.Client(home=g.home)
        for n in range(MAX_AT_ONCE + 1):  # as many endpoints as the daemon sends to at once
            client.submit("true", hold=True, notify_url=f"{stuck.url}/{n}")
        g.until(lambda: stuck.arrived >= USER_AT_ONCE, what="the user's first POSTs")
        job = g.submit("true")
        g.until(lambda: receiver.accepted("job_completed", job), what="the configured webhook")
        assert stuck.arrived == USER_AT_ONCE
    finally:
        stuck.close()


def test_mail_and_url_options_in_every_form(make_gflow: Callable[..., Gflow]) -> None:
    g = make_gflow()
    g.start()
    script = g.work / "job.sh"
    script.write_text(
        "#!/bin/sh\n#SBATCH --mail-type=END,FAIL\n#SBATCH --mail-user=cy@lab.test\n"
        "# GFLOW --notify-url https://chat.example.org/hooks/T0/B0/xyz\ntrue\n"
    )
    job = g.submit("--hold", str(script))
    row = g.job(job)
    assert (row["mail_type"], row["mail_user"]) == ("END,FAIL", "cy@lab.test")
    assert row["notify_url"] == "https://chat.example.org/hooks/T0/B0/xyz"
    g.run("gjob", "update", str(job), "--mail-type", "ALL", "--mail-user", "dee@lab.test")
    row = g.job(job)
    assert row["mail_type"] == "BEGIN,END,FAIL,TIMEOUT,REQUEUE"
    assert row["mail_user"] == "dee@lab.test"
    g.run("gjob", "update", str(job), "--mail-type", "NONE")
    assert g.job(job)["mail_type"] is None
    shown = g.show(job)
    assert shown["notify_url"] == "https://chat.example.org/…"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--mail-type", "SOMETIMES"], "SOMETIMES"),
        (["--mail-type", "END,NONE"], "END,NONE"),
        (["--mail-user", "two words@x"], "two words@x"),
        (["--notify-url", "ftp://files.example.org/x"], "ftp://files.example.org/x"),
    ],
)
def test_bad_mail_and_url_options_are_usage_errors(
    gflow_process: Gflow, argv: list[str], named: str
) -> None:
    done = gflow_process.run("gbatch", *argv, "true", check=False)
    assert done.returncode == 2 and named in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_webhook_url_that_is_not_http_is_refused_with_its_line(
    make_gflow: Callable[..., Gflow],
) -> None:
    g = make_gflow()
    configure(g, "[daemon]\nkill_grace = 1\n\n" + webhook("ftp://x.example.org/in"))
    done = g.run("gflowd", "up", check=False)
    assert done.returncode != 0
    assert "ftp://x.example.org/in" in done.stderr and "gflow.toml line 5" in done.stderr


def test_a_secret_others_can_read_is_refused(make_gflow: Callable[..., Gflow]) -> None:
    g = make_gflow()
    secret = secret_file(g, mode=0o644)
    configure(g, webhook("http://127.0.0.1:9/x", extra=f'secret_file = "{secret}"\n'))
    done = g.run("gflowd", "up", check=False)
    assert done.returncode != 0
    assert "readable by others" in done.stderr and f"chmod 600 {secret}" in done.stderr
    assert os.stat(secret).st_mode & 0o077  # left as it was: the admin decides
