"""gflow: a job scheduler for one Linux machine with GPUs.

The Python API is reached from here: :class:`Client` (and :class:`AsyncClient`) over the
daemon's API, :class:`Executor` to run Python functions as jobs, :class:`Job` handles,
the records they return and the errors they raise. Each is imported on first use, so
``import gflow`` costs the command-line tools nothing.

The version has one source, the installed distribution's metadata (``pyproject.toml``).
It is read on first use of ``gflow.__version__``: ``importlib.metadata`` costs more to
import than a whole client command, so the command-line tools never pay for it unless
asked for ``--version``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gflow.aio import AsyncClient
    from gflow.errors import (
        Conflict,
        DaemonUnavailable,
        Forbidden,
        GflowError,
        InvalidInput,
        JobFailed,
        NotAllDone,
        NotFound,
        Refused,
        Unpicklable,
    )
    from gflow.futures import Executor, Future
    from gflow.records import Action, Event, Gpu, Info, JobInfo, Stats
    from gflow.sdk import Client, Job

DISTRIBUTION = "gflow-scheduler"
"""The name on PyPI (``pip install gflow-scheduler``); the import package is ``gflow``."""

_PUBLIC = {
    "Client": "gflow.sdk",
    "Job": "gflow.sdk",
    "AsyncClient": "gflow.aio",
    "Executor": "gflow.futures",
    "Future": "gflow.futures",
    "JobInfo": "gflow.records",
    "Event": "gflow.records",
    "Action": "gflow.records",
    "Info": "gflow.records",
    "Gpu": "gflow.records",
    "Stats": "gflow.records",
    "GflowError": "gflow.errors",
    "InvalidInput": "gflow.errors",
    "Refused": "gflow.errors",
    "NotFound": "gflow.errors",
    "Conflict": "gflow.errors",
    "Forbidden": "gflow.errors",
    "NotAllDone": "gflow.errors",
    "DaemonUnavailable": "gflow.errors",
    "JobFailed": "gflow.errors",
    "Unpicklable": "gflow.errors",
}
__all__ = [
    "DISTRIBUTION",
    "Action",
    "AsyncClient",
    "Client",
    "Conflict",
    "DaemonUnavailable",
    "Event",
    "Executor",
    "Forbidden",
    "Future",
    "GflowError",
    "Gpu",
    "Info",
    "InvalidInput",
    "Job",
    "JobFailed",
    "JobInfo",
    "NotAllDone",
    "NotFound",
    "Refused",
    "Stats",
    "Unpicklable",
    "version",
]


def version() -> str:
    """The installed version, or ``0+unknown`` when running from a source tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return version()
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'gflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
