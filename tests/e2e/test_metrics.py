"""GET /metrics, parsed as Prometheus parses it, agrees with gqueue; who may scrape it."""

from __future__ import annotations

import json
import re
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gflow.tcpauth import authorization
from tests.e2e.receivers import free_port
from tests.helpers import Gflow

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def scrape(g: Gflow) -> Samples:
    status, data = g.raw("GET", "/metrics")
    assert status == 200, data
    return parse(data.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if labels.items() <= got.items())


def test_metrics_agree_with_gqueue(make_gflow: Callable[..., Gflow]) -> None:
    g = make_gflow(GFLOW_FAKE_GPUS="2x24G")
    g.start()
    running = g.submit("--gpus", "1", "--memory", "100M", "-P", "vision", "sh", "-c", g.gate("go"))
    waiting = g.submit("--depends-on", str(running), "true")
    g.submit("--hold", "true")
    done = g.submit("true")
    g.until_state(running, "Running")
    assert g.wait(done) == 0

    m = scrape(g)
    queue = g.queue_json()
    by_state = Counter(j["state"] for j in queue)
    states = {labels["state"] for labels, _ in m["gflow_jobs"]}
    scraped = Counter({s: int(value(m, "gflow_jobs", state=s)) for s in states})
    assert scraped == by_state == Counter({"Running": 1, "Queued": 1, "Hold": 1})
    me = queue[0]["user"]
    assert value(m, "gflow_jobs", state="Running", user=me, project="vision") == 1
    [gpu] = next(j["gpu_ids"] for j in queue if j["id"] == running)
    assert value(m, "gflow_gpu_jobs", gpu=str(gpu)) == 1
    assert value(m, "gflow_gpu_jobs") == 1 and value(m, "gflow_gpu_allowed") == 2
    assert value(m, "gflow_gpu_memory_total_bytes", gpu="0") == 24 * 1024**3
    assert value(m, "gflow_memory_reserved_bytes") == 100 * 1024**2
    assert value(m, "gflow_jobs_submitted_total") == 4
    assert value(m, "gflow_jobs_started_total") == 2
    assert value(m, "gflow_jobs_ended_total", state="Finished") == 1
    assert value(m, "gflow_job_queue_wait_seconds_count") == 2
    assert value(m, "gflow_schedule_pass_seconds_count") > 0
    assert value(m, "gflow_notifications", state="pending") == 0
    assert value(m, "process_resident_memory_bytes") > 0

    g.open_gate("go")
    assert g.wait(waiting) == 0
    m = scrape(g)
    assert value(m, "gflow_dependency_release_seconds_count") == 1
    assert value(m, "gflow_job_run_seconds_count") == 3
    assert value(m, "gflow_jobs_ended_total", state="Finished") == 3
    assert value(m, "gflow_jobs", state="Running") == 0
    assert value(m, "gflow_gpu_jobs") == 0

    dashboard = json.loads((ROOT / "contrib" / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:gflow|process)_\w+", target["expr"])
    }
    exposed = set(m) | {"gflow_gpu_utilization_ratio"}  # NVML only: none with fake GPUs
    assert asked <= exposed


def tcp_get(port: int, path: str, auth: str | None = None) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"Authorization: {auth}\r\n" if auth else ""
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    return int(head_bytes.split()[1]), body


def test_a_scraper_reads_tcp_with_its_bearer_token_only(make_gflow: Callable[..., Gflow]) -> None:
    port = free_port()
    g = make_gflow(GFLOW_DAEMON__TCP="1", GFLOW_DAEMON__PORT=str(port))
    token = g.home / "metrics.token"
    token.write_text("a-long-random-scraper-token\n")
    token.chmod(0o600)
    (g.home / "gflow.toml").write_text(f'[metrics]\nbearer_token_file = "{token}"\n')
    g.start()
    assert tcp_get(port, "/metrics")[0] == 403
    assert tcp_get(port, "/metrics", "Bearer wrong-token")[0] == 403
    assert tcp_get(port, "/v1/info", "Bearer a-long-random-scraper-token")[0] == 403
    status, body = tcp_get(port, "/metrics", "Bearer a-long-random-scraper-token")
    assert status == 200 and "gflow_info" in parse(body.decode())
    secret = (g.home / "token").read_text().strip()
    signed = authorization(secret, "GET", "/metrics", b"")
    assert tcp_get(port, "/metrics", signed)[0] == 200


def test_metrics_can_be_turned_off(make_gflow: Callable[..., Gflow]) -> None:
    g = make_gflow()
    (g.home / "gflow.toml").write_text("[metrics]\nenabled = false\n")
    g.start()
    assert g.raw("GET", "/metrics")[0] == 404
