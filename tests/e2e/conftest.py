"""Fixtures of the end-to-end tests that need a second local user (root only)."""

from __future__ import annotations

import pwd
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import (
    ADMIN,
    ADMIN_GROUP,
    EXECUTORS,
    LOGIN,
    USER,
    Gflow,
    local_user,
    python_for,
    short_home,
    teardown,
)


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    entry = local_user(USER)
    if python_for(USER) is None:
        pytest.skip(f"no Python >= 3.11 that {USER} can run")
    yield entry


@pytest.fixture(scope="module")
def admin_user(other_user: pwd.struct_passwd) -> pwd.struct_passwd:
    """A second user, member of the group named as ``admin_group``."""
    subprocess.run(["groupadd", "-f", ADMIN_GROUP], check=True)
    return local_user(ADMIN, *LOGIN, "-G", ADMIN_GROUP)


@pytest.fixture(params=EXECUTORS)
def system(request: pytest.FixtureRequest, other_user: pwd.struct_passwd) -> Iterator[Gflow]:
    g = Gflow(short_home(), request.param)
    g.start("--system")
    yield g
    sock_dir = g.home / "tmux"
    if sock_dir.is_dir():
        for sock in sock_dir.glob("*/sock"):
            owner = sock.stat().st_uid
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    pwd.getpwuid(owner).pw_name,
                    "--",
                    "tmux",
                    "-S",
                    str(sock),
                    "kill-server",
                ],
                capture_output=True,
                check=False,
            )
    teardown(g)
