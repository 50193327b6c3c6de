"""gflow: a job scheduler for one Linux machine with GPUs.

The version has one source, the installed distribution's metadata (``pyproject.toml``).
It is read on first use of ``gflow.__version__``: ``importlib.metadata`` costs more to
import than a whole client command, so the command-line tools never pay for it unless
asked for ``--version``.
"""

from __future__ import annotations

DISTRIBUTION = "gflow-scheduler"
"""The name on PyPI (``pip install gflow-scheduler``); the import package is ``gflow``."""


def version() -> str:
    """The installed version, or ``0+unknown`` when running from a source tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'gflow' has no attribute {name!r}")
