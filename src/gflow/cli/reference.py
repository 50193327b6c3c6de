"""The command reference, read from the tools' own argparse parsers.

One walk over a tool's parser gives a :class:`Page`; it is rendered as a man page
(:func:`roff`), as plain text (:func:`text`, for ``gflow man`` where ``man`` is missing)
and as Markdown (:func:`markdown`, the documentation site's reference). Nothing here
repeats a flag or a help text: change a parser and every rendering follows.
"""

from __future__ import annotations

import argparse
import html
import importlib
import re
import textwrap
from dataclasses import dataclass

from gflow.cli.argp import HelpFormatter

TOOLS = ("gflowd", "gbatch", "gqueue", "gcancel", "gjob", "ginfo", "gctl", "gstats", "gflow")
WIDTH = 78


@dataclass(frozen=True, slots=True)
class Option:
    """One option or positional argument: ``names`` is empty for a positional."""

    names: tuple[str, ...]
    metavar: str
    help: str


@dataclass(frozen=True, slots=True)
class Command:
    """A tool or one of its subcommands, as its parser describes it."""

    prog: str
    aliases: tuple[str, ...]
    usage: str
    description: str
    options: tuple[Option, ...]
    examples: str
    subcommands: tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Page:
    tool: str
    summary: str
    command: Command


@dataclass(frozen=True, slots=True)
class Note:
    """A section every page carries (exit status, environment, files)."""

    title: str
    intro: str
    items: tuple[tuple[str, str], ...]


NOTES = (
    Note(
        "EXIT STATUS",
        "",
        (
            ("0", "success"),
            ("1", "the daemon refused the request (unknown job, invalid dependency, wrong state)"),
            ("2", "usage error: a bad flag or value, named in the message"),
            ("3", "the daemon cannot be reached (start it with: gflowd up)"),
            ("124, 125", "gjob wait: the job timed out, or was cancelled (else its own status)"),
        ),
    ),
    Note(
        "ENVIRONMENT",
        "",
        (
            ("GFLOW_HOME", "one directory for everything: configuration, database, logs, socket"),
            ("GFLOW_DAEMON__KEY", "overrides the [daemon] key of the configuration file"),
            ("GFLOW_FAKE_GPUS", "simulated GPUs: 4, or 4x24G for 24 GiB each"),
            ("NO_COLOR", "no colour even on a terminal"),
            ("GFLOW_DEBUG", "show the traceback of an internal error"),
        ),
    ),
    Note(
        "FILES",
        "Without GFLOW_HOME (a system daemon: /etc/gflow, /var/lib/gflow, /run/gflow):",
        (
            ("~/.config/gflow/gflow.toml", "the configuration (gflowd init writes one)"),
            ("~/.local/share/gflow/gflow.db", "the job database"),
            ("~/.local/share/gflow/logs/ID.log", "the output of job ID"),
            ("$XDG_RUNTIME_DIR/gflow/gflowd.sock", "the daemon's socket"),
        ),
    ),
)


# ------------------------------------------------------------------ reading parsers


def page(tool: str) -> Page:
    """The reference of one tool (one of :data:`TOOLS`)."""
    if tool not in TOOLS:
        raise ValueError(f"not a gflow command: {tool}")
    module = importlib.import_module(f"gflow.cli.{tool}")
    doc = (module.__doc__ or "").split("\n\n")[0]
    summary = " ".join(doc.split()).removeprefix(f"{tool}:").strip().rstrip(".")
    return Page(tool, summary, command(module.build_parser(), extra=extra_parsers(tool)))


def extra_parsers(tool: str) -> list[argparse.ArgumentParser]:
    """Subcommands a tool parses by hand before argparse (``gbatch new``, ``completion``)."""
    from gflow.cli import completion

    module = importlib.import_module(f"gflow.cli.{tool}")
    if _subparsers(module.build_parser()):
        return []
    extra: list[argparse.ArgumentParser] = []
    if tool == "gbatch":
        extra.append(module.new_parser().real)
    return [*extra, completion.completion_parser(tool).real]


