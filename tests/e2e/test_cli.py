"""The command-line surface, end to end: every option and alias, formats, errors, help.

One daemon (process executor, two fake 24 GiB GPUs) serves the whole module; most
jobs are submitted held (``-H``) so nothing runs and their recorded fields can be
compared with what was typed. Jobs that must run are short or wait on a gate file.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BIN, TOOLS, Gflow, fake_conda, short_home, teardown


@pytest.fixture(scope="module")
def cli() -> Iterator[Gflow]:
    g = Gflow(short_home(), "process", {"GFLOW_FAKE_GPUS": "2x24G"})
    fake_conda(g, "env-a", "env-b", "other")
    g.start()
    yield g
    teardown(g)


@pytest.fixture
def no_daemon() -> Iterator[Gflow]:
    g = Gflow(short_home(), "process")
    yield g
    teardown(g)


def held(g: Gflow, *argv: str) -> dict[str, Any]:
    """Submit a held job and return what the daemon recorded."""
    return g.show(g.submit("-H", *argv))


def ids_of(g: Gflow, *argv: str) -> list[int]:
    return [j["id"] for j in g.queue_json(*argv)]


# ------------------------------------------------------------ gbatch options


@pytest.mark.parametrize(
    ("flags", "key", "value"),
    [
        (["-n", "a-1"], "name", "a-1"),
        (["--name", "a-2"], "name", "a-2"),
        (["-J", "a-3"], "name", "a-3"),
        (["--job-name", "a-4"], "name", "a-4"),
        (["-g", "1"], "gpus", 1),
        (["--gpus", "2"], "gpus", 2),
        (["--gres", "gpu:1"], "gpus", 1),
        (["-G", "2"], "gpus", 2),
        (["-t", "10"], "time_limit", 600),
        (["--time", "1:30"], "time_limit", 90),
        (["--time-limit", "1:00:00"], "time_limit", 3600),
        (["--timelimit", "2-00:00:00"], "time_limit", 172800),
        (["-m", "512"], "memory_mb", 512),
        (["--memory", "1024M"], "memory_mb", 1024),
        (["--max-mem", "2G"], "memory_mb", 2048),
        (["--mem", "1.5G"], "memory_mb", 1536),
        (["-p", "50"], "priority", 50),
        (["--priority", "0"], "priority", 0),
        (["--nice", "3"], "priority", 7),  # Slurm's --nice lowers the priority
        (["-P", "vision"], "project", "vision"),
        (["--project", "  nlp  "], "project", "nlp"),
        (["-g", "1", "--shared", "--gpu-memory", "8G"], "gpu_memory_mb", 8192),
        (["-g", "1", "--shared", "--max-gpu-mem", "4096"], "gpu_memory_mb", 4096),
        (["-c", "env-a"], "conda_env", "env-a"),
        (["--conda-env", "env-b"], "conda_env", "env-b"),
        (["--max-retries", "2"], "max_retries", 2),
        (["--auto-close"], "auto_close", True),
    ],
)
def test_gbatch_options_and_aliases(cli: Gflow, flags: list[str], key: str, value: Any) -> None:
    job = held(cli, *flags, "echo", "hi")
    assert job[key] == value
    assert job["state"] == "Hold"
    assert job["command"] == ["echo", "hi"]


def test_gbatch_default_name_is_readable_and_random(cli: Gflow) -> None:
    names = {held(cli, "true")["name"] for _ in range(3)}
    assert all(n.count("-") == 1 and n.replace("-", "").isalpha() for n in names)


@pytest.mark.parametrize(
    ("text", "offset"),
    [("now+1h", 3600), ("now+90s", 90), ("now+2d", 172800), ("now+30m", 1800)],
)
def test_gbatch_begin_relative(cli: Gflow, text: str, offset: int) -> None:
    before = time.time()
    job = held(cli, "--begin", text, "true")
    assert before + offset - 1 <= job["begin_at"] <= time.time() + offset + 1


def test_gbatch_begin_absolute(cli: Gflow) -> None:
    import datetime

    day = held(cli, "--begin", "2099-03-04", "true")["begin_at"]
    assert datetime.datetime.fromtimestamp(day).timetuple()[:6] == (2099, 3, 4, 0, 0, 0)
    stamp = held(cli, "--begin", "2099-03-04T05:06:07", "true")["begin_at"]
    assert datetime.datetime.fromtimestamp(stamp).timetuple()[:6] == (2099, 3, 4, 5, 6, 7)
    clock = held(cli, "--begin", "23:59", "true")["begin_at"]
    assert time.time() < clock <= time.time() + 86400
    assert datetime.datetime.fromtimestamp(clock).strftime("%H:%M") == "23:59"


def test_gbatch_conda_env_defaults_to_the_active_one_for_commands(cli: Gflow) -> None:
    script = cli.work / "plain.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    cli.env["CONDA_DEFAULT_ENV"] = "active-env"
    try:
        assert held(cli, "true")["conda_env"] == "active-env"
        assert held(cli, str(script))["conda_env"] is None
        assert held(cli, "-c", "other", "true")["conda_env"] == "other"
    finally:
        del cli.env["CONDA_DEFAULT_ENV"]


def test_gbatch_directives_and_flags_win(cli: Gflow) -> None:
    a = cli.submit("-H", "-n", "dep-a", "true")
    b = cli.submit("-H", "-n", "dep-b", "true")
    script = cli.work / "directed.sh"
    script.write_text(
        "#!/bin/bash\n"
        "# GFLOW --name=from-directive --priority=5\n"
        "# GFLOW --time=10 -m 1G\n"
        f"# GFLOW --depends-on={a}\n"
        "## GFLOW --gpus=2\n"
        "echo body\n"
    )
    plain = held(cli, str(script))
    assert (plain["name"], plain["priority"], plain["time_limit"]) == ("from-directive", 5, 600)
    assert (plain["memory_mb"], plain["gpus"], plain["parents"]) == (1024, 0, [a])
    flagged = held(cli, "-p", "7", "-d", str(b), "-t", "1:00:00", str(script), "arg")
    assert (flagged["name"], flagged["priority"], flagged["time_limit"]) == (
        "from-directive",
        7,
        3600,
    )
    assert flagged["parents"] == [b]
    assert flagged["command"] == [str(script), "arg"]


def test_gbatch_sbatch_lines(cli: Gflow) -> None:
    parent = cli.submit("-H", "true")
    script = cli.work / "slurm.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=from-sbatch\n"
        "#SBATCH --time=0:30\n"
        "#SBATCH --gres=gpu:1\n"
        "#SBATCH --mem=2G\n"
        f"#SBATCH --dependency=afterany:{parent}\n"
        "#SBATCH -p gpu\n"
        "#SBATCH --output=slurm-%j.out\n"
        "hostname\n"
    )
    done = cli.run("gbatch", "-H", str(script))
    assert "ignoring #SBATCH options" in done.stderr and "-p gpu" in done.stderr
    job = cli.show(int(done.stdout.split()[3]))
    assert (job["name"], job["time_limit"], job["gpus"], job["memory_mb"]) == (
        "from-sbatch",
        30,
        1,
        2048,
    )
    assert job["dependency"] == f"afterany:{parent}"
    flagged = held(cli, "-J", "mine", "--gres", "gpu:2", str(script))
    assert (flagged["name"], flagged["gpus"]) == ("mine", 2)


def test_gbatch_bad_directive_is_one_line(cli: Gflow) -> None:
    script = cli.work / "bad.sh"
    script.write_text("#!/bin/bash\n# GFLOW --gpus\necho\n")
    done = cli.run("gbatch", str(script), check=False)
    assert done.returncode == 2
    assert str(script) in done.stderr and done.stderr.count("\n") == 1


def test_gbatch_dry_run_submits_nothing(cli: Gflow) -> None:
    before = ids_of(cli, "-a")
    done = cli.run("gbatch", "--dry-run", "-g", "1", "-n", "dry", "python", "train.py")
    assert done.stdout.startswith("Would submit 1 batch job")
    assert "dry: python train.py (GPUs: 1)" in done.stdout
    array = cli.run("gbatch", "--dry-run", "--array", "1-3", "echo", "x").stdout
    assert array.count("task") == 3
    sweep = cli.run("gbatch", "--dry-run", "--param", "lr=0.1,0.2", "echo", "{lr}").stdout
    assert "echo 0.1" in sweep and "echo 0.2" in sweep
    named = cli.run("gbatch", "--dry-run", "-n", "sub", "--", "new", "x").stdout
    assert "sub: new x (GPUs: 0)" in named
    bad = cli.run("gbatch", "--dry-run", "--depends-on", "999999", "true", check=False)
    assert bad.returncode == 1
    assert ids_of(cli, "-a") == before


def test_gbatch_new_writes_a_working_template(cli: Gflow) -> None:
    done = cli.run("gbatch", "new", "tmpl")
    path = cli.work / "tmpl.sh"
    assert "tmpl.sh" in done.stdout and os.access(path, os.X_OK)
    text = path.read_text()
    assert "## GFLOW --gpus=1" in text and "## GFLOW --time=" in text
    again = cli.run("gbatch", "new", "tmpl", check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    job = cli.submit("tmpl.sh")
    assert cli.wait(job) == 0
    assert cli.log(job).startswith(f"job {job} (")


def test_gbatch_script_on_stdin(cli: Gflow) -> None:
    text = '#!/bin/bash\n# GFLOW --priority=42\nx=world\necho "hello $x"\n'
    done = cli.run("gbatch", "-n", "stdin-job", input=text)
    job = int(done.stdout.split()[3])
    assert cli.wait(job) == 0
    assert cli.log(job) == "hello world\n"
    assert cli.show(job)["priority"] == 42
    empty = cli.run("gbatch", input="", check=False)
    assert empty.returncode == 2 and "required" in empty.stderr


# ------------------------------------------------------------ gqueue


ALL_FIELDS = (
    "JOBID,NAME,ST,TIME,TIMELIMIT,MEMORY,NODES,NODELIST(REASON),USER,PROJECT,PRIORITY,"
    "REASON,DEPENDENCY"
)


def test_gqueue_every_field_with_columns_that_fit(cli: Gflow) -> None:
    parent = cli.submit("-H", "-n", "q-parent", "true")
    job = cli.submit(
        "-H", "-n", "q-fields-with-a-long-name", "-P", "proj", "-t", "1:30:00", "-m", "1536",
        "-g", "1", "-p", "33", "-d", str(parent), "true",
    )  # fmt: skip
    out = cli.run("gqueue", "-j", f"{parent},{job}", "-f", ALL_FIELDS).stdout
    header, first, second = out.splitlines()
    names = ALL_FIELDS.split(",")
    assert header.split() == names
    starts: list[int] = []
    for n in names:
        starts.append(header.index(n, starts[-1] + 1 if starts else 0))
    values = [
        str(job), "q-fields-with-a-long-name", "H", "-", "01:30:00", "1.5G", "1",
        "(JobHeldUser)", cli.show(job)["user"], "proj", "33", "JobHeldUser",
        f"afterok:{parent}",
    ]  # fmt: skip
    for start, value in zip(starts, values, strict=True):
        assert second[start : start + len(value)] == value, (value, second)
        assert first[start - 1 : start] in ("", " ")
    assert "\033" not in out
    assert starts[2] - starts[1] == len("q-fields-with-a-long-name") + 2


def test_gqueue_state_code_for_scripts(cli: Gflow) -> None:
    job = cli.submit("true")
    assert cli.wait(job) == 0
    env = {k: v for k, v in cli.env.items() if k != "NO_COLOR"}
    done = subprocess.run(
        ["sh", "-c", f"gqueue -j {job} -f ST | tail -n 1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "CD\n"


def test_gqueue_filters(cli: Gflow) -> None:
    fin = cli.submit("-n", "qf-fin", "true")
    fail = cli.submit("-n", "qf-fail", "sh", "-c", "exit 1")
    hold = cli.submit("-H", "-n", "qf-held", "-P", "qf-proj", "-p", "99", "true")
    cli.wait(fin, fail)
    names = "qf-fin,qf-fail,qf-held"
    assert ids_of(cli, "-N", names) == [fin, fail, hold]
    assert ids_of(cli, "-N", names, "-c") == [fin, fail]
    assert ids_of(cli, "-N", names, "-s", "F") == [fail]
    assert ids_of(cli, "-N", names, "-s", "Hold,Finished") == [fin, hold]
    assert ids_of(cli, "-N", names, "-P", "qf-proj") == [hold]
    assert ids_of(cli, "-N", names, "-u", "all") == [fin, fail, hold]
    assert ids_of(cli, "-N", names, "-u", cli.show(fin)["user"]) == [fin, fail, hold]
    assert ids_of(cli, "-N", names, "--since", "1h") == [fin, fail, hold]
    assert ids_of(cli, "-N", names, "--since", "2099-01-01") == [hold]  # active: always
    assert ids_of(cli, "-N", names, "-r", "name") == [fail, fin, hold]
    assert ids_of(cli, "-N", names, "-r", "priority")[0] == hold
    assert ids_of(cli, "-N", names, "-r", "state")[0] == hold
    assert ids_of(cli, "-N", names, "-n", "1") == [fin]
    assert ids_of(cli, "-N", names, "-n", "-2") == [fail, hold]
    assert ids_of(cli, "-j", f"{fin}-{hold}") == [fin, fail, hold]
    assert hold in ids_of(cli)
    assert fin not in ids_of(cli)
    assert fin in ids_of(cli, "-a")
    assert ids_of(cli, "-N", names, "-T") == []


def test_gqueue_group_tree_csv_json(cli: Gflow) -> None:
    root = cli.submit("-H", "-n", "t-root", "true")
    child = cli.submit("-H", "-n", "t-child", "-d", str(root), "true")
    other = cli.submit("-H", "-n", "t-other", "true")
    both = cli.submit("-H", "-n", "t-both", "--depends-on-all", f"{child},{other}", "true")
    sel = f"{root},{child},{other},{both}"
    tree = cli.run("gqueue", "-j", sel, "-t", "-f", "JOBID,NAME").stdout.splitlines()
    assert tree[0].split() == ["JOBID", "NAME"]
    assert tree[1].split() == [str(root), "t-root"]
    assert tree[2].split() == [f"└─{child}", "t-child"]
    assert tree[3].startswith(f"  └─{both}  ")
    assert tree[3].split()[1:] == ["t-both", "(also", "after", f"{other})"]
    assert tree[4].split() == [str(other), "t-other"]
    grouped = cli.run("gqueue", "-j", sel, "-g").stdout
    assert grouped.startswith("Hold (4)\n" + "─" * 60 + "\nJOBID")
    csv = cli.run("gqueue", "-j", sel, "-o", "csv", "-f", "JOBID,ST,DEPENDENCY").stdout
    assert csv.splitlines()[0] == "JOBID,ST,DEPENDENCY"
    assert f"{child},H,afterok:{root}" in csv.splitlines()
    data = json.loads(cli.run("gqueue", "-j", sel, "-o", "json").stdout)
    assert data["total"] == 4 and [j["id"] for j in data["jobs"]] == [root, child, other, both]


def test_gqueue_watch_redraws_and_exits_0_on_ctrl_c(cli: Gflow) -> None:
    proc = subprocess.Popen(
        [str(BIN / "gqueue"), "-w", "--interval", "0.2"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # as typed in a terminal: a runner started in the background (CI, nohup) would
        # pass SIGINT on ignored, and Python then never turns it into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 30
    while seen.count(b"Ctrl-C to stop") < 2 and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)
    assert seen.count(b"Ctrl-C to stop") >= 2
    assert b"\033" not in seen  # not a terminal: no screen clearing, no colour
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"Traceback" not in err


# ------------------------------------------------------------ gcancel


def test_gcancel_id_forms(cli: Gflow) -> None:
    ids = [cli.submit("-H", "true") for _ in range(8)]
    a = ids[0]
    assert cli.run("gcancel", str(a)).stdout == f"Job {a} cancelled.\n"
    cli.run("gcancel", f"{a + 1},{a + 2}")
    cli.run("gcancel", f"{a + 3}-{a + 4}")
    out = cli.run("gcancel", f"{a + 5},{a + 6}-{a + 7}").stdout
    assert out.count("cancelled.") == 3
    assert {cli.state(i) for i in ids} == {"Cancelled"}
    last = cli.submit("-H", "true")
    assert cli.run("gcancel", "@").stdout == f"Job {last} cancelled.\n"
    again = cli.run("gcancel", str(last), check=False)
    assert again.returncode == 1
    assert again.stderr == (
        f"gcancel: error: nothing to cancel: job {last} had already ended (Cancelled)\n"
    )


def test_gcancel_of_a_partly_ended_array_cancels_the_rest_and_names_dependents(
    cli: Gflow,
) -> None:
    script = f'[ "$GFLOW_ARRAY_TASK_ID" = 1 ] || {cli.gate("never-opened")}'
    tasks = cli.submit_many("--array", "1-3", "-n", "c-array", "sh", "-c", script)
    cli.until_state(tasks[0], "Finished")
    child = cli.submit("-n", "c-after", "-d", str(tasks[0]), "true")  # the whole array
    done = cli.run("gcancel", str(tasks[0]))
    assert done.stderr == (
        f"gcancel: job {tasks[0]} had already ended (Finished); the others were cancelled\n"
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith(f"  dependent {child} (c-after, Queued): cancelled too ")
    cli.until_state(child, "Cancelled")
    assert cli.show(child)["reason"] in {f"DependencyFailed:{t}" for t in tasks[1:]}


def test_gcancel_dry_run_lists_dependents_and_changes_nothing(cli: Gflow) -> None:
    parent = cli.submit("-H", "-n", "c-parent", "true")
    child = cli.submit("-H", "-n", "c-child", "-d", str(parent), "true")
    out = cli.run("gcancel", "--dry-run", str(parent)).stdout
    assert f"Job {parent} (c-parent, Hold): would cancel" in out
    assert f"dependent {child} (c-child, Hold)" in out
    assert (cli.state(parent), cli.state(child)) == ("Hold", "Hold")
    cli.run("gcancel", str(parent))
    cli.until_state(child, "Cancelled")
    assert cli.show(child)["reason"] == f"DependencyFailed:{parent}"


# ------------------------------------------------------------ gjob


def test_gjob_show_log_and_wait(cli: Gflow) -> None:
    job = cli.submit("-n", "shown", "printf", "line%s\\n", "1", "2", "3", "4", "5")
    assert cli.wait(job) == 0
    show = cli.run("gjob", "show", str(job)).stdout
    for text in ("Job", "State=Finished (CD)", "ExitCode=0", "Command=printf", "WorkDir=", "Log="):
        assert text in show
    assert cli.run("gjob", "s", "@").stdout == show
    assert cli.run("gjob", "log", str(job)).stdout == "".join(f"line{i}\n" for i in range(1, 6))
    assert cli.run("gjob", "log", str(job), "--first", "2").stdout == "line1\nline2\n"
    assert cli.run("gjob", "l", str(job), "-l", "1").stdout == "line5\n"
    assert cli.run("gjob", "log", str(job), "--path").stdout.strip().endswith(f"{job}.log")
    failed = cli.submit("sh", "-c", "exit 7")
    assert cli.wait(failed) == 7
    gated = cli.submit("-H", "true")
    cli.run("gcancel", str(gated))
    assert cli.wait(gated) == 125
    timed = cli.submit("-t", "0:01", "sleep", "60")
    assert cli.wait(timed) == 124
    assert cli.state(timed) == "Timeout"


def test_gjob_log_follow(cli: Gflow) -> None:
    gate = cli.work / "follow-gate"
    job = cli.submit(
        "sh", "-c", f"echo first; while [ ! -e {gate} ]; do sleep 0.02; done; echo second"
    )
    cli.until_state(job, "Running")
    proc = subprocess.Popen(
        [str(BIN / "gjob"), "log", str(job), "--follow"],
        env=cli.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    cli.until(lambda: "first" in cli.log(job))
    cli.open_gate("follow-gate")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out == "first\nsecond\n"


COUNT_READS = (
    "import atexit, sys\n"
    "atexit.register(lambda: print(open('/proc/self/io').read(), file=sys.stderr))\n"
    "from gflow.cli.gjob import entry\n"
    "sys.argv[0] = 'gjob'\n"
    "entry()\n"
)


def test_gjob_log_reads_only_the_lines_it_prints(cli: Gflow) -> None:
    """``--last`` seeks from the end of a huge log and ``--first`` stops early: the bytes
    the command reads (counted by the kernel) stay far below the log's size."""
    job = cli.submit("printf", "head1\\nhead2\\n")
    assert cli.wait(job) == 0
    log = cli.home / "logs" / f"{job}.log"
    with open(log, "r+b") as fh:
        fh.truncate(256 << 20)  # sparse: 256 MiB of NUL bytes after the job's output
        fh.seek(0, os.SEEK_END)
        fh.write(b"\ntail1\ntail2")
    for argv, expected in (
        (["--last", "2"], "tail1\ntail2"),
        (["--first", "2"], "head1\nhead2\n"),
    ):
        done = cli.run(sys.executable, "-c", COUNT_READS, "log", str(job), *argv)
        assert done.stdout == expected
        read = int(done.stderr.split("rchar: ")[1].split()[0])
        assert read < 32 << 20, (argv, read)


