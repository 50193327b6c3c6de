"""The argparse side of :class:`gflow.cli.common.Parser`: help, errors, subcommands.

Imported only when a command line needs more than :mod:`gflow.cli.quickparse` reads
(``--help``, a bad option, a tool with subcommands), or to write help and man pages.
"""

from __future__ import annotations

import argparse
import os
import sys

from gflow.cli.common import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Raw epilogs (the examples), and the width found without importing ``shutil``."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 30, width: Any = None
    ) -> None:
        if width is None:
            width = _terminal_width() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_width() -> int:
    try:
        return max(int(os.environ["COLUMNS"]), 40)
    except (KeyError, ValueError):
        pass
    try:
        return max(os.get_terminal_size(sys.__stdout__.fileno()).columns, 40)  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class VersionAction(argparse.Action):
    """``--version``: prints ``<tool> <version>``; the version is read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="print the version and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> None:
        from gflow import version

        print(f"{parser.prog} {version()}")
        parser.exit()


class ArgParser(argparse.ArgumentParser):
    """argparse with examples in the help, and usage errors raised as :class:`UsageError`."""

    def __init__(
        self,
        prog: str | None = None,
        description: str | None = None,
        examples: str | None = None,
        **kw: Any,
    ) -> None:
        from gflow.cli.common import epilog

        if examples:
            kw["epilog"] = epilog(examples)
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(prog=prog, description=description, **kw)
        self.register("action", "version_lazy", VersionAction)

    def add_argument(self, *args: Any, **kw: Any) -> argparse.Action:
        # argparse tells SUPPRESS by identity; common.SUPPRESS is an equal string
        kw = {k: argparse.SUPPRESS if v == argparse.SUPPRESS else v for k, v in kw.items()}
        return super().add_argument(*args, **kw)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)
