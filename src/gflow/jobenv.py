"""What a job finds in its environment: gflow's variables, and Slurm's for ported scripts.

The job gets its submitter's environment, then these on top. Slurm's variables left in
the submitter's environment (a submission made from inside a Slurm job) are dropped, so
a script never reads another job's ``SLURM_ARRAY_TASK_ID``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gflow.model import Job

KEPT_SLURM = frozenset({"SLURM_CONF"})
"""Slurm variables of the submitter's environment that say nothing about a job."""


@dataclass(frozen=True, slots=True)
class TaskRange:
    """The task ids of an array (or sweep): how many, the first and the last."""

    count: int
    first: int
    last: int

    @property
    def step(self) -> int:
        """The step between task ids when they are evenly spaced (``0-20:5``), else 1."""
        gaps = self.count - 1
        span = self.last - self.first
        return span // gaps if gaps > 0 and span % gaps == 0 else 1


def variables(
    job: Job,
    gpu_ids: tuple[int, ...],
    submitted: Mapping[str, str],
    tasks: TaskRange | None = None,
) -> dict[str, str]:
    """The whole environment of ``job`` on ``gpu_ids`` (``tasks``: its array's range)."""
    env = {k: v for k, v in submitted.items() if not _slurm_job_variable(k)}
    gpus = ",".join(map(str, gpu_ids))
    env.update(
        {
            "GFLOW_JOB_ID": str(job.id),
            "GFLOW_JOB_NAME": job.name,
            "GFLOW_SUBMIT_DIR": job.workdir,
            "CUDA_VISIBLE_DEVICES": gpus,
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "SLURM_JOB_ID": str(job.id),
            "SLURM_JOBID": str(job.id),
            "SLURM_JOB_NAME": job.name,
            "SLURM_JOB_USER": job.user,
            "SLURM_SUBMIT_DIR": job.workdir,
            "SLURM_NTASKS": "1",
            "SLURM_NNODES": "1",
            "SLURM_JOB_NUM_NODES": "1",
        }
    )
    if gpu_ids:
        env["SLURM_JOB_GPUS"] = gpus
        env["SLURM_GPUS_ON_NODE"] = str(len(gpu_ids))
    if job.cpus_per_task:
        env["SLURM_CPUS_PER_TASK"] = str(job.cpus_per_task)
    if job.group_id is not None and job.task_id is not None:
        env["GFLOW_ARRAY_JOB_ID"] = env["SLURM_ARRAY_JOB_ID"] = str(job.group_id)
        env["GFLOW_ARRAY_TASK_ID"] = env["SLURM_ARRAY_TASK_ID"] = str(job.task_id)
        if tasks is not None:
            env["SLURM_ARRAY_TASK_COUNT"] = str(tasks.count)
            env["SLURM_ARRAY_TASK_MIN"] = str(tasks.first)
            env["SLURM_ARRAY_TASK_MAX"] = str(tasks.last)
            env["SLURM_ARRAY_TASK_STEP"] = str(tasks.step)
    if job.params:
        env.update({f"GFLOW_PARAM_{k.upper()}": v for k, v in job.params.items()})
    return env


def _slurm_job_variable(name: str) -> bool:
    return name.startswith(("SLURM_", "SBATCH_")) and name not in KEPT_SLURM
