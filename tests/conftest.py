"""Fixtures: a real gflowd in a temporary GFLOW_HOME (see :mod:`tests.helpers`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers import EXECUTORS, SCREENSHOTS, Gflow, short_home, teardown


@pytest.fixture(params=EXECUTORS)
def gflow(request: pytest.FixtureRequest) -> Iterator[Gflow]:
    """A running daemon with each executor."""
    g = Gflow(short_home(), request.param)
    g.start()
    yield g
    teardown(g)


@pytest.fixture
def gflow_process() -> Iterator[Gflow]:
    """A running daemon with the process executor (for tests where the executor is moot)."""
    g = Gflow(short_home(), "process")
    g.start()
    yield g
    teardown(g)


@pytest.fixture
def two_gpus(make_gflow: Callable[..., Gflow]) -> Gflow:
    """A running daemon with two fake 24 GiB GPUs."""
    g = make_gflow("process", GFLOW_FAKE_GPUS="2x24G")
    g.start()
    return g


@pytest.fixture
def make_gflow() -> Iterator[Callable[..., Gflow]]:
    """Build installations with custom environment (fake GPUs, memory, ...); not started."""
    made: list[Gflow] = []

    def factory(executor: str = "process", **env: str) -> Gflow:
        g = Gflow(short_home(), executor, env)
        made.append(g)
        return g

    yield factory
    for g in made:
        teardown(g)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.iterdir()):
        count = len(list(SCREENSHOTS.glob("*.png")))
        terminalreporter.write_line(f"dashboard screenshots ({count}): {SCREENSHOTS}")
