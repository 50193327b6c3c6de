"""gflow.Client and gflow.AsyncClient against a real daemon: what gbatch, gqueue, gjob,
gcancel, ginfo and gstats do, from Python, with the CLI's errors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
from pathlib import Path

import pytest

import gflow
from tests.helpers import Gflow, short_home


def client(g: Gflow) -> gflow.Client:
    return gflow.Client(home=g.home)


def test_submit_wait_and_read_back(gflow: Gflow) -> None:
    gf = client(gflow)
    prep = gf.submit("echo prepared", name="prep")
    train = gf.submit(["echo", "a b"], depends_on=prep, time="1:00", priority=20)
    sweep = gf.submit("echo {lr}", param={"lr": [0.1, 0.2]}, depends_on_all=[prep, train])
    assert (prep.name, len(sweep.tasks)) == ("prep", 2)
    ended = gf.wait([train, sweep], timeout=60)
    assert {j.state for j in ended} == {"Finished"} and len(ended) == 3
    assert gf.log(train) == "a b\n"
    assert [gf.log(t) for t in sweep.tasks] == ["0.1\n", "0.2\n"]
    info = gf.job(train)
    assert (info.time_limit, info.priority, info.parents, info.ok) == (60, 20, (prep.id,), True)
    assert [e.new for e in info.events] == ["Queued", "Running", "Finished"]
    assert gf.job(sweep).group_id == sweep.id
    listed = gf.jobs(all=True)
    assert [j.id for j in listed] == [prep.id, train.id, *(t.id for t in sweep.tasks)]
    assert gf.jobs() == [] and gf.jobs(ids=prep)[0].name == "prep"
    assert gf.stats().by_state == {"Finished": 4}


def test_options_of_every_form(gflow_process: Gflow, tmp_path: Path) -> None:
    gf = client(gflow_process)
    rows = tmp_path / "rows.csv"
    rows.write_text("k\nx\ny\n")
    begin = datetime.datetime.now() + datetime.timedelta(hours=1)
    shown = gf.preview(
        "echo {k}",
        param_file=rows,
        time=datetime.timedelta(hours=2),
        begin=begin,
        memory="1G",
        hold=True,
    )
    assert [(j.command, j.time_limit, j.memory_mb) for j in shown] == [
        (("echo x",), 7200, 1024),
        (("echo y",), 7200, 1024),
    ]
    assert shown[0].begin_at == pytest.approx(begin.replace(microsecond=0).timestamp())
    assert gf.jobs(all=True) == []  # a preview submits nothing
    script = gflow_process.work / "job.sh"
    script.write_text("#!/bin/bash\n# GFLOW --priority=33\n# GFLOW --name=fromscript\necho $1\n")
    job = gf.submit(script=script, args=["hi"], name="mine")
    info = job.wait(timeout=60)
    assert (info.name, info.priority, info.state) == ("mine", 33, "Finished")
    assert job.log() == "hi\n"


def test_changes_cancel_and_redo(gflow_process: Gflow) -> None:
    g = gflow_process
    gf = client(g)
    running = gf.submit(g.gate("go"))
    held = gf.submit("true", hold=True)
    child = gf.submit("true", depends_on=running)
    g.until_state(running.id, "Running")
    [updated] = gf.update(held, priority=99, time="5:00")
    assert set(updated.fields) == {"priority", "time_limit"}
    freed = gf.submit("true", depends_on=running, hold=True)
    gf.update(freed, clear_deps=True)
    assert gf.job(freed).parents == ()
    assert gf.job(held).priority == 99
    preview = gf.cancel(running, dry_run=True)
    assert [(a.id, a.dependent) for a in preview] == [(running.id, False), (child.id, True)]
    with pytest.raises(gflow.NotAllDone) as refused:
        gf.hold([held, child])
    assert str(refused.value) == f"job {held.id} is Hold; only Queued jobs can be held"
    assert [a.id for a in refused.value.done] == [child.id]
    assert [a.action for a in gf.release([held, child])] == ["released", "released"]
    assert [(a.id, a.action) for a in gf.cancel(running)] == [
        (running.id, "stopping"),
        (child.id, f"cancelled too (DependencyFailed:{running.id})"),
    ]
    assert gf.wait(running, timeout=60)[0].state == "Cancelled"
    assert gf.job(child).reason == f"DependencyFailed:{running.id}"
    with pytest.raises(gflow.NotAllDone, match=r"not cancelled: already Cancelled"):
        gf.cancel(running)
    redone = gf.redo(running, cascade=True, name="again")
    assert redone[0].name == "again" and len(redone) == 2


def test_bad_input_raises_what_the_cli_prints(gflow_process: Gflow) -> None:
    g = gflow_process
    gf = client(g)
    with pytest.raises(TypeError, match="submit\\(\\) got an unexpected keyword argument 'gpu'"):
        gf.submit("true", gpu=1)
    with pytest.raises(TypeError, match="'dry_run'"):
        gf.submit("true", dry_run=True)
    for flags, keyword in [(["--gpus", "x"], {"gpus": "x"}), (["-t", "99:99"], {"time": "99:99"})]:
        printed = g.run("gbatch", *flags, "true", check=False).stderr.strip()
        with pytest.raises(gflow.InvalidInput) as raised:
            gf.submit("true", **keyword)
        assert printed == f"gbatch: error: {raised.value}"
    with pytest.raises(gflow.NotFound, match="job 999 not found"):
        gf.job(999)
    with pytest.raises(gflow.InvalidInput, match="--project"):
        gf.update(gf.submit("true", hold=True), project="x")
    home = short_home()
    with pytest.raises(gflow.DaemonUnavailable, match="start it with: gflowd up"):
        gflow.Client(home=home).submit("true")


def test_follow_and_info(gflow_process: Gflow) -> None:
    g = gflow_process
    gf = client(g)
    gate = g.work / "more"
    job = gf.submit(f"echo one; while [ ! -e {gate} ]; do sleep 0.02; done; echo two")
    pieces = gf.log(job, follow=True)
    assert next(pieces) == "one\n"
    g.open_gate("more")
    assert "".join(pieces) == "two\n"
    assert gf.log(job, last=1) == "two\n" and gf.log(job, first=1, max_bytes=2) == "on"
    info = gf.info()
    assert info.executor == "process" and info.status["jobs"] == {}


def test_wait_follows_a_retry_and_a_log_follows_its_attempt(gflow_process: Gflow) -> None:
    g = gflow_process
    gf = client(g)
    tried, fail, go = (g.work / name for name in ("tried", "fail", "go"))
    script = (
        f"if [ ! -e {tried} ]; then touch {tried}; "
        f"while [ ! -e {fail} ]; do sleep 0.02; done; echo first; exit 1; fi; "
        f"while [ ! -e {go} ]; do sleep 0.02; done; echo second"
    )
    job = gf.submit(script, max_retries=1)
    g.until(tried.exists, what="the first attempt to start")
    pieces = gf.log(job, follow=True)
    g.open_gate("fail")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        followed = pool.submit(lambda: "".join(pieces))
        try:  # the first attempt's log ends with it, while its retry still waits
            assert followed.result(timeout=60) == "first\n"
            retry = gf.job(job).attempts[-1]
            assert retry != job.id and g.state(retry) in ("Queued", "Running")
        finally:
            g.open_gate("go")
    ended = gf.wait(job, timeout=60)
    assert [(j.id, j.state, j.ok) for j in ended] == [(retry, "Finished", True)]


def test_async_client(gflow_process: Gflow) -> None:
    g = gflow_process

    async def scenario() -> list[str]:
        gf = gflow.AsyncClient(home=g.home)
        jobs = await asyncio.gather(*(gf.submit(f"echo {i}") for i in range(3)))
        ended = await gf.wait(jobs, timeout=60)
        assert {j.state for j in ended} == {"Finished"}
        pieces = [p async for p in await gf.log(jobs[0], follow=True)]
        assert pieces == ["0\n"]
        with pytest.raises(gflow.InvalidInput, match="--gpus"):
            await gf.submit("true", gpus=-1)
        return [await gf.log(j) for j in jobs]

    assert asyncio.run(scenario()) == ["0\n", "1\n", "2\n"]
