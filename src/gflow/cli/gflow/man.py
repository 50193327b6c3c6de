"""``gflow man TOOL``: the manual page of a gflow command, built from its parser."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from gflow.cli.common import Parser

TOOLS = ("gflowd", "gbatch", "gqueue", "gcancel", "gjob", "ginfo", "gctl", "gstats", "gflow")
HELP = "print the manual page of a gflow command"
EXAMPLES = """
gflow man gbatch             through man(1) when it is installed, else as plain text
gflow man gqueue --roff > gqueue.1
                             the page's source, for man -l or a man directory
"""


def add_arguments(parser: Parser) -> None:
    parser.add_argument("tool", nargs="?", default="gflow", choices=TOOLS, metavar="TOOL")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--roff", action="store_true", help="print the roff source")
    how.add_argument("--text", action="store_true", help="plain text, even where man exists")


def run(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from gflow import version
    from gflow.cli import reference

    page = reference.page(args.tool)
    if args.roff:
        print(reference.roff(page, version()), end="")
        return 0
    man = None if args.text else shutil.which("man")
    if man is not None:
        source = reference.roff(page, version()).encode()
        done = subprocess.run([man, "-l", "-"], input=source, check=False)
        if done.returncode == 0:
            return 0
    print(reference.text(page), end="")
    return 0
