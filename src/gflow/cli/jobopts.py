"""Job options on a command line: argparse arguments made from :data:`gflow.options.OPTIONS`.

``gbatch``, its script directives, ``gjob update`` and ``gjob redo`` all add their job
options here, and send what was typed (:func:`given`) for the daemon to parse.
"""

from __future__ import annotations

from gflow.cli.common import REMAINDER, SUPPRESS
from gflow.options import BY_KEY, LIST, OPTIONS, SUBMIT, SWITCH, WORDS, allowed

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from gflow.cli.common import Parser


def add(parser: Parser | argparse.ArgumentParser, purpose: str) -> None:
    """Every job option, as flags of ``parser``. For a change, the options that cannot
    change are still understood (and hidden from the help), so the daemon can say why."""
    for option in OPTIONS:
        if option.kind.form == WORDS and purpose == SUBMIT:
            continue  # gbatch takes the command as its remaining words
        shown = allowed(option, purpose)
        kw: dict[str, Any] = {
            "dest": option.key,
            "help": option.help.replace("%", "%%") if shown else SUPPRESS,
        }
        if option.kind.form == SWITCH:
            kw["action"] = "store_true"
        elif option.kind.form == WORDS:
            kw["nargs"] = REMAINDER
        else:
            kw["metavar"] = option.metavar
            if option.kind.form == LIST:
                kw["action"] = "append"
        parser.add_argument(*option.flags, **kw)


def given(args: Any, purpose: str) -> dict[str, Any]:
    """The job options given on the command line, as typed, by keyword."""
    out: dict[str, Any] = {}
    for option in OPTIONS:
        if option.kind.form == WORDS and purpose == SUBMIT:
            continue
        value = getattr(args, option.key, None)
        if option.kind.form == WORDS and value and value[0] == "--":
            value = value[1:]
        if value is not None and value is not False and value != []:
            out[option.key] = value
    return out


def read_local(options: dict[str, Any]) -> dict[str, Any]:
    """Take the local options out of ``options``: the fields they set, read here."""
    local = [k for k in options if k in BY_KEY and BY_KEY[k].local]
    if not local:
        return {}
    from gflow.paramfile import READERS

    return {BY_KEY[key].field: READERS[key](options.pop(key)) for key in local}
