"""Multi-user safety: identity from the kernel, ownership, jobs run as their owner.

These tests need root: they create a second local user and run a system daemon
(``gflowd up --system``) in a temporary GFLOW_HOME. The other user's commands run
through ``runuser`` with a Python that user may execute, importing gflow from src/.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import ADMIN_GROUP, USER, AsUser, Gflow, needs_root, short_home, teardown

pytestmark = needs_root


def test_identity_comes_from_the_kernel_not_the_environment(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    alice = AsUser(system, other_user)
    job = alice.submit("sh", "-c", "id -u; id -un", USER="root", LOGNAME="root")
    assert system.wait(job) == 0
    row = system.job(job)
    assert (row["uid"], row["user"]) == (other_user.pw_uid, USER)


def test_jobs_run_as_their_owner_with_a_private_log(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    alice = AsUser(system, other_user)
    job = alice.submit("sh", "-c", "id -u; id -g; touch made-by-job")
    assert system.wait(job) == 0
    uid, gid = system.log(job).split()
    assert (int(uid), int(gid)) == (other_user.pw_uid, other_user.pw_gid)
    log = system.home / "logs" / f"{job}.log"
    info = log.stat()
    assert info.st_uid == other_user.pw_uid
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (alice.work / "made-by-job").stat().st_uid == other_user.pw_uid
    assert alice.run("gjob", "log", str(job)).stdout.split() == [uid, gid]


def test_gflowd_down_stops_each_users_tmux_server(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    alice = AsUser(system, other_user)
    job = alice.submit("true")
    assert system.wait(job) == 0
    sock = system.home / "tmux" / str(other_user.pw_uid) / "sock"
    look = ["runuser", "-u", USER, "--", "tmux", "-S", str(sock), "list-sessions"]

    def serving() -> bool:
        return subprocess.run(look, capture_output=True, check=False).returncode == 0

    assert serving() is (system.executor == "tmux")  # the ended job's session is kept
    system.stop()
    assert not serving()


def test_users_cannot_touch_each_others_jobs(system: Gflow, other_user: pwd.struct_passwd) -> None:
    alice = AsUser(system, other_user)
    roots = system.submit("--hold", "-n", "roots-job", "true")
    for argv in (
        ["gcancel", str(roots)],
        ["gjob", "hold", str(roots)],
        ["gjob", "release", str(roots)],
        ["gjob", "update", str(roots), "--priority", "5"],
    ):
        done = alice.run(*argv, check=False)
        assert done.returncode == 1, argv
        assert f"job {roots} belongs to root" in done.stderr
        assert "Traceback" not in done.stderr
    assert system.state(roots) == "Hold"
    assert system.job(roots)["priority"] == 10
    logged = alice.run("gjob", "log", str(roots), check=False)
    assert logged.returncode == 1
    theirs = alice.submit("--hold", "true")
    system.run("gcancel", str(theirs))
    assert system.state(theirs) == "Cancelled"


def test_users_cannot_read_other_logs(system: Gflow, other_user: pwd.struct_passwd) -> None:
    alice = AsUser(system, other_user)
    job = system.submit("echo", "secret")
    assert system.wait(job) == 0
    done = alice.run("gjob", "log", str(job), check=False)
    assert done.returncode == 1
    assert "secret" not in done.stdout
    assert "permission denied" in done.stderr


def test_runtime_controls_are_for_administrators(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    alice = AsUser(system, other_user)
    done = alice.run("gctl", "set-gpus", "all", check=False)
    assert done.returncode == 1
    assert "administrator" in done.stderr
    assert alice.run("gctl", "show-gpus").returncode == 0


def test_quotas_and_reservations_are_set_by_administrators_and_bind_other_users(
    system: Gflow, other_user: pwd.struct_passwd
) -> None:
    alice = AsUser(system, other_user)
    for argv in (
        ["quota", "set", "--user", USER, "--max-running-jobs", "5"],
        ["quota", "remove", "--default-user"],
        ["reserve", "create", "--user", USER, "--gpus", "1", "--start", "now", "--duration", "1h"],
        ["reserve", "cancel", "1"],
    ):
        done = alice.run("gctl", *argv, check=False)
        assert done.returncode == 1, argv
        assert "administrator" in done.stderr and "Traceback" not in done.stderr
    system.run("gctl", "quota", "set", "--user", USER, "--max-running-jobs", "0")
    assert f"user             {USER}" in alice.run("gctl", "quota", "list").stdout
    assert alice.run("gctl", "reserve", "list").stdout.strip() == "No reservations found."
    theirs = alice.submit("true")
    mine = system.submit("true")
    assert system.wait(mine) == 0
    rows = {j["id"]: j for j in system.queue_json("-u", "all")}
    assert rows[theirs]["reason"] == "Quota"
    system.run("gctl", "quota", "remove", "--user", USER)
    assert system.wait(theirs) == 0


def test_default_listing_is_your_own_jobs(system: Gflow, other_user: pwd.struct_passwd) -> None:
    alice = AsUser(system, other_user)
    mine = alice.submit("--hold", "true")
    roots = system.submit("--hold", "true")
    ids = alice.run("gqueue", "-f", "JOBID").stdout.split()[1:]
    assert ids == [str(mine)]
    everyone = alice.run("gqueue", "-u", "all", "-f", "JOBID,USER").stdout
    assert f"{roots}" in everyone and "root" in everyone


def _scratch_user() -> str:
    """A user of this test run alone, to delete: its name and uid are not another run's
    (runs on the same machine go at once), and no user made later gets its uid back."""
    for k in range(100):
        uid = 40000 + (os.getpid() + k) % 20000
        name = f"gflowgone{uid}"
        made = subprocess.run(["useradd", "-m", "-u", str(uid), name], capture_output=True)
        if made.returncode == 0:
            return name
    raise AssertionError("no free uid for a scratch user")


def test_a_job_whose_owner_was_deleted_breaks_no_listing(system: Gflow) -> None:
    name = _scratch_user()
    try:
        job = AsUser(system, pwd.getpwnam(name)).submit("--hold", "true")
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=True)
    assert f"Job {job} (" in system.run("gjob", "show", str(job)).stdout
    assert [row["id"] for row in system.queue_json("-u", "all")] == [job]
    system.run("gjob", "release", str(job))
    system.until_state(job, "Cancelled")  # it cannot start as nobody, and says so
    assert "SystemError" in system.job(job)["reason"]


def test_per_user_daemon_serves_only_its_user(other_user: pwd.struct_passwd) -> None:
    g = Gflow(short_home(), "process")
    g.start()
    try:
        sock = g.home / "gflowd.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        os.chmod(g.home, 0o755)
        alice = AsUser(g, other_user)
        done = alice.run("gqueue", check=False)
        assert done.returncode == 3
        assert "Traceback" not in done.stderr
    finally:
        teardown(g)


@pytest.fixture
def admin_system(other_user: pwd.struct_passwd, admin_user: pwd.struct_passwd) -> Iterator[Gflow]:
    g = Gflow(short_home(), "process", {"GFLOW_DAEMON__ADMIN_GROUP": ADMIN_GROUP})
    g.start("--system")
    yield g
    teardown(g)


def test_only_the_owner_or_root_changes_what_a_job_runs(
    admin_system: Gflow, other_user: pwd.struct_passwd, admin_user: pwd.struct_passwd
) -> None:
    g = admin_system
    admin, alice = AsUser(g, admin_user), AsUser(g, other_user)
    marker = g.home / "ran-as"
    evil = ["sh", "-c", f"id -u > {marker}"]
    roots = g.submit("sh", "-c", "exit 3")
    theirs = alice.submit("true")
    held = g.submit("--hold", "true")
    assert g.wait(roots) == 3 and g.wait(theirs) == 0
    for job in (roots, theirs):
        for changes in ({"command": evil}, {"conda_env": "base"}):
            for cascade in (False, True):
                body = {"id": str(job), "changes": changes, "cascade": cascade}
                status, message = admin.post("/v1/jobs/redo", body)
                assert status == 403, (job, changes)
                assert "only they (or root) may change what it runs" in message
    body = {"ids": str(held), "changes": {"command": evil}}
    status, message = admin.post("/v1/jobs/update", body)
    assert status == 403 and "belongs to root" in message
    assert g.show(held)["command"] == ["true"]
    # an administrator may still redo a job as it was, and root and the owner may change it
    again = int(admin.run("gjob", "redo", str(theirs), "--priority", "5").stdout.split()[3])
    assert g.wait(again) == 0 and g.job(again)["uid"] == other_user.pw_uid
    harmless = {"command": ["true"]}
    assert alice.post("/v1/jobs/redo", {"id": str(theirs), "changes": harmless})[0] == 200
    assert g.api().post("/v1/jobs/redo", {"id": str(roots), "changes": harmless})
    assert not marker.exists()


def test_only_administrators_stop_the_system_daemon(
    admin_system: Gflow, other_user: pwd.struct_passwd, admin_user: pwd.struct_passwd
) -> None:
    g = admin_system
    done = AsUser(g, other_user).run("gflowd", "down", check=False)
    assert done.returncode == 1
    assert "gflowd: error: permission denied: only an administrator" in done.stderr
    assert g.run("gflowd", "status").returncode == 0
    assert AsUser(g, admin_user).run("gflowd", "down").stdout.strip() == "gflowd stopped."
    assert g.run("gflowd", "status", check=False).returncode == 3


FLOOD = """
import socket, sys
def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(sys.argv[1])
    return sock
