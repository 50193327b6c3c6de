"""Optional features: each one's dependencies come with an extra of the distribution.

A feature imports its optional dependency through :func:`require`; when it is missing the
user gets one line naming the extra to install (``pip install 'gflow-scheduler[mcp]'``)
instead of a traceback. The extras themselves are declared once, in ``pyproject.toml``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gflow import DISTRIBUTION
from gflow.errors import GflowError


class MissingExtra(GflowError):
    """A feature was used without the optional dependencies it needs."""

    status = 501
    kind = "missing_extra"

    def __init__(self, feature: str, extra: str) -> None:
        packages = ", ".join(extra_requirements(extra))
        needs = f"the '{extra}' extra" + (f" ({packages})" if packages else "")
        super().__init__(f"{feature} needs {needs}: {install_hint(extra)}")
        self.extra = extra


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'gflow-scheduler[extra]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def extra_requirements(extra: str) -> list[str]:
    """What ``extra`` installs, from the installed metadata (empty in a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        found = requires(DISTRIBUTION) or []
    except PackageNotFoundError:
        return []
    marker = f'extra == "{extra}"'
    return [r.split(";")[0].strip() for r in found if marker in r.replace("'", '"')]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` when it is not installed.

    ``feature`` names what the user asked for (``"the MCP server"``). A module that is
    installed but fails to import for another reason raises as usual.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        raise MissingExtra(feature, extra) from None
