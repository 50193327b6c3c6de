"""What every command-line tool shares: exit codes, error printing, tables, colour.

Kept free of heavy imports (no ``typing``, ``shutil``, ``datetime``, ``gflow.config``):
every tool pays for what is imported here, and ``gqueue`` runs under ``watch``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

SUPPRESS = "==SUPPRESS=="  # argparse.SUPPRESS, without importing argparse
REMAINDER = "..."  # argparse.REMAINDER
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130

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
DAEMON_HINT = "Hint: gflowd is not running; start it with: gflowd up"


class UsageError(Exception):
    """A bad command line; printed as one line with a pointer to the help, exit status 2."""

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


def run(prog: str, main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a tool's ``main`` and turn every error into one line and an exit status."""
    sys.exit(call(prog, main, argv))


def call(prog: str, main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """``main(argv)`` with the product's error printing; returns the exit status."""
    from gflow.errors import DaemonUnavailable, GflowError, InvalidInput

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return main(args)
    except UsageError as exc:
        return fail(f"{exc} (see: {exc.prog or prog} --help)", EXIT_USAGE, prog)
    except InvalidInput as exc:
        return fail(exc.message, EXIT_USAGE, prog)
    except DaemonUnavailable as exc:
        return fail(f"{exc.message}\n{DAEMON_HINT}", EXIT_UNAVAILABLE, prog)
    except GflowError as exc:
        code = EXIT_USAGE if getattr(exc, "kind", "") == "invalid" else EXIT_REFUSED
        return fail(exc.message, code, prog)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}", EXIT_REFUSED, prog)
    except Exception as exc:  # the tool's boundary: one line, never a traceback
        if os.environ.get("GFLOW_DEBUG"):
            raise
        text = f"internal error: {type(exc).__name__}: {exc} (GFLOW_DEBUG=1 shows the traceback)"
        return fail(text, EXIT_REFUSED, prog)


def fail(message: str, code: int, prog: str) -> int:
    """Print ``prog: error: message`` on stderr and return ``code``."""
    shown = "\n".join(safe(line) for line in message.split("\n"))
    print(f"{prog}: error: {shown}", file=sys.stderr)
    return code


def command_text(words: list[str], script: str | None = None) -> str:
    """A job's command as a shell would take it back: words quoted where they need it
    (one word alone is shell code, shown as written); a script's path and its arguments."""
    import shlex

    if script:
        return shlex.join([script, *words[1:]])
    return words[0] if len(words) == 1 else shlex.join(words)


def safe(text: str) -> str:
    """Text that other users wrote, as a terminal may show it: every character that could
    move the cursor, clear the screen or recolour it (escape, newline, tab, bidi marks...)
    is shown as an escape such as ``\\x1b`` instead of being sent raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def epilog(examples: str) -> str:
    lines = examples.strip("\n").splitlines()
    head = "example:" if len(lines) == 1 else "examples:"
    return head + "\n" + "\n".join("  " + ln for ln in lines)


_SHAPES = {"prefix_chars", "fromfile_prefix_chars", "allow_abbrev", "exit_on_error"}


class Parser:
    """A tool's command line, defined once with argparse's calls (``add_argument`` ...).

    The common shapes (known options with their values, then the positionals) are read
    straight from the recorded definition by :mod:`gflow.cli.quickparse`, without
    importing argparse (a third of a client's start-up). Anything else (help, a bad or
    abbreviated option, subcommands) goes to the argparse parser built from the same
    definition (:class:`gflow.cli.argp.ArgParser`), which also answers every other
    attribute: ``format_help``, ``_actions``, ``add_subparsers``...
    """

    def __init__(
        self,
        prog: str | None = None,
        description: str | None = None,
        examples: str | None = None,
        **kw: Any,
    ) -> None:
        if examples:
            kw["epilog"] = epilog(examples)
        self.prog = prog
        self._init: dict[str, Any] = {"prog": prog, "description": description, **kw}
        self.arguments: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self._real: argparse.ArgumentParser | None = None

    def add_argument(self, *flags: str, **kw: Any) -> Any:
        if self._real is not None:
            return self._real.add_argument(*flags, **kw)
        self.arguments.append((flags, kw))
        return None

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        if self._real is None and namespace is None and not self._init.keys() & _SHAPES:
            from gflow.cli import quickparse

            argv = list(sys.argv[1:] if args is None else args)
            found = quickparse.parse(self.arguments, argv)
            if found is not None:
                return found
        return self.real.parse_args(args, namespace)

    def get_default(self, dest: str) -> Any:
        if self._real is None:
            from gflow.cli import quickparse

            return quickparse.default(self.arguments, dest)
        return self._real.get_default(dest)

    @property
    def real(self) -> argparse.ArgumentParser:
        """The argparse parser of this definition (built once, on first need)."""
        if self._real is None:
            from gflow.cli.argp import ArgParser

            real = ArgParser(**self._init)
            for flags, kw in self.arguments:
                real.add_argument(*flags, **kw)
            self._real = real
        return self._real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_init", "_real", "arguments", "prog"):
            raise AttributeError(name)
        return getattr(self.real, name)


def argparser(parser: Parser | argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The argparse parser behind ``parser`` (for help, completion and manual pages)."""
    return parser.real if isinstance(parser, Parser) else parser


def subcommand(
    sub: Any,
    name: str,
    help_text: str,
    examples: str,
    aliases: Sequence[str] = (),
    description: str | None = None,
) -> Parser:
    """A subcommand parser with its own examples and ``--config``."""
    parser: Parser = sub.add_parser(
        name,
        aliases=list(aliases),
        help=help_text,
        description=description or help_text[:1].upper() + help_text[1:] + ".",
        examples=examples,
    )
    add_common(parser, sub=True)
    return parser


def add_common(parser: Parser | argparse.ArgumentParser, sub: bool = False) -> None:
    """``--config`` (on a subcommand it must not reset a value given before the subcommand),
    and ``--version`` on the tool itself."""
    default = SUPPRESS if sub else None
    parser.add_argument("--config", metavar="PATH", default=default, help="configuration file")
    if not sub:
        parser.add_argument("--version", action="version_lazy")


def add_completion(sub: Any, prog: str) -> None:
    """The ``completion bash|zsh|fish`` subcommand of a tool with subcommands."""
    comp = subcommand(
        sub,
        "completion",
        "print a shell completion script",
        f"source <({prog} completion bash)      # in ~/.bashrc",
    )
    comp.add_argument("shell", choices=["bash", "zsh", "fish"])


def client(args: Any) -> Any:
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
    """Left-aligned columns as wide as their content, two spaces apart, no trailing blanks.

    Cells are shown :func:`safe`: a job name cannot send escape sequences to a terminal.
    """
    rows = [[safe(cell) for cell in row] for row in rows]
    widths = [
        max(len(h), max((len(row[i]) for row in rows), default=0)) for i, h in enumerate(headers)
    ]
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


def now_local() -> Any:
    """The current time as an aware ``datetime`` (imports ``datetime`` only when needed)."""
    import datetime

    return datetime.datetime.now().astimezone()


def __getattr__(name: str) -> Any:
    if name in ("HelpFormatter", "VersionAction"):  # they subclass argparse's classes
        from gflow.cli import argp

        return getattr(argp, name)
    raise AttributeError(name)
