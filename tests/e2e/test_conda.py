"""``--conda-env`` is checked when a job is submitted, by the conda the job would use:
without conda, or with no such environment, the submission is refused at once in one
line naming the environment, and nothing is created. The conda here is a stand-in the
tests write (:func:`tests.helpers.fake_conda`)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import BIN, Gflow, alive, fake_conda


def one_line_refusal(g: Gflow, *argv: str) -> str:
    done = g.run("gbatch", *argv, check=False)
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert not g.queue_json("-a"), "a refused submission created a job"
    return done.stderr


def test_a_job_runs_in_an_environment_conda_knows(gflow: Gflow) -> None:
    fake_conda(gflow, "torch")
    (gflow.work / "envs" / "local" / "conda-meta").mkdir(parents=True)
    named = gflow.submit("-c", "torch", "sh", "-c", 'echo "in $CONDA_DEFAULT_ENV"')
    base = gflow.submit("--conda-env", "base", "true")
    path = gflow.submit("-c", "./envs/local", "true")
    assert gflow.wait(named, base, path) == 0
    assert gflow.log(named) == "in torch\n"


def test_an_environment_conda_does_not_know_is_refused(gflow: Gflow) -> None:
    fake_conda(gflow, "torch", "jax")
    err = one_line_refusal(gflow, "-c", "myenv", "true")
    assert "'myenv'" in err and "no such conda environment" in err
    assert "base, jax, torch" in err
    script = gflow.work / "train.sh"
    script.write_text("#!/bin/bash\n# GFLOW --conda-env=pytorch\ntrue\n")
    assert "'pytorch'" in one_line_refusal(gflow, "--hold", str(script))
    assert "'./nowhere'" in one_line_refusal(gflow, "-c", "./nowhere", "true")


def test_without_conda_an_environment_is_refused(gflow: Gflow) -> None:
    gflow.env["PATH"] = f"{BIN}:/usr/bin:/bin"
    if shutil.which("conda", path=gflow.env["PATH"]):
        pytest.skip("this machine has a conda on /usr/bin or /bin")
    err = one_line_refusal(gflow, "-c", "myenv", "true")
    assert "'myenv'" in err and "conda was not found" in err


def test_a_conda_that_hangs_or_floods_is_stopped_and_not_taken_for_a_refusal(
    tmp_path: Path,
) -> None:
    from gflow.condaenv import Probe, probe

    pids = tmp_path / "pids"
    for body in ("sleep 600", "yes"):  # no answer, then an endless one
        conda = tmp_path / "conda"
        conda.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec {body}\n")
        conda.chmod(0o755)
        env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
        asked = asyncio.wait_for(probe("myenv", env, "/", None, timeout=1), 30)
        assert asyncio.run(asked) == Probe(None)
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2 and not any(alive(pid) for pid in started)


def test_a_conda_check_lets_go_of_a_process_conda_left_behind(tmp_path: Path) -> None:
    """A process in a session of its own (out of reach of the kill) that holds the answer's
    pipe and writes on is neither read for ever nor into memory: its pipe is closed."""
    from gflow.condaenv import Probe, probe

    left = tmp_path / "left"
    conda = tmp_path / "conda"
    loop = "while echo x; do sleep 0.05; done"
    conda.write_text(f"#!/bin/sh\nsetsid sh -c 'echo $$ > {left}; {loop}' &\nexit 0\n")
    conda.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}

    def writer_ended() -> bool:
        text = left.read_text() if left.exists() else ""
        return text.endswith("\n") and not alive(int(text))

    async def ask() -> tuple[Probe, bool, int]:
        fds = len(os.listdir("/proc/self/fd"))
        answer = await asyncio.wait_for(probe("myenv", env, "/", None, timeout=1), 30)
        for _ in range(400):  # the daemon goes on: the writer must end of its closed pipe
            if writer_ended():
                break
            await asyncio.sleep(0.05)
        return answer, writer_ended(), len(os.listdir("/proc/self/fd")) - fds

    answer, ended, fds_kept = asyncio.run(ask())
    assert answer == Probe(None)
    assert ended, "the process left behind still writes into the daemon"
    assert fds_kept == 0


def test_update_and_redo_check_a_new_environment_as_a_submission_does(gflow: Gflow) -> None:
    fake_conda(gflow, "torch")
    waiting = gflow.submit("--hold", "true")
    done = gflow.run("gjob", "update", str(waiting), "-c", "myenv", check=False)
    assert done.returncode == 1 and "no such conda environment" in done.stderr, done
    assert gflow.job(waiting)["conda_env"] is None, "a refused update changed the job"
    gflow.run("gjob", "update", str(waiting), "-c", "torch")
    assert gflow.job(waiting)["conda_env"] == "torch"

    ended = gflow.submit("true")
    gflow.wait(ended)
    before = len(gflow.queue_json("-a"))
    done = gflow.run("gjob", "redo", str(ended), "-c", "myenv", check=False)
    assert done.returncode == 1 and "'myenv'" in done.stderr, done
    assert len(gflow.queue_json("-a")) == before, "a refused redo submitted a job"
    gflow.run("gjob", "redo", str(ended), "-c", "torch")
    assert len(gflow.queue_json("-a")) == before + 1
