"""The daemon log's rate limit: a message repeated without end is written a few times."""

from __future__ import annotations

import logging

from gflow.logs import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, line: int = 10) -> logging.LogRecord:
    return logging.LogRecord("gflow.listener", logging.ERROR, "listener.py", line, msg, args, None)


def test_a_repeated_message_passes_a_few_times_a_window_then_says_how_many_were_left_out() -> None:
    clock = Clock()
    limit = RateLimit(burst=5, window=60, clock=clock)
    passed = [
        r for r in (record("cannot accept: %s", "EMFILE") for _ in range(10_000)) if limit.filter(r)
    ]
    assert len(passed) == 5
    clock.now += 61
    summary = record("cannot accept: %s", "EMFILE")
    assert limit.filter(summary)
    assert summary.getMessage() == (
        "cannot accept: EMFILE (9995 more like this in the 60 s before were not logged)"
    )
    assert sum(limit.filter(record("cannot accept: %s", "x")) for _ in range(100)) == 4


def test_other_call_sites_are_not_held_back() -> None:
    limit = RateLimit(burst=2, window=60, clock=Clock())
    for _ in range(50):
        limit.filter(record("flood"))
    assert limit.filter(record("something else", line=20))
