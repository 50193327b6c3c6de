"""A hostile user against the system daemon's job files: run directories, logs, scripts.

Like ``test_security.py`` these need root: they create a second local user and run a
system daemon in a temporary GFLOW_HOME.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import AsUser, Gflow, needs_root

pytestmark = needs_root

RACER = r"""
import os, sys, time
run, logs, work, target, first, count = sys.argv[1:7]
first, count = int(first), int(count)
deadline = time.monotonic() + 120
swapped = 0
for job in range(first, first + count):
    links = {}
    for name in ("job.sh", "result"):
        links[f"{run}/{job}/{name}"] = f"{work}/link-{job}-{name}"
    links[f"{logs}/{job}.log"] = f"{work}/link-{job}-log"
    for dest, link in links.items():
        os.symlink(target, link)
    # Spin until the run directory is handed over, then swap its files at once.
    while links and time.monotonic() < deadline:
        for dest, link in list(links.items()):
            try:
                os.rename(link, dest)
            except OSError:
                continue
            del links[dest]
            swapped += 1
        if os.path.exists(f"{work}/stop") or (
            links and all(d.startswith(logs) for d in links) and os.path.exists(f"{run}/{job}/pid")
        ):
            break
    if os.path.exists(f"{work}/stop"):
        break
print(swapped)
"""


def test_a_user_cannot_turn_the_run_directory_handover_into_a_root_chown(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    """A racing helper swaps ``job.sh``, ``result`` and the log for links to a root-owned
    file while the daemon hands each new run directory over: root never chowns it."""
    alice = AsUser(system, other_user)
    target = system.home / "root-owned"
    target.write_text("root's\n")
    target.chmod(0o600)
    first = alice.submit("true")
    assert system.wait(first) == 0
    count = 20
    racer = subprocess.Popen(
        [
            "runuser",
            "-u",
            other_user.pw_name,
            "--",
            alice.python,
            "-c",
            RACER,
            str(system.home / "run"),
            str(system.home / "logs"),
            str(alice.work),
            str(target),
            str(first + 1),
            str(count),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(count):
            job = alice.submit("true")
            system.until(lambda j=job: system.state(j) not in ("Queued", "Running"))
            assert target.stat().st_uid == 0, f"root chowned {target} at job {job}"
    finally:
        (alice.work / "stop").touch()
        swapped, _ = racer.communicate(timeout=30)
    assert int(swapped) >= count  # the helper did replace the files it could reach
    assert target.read_text() == "root's\n"
    assert Path(target).stat().st_mode & 0o777 == 0o600
    assert os.stat(system.home / "run").st_uid == 0


POST = r"""
import json, sys
from gflow.client import Client
print(json.dumps(Client().post(sys.argv[1], json.loads(sys.argv[2]))))
"""


def post_as(user: AsUser, path: str, body: dict[str, Any]) -> Any:
    """A raw API request from the other user, as a hand-written client would send it."""
    done = user.run("-c", POST, path, json.dumps(body))
    return json.loads(done.stdout)


def test_the_daemon_does_not_look_at_a_script_on_the_users_behalf(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    """Whether a script the user cannot see exists and is executable is not revealed by
    how the job runs it: the job's own shell decides, with the user's rights."""
    alice = AsUser(system, other_user)
    hidden = system.home / "root-only"
    hidden.mkdir(mode=0o700)
    tool = hidden / "tool"
    tool.write_text("#!/bin/sh\necho ran\n")
    tool.chmod(0o755)
    ids = []
    for script in (tool, hidden / "missing"):
        body = {"command": [str(script)], "script": str(script), "workdir": str(alice.work)}
        ids.append(post_as(alice, "/v1/jobs", body)["jobs"][0]["id"])
    assert system.wait(*ids) != 0
    names = ("tool", "missing")
    seen = [system.log(job).replace(name, "SCRIPT") for job, name in zip(ids, names, strict=True)]
    assert "Permission denied" in seen[0]
    assert seen[0] == seen[1]
    mine = alice.work / "mine.sh"
    mine.write_text('#!/bin/sh\necho "$0"\n')
    os.chown(mine, other_user.pw_uid, other_user.pw_gid)
    direct = alice.submit(str(mine))
    mine.chmod(0o644)
    with_bash = alice.submit(str(mine))
    assert system.wait(direct, with_bash) == 0
    assert system.log(direct).strip() == system.log(with_bash).strip() == str(mine)
