"""Arbitrary requests against the raw HTTP API of a real daemon: never a 500.

Hypothesis builds bodies and query strings from the fields the API knows, filled with
values chosen to hurt (huge and negative numbers, floats, lone surrogates, NUL and escape
characters, nested structures) plus raw bytes that are not JSON at all. Every answer must
be a success or a 4xx with a message; the daemon must still be healthy afterwards. The
daemon is configured to start nothing (``max_running = 0``), so no generated command runs.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gflow.options import BY_KEY, CONTEXT, OPTIONS
from tests.helpers import Gflow

POSTS = [
    "/v1/jobs",
    "/v1/jobs/cancel",
    "/v1/jobs/hold",
    "/v1/jobs/release",
    "/v1/jobs/update",
    "/v1/jobs/redo",
    "/v1/admin/set-limit",
    "/v1/admin/quota",
    "/v1/admin/reserve",
    "/v1/admin/gpu-process",
    "/v1/admin/set-gpus",
    "/v1/admin/close-sessions",
    "/v1/admin/prune",
    "/v1/admin/show-gpus",
]
GETS = ["/v1/jobs", "/v1/show", "/v1/wait", "/v1/stats", "/v1/health", "/v1/info"]
FIELDS = sorted(
    {o.field for o in OPTIONS}
    | {
        "command",
        "workdir",
        "env",
        "name",
        "gpus",
        "priority",
        "time_limit",
        "memory_mb",
        "gpu_memory_mb",
        "begin_at",
        "dependency",
        "array",
        "params",
        "param_rows",
        "options",
        "dry_run",
        "max_retries",
        "max_concurrent",
        "project",
        "conda_env",
        "script",
        "name_template",
        "shared",
        "ids",
        "id",
        "changes",
        "at",
        "cascade",
        "clear_deps",
        "job",
        "limit",
        "action",
        "scope",
        "limits",
        "user",
        "start",
        "duration",
        "gpu_ids",
        "gpu",
        "pid",
        "states",
        "older_than_days",
        "all",
    }
)
OPTION_KEYS = sorted({*BY_KEY, *CONTEXT})
QUERY_KEYS = ["ids", "states", "users", "names", "projects", "since", "limit", "deps", "view"]
NASTY_TEXT = [
    "\ud800",
    "a\x00b",
    "\x1b[2J",
    "two\nlines",
    "1",
    "@",
    "@~99999999999999999999",
    "1-99999999999",
    "1_2",
    "afterok:1",
    "after:1+99999999999",
    "afterok:1?afterany:2",
    "depend=on:999999999999",
    "now",
    "now+99999999999w",
    "9999-12-31T23:59:59",
    "all",
    "me",
    "9" * 30,
    "-1",
    "1e999",
    "gpu:9999",
    "UNLIMITED",
    "1-100%0",
    "x={a}",
    "x=1:1000000000",
    "",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**53, 2**63, 2**64, 10**30, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(NASTY_TEXT),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
options = st.dictionaries(st.sampled_from(OPTION_KEYS), values | st.sampled_from(NASTY_TEXT))
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6).flatmap(
    lambda body: (
        st.builds(lambda opts: {**body, "options": opts}, options)
        if "options" in body
        else st.just(body)
    )
)
RAW = [
    b"",
    b"[]",
    b"nul",
    b"\xff\xfe",
    b'{"gpus": 1e999}',
    b'{"dependency": {"clauses": [["after", ["1"], 1e999]]}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a": ' * 3000 + b"1" + b"}" * 3000,
    b'{"ids": "1", "at": -1e999}',
    b'{"x": 1' + b"0" * 5000 + b"}",
]


def _query(path: str, pairs: dict[str, str]) -> str:
    quoted = [
        f"{k}={urllib.parse.quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in pairs.items()
    ]
    if path == "/v1/wait":  # the first value counts: do not block on the held jobs
        quoted.insert(0, "timeout=0")
    return path + "?" + "&".join(quoted)


# Well-formed shapes with odd contents, to get past the first checks.
refs = st.sampled_from(
    ["1", "2", "3", "5", "@", "@~1", "@~9", "2_0", "2_7", "name", "999", "0", ""]
)
clause = st.tuples(
    st.sampled_from(["after", "afterok", "afterany", "aftercorr", "before", "beforeok", "x"]),
    st.lists(refs, max_size=4),
    st.integers(-5, 10**10),
).map(list)
dependency = st.builds(
    lambda clauses, any_of, on_count, flags: {
        "clauses": clauses,
        "any_of": any_of,
        "on_count": on_count,
        "singleton": flags[0],
        "auto_cancel": flags[1],
    },
    st.lists(clause, max_size=3),
    st.booleans(),
    st.integers(-2, 5),
    st.tuples(st.booleans(), st.booleans()),
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "dependency": dependency,
        "options": options,
        "array": st.sampled_from(NASTY_TEXT),
        "params": st.lists(
            st.tuples(st.sampled_from(["x", "y", ""]), st.lists(scalars)), max_size=2
        ),
        "gpus": st.integers(0, 3),
        "shared": st.booleans(),
        "gpu_memory_mb": st.integers(1, 30000),
        "dry_run": st.booleans(),
        "name": st.sampled_from(NASTY_TEXT),
    },
).map(lambda body: json.loads(json.dumps(body)))
controls = st.builds(
    lambda path, ids, changes, flag: (
        path,
        {"ids": ids, "id": ids, "changes": changes, "cascade": flag, "dry_run": flag},
    ),
    st.sampled_from(["/v1/jobs/update", "/v1/jobs/redo", "/v1/jobs/cancel", "/v1/jobs/hold"]),
    refs | st.sampled_from(NASTY_TEXT),
    shaped,
    st.booleans(),
)

requests = st.one_of(
    st.tuples(st.just("POST"), st.just("/v1/jobs"), shaped.map(json.dumps)),
    controls.map(lambda c: ("POST", c[0], json.dumps(c[1]))),
    st.tuples(st.just("POST"), st.sampled_from(POSTS), bodies.map(json.dumps)),
    st.tuples(st.just("POST"), st.sampled_from(POSTS), st.sampled_from(RAW)),
    st.tuples(
        st.just("GET"),
        st.builds(
            _query,
            st.sampled_from(GETS),
            st.dictionaries(
                st.sampled_from(QUERY_KEYS), st.text(max_size=12) | st.sampled_from(NASTY_TEXT)
            ),
        ),
        st.just(b""),
    ),
)


@pytest.fixture
def idle_daemon(make_gflow: Callable[..., Gflow]) -> Gflow:
    g = make_gflow("process", GFLOW_FAKE_GPUS="2", GFLOW_DAEMON__MAX_RUNNING="0")
    g.start()
    for _ in range(3):  # something to act on: held, queued and cancelled jobs
        g.submit("--hold", "true")
    g.run("gcancel", "3")
    return g


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests)
def test_no_request_gets_a_500(idle_daemon: Gflow, request: tuple[str, str, Any]) -> None:
    method, path, body = request
    if path == "/v1/jobs" and method == "POST" and isinstance(body, str):
        data = json.loads(body)
        body = json.dumps({"command": ["true"], "workdir": "/tmp", **data, "hold": True})
    raw = body.encode() if isinstance(body, str) else body
    status, answer = idle_daemon.raw(method, path, raw, timeout=30)
    assert status < 500, (method, path, raw[:200], status, answer)
    if status >= 400:
        assert isinstance(answer, dict) and answer.get("error"), answer
