"""gflow.Executor against a real daemon: functions, closures, exceptions, arrays,
dependencies, cancel, retries, a gflowd restart, a large result, and futures that
outlive their process."""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import gflow
from gflow import runner
from tests.helpers import Gflow


@pytest.fixture
def ex(gflow_process: Gflow) -> Iterator[gflow.Executor]:
    executor = gflow.Executor(client=gflow.Client(home=gflow_process.home), time="5:00")
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)  # a failed test leaves no wait behind


def wait_for(path: Path) -> str:
    """A job's body that waits for ``path`` (the test opens it), then returns its text."""
    while not path.exists():
        time.sleep(0.02)
    return path.read_text()


def fail(message: str) -> None:
    raise ValueError(message)


def test_round_trip_with_closures_exceptions_and_dependencies(ex: gflow.Executor) -> None:
    offset, table = 10, {"scale": 3}

    def scaled(x: int) -> int:  # a closure over local state, pickled by value
        return (x + offset) * table["scale"]

    first = ex.submit(scaled, 1)
    assert first.result(timeout=60) == 33
    second = ex.submit(scaled, first)  # a future as an argument: its result, once it ran
    assert second.result(timeout=60) == 129
    assert ex.client.job(second.id).parents == (first.id,)
    boom = ex.submit(fail, "no good")
    with pytest.raises(ValueError, match="no good") as raised:
        boom.result(timeout=60)
    note = raised.value.__notes__[0]
    assert f"raised in gflow job {boom.id}" in note and "in fail" in note
    after = ex.submit(scaled, 0, after=boom)
    with pytest.raises(gflow.JobFailed, match=f"Cancelled \\(DependencyFailed:{boom.id}\\)"):
        after.result(timeout=60)


def test_map_is_one_array(ex: gflow.Executor) -> None:
    assert list(ex.map(pow, range(6), [2] * 6)) == [0, 1, 4, 9, 16, 25]
    futures = ex.map_array(abs, range(-5, 0), chunksize=2)
    assert [f.result(timeout=60) for f in futures] == [5, 4, 3, 2, 1]
    jobs = {f.id for f in futures}
    groups = {ex.client.job(i).group_id for i in jobs}
    assert len(jobs) == 3 and groups == {min(jobs)}
    assert gflow.Job(min(jobs), client=ex.client).result(timeout=60) == [5, 4]
    assert list(ex.map(abs, [])) == []


def test_cancel_and_as_completed(ex: gflow.Executor, gflow_process: Gflow) -> None:
    slow = ex.submit(wait_for, gflow_process.work / "never")
    fast = ex.submit(abs, -1)
    done = next(concurrent.futures.as_completed([slow, fast], timeout=60))
    assert done is fast
    gflow_process.until_state(slow.id, "Running")
    assert slow.cancel() and slow.cancelled()
    assert ex.client.wait(slow.id, timeout=60)[0].state == "Cancelled"
    assert not fast.cancel()


def test_results_arrive_across_a_gflowd_restart(ex: gflow.Executor, gflow_process: Gflow) -> None:
    g = gflow_process
    gate = g.work / "go"
    futures = [ex.submit(wait_for, gate) for _ in range(2)]
    g.until(lambda: all(g.state(f.id) == "Running" for f in futures), what="jobs to run")
    g.kill9()
    gate.write_text("done")
    g.start()
    assert [f.result(timeout=120) for f in futures] == ["done", "done"]


def test_a_large_result(ex: gflow.Executor) -> None:
    size = 100 * 1024 * 1024
    data = ex.submit(os.urandom, size).result(timeout=120)
    assert isinstance(data, bytes) and len(data) == size


def test_retries_are_followed(gflow_process: Gflow, tmp_path: Path) -> None:
    tries = tmp_path / "tries"

    def flaky() -> int:
        count = len(tries.read_text()) if tries.exists() else 0
        tries.write_text("x" * (count + 1))
        if count == 0:
            raise RuntimeError("first try fails")
        return count

    client = gflow.Client(home=gflow_process.home)
    with gflow.Executor(client=client, max_retries=1) as ex:
        future = ex.submit(flaky)
        assert future.result(timeout=60) == 1
        assert client.job(future.id).retry_of is not None


