"""The dashboard's speed and cost, in a real browser (Debian's Chromium, via Playwright).

    .venv/bin/python bench/dashboard.py [--history 10000] [--pages 20] [--out FILE]

* first render: the queue page with ``--history`` finished jobs in the database, from
  navigation start to the first contentful paint, and the server's time for the HTML;
* event to screen: a held job is cancelled through the API; from the moment the daemon
  recorded the change (``events.time``) to the browser frame that shows the new state;
* memory: the daemon's resident memory before and with ``--pages`` open queue pages
  (each with its live event stream), and after a burst of 200 changes they all got;
* graph: a 1,000-job pipeline (one parent, 998 children, one join) drawn by the graph
  page, from navigation start to the load event.

Goals (issue 14): first render <= 300 ms, event to screen <= 100 ms, <= 1 MB of daemon
memory per open dashboard.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history import add_history
from targets import REPO, Ours, warm_bytecode

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
GOALS = {"first_render_ms": 300.0, "event_to_screen_ms": 100.0, "memory_per_page_mb": 1.0}

# In the page: when the row of job ID shows state ST, the time of the next frame.
WATCH = """([id, st]) => { window.shown = null; new Promise((resolve) => {
  const seen = () => {
    const row = document.getElementById('job-' + id);
    return row && row.querySelector('.st') && row.querySelector('.st').textContent === st;
  };
  const now = () => performance.timeOrigin + performance.now();
  const done = () => requestAnimationFrame(() => resolve(now()));
  if (seen()) return done();
  const watcher = new MutationObserver(() => { if (seen()) { watcher.disconnect(); done(); } });
  const all = {childList: true, subtree: true, characterData: true};
  watcher.observe(document.getElementById('live'), all);
}).then((t) => { window.shown = t; }); }"""


class Dashboard(Ours):
    kind = "gflow"

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env["GFLOW_DAEMON__WEB"] = "1"
        env["GFLOW_FAKE_GPUS"] = "2x24G"
        return env


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def event_time(t: Dashboard, job_id: int, state: str) -> float:
    import sqlite3

    db = sqlite3.connect(f"file:{t.db_path}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute(
            "SELECT time FROM events WHERE job_id=? AND to_state=? ORDER BY id DESC",
            (job_id, state),
        ).fetchone()
    finally:
        db.close()
    return float(row[0])


def first_render(browser: Any, url: str, base: str, runs: int) -> dict[str, list[float]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    paint, html = [], []
    for _ in range(runs):
        page.goto(base + "/", wait_until="load")
        timing = page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const fcp = performance.getEntriesByName('first-contentful-paint')[0];
              const paint = fcp ? fcp.startTime : nav.domContentLoadedEventEnd;
              return [paint, nav.responseEnd - nav.requestStart];
            }"""
        )
        paint.append(timing[0])
        html.append(timing[1])
    context.close()
    return {"first_render_ms": paint, "queue_html_ms": html}


def event_to_screen(browser: Any, t: Dashboard, url: str, base: str, runs: int) -> list[float]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    jobs = [t.submit("--hold", "-n", f"held-{i}", "true")[0] for i in range(runs)]
    page.goto(base + "/?state=active&size=200")
    page.wait_for_selector("#conn[data-kind=ok]")
    latencies = []
    for job in jobs:
        page.evaluate(WATCH, [job, "CA"])
        t.cli("gcancel", str(job))
        screen = page.wait_for_function("() => window.shown").json_value() / 1000
        latencies.append((screen - event_time(t, job, "Cancelled")) * 1000)
    context.close()
    return latencies


def memory(browser: Any, t: Dashboard, url: str, base: str, pages: int) -> dict[str, float]:
    """Each dashboard in a browser context of its own, as if 20 people looked at once
    (a browser allows 6 connections to one server over plain HTTP, tabs included)."""
    pid = t.pid()
    assert pid is not None

    def visit() -> Any:
        page = browser.new_context().new_page()
        page.goto(url)
        page.wait_for_selector("#conn[data-kind=ok]")
        return page

    visit().context.close()
    time.sleep(1)
    before = rss_mb(pid)
    opened = [visit() for _ in range(pages)]
    time.sleep(1)
    with_pages = rss_mb(pid)
    burst = t.submit("--hold", "--array", "1-200", "true")
    t.cli("gcancel", str(burst[0]))
    for page in opened:
        page.wait_for_function(f"() => !!document.querySelector('#job-{burst[-1]} .st-CA')")
    after_burst = rss_mb(pid)
    for page in opened:
        page.context.close()
    return {
        "rss_before_mb": before,
        "rss_with_pages_mb": with_pages,
        "rss_after_burst_mb": after_burst,
        "memory_per_page_mb": (max(with_pages, after_burst) - before) / pages,
    }


def graph(browser: Any, t: Dashboard, url: str, base: str) -> dict[str, Any]:
    head = t.submit("--hold", "-n", "head", "true")[0]
    fan = t.submit("--array", "1-998", "-n", "fold", "-d", str(head), "true")
    t.submit("-n", "join", "--depends-on-all", str(fan[0]), "true")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    server = []
    for _ in range(5):
        t0 = time.perf_counter()
        request = urllib.request.Request(
            f"{base}/graph?job={head}", headers={"Authorization": auth(url)}
        )
        with urllib.request.urlopen(request) as answer:
            body = answer.read()
        server.append((time.perf_counter() - t0) * 1000)
    page.goto(f"{base}/graph?job={head}", wait_until="load")
    nodes = page.locator("svg#graph .node").count()
    load = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    context.close()
    t.cli("gcancel", str(head))
    return {
        "graph_nodes": nodes,
        "graph_html_kb": len(body) / 1024,
        "graph_server_ms": server,
        "graph_load_ms": load,
    }


def _progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def auth(url: str) -> str:
    return "Bearer " + url.split("token=", 1)[1]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/dashboard.py", description=__doc__.split("\n")[0])
    p.add_argument("--history", type=int, default=10_000, help="finished jobs in the database")
    p.add_argument("--pages", type=int, default=20, help="open dashboards for the memory run")
    p.add_argument("--runs", type=int, default=20, help="samples of each timing")
    p.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/dashboard-<time>.json)"
    )
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    warm_bytecode()
    t = Dashboard("process")
    results: dict[str, Any] = {}
    try:
        _progress(f"a daemon with {args.history} finished jobs")
        t.fresh()
        add_history(t, args.history)
        url = t.cli("gflow", "web", "--no-browser").stdout.strip()
        base = url.split("/?")[0]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            _progress("first_render")
            results.update(first_render(browser, url, base, args.runs))
            _progress("event_to_screen")
            results["event_to_screen_ms"] = event_to_screen(browser, t, url, base, args.runs)
            _progress("memory")
            results.update(memory(browser, t, url, base, args.pages))
            _progress("graph")
            results.update(graph(browser, t, url, base))
            browser.close()
    finally:
        t.teardown()
    print(f"dashboard, {args.history} finished jobs in history (medians; min–max)")
    for key, value in results.items():
        got = statistics.median(value) if isinstance(value, list) else value
        line = f"{got:8.1f}"
        if isinstance(value, list):
            line += f"  ({min(value):.1f}–{max(value):.1f}, n={len(value)})"
        goal = GOALS.get(key)
        if goal is not None:
            line += f"  goal <= {goal:g}: {'met' if got <= goal else 'MISSED'}"
        print(f"  {key:24s}{line}")
    out = (
        args.out or REPO / "bench" / "results" / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"history": args.history, "pages": args.pages, "results": results}, indent=1)
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