def _subparsers(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def command(
    parser: argparse.ArgumentParser, extra: list[argparse.ArgumentParser] | None = None
) -> Command:
    """Everything ``parser`` (and its subparsers, recursively) says about itself."""
    formatter = HelpFormatter(parser.prog, width=WIDTH)
    top = " " not in parser.prog
    options = tuple(
        _option(formatter, action)
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        and not isinstance(action, argparse._SubParsersAction)
        and (top or not isinstance(action, argparse._HelpAction))
    )
    subs = [command(p) for p in extra or []]
    action = _subparsers(parser)
    if action is not None:
        names: dict[int, list[str]] = {}
        parsers: dict[int, argparse.ArgumentParser] = {}
        for name, sub in action.choices.items():
            names.setdefault(id(sub), []).append(name)
            parsers[id(sub)] = sub
        for key, sub in parsers.items():
            found = command(sub)
            subs.append(_with_aliases(found, tuple(names[key][1:])))
    return Command(
        prog=parser.prog,
        aliases=(),
        usage=_usage(parser),
        description=parser.description or "",
        options=options,
        examples=_examples(parser.epilog or ""),
        subcommands=tuple(subs),
    )


def _with_aliases(cmd: Command, aliases: tuple[str, ...]) -> Command:
    return Command(
        cmd.prog, aliases, cmd.usage, cmd.description, cmd.options, cmd.examples, cmd.subcommands
    )


def _usage(parser: argparse.ArgumentParser) -> str:
    if parser.usage:  # written by hand, aligned after "usage: "
        given = parser.usage % {"prog": parser.prog}
        return "\n".join(line.strip() for line in given.splitlines())
    formatter = HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, "")
    return formatter.format_help().strip("\n")


def _option(formatter: HelpFormatter, action: argparse.Action) -> Option:
    if action.option_strings:
        metavar = formatter._format_args(action, action.dest.upper()) if action.nargs != 0 else ""
    else:
        metavar = formatter._format_args(action, action.dest)
        metavar = metavar.removesuffix(" ...")
    help_text = formatter._expand_help(action) if action.help else ""
    return Option(tuple(action.option_strings), metavar, " ".join(help_text.split()))


def _examples(epilog: str) -> str:
    lines = epilog.splitlines()
    if not lines or not lines[0].startswith("example"):
        return ""
    return textwrap.dedent("\n".join(lines[1:])).strip("\n")


def walk(cmd: Command) -> list[Command]:
    """The command and all its subcommands, depth first."""
    return [cmd, *(c for sub in cmd.subcommands for c in walk(sub))]


