"""What a change of state tells whom, and the configuration that says where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gflow import notices, options
from gflow.errors import InvalidInput
from gflow.model import Job, State
from gflow.notifyconfig import EVENTS, ConfigError, Mail, Notifications, Webhook, load
from tests.unit.conftest import make_job


def job(**fields: Any) -> Job:
    base = {"user": "ana", "name": "train", "workdir": "/tmp", "submit_time": 100.0}
    return make_job(1, **{**base, "project": "vision", **fields})


HOOK = "https://hooks.example.org/x"


def conf(**kw: object) -> Notifications:
    return Notifications(host="box", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("old", "new", "changes", "event"),
    [
        (None, State.QUEUED, {}, "job_submitted"),
        (None, State.QUEUED, {"retry_of": 7}, "job_requeued"),
        (State.QUEUED, State.RUNNING, {}, "job_started"),
        (State.QUEUED, State.HOLD, {}, "job_held"),
        (State.HOLD, State.QUEUED, {}, "job_released"),
        (State.RUNNING, State.FINISHED, {}, "job_completed"),
        (State.RUNNING, State.FAILED, {}, "job_failed"),
        (State.QUEUED, State.CANCELLED, {}, "job_cancelled"),
        (State.RUNNING, State.TIMEOUT, {}, "job_timeout"),
    ],
)
def test_each_change_is_one_event(
    old: State | None, new: State, changes: dict[str, int], event: str
) -> None:
    assert notices.event_of(job(state=new, **changes), old, None) == event


def test_webhooks_filter_by_event_user_and_project() -> None:
    hooks = (
        Webhook(HOOK),
        Webhook(HOOK + "/failed", events=frozenset({"job_failed"})),
        Webhook(HOOK + "/bob", users=frozenset({"bob"})),
        Webhook(HOOK + "/nlp", projects=frozenset({"nlp"})),
    )
    failed = job(state=State.FAILED, exit_code=2, start_time=100.0, end_time=160.0)
    made = notices.for_change(failed, State.RUNNING, None, 200.0, conf(webhooks=hooks))
    assert [n.target for n in made] == [HOOK, HOOK + "/failed"]
    body = made[0].body
    assert body["job"]["run_seconds"] == 60.0 and body["job"]["exit_code"] == 2
    assert body["text"] == (
        "gflow@box: job 1 (train, ana) failed (exit code 2) after 00:01:00. More: gjob show 1"
    )
    online = notices.for_system("scheduler_online", 0.0, conf(webhooks=hooks), version="1")
    assert [n.target for n in online] == [HOOK, HOOK + "/bob", HOOK + "/nlp"]


def test_mail_goes_by_type_and_says_why_it_cannot() -> None:
    ended = job(state=State.FINISHED, mail_type="FAIL")
    assert notices.for_change(ended, State.RUNNING, None, 1.0, conf()) == []
    failed = job(state=State.TIMEOUT, mail_type="TIMEOUT")
    [off] = notices.for_change(failed, State.RUNNING, None, 1.0, conf())
    assert off.channel == notices.MAIL and "not set up" in (off.error or "")
    mail = Mail(host="smtp", domain="lab.test", addresses={"bob": "rob@x.test"})
    [to_ana] = notices.for_change(failed, State.RUNNING, None, 1.0, conf(mail=mail))
    assert (to_ana.target, to_ana.error) == ("ana@lab.test", None)
    named = failed.replace(mail_user="bob")
    assert notices.for_change(named, State.RUNNING, None, 1.0, conf(mail=mail))[0].target == (
        "rob@x.test"
    )
    nowhere = notices.for_change(failed, State.RUNNING, None, 1.0, conf(mail=Mail(host="s")))
    assert "no mail address for ana" in (nowhere[0].error or "")


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("end,fail", "END,FAIL"),
        ("ALL", "BEGIN,END,FAIL,TIMEOUT,REQUEUE"),
        ("TIME_LIMIT", "TIMEOUT"),
        ("NONE", None),
    ],
)
def test_mail_types_are_kept_in_one_form(text: str, stored: str | None) -> None:
    assert options.MailType().check(text, "--mail-type") == stored


@pytest.mark.parametrize("text", ["", "LATER", "END,NONE", "END;FAIL"])
def test_a_bad_mail_type_is_named(text: str) -> None:
    with pytest.raises(InvalidInput, match="--mail-type"):
        options.MailType().check(text, "--mail-type")


def test_the_configuration_names_the_line_of_a_bad_webhook(tmp_path: Path) -> None:
    path = tmp_path / "gflow.toml"
    path.write_text(
        '[daemon]\n\n[[notifications.webhooks]]\nurl = "https://ok.example.org"\n\n'
        '[[notifications.webhooks]]\n# the second\nevents = ["job_failed"]\n'
        'url = "file:///etc/passwd"\n'
    )
    with pytest.raises(ConfigError, match=r"webhooks\[2\]\.url 'file:///etc/passwd'.* line 9"):
        load(path)
    path.write_text('[[notifications.webhooks]]\nurl = "http://x.test"\nevents = ["job_done"]\n')
    with pytest.raises(ConfigError, match=r"job_done.* line 3"):
        load(path)
    path.write_text('[[notifications.webhooks]]\nurl = "http://x.test"\nheaders = {Host = "y"}\n')
    with pytest.raises(ConfigError, match=r"headers\.Host"):
        load(path)
    path.write_text("[notifications]\nretry_forever = true\n")
    with pytest.raises(ConfigError, match=r"notifications\.retry_forever"):
        load(path)
    path.write_text('[[notifications.webhooks]]\nurl = "http://x.test:8080/in"\n')
    assert load(path).webhooks[0].events == frozenset(EVENTS)
