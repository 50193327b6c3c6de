"""What every command-line tool shares: exit codes, error printing, tables, colour.

Kept free of heavy imports: the tools start in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from gflow.errors import DaemonUnavailable, GflowError, InvalidInput

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

STATE_COLORS = {
    "R": "\033[1;32m",
    "PD": "\033[33m",
    "H": "\033[1m",
    "CD": "\033[2m",
    "F": "\033[1;31m",
    "CA": "\033[9m",
    "TO": "\033[4;35m",
}
RESET = "\033[0m"


def run(prog: str, main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a tool's ``main`` and turn every error into one line and an exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = main(args)
    except InvalidInput as exc:
        print(f"{prog}: error: {exc.message}", file=sys.stderr)
        code = EXIT_USAGE
    except DaemonUnavailable as exc:
        print(
            f"{prog}: {exc.message}\nHint: gflowd is not running; start it with: gflowd up",
            file=sys.stderr,
        )
        code = EXIT_UNAVAILABLE
    except GflowError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        code = EXIT_USAGE if getattr(exc, "kind", "") == "invalid" else EXIT_REFUSED
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    """argparse with examples in the help and the product's usage-error exit code."""

    def __init__(
        self,
        prog: str | None = None,
        description: str | None = None,
        examples: str | None = None,
        **kw: Any,
    ) -> None:
        if examples:
            lines = examples.strip().splitlines()
            kw["epilog"] = "examples:\n" + "\n".join("  " + ln for ln in lines)
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, description=description, **kw)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="configuration file to use")


def client(args: argparse.Namespace) -> Any:
    from gflow.client import Client

    return Client(config=getattr(args, "config", None))


def use_color(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def color_state(code: str, enabled: bool) -> str:
    return (
        f"{STATE_COLORS.get(code, '')}{code}{RESET}" if enabled and code in STATE_COLORS else code
    )


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    paint: Callable[[int, str], str] | None = None,
) -> str:
    """Left-aligned columns as wide as their content, two spaces apart, no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for index, row in enumerate([list(headers), *map(list, rows)]):
        cells = []
        for i, cell in enumerate(row):
            pad = "" if i == len(row) - 1 else " " * (widths[i] - len(cell))
            shown = paint(i, cell) if paint and index > 0 else cell
            cells.append(shown + pad)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def hms(seconds: float | None) -> str:
    """``HH:MM:SS`` (hours keep counting past a day); ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(int(seconds), 0)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def limit_text(seconds: int | None) -> str:
    return "UNLIMITED" if seconds is None else hms(seconds)


def memory_text(mb: int | None) -> str:
    if mb is None:
        return "-"
    if mb % 1024 == 0:
        return f"{mb // 1024}G"
    if mb > 1024:
        return f"{mb / 1024:.1f}G"
    return f"{mb}M"


def clock(ts: float | None) -> str:
    if ts is None:
        return "-"
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
