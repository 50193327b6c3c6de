"""The dashboard's HTTP side, as its page uses it: tokens, rights, pages, events, actions.

A real daemon with ``web = true`` and fake GPUs; plain HTTP on loopback.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import AsUser, Gflow
from tests.web import Board, job_event, start_board


@pytest.fixture
def board(make_gflow: Callable[..., Gflow]) -> Iterator[Board]:
    b = start_board(make_gflow("process", GFLOW_DAEMON__WEB="1", GFLOW_FAKE_GPUS="2x24G"))
    yield b
    b.close()


def test_the_dashboard_is_off_by_default(gflow_process: Gflow) -> None:
    done = gflow_process.run("gflow", "web", "--no-browser", check=False)
    assert done.returncode == 1
    assert "the dashboard is off: set web = true" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_token_is_personal_private_and_revocable(board: Board) -> None:
    g = board.g
    token_file = g.home / "web-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == board.token
    assert g.run("gflow", "web", "--no-browser").stdout.strip() == board.url
    stream = board.stream()
    assert stream.next()[0] == "hello"
    renewed = g.run("gflow", "web", "--new-token", "--no-browser").stdout.strip()
    assert renewed != board.url and board.token not in renewed
    with pytest.raises(EOFError):  # the revoked token's open page is cut off
        stream.next()
    old = board.get("/api/redo-plan?id=1")
    assert old.status == 401 and "gflow web" in old.json()["error"]
    assert Board(g, renewed).get("/").status == 200


def test_requests_without_a_valid_token_get_the_login_message(board: Board) -> None:
    for path, token in (("/", None), ("/", "not-a-token"), ("/job/1", None)):
        page = board.get(path, token=token)
        assert page.status == 401
        assert "gflow web" in page.text and "<html" in page.text
    assert board.get(f"/?token={board.token}x", token=None).status == 401
    events = board.stream(token=None)
    assert events.status == 401
    assert board.post("/api/jobs/cancel", {"ids": "1"}, token=None).status == 401


def test_the_address_signs_in_with_a_cookie_and_drops_the_token(board: Board) -> None:
    first = board.get(f"/?state=active&token={board.token}", token=None)
    assert first.status == 303
    assert first.headers["location"] == "/?state=active"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    assert board.get("/", token=None, headers=jar).status == 200
    job = board.g.submit("--hold", "true")
    body = {"ids": str(job), "dry_run": True}
    forged = board.post("/api/jobs/cancel", body, token=None, headers=jar)
    assert forged.status == 403  # no Origin: not from a page of this dashboard
    evil = {**jar, "Origin": "http://127.0.0.1:1"}
    assert board.post("/api/jobs/cancel", body, token=None, headers=evil).status == 403
    ours = {**jar, "Origin": board.base}
    assert board.post("/api/jobs/cancel", body, token=None, headers=ours).status == 200
    rebinding = board.get("/", headers={"Host": "evil.example:80"})
    assert rebinding.status == 421
    assert board.get("/", headers={"Host": f"localhost:{board.port}"}).status == 200


def test_pages_render_and_bad_input_gets_a_message(board: Board) -> None:
    g = board.g
    first = g.submit("-n", "prep", "true")
    g.submit("-n", "train", "-d", "@", "-g", "1", "true")
    assert g.wait(first) == 0
    for path in ("/", "/graph", f"/graph?job={first}", f"/job/{first}", "/gpus", "/stats"):
        page = board.get(path)
        assert page.status == 200, path
        assert "<html" in page.text and "Traceback" not in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "<html" not in board.get(f"/job/{first}?partial=1").text
    for path, status, message in (
        ("/job/999", 404, "job 999 not found"),
        ("/job/abc", 404, "not found"),
        ("/?state=bogus", 400, "invalid state"),
        ("/?sort=secret", 400, "invalid sort"),
        ("/?page=0", 400, "invalid page"),
        ("/?user=nosuchuser", 400, "invalid user"),
        ("/graph?job=x1", 400, "invalid job"),
        ("/graph?job=999", 400, "job 999 not found"),
        ("/stats?days=-3", 400, "invalid days"),
    ):
        page = board.get(path)
        assert page.status == status, path
        assert message in page.text, path
        assert "Traceback" not in page.text


def test_the_queue_filters_sorts_and_pages(board: Board) -> None:
    g = board.g
    ids = [g.submit("--hold", "-n", f"job-{c}", "true") for c in "edcba"]
    page = board.get("/?size=2&sort=name")
    assert "Jobs 1–2 of 5" in page.text
    assert re.findall(r'id="job-(\d+)"', page.text) == [str(ids[4]), str(ids[3])]
    assert 'rel="next"' in page.text and 'rel="prev"' not in page.text
    last = board.get("/?size=2&sort=name&page=3")
    assert re.findall(r'id="job-(\d+)"', last.text) == [str(ids[0])]
    named = board.get("/?name=job-c")
    assert re.findall(r'id="job-(\d+)"', named.text) == [str(ids[2])]
    assert "No jobs match" in board.get("/?state=Running").text
    row = board.get("/?state=Hold&size=1").text
    assert "held: release it to let it start" in row


def test_every_change_reaches_open_pages_as_an_event(board: Board) -> None:
    g = board.g
    stream = board.stream()
    event, hello = stream.next()
    assert event == "hello" and hello["pid"] == g.daemon_pid()
    parent = g.submit("-n", "parent", "sh", "-c", g.gate("go"))
    stream.until(job_event(parent, "Running"))
    child = g.submit("-n", "child", "-d", str(parent), "true")
    _, data = stream.until(job_event(child, "Queued"))
    item = next(i for i in data if i["id"] == child)
    assert item["parents"] == [parent]
    assert f'id="job-{child}"' in item["row"] and "waits for job" in item["row"]
    g.open_gate("go")
    stream.until(job_event(parent, "Finished"))
    stream.until(job_event(child, "Finished"))


def test_actions_apply_the_same_checks_as_the_command_line(board: Board) -> None:
    g = board.g
    parent = g.submit("--hold", "-n", "parent", "true")
    child = g.submit("-n", "child", "-d", str(parent), "true")
    plan = board.post("/api/jobs/cancel", {"ids": str(parent), "dry_run": True}).json()
    assert [j["id"] for j in plan["jobs"]] == [parent, child]
    assert "would be cancelled" in plan["jobs"][1]["action"]
    assert g.state(parent) == "Hold"
    assert board.post("/api/jobs/release", {"ids": str(parent)}).status == 200
    assert g.wait(child) == 0
    failing = g.submit("-n", "failing", "false")
    after = g.submit("-n", "after", "-d", str(failing), "true")
    assert g.wait(after) == 125
    redo = board.get(f"/api/redo-plan?id={failing}&cascade=1").json()
    assert [j["id"] for j in redo["jobs"]] == [failing, after]
    done = board.post("/api/jobs/redo", {"id": str(failing), "cascade": True}).json()
    assert [j["redo_of"] for j in done["jobs"]] == [failing, after]
    assert board.post("/api/jobs/hold", {"ids": str(parent)}).status == 409
    assert board.post("/api/jobs/update", {"ids": str(parent)}).status == 404
    bad = board.request("POST", "/api/jobs/cancel", headers={"Content-Type": "text/plain"})
    assert bad.status == 400 and "Content-Type" in bad.json()["error"]


def test_a_log_is_followed_until_the_job_ends(board: Board) -> None:
    g = board.g
    wait = f"while [ ! -e {g.work / 'more'} ]; do sleep 0.02; done"
    job = g.submit("sh", "-c", f"echo first; {wait}; echo second")
    stream = board.stream(f"/job/{job}/log")
    text = ""
    while "first" not in text:
        event, data = stream.next()
        text += data.get("t", "") if event == "chunk" else ""
    g.open_gate("more")
    event, data = stream.until(lambda e, d: e == "end" or "second" in d.get("t", ""))
    if event != "end":
        event, data = stream.until(lambda e, d: e == "end")
    assert data["o"] == len(b"first\nsecond\n")
    whole = board.get(f"/job/{job}/log.txt")
    assert whole.text == "first\nsecond\n"
    assert whole.headers["content-type"].startswith("text/plain")
    resumed = board.stream(f"/job/{job}/log?offset=6")
    assert resumed.next() == ("opened", {"o": 6, "skipped": False})
    assert resumed.next() == ("chunk", {"o": 13, "t": "second\n"})
    assert resumed.next()[0] == "end"
    never = g.submit("--hold", "true")
    g.run("gcancel", str(never))
    assert board.stream(f"/job/{never}/log").next() == ("end", {"note": "no log: it never ran"})


def test_the_port_and_the_address_survive_a_restart(board: Board) -> None:
    g = board.g
    g.stop()
    g.start()
    assert g.run("gflow", "web", "--no-browser").stdout.strip() == board.url


def test_the_token_never_reaches_a_log(board: Board) -> None:
    g = board.g
    board.get(f"/?token={board.token}", token=None)
    board.get(f"/no/such/page?token={board.token}", token=None)
    board.get(f"/job/{10**30}?token={board.token}")
    board.post("/api/jobs/cancel", {"ids": "bogus"})
    board.stream(f"/job/1/log?token={board.token}")
    logged = (g.home / "gflowd.log").read_text()
    assert "dashboard on http://127.0.0.1" in logged
    assert board.token not in logged


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a system daemon for two users")
def test_another_users_page_acts_with_their_rights(
    make_gflow: Callable[..., Gflow],
    other_user: pwd.struct_passwd,
) -> None:
    g = make_gflow("process", GFLOW_DAEMON__WEB="1")
    g.start("--system")
    alice = AsUser(g, other_user)
    code = "from gflow.cli.gflow import entry; entry()"
    url = alice.run("-c", code, "web", "--no-browser").stdout.strip()
    hers = Board(g, url)
    token_file = os.path.join(alice.user.pw_dir, ".config", "gflow", "web-token")
    info = os.stat(token_file)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (alice.user.pw_uid, 0o600)
    roots = g.submit("--hold", "-n", "roots", "true")
    theirs = alice.submit("--hold", "-n", "theirs", "true")
    page = hers.get(f"/job/{roots}").text
    assert 'data-action="cancel"' not in page and "belongs to root" in page
    assert 'data-action="cancel"' in hers.get(f"/job/{theirs}").text
    refused = hers.post("/api/jobs/cancel", {"ids": str(roots)})
    assert refused.status == 403 and f"job {roots} belongs to root" in refused.json()["error"]
    assert g.state(roots) == "Hold"
    assert hers.post("/api/jobs/cancel", {"ids": str(theirs)}).status == 200
    assert g.state(theirs) == "Cancelled"
    done = g.submit("echo", "secret")
    assert g.wait(done) == 0
    assert hers.get(f"/job/{done}/log.txt").status == 403
    assert hers.stream(f"/job/{done}/log").status == 403
    hers.close()