def test_gjob_hold_release_update_redo(cli: Gflow) -> None:
    job = cli.submit("-n", "ctl", "--begin", "now+1h", "true")
    assert cli.run("gjob", "hold", str(job)).stdout == f"Job {job} put on hold.\n"
    assert cli.state(job) == "Hold"
    out = cli.run("gjob", "update", str(job), "-g", "1", "-p", "77", "--time-limit", "5").stdout
    assert out.startswith(f"Job {job} updated")
    shown = cli.show(job)
    assert (shown["gpus"], shown["priority"], shown["time_limit"]) == (1, 77, 300)
    cli.run("gjob", "u", str(job), "--memory-limit", "2G", "--command", "echo", "new words")
    assert cli.show(job)["memory_mb"] == 2048
    assert cli.show(job)["command"] == ["echo", "new words"]
    cli.run("gjob", "release", str(job), "--at", "now+2h")
    shown = cli.show(job)
    assert shown["state"] == "Queued" and shown["reason"] == "BeginTime"
    assert shown["begin_at"] > time.time() + 7000
    assert cli.run("gjob", "hold", str(job)).returncode == 0
    cli.run("gjob", "r", str(job))
    cli.run("gjob", "update", str(job), "--begin", "now")
    assert cli.wait(job) == 0
    refused = cli.run("gjob", "update", str(job), "-p", "1", check=False)
    assert refused.returncode == 1 and "\n" not in refused.stderr.strip()
    not_held = cli.run("gjob", "release", str(job), check=False)
    assert not_held.returncode == 1
    redo = cli.run("gjob", "redo", str(job), "--gpus", "0", "--priority", "3").stdout
    new = int(redo.split()[3])
    assert f"redo of job {job}" in redo
    assert cli.wait(new) == 0 and cli.show(new)["priority"] == 3


