"""Wheel build step: man pages for every command, generated from their argparse parsers.

The pages go to ``share/man/man1`` of the environment the wheel is installed into (a
virtualenv's, pipx's, or ``/usr/local``), where ``man gbatch`` finds them. They are made
by the same code as ``gflow man`` (``gflow.cli.reference``), imported from ``src/``:
building a parser must need nothing but the standard library.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ManPages(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        sys.path.insert(0, str(Path(self.root) / "src"))
        try:
            from gflow.cli import reference
        finally:
            sys.path.pop(0)
        self._dir = Path(tempfile.mkdtemp(prefix="gflow-man-"))
        for tool in reference.TOOLS:
            page = self._dir / f"{tool}.1"
            page.write_text(reference.roff(reference.page(tool), self.metadata.version))
            build_data["shared_data"][str(page)] = f"share/man/man1/{tool}.1"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
