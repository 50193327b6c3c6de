"""The daemon's view of the GPUs: snapshots from the backend, turned into scheduler slots.

A slot says which card exists, whether gflow may hand it out (``gctl set-gpus``), and
which processes gflow did not start use it (``unmanaged``). Foreign processes are found
by polling every ``gpu_poll_interval`` seconds; gflow's own jobs never wait for a poll.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from gflow import limits, proc
from gflow.config import DaemonConfig, Paths
from gflow.engine import Engine
from gflow.errors import GflowError, InvalidInput, Refused
from gflow.gpu import GpuBackend, GpuInfo, select_backend
from gflow.limits import MAX_GPU_INDEX, MAX_PID
from gflow.parse import parse_index_set
from gflow.rundir import read_pid
from gflow.scheduler import GpuSlot
from gflow.store import Store

log = logging.getLogger("gflow.gpus")

MIN_POLL = 0.1


class GpuWatch:
    def __init__(self, paths: Paths, config: DaemonConfig, store: Store, engine: Engine) -> None:
        self.paths = paths
        self.store = store
        self.engine = engine
        self.backend: GpuBackend | None = select_backend(
            config.fake_gpus or None,
            paths.fake_procs_file,
            gpus_configured=config.gpus is not None,
        )
        self.snapshot: list[GpuInfo] = []
        self.polls = 0

    def apply_config(self, config: DaemonConfig) -> None:
        """A ``gpus`` setting given in the configuration, environment or ``gflowd up --gpus``
        replaces the stored restriction (``all`` lifts it); left unset, the stored one
        (from ``gctl set-gpus``) stays."""
        if config.gpus is None:
            return
        allowed = parse_index_set(config.gpus, "gpus")
        with self.store.tx():
            self.store.set_setting("allowed_gpus", allowed)

    def discover(self) -> list[GpuInfo]:
        """A fresh snapshot (the last one if the backend fails); runs in a worker thread."""
        if self.backend is None:
            return []
        try:
            return self.backend.discover()
        except GflowError as exc:
            log.error("GPU discovery failed: %s", exc.message)
        except Exception:
            log.exception("GPU discovery failed")
        return self.snapshot

    def refresh(self, snapshot: list[GpuInfo] | None = None) -> None:
        """Take a snapshot (or re-judge the last one) and hand the slots to the engine."""
        if snapshot is not None:
            self.snapshot = snapshot
        self.engine.set_gpus(self.slots(), time.time())

    def slots(self) -> tuple[GpuSlot, ...]:
        allowed = self.store.setting("allowed_gpus")
        ignored = {(int(g), int(p)) for g, p in self.store.setting("ignored_gpu_procs") or []}
        ours = self.our_pids()
        slots = []
        for gpu in self.snapshot:
            foreign = [
                p
                for p in gpu.processes
                if (gpu.index, p.pid) not in ignored and is_foreign(p.pid, ours)
            ]
            slots.append(
                GpuSlot(
                    gpu.index,
                    gpu.memory_total_mib,
                    sum(p.used_mib for p in foreign),
                    tuple(p.pid for p in foreign),
                    allowed is None or gpu.index in allowed,
                )
            )
        return tuple(slots)

    def our_pids(self) -> set[int]:
        """The main pids of gflow's jobs, including those still being launched."""
        ours = {j.pid for j in self.engine.jobs.values() if j.pid}
        for job_id in self.engine.launching:
            pid = None
            with contextlib.suppress(OSError):  # out of descriptors: the next look sees it
                pid = read_pid(self.paths.run_dir / str(job_id))
            if pid is not None:
                ours.add(pid)
        return ours

    def recheck_foreign(self) -> None:
        """Forget foreign processes of the last snapshot that have ended since.

        A job's end frees its GPUs at once; this makes sure no process counted as foreign
        by the last poll (for instance one of that very job's, seen while it started)
        keeps its card blocked until the next poll.
        """
        if any(s.foreign_pids for s in self.engine.gpu_slots):
            self.engine.gpu_slots = self.slots()

    # ------------------------------------------------------------ gctl

    def set_allowed(self, data: dict[str, Any]) -> dict[str, Any]:
        """``gctl set-gpus``: restrict the GPUs gflow hands out (stored across restarts)."""
        spec = data.get("gpus")
        if not isinstance(spec, str):
            raise InvalidInput("gpus", limits.brief(spec), "all, 0,2 or 0-3")
        allowed = parse_index_set(spec, "gpus")
        known = sorted(s.index for s in self.engine.gpu_slots)
        bad = sorted(set(allowed or []) - set(known))
        if bad:
            have = ",".join(map(str, known)) if known else "none"
            raise Refused(f"no GPU {','.join(map(str, bad))} on this machine (GPUs: {have})")
        with self.store.tx():
            self.store.set_setting("allowed_gpus", allowed)
        self.refresh()
        return {"allowed": allowed}

    def ignore(self, data: dict[str, Any]) -> dict[str, Any]:
        """``gctl gpu-process``: foreign processes to ignore when placing jobs (stored)."""
        action = data.get("action")
        ignored = [list(x) for x in self.store.setting("ignored_gpu_procs") or []]
        if action in ("ignore", "unignore"):
            gpu, pid = data.get("gpu"), data.get("pid")
            gpu = limits.whole(gpu, "gpu", 0, MAX_GPU_INDEX)
            pid = limits.whole(pid, "pid", 1, MAX_PID)
            if action == "ignore" and gpu not in {s.index for s in self.engine.gpu_slots}:
                raise Refused(f"no GPU {gpu} on this machine")
            ignored = [x for x in ignored if x != [gpu, pid]]
            if action == "ignore":
                ignored.append([gpu, pid])
            with self.store.tx():
                self.store.set_setting("ignored_gpu_procs", ignored or None)
            self.refresh()
        elif action != "list":
            raise InvalidInput("action", limits.brief(action), "ignore, unignore or list")
        return {"ignored": ignored}


def is_foreign(pid: int, ours: set[int]) -> bool:
    """True if ``pid`` is alive and not a process of one of gflow's jobs.

    A job's processes are in the session its main process leads, or descend from it
    (a process that started its own session is still found by its parents). A process
    that is gone, a zombie, or invisible here counts as not foreign: it holds nothing.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if proc.is_zombie(pid):
        return False
    with contextlib.suppress(OSError):
        if os.getsid(pid) in ours:
            return False
    current: int | None = pid
    for _ in range(64):
        if current is None or current <= 1:
            break
        if current in ours:
            return False
        current = proc.parent_pid(current)
    return True