held = [connect() for _ in range(int(sys.argv[2]))]
answers = []
for _ in range(int(sys.argv[3])):
    sock, data = connect(), b""
    while chunk := sock.recv(4096):
        data += chunk
    answers.append(data.split(b"\\r\\n", 1)[0].decode())
    sock.close()
print(*answers, sep="|", flush=True)
sys.stdin.read()
"""


def test_an_idle_flood_from_one_user_does_not_lock_out_the_others(
    make_gflow: Callable[..., Gflow], other_user: pwd.struct_passwd
) -> None:
    g = make_gflow(
        "process", GFLOW_DAEMON__MAX_CONNECTIONS_PER_USER="20", GFLOW_DAEMON__IDLE_TIMEOUT="300"
    )
    g.start("--system")
    alice = AsUser(g, other_user)
    sock = str(g.home / "gflowd.sock")
    flood = subprocess.Popen(
        alice.argv("-c", FLOOD, sock, "20", "5"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout is not None
        answers = flood.stdout.readline().strip().split("|")
        assert answers == ["HTTP/1.1 503 Service Unavailable"] * 5
        # everyone else is served; the flooder hears why they are not
        assert g.run("gqueue").returncode == 0
        job = g.submit("true")
        assert g.wait(job) == 0
        done = alice.run("gqueue", check=False)
        assert done.returncode == 1
        assert f"too many connections from uid {other_user.pw_uid} (at most 20" in done.stderr
    finally:
        flood.communicate("", timeout=60)
    g.until(lambda: alice.run("gqueue", check=False).returncode == 0, what="the flood to go")


SQUAT = """
import socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
sys.stdin.read()
server.setblocking(False)
connections, received = 0, b""
while True:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        break
    connections += 1
    conn.settimeout(5)
    try:
        received += conn.recv(65536)
    except OSError:
        pass
    conn.close()
print(connections, len(received), flush=True)
"""


def test_another_user_holding_the_tcp_port_never_hears_from_gflow(
    make_gflow: Callable[..., Gflow], other_user: pwd.struct_passwd
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    g = make_gflow("process", GFLOW_DAEMON__TCP="1", GFLOW_DAEMON__PORT=str(port))
    squat = subprocess.Popen(
        AsUser(g, other_user).argv("-c", SQUAT, str(port)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert squat.stdout is not None and squat.stdout.readline().strip() == "ready"
        g.start()
        (g.home / "gflowd.sock").rename(g.home / "elsewhere.sock")  # as if unreachable
        g.env["GFLOW_TCP"] = "1"
        for argv in (["gqueue"], ["gbatch", "true"], ["gflowd", "status"]):
            done = g.run(*argv, check=False)
            assert done.returncode == 1, argv
            assert (
                f"refusing to talk TCP to 127.0.0.1:{port}: it is held by "
                f"uid {other_user.pw_uid} ({USER})" in done.stderr
            )
    finally:
        g.env.pop("GFLOW_TCP", None)
        out, _ = squat.communicate("", timeout=30)
    assert out.split() == ["0", "0"]  # not a connection, not a byte
