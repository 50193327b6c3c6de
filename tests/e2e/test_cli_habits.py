"""What a new user, or one coming from Slurm or ``tail -f``, expects of the commands.

One line per array submission, the name a dry run shows is the one the job gets, a
command shown as the shell would take it back, ``--nice`` lowering the priority, array
ids where one job is needed, ``gjob log --follow`` on a waiting job, ``gjob wait``
following retries, ``gqueue -j`` over ids that do not all exist, ``gflowd up`` twice.
"""

from __future__ import annotations

import select
import shlex
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import BIN, Gflow, short_home, teardown


@pytest.fixture(scope="module")
def cli() -> Iterator[Gflow]:
    g = Gflow(short_home(), "process")
    g.start()
    yield g
    teardown(g)


# ---------------------------------------------------------------- gbatch


def test_an_array_is_one_line_as_sbatch_prints_it(cli: Gflow) -> None:
    out = cli.run("gbatch", "-H", "--array", "1-3", "-n", "h-arr", "true").stdout
    first = int(out.split()[3])
    assert out == f"Submitted batch job {first} (array of 3 tasks: {first}-{first + 2})\n"
    sweep = cli.run("gbatch", "-H", "--param", "x=1,2", "echo", "{x}").stdout
    at = int(sweep.split()[3])
    assert sweep == f"Submitted batch job {at} (sweep of 2 jobs: {at}-{at + 1})\n"
    cli.run("gcancel", f"{first},{at}")


def test_a_dry_run_shows_the_name_the_job_then_gets(cli: Gflow) -> None:
    dry = cli.run("gbatch", "--dry-run", "-H", "true").stdout.splitlines()[1]
    name = dry.split("] ", 1)[1].split(":", 1)[0]
    job = cli.submit("-H", "true")
    assert cli.show(job)["name"] == name
    cli.run("gcancel", str(job))


def test_a_dependency_that_already_failed_is_said_at_submission(cli: Gflow) -> None:
    bad = cli.submit("sh", "-c", "exit 1")
    assert cli.wait(bad) == 1
    done = cli.run("gbatch", "-d", str(bad), "-n", "h-late", "true")
    job = int(done.stdout.split()[3])
    assert done.stderr == (
        f"gbatch: note: job {job} was cancelled at once: the dependency can never be met "
        f"(DependencyFailed:{bad})\n"
    )
    kept = cli.run("gbatch", "-d", str(bad), "--no-auto-cancel", "true")
    assert "queued but can never start" in kept.stderr
    assert "DependencyNeverSatisfied" in kept.stderr
    cli.run("gcancel", kept.stdout.split()[3])


def test_nice_lowers_the_priority(cli: Gflow) -> None:
    assert cli.show(cli.submit("-H", "--nice", "3", "true"))["priority"] == 7
    job = cli.submit("-H", "-p", "50", "--nice", "5", "true")
    assert cli.show(job)["priority"] == 45
    cli.run("gjob", "update", str(job), "--nice", "4")
    assert cli.show(job)["priority"] == 6
    cli.run("gcancel", f"{job - 1},{job}")


# ---------------------------------------------------------------- gjob


def test_gjob_show_prints_the_command_shell_quoted(cli: Gflow) -> None:
    job = cli.submit("-H", "python", "train.py", "--note", "two words", "it's")
    show = cli.run("gjob", "show", str(job)).stdout
    assert "Command=python train.py --note 'two words' 'it'\"'\"'s'" in show
    cli.run("gcancel", str(job))


def test_an_array_id_names_its_first_task_where_one_job_is_needed(cli: Gflow) -> None:
    ids = cli.submit_many("--array", "4-6", "sh", "-c", "echo task $GFLOW_ARRAY_TASK_ID")
    assert cli.wait(*ids) == 0
    assert cli.run("gjob", "log", str(ids[0])).stdout == "task 4\n"
    assert cli.run("gjob", "log", "@").stdout == "task 4\n"
    assert cli.run("gjob", "log", f"{ids[0]}_6").stdout == "task 6\n"
    path = cli.run("gjob", "log", str(ids[0]), "--path").stdout.strip()
    assert path.endswith(f"/{ids[0]}.log")


