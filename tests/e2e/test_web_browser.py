"""The dashboard in a real browser: Debian's Chromium, driven by Playwright.

A real daemon with fake GPUs runs a real pipeline; the tests look at the pages as a
person would (and as root, as another user would). Each page is saved as a screenshot,
on a laptop and on a phone width, in the directory printed at the end of the run
(``GFLOW_SCREENSHOTS`` chooses it).
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SCREENSHOTS, AsUser, Gflow, short_home, teardown
from tests.web import Board, start_board

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
)
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="no Chromium (apt-get install chromium)"
)
expect = playwright.expect
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    expect.set_options(timeout=15_000)
    for old in SCREENSHOTS.glob("*.png"):  # this run's pictures only
        old.unlink()
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def board() -> Iterator[Board]:
    g = Gflow(short_home(), "process", {"GFLOW_DAEMON__WEB": "1", "GFLOW_FAKE_GPUS": "2x24G"})
    b = start_board(g)
    yield b
    b.close()
    teardown(g)


@pytest.fixture
def page(browser: Any, board: Board) -> Iterator[Any]:
    """A signed-in page: the personal address was opened once."""
    context = browser.new_context(viewport=LAPTOP)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(f"{exc}: {exc.stack}"))
    p.goto(board.url)
    expect(p.locator("#conn")).to_have_text("live")
    yield p
    context.close()
    assert errors == [], errors


def shot(p: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    p.screenshot(path=str(path), full_page=True)
    return path


def row(p: Any, job: int) -> Any:
    return p.locator(f"#job-{job}")


def test_a_pipeline_appears_and_changes_state_live(page: Any, board: Board) -> None:
    g = board.g
    prep = g.submit("-n", "prep", "sh", "-c", g.gate("prep-done"))
    page.evaluate("window.stayed = true")  # gone if the page reloads
    expect(row(page, prep).locator(".st")).to_have_text("R")
    train = g.submit("-n", "train", "-d", str(prep), "-g", "1", "sh", "-c", g.gate("train-done"))
    evaluate = g.submit("-n", "eval", "-d", str(train), "true")
    expect(row(page, evaluate)).to_contain_text(f"waits for job {train} to succeed")
    shot(page, "queue-laptop")
    g.open_gate("prep-done")
    expect(row(page, prep).locator(".st")).to_have_text("CD")
    expect(row(page, train).locator(".st")).to_have_text("R")
    expect(row(page, train)).to_contain_text("on GPU 0")
    g.open_gate("train-done")
    expect(row(page, evaluate).locator(".st")).to_have_text("CD")
    assert page.evaluate("window.stayed") is True


def test_the_graph_draws_the_dependencies(page: Any, board: Board) -> None:
    g = board.g
    first = g.submit("-n", "fetch", "sh", "-c", g.gate("fetch-done"))
    fan = g.submit_many("--array", "1-3", "-n", "fold", "-d", str(first), "true")
    last = g.submit("-n", "report", "--depends-on-all", ",".join(map(str, fan)), "true")
    page.goto(f"{board.base}/graph?job={first}")
    expect(page.locator("svg#graph .node")).to_have_count(5)
    edges = page.locator("svg#graph path.edge")
    expect(edges).to_have_count(6)
    pairs = {(e.get_attribute("data-from"), e.get_attribute("data-to")) for e in edges.all()}
    assert (str(first), str(fan[0])) in pairs and (str(fan[2]), str(last)) in pairs
    expect(page.locator("svg#graph .elabels text").first).to_have_text("afterok")
    expect(page.locator(f"#n-{first}")).to_have_class("node st-R")
    shot(page, "graph-laptop")
    g.open_gate("fetch-done")
    expect(page.locator(f"#n-{last}")).to_have_class("node st-CD")
    page.locator(f"#n-{last}").click()
    expect(page).to_have_url(f"{board.base}/job/{last}")


def test_cancel_asks_first_and_says_what_it_would_do(page: Any, board: Board) -> None:
    g = board.g
    parent = g.submit("-n", "slow", "sh", "-c", g.gate("never"))
    child = g.submit("-n", "needs-slow", "-d", str(parent), "true")
    page.goto(f"{board.base}/job/{parent}")
    expect(page.locator("#log-state")).to_have_text("following")
    page.get_by_role("button", name="Cancel…").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-list")).to_contain_text(
        f"{child} needs-slow: would be cancelled (DependencyFailed:{parent})"
    )
    shot(page, "job-cancel-dialog-laptop")
    dialog.get_by_role("button", name="Keep as it is").click()
    expect(dialog).to_be_hidden()
    assert g.state(parent) == "Running"
    page.get_by_role("button", name="Cancel…").click()
    dialog.get_by_role("button", name="Cancel it").click()
    expect(page.locator(".status")).to_contain_text("Cancelled")
    expect(page.locator("#action-result")).to_contain_text(f"job {parent}: stopping")
    assert g.state(child) == "Cancelled"


def test_a_running_jobs_log_is_followed(page: Any, board: Board) -> None:
    g = board.g
    wait = f"while [ ! -e {g.work / 'more-output'} ]; do sleep 0.02; done"
    job = g.submit("-n", "talker", "sh", "-c", f"echo hello from the job; {wait}; echo bye")
    page.goto(f"{board.base}/job/{job}")
    expect(page.locator("#log")).to_have_text("hello from the job\n")
    g.open_gate("more-output")
    expect(page.locator("#log")).to_have_text("hello from the job\nbye\n")
    expect(page.locator("#log-state")).to_contain_text("the job has ended")
    expect(page.locator(".status")).to_contain_text("Finished")
    shot(page, "job-log-laptop")


def test_a_bad_or_missing_token_gets_the_login_message(browser: Any, board: Board) -> None:
    context = browser.new_context(viewport=LAPTOP)
    p = context.new_page()
    for address in (board.base + "/", f"{board.base}/?token=not-my-token"):
        answer = p.goto(address)
        assert answer.status == 401
        expect(p.locator("h1")).to_contain_text("your personal address is needed")
        expect(p.locator("pre")).to_have_text("gflow web")
    shot(p, "login-laptop")
    context.close()


def test_the_page_says_when_gflowd_restarts_and_comes_back(page: Any, board: Board) -> None:
    g = board.g
    job = g.submit("--hold", "-n", "survivor", "true")
    page.goto(f"{board.base}/?state=active")
    expect(page.locator("#conn")).to_have_text("live")
    g.stop()
    expect(page.locator("#conn")).to_contain_text("not reachable")
    g.start()
    expect(page.locator("#conn")).to_have_text("gflowd restarted — reconnected, live")
    g.run("gcancel", str(job))
    expect(row(page, job)).to_have_count(0)  # it left the active view, live again


def test_every_page_is_readable_on_a_laptop_and_a_phone(browser: Any, board: Board) -> None:
    g = board.g
    some = g.submit("-n", "readable", "--shared", "--gpu-memory", "8G", "-g", "1", "true")
    assert g.wait(some) == 0
    pages = {"queue": "/", "graph": "/graph", "job": f"/job/{some}", "gpus": "/gpus"}
    pages["stats"] = "/stats"
    for width, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        p = context.new_page()
        p.goto(board.url)
        for name, path in pages.items():
            p.goto(board.base + path)
            expect(p.locator("#conn")).to_have_text("live")
            overflow = p.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{name} is wider than a {width} screen"
            shot(p, f"{name}-{width}")
        context.close()
    context = browser.new_context(viewport=LAPTOP)
    p = context.new_page()
    p.goto(board.url)
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.textContent") == "Skip to content"
    context.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a system daemon for two users")
def test_another_users_job_has_no_cancel_button_and_cannot_be_cancelled(
    browser: Any,
    other_user: pwd.struct_passwd,
) -> None:
    g = Gflow(short_home(), "process", {"GFLOW_DAEMON__WEB": "1"})
    g.start("--system")
    try:
        alice = AsUser(g, other_user)
        code = "from gflow.cli.gflow import entry; entry()"
        hers = Board(g, alice.run("-c", code, "web", "--no-browser").stdout.strip())
        roots = g.submit("--hold", "-n", "roots-job", "true")
        theirs = alice.submit("--hold", "-n", "alices-job", "true")
        context = browser.new_context(viewport=LAPTOP)
        p = context.new_page()
        p.goto(hers.url)
        expect(p.locator(".who")).to_have_text(other_user.pw_name)
        p.goto(f"{hers.base}/job/{roots}")
        expect(p.locator("#live .note")).to_contain_text("This job belongs to root")
        expect(p.locator("button[data-action]")).to_have_count(0)
        expect(p.locator(".log .note")).to_have_text("Only root can read the log of this job.")
        shot(p, "job-of-another-user-laptop")
        status = p.evaluate(
            """async (id) => (await fetch('/api/jobs/cancel', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({ids: String(id)})})).status""",
            roots,
        )
        assert status == 403 and g.state(roots) == "Hold"
        p.goto(f"{hers.base}/job/{theirs}")
        expect(p.get_by_role("button", name="Cancel…")).to_be_visible()
        context.close()
    finally:
        teardown(g)
