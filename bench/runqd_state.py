"""Append N finished jobs to a stopped runqd 0.4.18's state.msgpack.

Run with the runqd venv's Python (``pip install msgpack`` there):
``python runqd_state.py STATE_FILE COUNT RUN_DIR USER``. The record shape is the one
runqd 0.4.18 writes (state version 4: parallel ``job_specs`` and ``job_runtimes``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import msgpack  # runqd venv only


def _ts(t: float) -> dict[str, int]:
    secs = int(t)
    return {"secs_since_epoch": secs, "nanos_since_epoch": int((t - secs) * 1e9)}


def main(path: Path, count: int, run_dir: str, user: str) -> None:
    if path.exists():
        state = msgpack.unpackb(path.read_bytes(), strict_map_key=False)
    else:
        state = {
            "version": 4,
            "job_specs": [],
            "job_runtimes": [],
            "state_path": str(path.with_name("state.json")),
            "next_job_id": 1,
            "allowed_gpu_indices": None,
            "fair_share_usage": {},
            "reservations": [],
            "next_reservation_id": 1,
        }
    if state.get("version") != 4:
        raise SystemExit(f"unexpected runqd state version {state.get('version')}")
    first = int(state["next_job_id"])
    base = time.time() - 30 * 86400
    for i in range(count):
        job_id = first + i
        submit = base + i * 10.0
        state["job_specs"].append(
            {
                "script": None,
                "command": f"python train.py --seed {i}",
                "conda_env": None,
                "run_dir": run_dir,
                "parameters": {},
                "submitted_by": user,
                "submitted_at": _ts(submit),
                "task_id": None,
                "redone_from": None,
                "retried_from": None,
                "max_retries": 0,
                "auto_close_tmux": False,
                "run_name": f"gjob-{job_id}",
                "project": None,
                "depends_on": None,
                "depends_on_ids": [],
                "dependency_mode": None,
                "auto_cancel_on_dependency_failure": True,
                "scheduled_at": None,
            }
        )
        state["job_runtimes"].append(
            {
                "id": job_id,
                "state": "Finished",
                "priority": 10,
                "gpus": 0,
                "gpu_sharing_mode": "Exclusive",
                "gpu_memory_limit_mb": None,
                "time_limit": None,
                "memory_limit_mb": None,
                "gpu_ids": [],
                "group_id": None,
                "max_concurrent": None,
                "started_at": _ts(submit + 1.0),
                "finished_at": _ts(submit + 5.0),
                "reason": None,
            }
        )
    state["next_job_id"] = first + count
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgpack.packb(state))
    journal = path.with_name("state.journal.jsonl")
    if journal.exists():
        journal.write_text("")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