def test_gjob_sessions_and_attach_without_tmux(cli: Gflow) -> None:
    job = cli.submit("true")
    assert cli.wait(job) == 0
    done = cli.run("gjob", "attach", str(job), check=False)
    assert done.returncode == 1 and "gjob log" in done.stderr
    assert cli.run("gjob", "close-sessions", "-a").returncode == 0
    assert cli.run("gjob", "close", "-s", "Finished,F").returncode == 0
    none = cli.run("gjob", "close-sessions", "-p", "no-such-name-*")
    assert "no matching" in none.stderr


# ------------------------------------------------------------ ginfo, gflowd, gstats


def test_ginfo_gflowd_status_gstats(cli: Gflow) -> None:
    job = cli.submit("-g", "1", "-n", "gpu-user", "sh", "-c", cli.gate("info-gate"))
    cli.until_state(job, "Running")
    info = cli.run("ginfo").stdout
    assert "GPU" in info.splitlines()[0] and "STATE" in info.splitlines()[0]
    assert f"allocated to job {job} (gpu-user)" in info and "idle" in info
    assert json.loads(cli.run("ginfo", "-o", "json").stdout)["gpus"][0]["index"] == 0
    cli.open_gate("info-gate")
    assert cli.wait(job) == 0
    status = cli.run("gflowd", "status").stdout
    for key in ("Status:    Running", "PID:", "Uptime:", "Executor:  process"):
        assert key in status
    assert f"Version:   {importlib.metadata.version('gflow-scheduler')}\n" in status
    assert "GPUs:      2 total" in status and "Database:" in status
    stats = json.loads(cli.run("gstats", "-o", "json").stdout)
    assert stats["total_jobs"] > 0 and stats["by_state"]["Finished"] > 0
    assert cli.run("gstats", "-o", "csv").stdout.startswith("metric,value\ntotal_jobs,")
    table = cli.run("gstats", "--since", "1d").stdout
    assert "Usage statistics" in table and "Success" in table
    assert cli.run("gstats", "-a", "-t", "today").returncode == 0


