"""Do webhooks slow a job's release? A 100-job chain with and without a webhook on every
event, alternating.

    .venv/bin/python bench/notify.py [--chain 100] [--reps 3] [--executor process]

The hooked daemon posts every event (submitted, started, completed, ...: about three per
job, each signed) to a real HTTP receiver on 127.0.0.1, run by this script. The chain is
the one of ``bench/run.py`` (a gated head, then N-1 ``gbatch --depends-on @ true``);
latency is parent end → child start per link, from the daemon's own record. The target:
the hooked median within 10% of the plain one. Those times are file times, which the
kernel keeps in ticks (4 ms here), so a median moves a whole tick at once; the mean and
the chain's wall time, which ticks do not round, are reported too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from targets import Ours, proc_stat
from workloads import Config, chain


class Receiver:
    """Answers every POST with 204 and counts them."""

    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the connection, as chat services do

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.count += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class Hooked(Ours):
    """gflow with a webhook on every event."""

    def __init__(self, executor: str, receiver: Receiver) -> None:
        super().__init__(executor)
        self.name = f"gflow+webhook/{executor}"
        self.receiver = receiver

    def prepare(self) -> None:
        assert self.home is not None
        secret = self.home / "hook.secret"
        secret.write_text("bench-secret\n")
        secret.chmod(0o600)
        (self.home / "gflow.toml").write_text(
            f'[[notifications.webhooks]]\nurl = "{self.receiver.url}"\nevents = ["*"]\n'
            f'secret_file = "{secret}"\n'
        )


def run(target: Ours, cfg: Config) -> tuple[list[float], float, float]:
    """The chain's link latencies (ms), its wall time from the gate (s), and the CPU
    seconds its daemon used."""
    try:
        samples = chain(target, cfg)
        pid = target.pid()
        cpu = proc_stat(pid)["cpu_s"] if pid else float("nan")
    finally:
        target.teardown()
    links = next(s for s in samples if s.key == "dep.chain_link_ms")
    wall = next(s for s in samples if s.key == "dep.chain_wall_s")
    if links.note or wall.note:
        raise SystemExit(f"{target.name}: {links.note or wall.note}")
    return links.values, wall.values[0], cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--executor", default="process", choices=["process", "tmux"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cfg = Config(chain=args.chain)
    receiver = Receiver()
    plain, hooked = Ours(args.executor), Hooked(args.executor, receiver)
    links: dict[str, list[float]] = {"plain": [], "webhook": []}
    cpu: dict[str, list[float]] = {"plain": [], "webhook": []}
    walls: dict[str, list[float]] = {"plain": [], "webhook": []}
    for rep in range(args.reps):
        for key, target in (("plain", plain), ("webhook", hooked)):
            values, wall, seconds = run(target, cfg)
            links[key] += values
            walls[key].append(wall)
            cpu[key].append(seconds)
            print(
                f"run {rep + 1} {key:8s} median link {statistics.median(values):6.1f} ms, "
                f"mean {statistics.fmean(values):6.1f} ms, chain {wall:5.2f} s, "
                f"daemon CPU {seconds:.2f} s"
            )
            time.sleep(1)  # let the machine settle between daemons
    report = {
        key: {
            "median_ms": statistics.median(v),
            "mean_ms": statistics.fmean(v),
            "p90_ms": statistics.quantiles(v, n=10)[-1],
            "min_ms": min(v),
            "links": len(v),
            "chain_s": statistics.median(walls[key]),
            "daemon_cpu_s": statistics.median(cpu[key]),
        }
        for key, v in links.items()
    }
    ratios = {
        what: report["webhook"][what] / report["plain"][what]
        for what in ("median_ms", "mean_ms", "chain_s")
    }
    report["ratio"] = {**ratios, "deliveries": receiver.count}
    print(json.dumps(report, indent=2))
    for what, ratio in ratios.items():
        verdict = "within" if ratio <= 1.10 else "NOT within"
        print(f"webhook/plain {what}: {ratio:.3f} ({verdict} 10%)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