def _paragraphs(text: str) -> list[tuple[bool, str]]:
    """``(preformatted, text)`` per paragraph; aligned columns keep their line breaks."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        aligned = any(re.search(r"\S {2,}\S", line) for line in para.splitlines())
        out.append((aligned, para if aligned else " ".join(para.split())))
    return [p for p in out if p[1]]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _names(opt: Option) -> str:
    return ", ".join(opt.names) if opt.names else opt.metavar


def _see_also(tool: str) -> list[str]:
    return [t for t in TOOLS if t != tool]


# ------------------------------------------------------------------ roff


def _roff_escape(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-").replace("'", "\\(aq")
    text = "".join(c if c.isascii() else f"\\[u{ord(c):04X}]" for c in text)
    return "\n".join(("\\&" + ln if ln[:1] in ".'" else ln) for ln in text.splitlines())


def _roff_option(opt: Option) -> str:
    names = ", ".join(f"\\fB{_roff_escape(n)}\\fR" for n in opt.names)
    meta = f"\\fI{_roff_escape(opt.metavar)}\\fR" if opt.metavar else ""
    head = f"{names} {meta}".strip() if opt.names else meta
    return f".TP\n{head}\n{_roff_escape(_sentence(opt.help))}".rstrip("\n")


def _roff_block(text: str) -> str:
    out = []
    for pre, para in _paragraphs(text):
        out.append(f".PP\n.nf\n{_roff_escape(para)}\n.fi" if pre else f".PP\n{_roff_escape(para)}")
    return "\n".join(out)


def _roff_command(cmd: Command, head: str) -> list[str]:
    lines = [head]
    if cmd.aliases:
        lines.append(f".PP\nAlso: {_roff_escape(', '.join(cmd.aliases))}")
    lines.append(f".PP\n.nf\n{_roff_escape(cmd.usage)}\n.fi")
    if cmd.description:
        lines.append(_roff_block(cmd.description))
    lines += [_roff_option(o) for o in cmd.options]
    if cmd.examples:
        lines.append(f".PP\nExamples:\n.PP\n.nf\n.RS 4\n{_roff_escape(cmd.examples)}\n.RE\n.fi")
    return lines


def roff(p: Page, version: str) -> str:
    """The page as a man page (section 1), for ``man -l`` or ``share/man/man1``."""
    cmd = p.command
    lines = [
        f'.TH {p.tool.upper()} 1 "" "gflow-scheduler {version}" "gflow manual"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{p.tool} \\- {_roff_escape(p.summary)}",
        ".SH SYNOPSIS",
        f".nf\n{_roff_escape(cmd.usage)}\n.fi",
    ]
    if cmd.description:
        lines += [".SH DESCRIPTION", _roff_block(cmd.description)]
    if cmd.options:
        lines += [".SH OPTIONS", *(_roff_option(o) for o in cmd.options)]
    if cmd.subcommands:
        lines.append(".SH COMMANDS")
        for sub in cmd.subcommands:
            for each in walk(sub):
                lines += _roff_command(each, f".SS {_roff_escape(each.prog)}")
    if cmd.examples:
        lines += [".SH EXAMPLES", f".nf\n{_roff_escape(cmd.examples)}\n.fi"]
    for note in NOTES:
        lines.append(f".SH {note.title}")
        if note.intro:
            lines.append(_roff_escape(note.intro))
        lines += [f".TP\n\\fB{_roff_escape(k)}\\fR\n{_roff_escape(v)}" for k, v in note.items]
    lines += [".SH SEE ALSO", ",\n".join(f"\\fB{t}\\fR(1)" for t in _see_also(p.tool))]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ plain text


def _wrap(text: str, indent: int) -> str:
    pad = " " * indent
    return textwrap.fill(text, WIDTH, initial_indent=pad, subsequent_indent=pad)


def _text_block(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return [
        textwrap.indent(para, pad) if pre else _wrap(para, indent)
        for pre, para in _paragraphs(text)
    ]


def _text_command(cmd: Command, indent: int) -> list[str]:
    out = [textwrap.indent(cmd.usage, " " * indent)] if cmd.usage else []
    if cmd.aliases:
        out.append(_wrap("Also: " + ", ".join(cmd.aliases), indent))
    if cmd.description:
        out += _text_block(cmd.description, indent)
    for opt in cmd.options:
        head = " " * indent + f"{_names(opt)} {opt.metavar if opt.names else ''}".rstrip()
        out.append("\n".join([head, _wrap(_sentence(opt.help), indent + 4)]).rstrip())
    if cmd.examples:
        out.append(" " * indent + "Examples:\n" + textwrap.indent(cmd.examples, " " * (indent + 2)))
    return out


def text(p: Page) -> str:
    """The page as plain text, laid out like a man page."""
    cmd = p.command
    sections: list[tuple[str, list[str]]] = [
        ("NAME", [_wrap(f"{p.tool} - {p.summary}", 7)]),
        ("SYNOPSIS", [textwrap.indent(cmd.usage, " " * 7)]),
    ]
    if cmd.description:
        sections.append(("DESCRIPTION", _text_block(cmd.description, 7)))
    if cmd.options:
        top = Command(cmd.prog, (), "", "", cmd.options, "", ())
        sections.append(("OPTIONS", _text_command(top, 7)))
    if cmd.subcommands:
        blocks = []
        for each in (c for sub in cmd.subcommands for c in walk(sub)):
            blocks += ["   " + each.prog, *_text_command(each, 7)]
        sections.append(("COMMANDS", blocks))
    if cmd.examples:
        sections.append(("EXAMPLES", [textwrap.indent(cmd.examples, " " * 7)]))
    for note in NOTES:
        intro = [_wrap(note.intro, 7)] if note.intro else []
        sections.append(
            (note.title, intro + [" " * 7 + k + "\n" + _wrap(v, 11) for k, v in note.items])
        )
    sections.append(("SEE ALSO", [_wrap(", ".join(f"{t}(1)" for t in _see_also(p.tool)), 7)]))
    body = "\n\n".join(
        title + "\n" + "\n\n".join(b for b in blocks if b) for title, blocks in sections
    )
    return f"{p.tool.upper()}(1)\n\n{body}\n"


# ------------------------------------------------------------------ Markdown


def _md_escape(text: str) -> str:
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def _md_code(text: str) -> str:
    """Inline code that may stand in a table cell (a ``|`` would end the cell)."""
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _md_option(opt: Option) -> str:
    names = ", ".join(map(_md_code, opt.names)) if opt.names else _md_code(opt.metavar)
    meta = f" {_md_code(opt.metavar)}" if opt.names and opt.metavar else ""
    return f"| {names}{meta} | {_md_escape(_sentence(opt.help))} |"


def _md_command(cmd: Command, level: int) -> list[str]:
    out = [f"{'#' * level} {cmd.prog}"]
    if cmd.aliases:
        out.append("Also: " + ", ".join(f"`{a}`" for a in cmd.aliases))
    out.append(f"```text\n{cmd.usage}\n```")
    for pre, para in _paragraphs(cmd.description):
        out.append(f"```text\n{para}\n```" if pre else _md_escape(para))
    if cmd.options:
        out += ["| option | meaning |\n|---|---|\n" + "\n".join(map(_md_option, cmd.options))]
    if cmd.examples:
        out.append(f"Examples:\n\n```text\n{cmd.examples}\n```")
    return out


def markdown(p: Page) -> str:
    """The page as Markdown, for the documentation site's reference section."""
    parts = [
        f"# {p.tool}",
        f"{p.tool} — {_md_escape(p.summary)}.",
        "This page is generated from the command's own parser, like `gflow man "
        f"{p.tool}` and `man {p.tool}`.",
    ]
    parts += _md_command(p.command, 2)[1:]
    for each in (c for sub in p.command.subcommands for c in walk(sub)):
        parts += _md_command(each, 2)
    return "\n\n".join(parts) + "\n"