def test_gjob_log_follow_waits_for_a_held_job_to_start(cli: Gflow) -> None:
    job = cli.submit("-H", "sh", "-c", "echo one; echo two")
    follow = subprocess.Popen(
        [str(BIN / "gjob"), "log", str(job), "-F"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follow.stderr is not None
    ready, _, _ = select.select([follow.stderr], [], [], 30)
    assert ready, "gjob log -F said nothing"
    note = follow.stderr.readline()  # it waits for the job now
    assert note.startswith(f"gjob: job {job} is Hold; its log follows when it starts")
    cli.run("gjob", "release", str(job))
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    assert out == "one\ntwo\n"


def test_gjob_log_dash_f_without_a_number_suggests_follow(cli: Gflow) -> None:
    for argv in (["gjob", "log", "1", "-f"], ["gjob", "log", "-f", "1"]):
        done = cli.run(*argv, check=False)
        assert done.returncode == 2
        assert "--follow (-F)" in done.stderr and "Traceback" not in done.stderr


def test_gjob_wait_follows_an_automatic_retry_and_takes_several_words(cli: Gflow) -> None:
    marker = cli.work / "h-tried"
    flaky = f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1"
    first = cli.submit("--max-retries", "1", "sh", "-c", flaky)
    other = cli.submit("true")
    done = cli.run("gjob", "wait", str(first), str(other), "--timeout", "60", check=False)
    assert done.returncode == 0, done.stderr
    assert cli.state(first) == "Failed"


# ---------------------------------------------------------------- gqueue


def test_gqueue_lists_the_jobs_of_a_range_that_exist(cli: Gflow) -> None:
    first = cli.submit("-H", "true")
    second = cli.submit("-H", "true")
    done = cli.run("gqueue", "-j", f"{first}-{second + 1}", "-f", "JOBID")
    assert done.stdout.split() == ["JOBID", str(first), str(second)]
    assert done.stderr == f"gqueue: note: no job {second + 1}\n"
    cli.run("gcancel", f"{first},{second}")


def test_a_fresh_daemon_names_no_dependency_for_at(make_gflow: object) -> None:
    g = make_gflow()  # type: ignore[operator]
    g.start()
    done = g.run("gqueue", "-j", "@", check=False)
    assert done.returncode == 1
    assert done.stderr == "gqueue: error: @ not found: you have 0 earlier submissions\n"


# ---------------------------------------------------------------- gflowd


def test_gflowd_up_when_running_says_so_and_succeeds(cli: Gflow) -> None:
    done = cli.run("gflowd", "up")
    assert done.stdout == f"gflowd is already running (pid {cli.daemon_pid()}).\n"


# ---------------------------------------------------------------- shell completion


def completions(g: Gflow, tool: str, line: str) -> list[str]:
    """What bash completes for ``line`` (the cursor at its end), with gflow's script."""
    script = g.run(tool, "completion", "bash").stdout
    words = line.split(" ")
    call = (
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        f'_{tool}_complete; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    done = g.run("bash", "-c", script + call)
    assert done.stderr == ""
    return done.stdout.split()


def test_completion_offers_files_after_gbatchs_command(cli: Gflow) -> None:
    assert completions(cli, "gbatch", "gbatch --job-n") == ["--job-name"]
    assert "--depends-on" in completions(cli, "gbatch", "gbatch -n x --de")
    assert completions(cli, "gbatch", "gbatch -n x python ") == []  # bash completes files
    assert completions(cli, "gbatch", "gbatch -g 1 python --de") == []


def test_completion_offers_job_ids_where_a_job_is_named(cli: Gflow) -> None:
    job = str(cli.submit("-H", "true"))
    assert job in completions(cli, "gcancel", "gcancel ")
    assert job in completions(cli, "gjob", "gjob log ")
    assert job in completions(cli, "gjob", "gjob show ")
    assert job in completions(cli, "gqueue", "gqueue -j ")
    assert "--follow" in completions(cli, "gjob", "gjob log --fo")
    cli.run("gcancel", job)


def test_completion_is_silent_when_gflowd_is_down(make_gflow: object) -> None:
    g = make_gflow()  # type: ignore[operator]
    offered = completions(g, "gcancel", "gcancel ")  # no error on the terminal: see above
    assert "--dry-run" in offered and not any(w.isdigit() for w in offered)
