"""Fill a stopped scheduler's record with N finished jobs, fast.

Running 100k ``true`` jobs would take ten minutes, so history is written directly,
with the daemon stopped:

* gflow: rows go in through ``gflow.store`` (the module the daemon itself uses): one
  ``gbatch``-style batch per job (with the bench's environment, as a loop of
  ``gbatch`` calls would leave), one Finished job with exit code 0, and the three
  events (Queued, Running, Finished) the daemon records for each job.
* runqd: ``runqd_state.py`` (run with the runqd venv's Python, which has ``msgpack``)
  appends the same jobs to its ``state.msgpack`` in the shape 0.4.18 writes.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

from targets import RUNQD_BIN, BenchError, Ours, Runqd, Target, _base_env

HERE = Path(__file__).resolve().parent


def add_history(target: Target, count: int) -> float:
    """Stop the daemon, add ``count`` finished jobs, start it again; seconds spent writing."""
    target.down()
    t0 = time.perf_counter()
    if isinstance(target, Ours):
        _ours(target, count)
    elif isinstance(target, Runqd):
        _runqd(target, count)
    spent = time.perf_counter() - t0
    target.up()
    return spent


def _ours(target: Ours, count: int) -> None:
    from gflow.model import Job, State
    from gflow.store import open_store

    uid = os.getuid()
    user = pwd.getpwuid(uid).pw_name
    env = _base_env()
    store = open_store(target.db_path)
    try:
        first = store.next_job_id()
        base = time.time() - 30 * 86400
        with store.tx():
            for i in range(count):
                job_id = first + i
                submit = base + i * 10.0
                batch = store.insert_batch(uid, env, job_id, 1, submit)
                job = Job(
                    id=job_id,
                    uid=uid,
                    user=user,
                    name=f"hist-{job_id}",
                    command=("python", "train.py", "--seed", str(i)),
                    workdir=str(target.work),
                    submit_time=submit,
                    batch_id=batch,
                    state=State.FINISHED,
                    exit_code=0,
                    start_time=submit + 1.0,
                    end_time=submit + 5.0,
                    executor=target.executor,
                )
                store.insert_jobs([job])
                store.record_event(job_id, None, State.QUEUED, None, submit)
                store.record_event(job_id, State.QUEUED, State.RUNNING, None, submit + 1.0)
                store.record_event(job_id, State.RUNNING, State.FINISHED, None, submit + 5.0)
    finally:
        store.close()


def _runqd(target: Runqd, count: int) -> None:
    done = subprocess.run(
        [
            str(RUNQD_BIN / "python"),
            str(HERE / "runqd_state.py"),
            str(target.state_dir / "state.msgpack"),
            str(count),
            str(target.work),
            target.env["USER"],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"runqd history: {done.stderr.strip()[-300:]}")