def test_a_result_outlives_the_process_that_submitted(gflow_process: Gflow) -> None:
    g = gflow_process
    gate = g.work / "later"
    code = (
        "import gflow, sys\n"
        "from tests.e2e.test_executor import wait_for\n"
        f"ex = gflow.Executor(client=gflow.Client(home={str(g.home)!r}))\n"
        f"print(ex.submit(wait_for, __import__('pathlib').Path({str(gate)!r})).id)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    job = gflow.Job(int(done.stdout), client=gflow.Client(home=g.home))
    gate.write_text("still here")
    assert job.result(timeout=60) == "still here"
    assert gflow.Job(job.id, client=job.client).result() == "still here"


def test_what_cannot_be_pickled_or_unpickled(ex: gflow.Executor, gflow_process: Gflow) -> None:
    with pytest.raises(gflow.Unpicklable, match=r"cannot send abs to a job.*lock"):
        ex.submit(abs, threading.Lock())
    g = gflow_process
    module = g.work / "vanishing.py"
    module.write_text("def twice(x):\n    return 2 * x\n")
    sys.path.insert(0, str(g.work))
    try:
        import vanishing

        with gflow.Executor(client=ex.client, hold=True) as held:
            future = held.submit(vanishing.twice, 2)  # pickled by reference to its module
            module.unlink()
            held.client.release(future.id)
            with pytest.raises(gflow.Unpicklable, match=r"cannot unpickle .*vanishing"):
                future.result(timeout=60)
    finally:
        sys.path.remove(str(g.work))
        sys.modules.pop("vanishing", None)
    other = g.work / "python2"
    other.write_text("#!/bin/sh\necho 'python 2.7: no module gflow' >&2\nexit 1\n")
    other.chmod(0o755)
    elsewhere = gflow.Executor(client=ex.client, python=str(other))
    with pytest.raises(gflow.JobFailed, match=r"exit code 1 .*\n.*python 2.7: no module"):
        elsewhere.submit(abs, 1).result(timeout=60)
    with pytest.raises(gflow.InvalidInput, match=r"made by gflow\.Executor"):
        gflow.Job(ex.client.submit("true").id, client=ex.client).result()
    with pytest.raises(TypeError, match=r"map\(\) makes the array"):
        gflow.Executor(array="1-2")


def test_a_wait_for_any_also_ends_at_the_callers_next_submission(gflow_process: Gflow) -> None:
    """What the executor's watcher relies on: a future made while it waits is not missed."""
    g = gflow_process
    api = g.api()
    gated = g.submit(g.gate("never"))
    newest = api.get("/v1/wait", ids=str(gated), any=1, after=0, timeout=0)["newest"]
    assert newest == gated
    answers: list[dict[str, object]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            api.get("/v1/wait", ids=str(gated), any=1, after=newest, timeout=60)
        )
    )
    waiting.start()
    later = g.submit("true")
    waiting.join(30)
    assert answers == [{"jobs": [], "done": False, "newest": later}]
    ended = api.get("/v1/wait", ids=f"{gated},{later}", any=1, view="compact", timeout=60)
    assert [j["id"] for j in ended["jobs"]] == [later] and "workdir" not in ended["jobs"][0]


def test_a_result_the_executor_cannot_read_fails_its_future(ex: gflow.Executor) -> None:
    """A job that leaves fewer values than calls fails its future, never leaves it waiting."""
    held = gflow.Executor(client=ex.client, hold=True)
    try:
        future = held.submit(abs, -3)
        # The call is taken out of the job's input: the job then returns no value at all.
        runner.write(os.path.join(future.folder, runner.INPUT, "0.pkl"), pickle.dumps([]))
        held.client.release(future.id)
        with pytest.raises(gflow.GflowError, match=r"left 0 result\(s\) for more calls"):
            future.result(timeout=60)
    finally:
        held.shutdown(wait=False, cancel_futures=True)