# ------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["gbatch", "--time", "abc", "true"], 2, "'abc'"),
        (["gbatch", "--time", "1:99", "true"], 2, "HH:MM:SS"),
        (["gbatch", "--memory", "12X", "true"], 2, "1024M"),
        (["gbatch", "--priority", "300", "true"], 2, "0 to 255"),
        (["gbatch", "--begin", "someday", "true"], 2, "now+N"),
        (["gbatch", "--array", "5-1", "true"], 2, "'5-1'"),
        (["gbatch", "--gpus", "x", "true"], 2, "'x'"),
        (["gbatch", "--shared", "-g", "1", "true"], 2, "--gpu-memory"),
        (["gbatch", "-g", "99", "true"], 1, "99"),
        (["gbatch", "--depends-on", "999999", "true"], 1, "999999"),
        (["gbatch", "--depends-on", "afterfoo:1", "true"], 2, "afterfoo"),
        (["gbatch", "--param", "=1", "echo"], 2, "KEY=V1"),
        (["gbatch", "--bogus", "true"], 2, "--bogus"),
        (["gbatch", "new"], 2, "NAME"),
        (["gbatch", "completion", "tcsh"], 2, "tcsh"),
        (["gqueue", "-f", "NOPE"], 2, "'NOPE'"),
        (["gqueue", "-s", "Nope"], 2, "Running (R)"),
        (["gqueue", "-o", "xml"], 2, "'xml'"),
        (["gqueue", "-n", "x"], 2, "'x'"),
        (["gqueue", "--since", "never"], 2, "today"),
        (["gqueue", "-r", "size"], 2, "'size'"),
        (["gqueue", "-j", "abc"], 2, "'abc'"),
        (["gqueue", "-u", "no-such-user-x"], 2, "no-such-user-x"),
        (["gqueue", "-w", "--interval", "0"], 2, "--interval"),
        (["gcancel"], 2, "IDS"),
        (["gcancel", "abc"], 2, "'abc'"),
        (["gcancel", "5-1"], 2, "'5-1'"),
        (["gcancel", "999999"], 1, "999999"),
        (["gjob"], 2, "COMMAND"),
        (["gjob", "frob"], 2, "'frob'"),
        (["gjob", "show", "999999"], 1, "999999"),
        (["gjob", "log", "999999"], 1, "999999"),
        (["gjob", "log", "1", "--last", "-3"], 2, "'-3'"),
        (["gjob", "update", "1"], 2, "nothing to update"),
        (["gjob", "release", "1", "--at", "whenever"], 2, "'whenever'"),
        (["gjob", "wait", "abc"], 2, "'abc'"),
        (["gjob", "close-sessions"], 2, "-a"),
        (["gctl", "set-gpus", "7"], 1, "GPU 7"),
        (["gctl", "set-limit", "x", "1"], 2, "'x'"),
        (["gctl", "gpu-process", "ignore"], 2, "--pid"),
        (["gstats", "--since", "bogus"], 2, "'bogus'"),
        (["gstats", "-o", "yaml"], 2, "'yaml'"),
        (["ginfo", "-o", "xml"], 2, "'xml'"),
        (["gflowd", "frob"], 2, "'frob'"),
        (["gflowd", "up", "--foreground"], 1, "already running"),
    ],
)
def test_errors_are_one_line_with_the_right_status(
    cli: Gflow, argv: list[str], code: int, needle: str
) -> None:
    done = cli.run(*argv, check=False, input="")
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{argv[0]}: error: ")
    assert needle in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["gqueue"],
        ["gbatch", "true"],
        ["gcancel", "1"],
        ["gjob", "show", "1"],
        ["gjob", "wait", "1"],
        ["ginfo"],
        ["gstats"],
        ["gctl", "show-gpus"],
        ["gflowd", "reload"],
    ],
)
def test_daemon_down_exit_3_with_hint(no_daemon: Gflow, argv: list[str]) -> None:
    done = no_daemon.run(*argv, check=False)
    assert done.returncode == 3
    assert "start it with: gflowd up" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 2


