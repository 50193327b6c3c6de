"""The engine's Slurm side without a cluster: what it submits, and what Slurm's answers do.

The engine runs on a real store in a temporary directory; Slurm's answers are given as
the runtime would pass them (:class:`Outcome`, :class:`Seen`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gflow import commands, slurmsync
from gflow.actions import Launch, SlurmControl, Submit
from gflow.config import DaemonConfig, Paths
from gflow.engine import Caller, Engine
from gflow.model import SUBMITTING, Job, State
from gflow.placement import Placement
from gflow.protocol import SubmitRequest
from gflow.recovery import recover
from gflow.slurmspec import SlurmJob
from gflow.slurmsync import Outcome, Seen
from gflow.store import Store

ANN = Caller(1000, 1000, "ann")
NOW = 1_000.0


def boot(tmp_path: Path, executor: str = "slurm") -> Engine:
    paths = Paths(tmp_path / "gflow.toml", tmp_path, tmp_path)
    paths.run_dir.mkdir(exist_ok=True)
    engine = Engine(Store(paths.db), paths, DaemonConfig())
    engine.placement = Placement.parse(executor)
    recover(engine, NOW)
    return engine


def submit(engine: Engine, *words: str, **fields: object) -> list[int]:
    options = {k: v for k, v in fields.items() if isinstance(v, str | list)}
    req = SubmitRequest.from_json(
        {"command": list(words) or ["true"], "workdir": "/tmp", "options": options}
    )
    return [j.id for j in commands.submit(engine, req, ANN, NOW)]


def taken(engine: Engine, kind: type) -> list[Any]:
    out = [a for a in engine.outbox if isinstance(a, kind)]
    engine.outbox = [a for a in engine.outbox if not isinstance(a, kind)]
    return out


def stored(engine: Engine, job_id: int) -> Job:
    job = engine.store.get(job_id)
    assert job is not None
    return job


def row(key: str, state: str, comment: str | None = None) -> SlurmJob:
    return SlurmJob(key, int(key.split("_")[0]), state, None, "node1", None, None, comment)


def test_an_array_is_one_submission_with_its_throttle(tmp_path: Path) -> None:
    engine = boot(tmp_path)
    ids = submit(engine, array="1-4%2")
    (sub,) = taken(engine, Submit)
    assert sub == Submit(tuple(ids), "", "1-4%2")
    assert {engine.jobs[i].slurm_id for i in ids} == {SUBMITTING}
    assert engine.reasons[ids[0]] == "Submitting"
    slurmsync.submitted(engine, [Outcome(tuple(ids), tuple(f"50_{t}" for t in range(1, 5)))], NOW)
    assert [engine.jobs[i].slurm_id for i in ids] == ["50_1", "50_2", "50_3", "50_4"]
    assert not taken(engine, Submit)


def test_a_refused_array_goes_task_by_task_with_gflow_keeping_the_throttle(
    tmp_path: Path,
) -> None:
    engine = boot(tmp_path)
    ids = submit(engine, array="1-4%2")
    taken(engine, Submit)
    refusal = Outcome(tuple(ids), None, "Invalid job array specification", array=True)
    slurmsync.submitted(engine, [refusal], NOW)
    alone = taken(engine, Submit)
    assert [s.job_ids for s in alone] == [(ids[0],), (ids[1],)] and alone[0].array is None
    assert engine.reasons[ids[2]] == "JobGroupLimit"
    slurmsync.submitted(engine, [Outcome((ids[0],), ("61",)), Outcome((ids[1],), ("62",))], NOW)
    done = [Seen(ids[0], "61", row("61", "COMPLETED"), 0, NOW + 1)]
    slurmsync.observe(engine, done, NOW + 2)
    assert stored(engine, ids[0]).state is State.FINISHED
    assert [s.job_ids for s in taken(engine, Submit)] == [(ids[2],)]


def test_a_refused_single_job_fails_with_slurms_words_and_its_dependent_goes(
    tmp_path: Path,
) -> None:
    engine = boot(tmp_path)
    (job,) = submit(engine)
    (child,) = submit(engine, depends_on=[str(job)])
    slurmsync.submitted(engine, [Outcome((job,), None, "Invalid partition name specified")], NOW)
    failed = engine.store.get(job)
    assert failed is not None and failed.state is State.FAILED
    assert failed.reason == "SlurmRefused:Invalid partition name specified"
    assert stored(engine, child).state is State.CANCELLED


def test_aftercorr_between_two_arrays_is_slurms(tmp_path: Path) -> None:
    engine = boot(tmp_path)
    parents = submit(engine, array="1-3")
    taken(engine, Submit)
    kids = submit(engine, array="1-3", depends_on=[f"aftercorr:{parents[0]}"])
    assert not taken(engine, Submit)  # its parents are not in Slurm yet: gflow holds it
    keys = tuple(f"70_{t}" for t in (1, 2, 3))
    slurmsync.submitted(engine, [Outcome(tuple(parents), keys)], NOW)
    (sub,) = taken(engine, Submit)
    assert sub == Submit(tuple(kids), "aftercorr:70", "1-3")


def test_here_and_on_the_cluster_with_dependencies_across(tmp_path: Path) -> None:
    engine = boot(tmp_path, "process,slurm")
    (local,) = submit(engine)
    (remote,) = submit(engine, executor="slurm", depends_on=[str(local)])
    assert [a.job_id for a in taken(engine, Launch)] == [local]
    assert not taken(engine, Submit)  # its parent is not a Slurm job: gflow holds it
    engine.job_started(local, 4242, None, NOW)
    engine.job_exited(local, 0, NOW + 1)
    assert taken(engine, Submit) == [Submit((remote,), "")]
    assert engine.jobs[remote].run_on == "slurm" and stored(engine, local).run_on == "local"


def test_gcancel_of_a_job_in_slurm_is_an_scancel(tmp_path: Path) -> None:
    engine = boot(tmp_path)
    (job,) = submit(engine)
    taken(engine, Submit)
    slurmsync.submitted(engine, [Outcome((job,), ("81",))], NOW)
    commands.cancel(engine, str(job), ANN, NOW + 1)
    assert taken(engine, SlurmControl) == [SlurmControl("cancel", ("81",))]


def test_strays_of_this_installation_are_cancelled_and_no_others(tmp_path: Path) -> None:
    engine = boot(tmp_path)
    (job,) = submit(engine)
    taken(engine, Submit)
    slurmsync.submitted(engine, [Outcome((job,), ("90",))], NOW)
    rows = [
        row("90", "RUNNING", f"gflow:me:{job}"),  # gflow's own, live
        row("91", "PENDING", "gflow:me:77"),  # ended in gflow, alive in Slurm: a stray
        row("92", "COMPLETED", "gflow:me:78"),  # over anyway
        row("93", "PENDING", "gflow:else:1"),  # another installation's
    ]
    slurmsync.cancel_strays(engine, rows, "gflow:me:")
    assert taken(engine, SlurmControl) == [SlurmControl("cancel", ("91",))]
