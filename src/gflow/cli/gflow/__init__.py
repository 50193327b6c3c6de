"""gflow: the umbrella command — ``gflow man``, ``gflow --version``, and more to come.

Each subcommand is one module in this package, found by its file name: adding
``gflow NAME`` means adding ``NAME.py`` here with

* ``HELP`` — one line for ``gflow --help``;
* ``EXAMPLES`` — example lines for ``gflow NAME --help`` (``command   comment``);
* ``add_arguments(parser)`` — its options, on a :class:`~gflow.cli.common.Parser`;
* ``run(args) -> int`` — the work; it returns the exit status;
* optionally ``DESCRIPTION`` — the paragraph atop ``gflow NAME --help`` (else ``HELP``).

A subcommand module is imported only when it is needed (``gflow --help`` imports them
all), so its top level must stay light: import its heavy dependencies inside ``run``, and
use :func:`gflow.extras.require` for a dependency that comes with an optional extra.
"""

from __future__ import annotations

import os

from gflow.cli.common import Parser, add_common, add_completion, run, subcommand

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Protocol

    class Subcommand(Protocol):
        HELP: str
        EXAMPLES: str

        def add_arguments(self, parser: Parser) -> None: ...

        def run(self, args: argparse.Namespace) -> int: ...


EXAMPLES = """
gflow man gbatch             the manual page of gbatch (any gflow command)
gflow --version              the installed version
gflow completion bash        a shell completion script (also zsh, fish)
"""


def names() -> list[str]:
    """The subcommands: one per module in this package, in alphabetical order."""
    here = os.path.dirname(__file__)
    found = (f[:-3] for f in os.listdir(here) if f.endswith(".py") and f[0] not in "_.")
    return sorted(found)


def load(name: str) -> Subcommand:
    import importlib

    module: Subcommand = importlib.import_module(f"{__name__}.{name}")
    return module


def build_parser(only: str | None = None) -> Parser:
    """The whole command, or (``only``) the command with just the one subcommand loaded."""
    p = Parser("gflow", "The gflow umbrella command: manuals, version, and tools.", EXAMPLES)
    add_common(p)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    for name in [only] if only else names():
        module = load(name)
        described = getattr(module, "DESCRIPTION", None)
        parser = subcommand(sub, name, module.HELP, module.EXAMPLES, description=described)
        module.add_arguments(parser)
    add_completion(sub, "gflow")
    return p


def main(argv: list[str]) -> int:
    first = next((a for a in argv if not a.startswith("-")), None)
    only = first if first in names() else None
    args = build_parser(only).parse_args(argv)
    if args.cmd == "completion":
        from gflow.cli.completion import print_completion

        return print_completion("gflow", build_parser(), args.shell)
    return load(args.cmd).run(args)


def entry() -> None:
    run("gflow", main)


if __name__ == "__main__":
    entry()