def test_gflowd_status_when_down(no_daemon: Gflow) -> None:
    done = no_daemon.run("gflowd", "status", check=False)
    assert done.returncode == 3 and "Not running" in done.stdout and "gflowd up" in done.stdout


# ------------------------------------------------------------ help


def _help_commands() -> list[list[str]]:
    import argparse

    commands: list[list[str]] = []
    for tool in TOOLS:
        parser = importlib.import_module(f"gflow.cli.{tool}").build_parser()
        commands += [[tool], [tool, "completion"]]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                commands += [[tool, name] for name in action.choices if name != "completion"]
    return [*commands, ["gbatch", "new"]]


def test_help_of_every_command_and_subcommand_has_an_example(tmp_path: Any) -> None:
    env = {**os.environ, "GFLOW_HOME": str(tmp_path), "COLUMNS": "100"}
    commands = _help_commands()
    assert len(commands) > 35
    for argv in commands:
        done = subprocess.run(
            [str(BIN / argv[0]), *argv[1:], "--help"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0, (argv, done.stderr)
        assert "example" in done.stdout, argv
        assert done.stdout.startswith("usage: "), argv


def test_gflowd_subcommands(no_daemon: Gflow) -> None:
    g = no_daemon
    assert "Configuration saved to:" in g.run("gflowd", "init", "--yes").stdout
    assert (g.home / "gflow.toml").exists()
    again = g.run("gflowd", "init", "--yes", check=False)
    assert again.returncode == 1 and "--force" in again.stderr
    g.run("gflowd", "init", "--yes", "--force")
    g.run("gflowd", "-v", "start", "--gpus", "all", "--gpu-allocation-strategy", "random")
    first = g.daemon_pid()
    assert "already running" in g.run("gflowd", "up").stdout  # exit 0: scripts call it
    assert "reloaded" in g.run("gflowd", "reload").stdout
    g.run("gflowd", "restart")
    assert g.daemon_pid() not in (None, first)
    assert "stopped" in g.run("gflowd", "stop").stdout
    assert g.run("gflowd", "status", check=False).returncode == 3
    assert "not running" in g.run("gflowd", "down").stdout
