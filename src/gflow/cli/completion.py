"""Shell completion scripts (bash, zsh, fish) generated from a tool's argparse parser.

Subcommands complete in first position, then the options of the chosen subcommand;
anything else falls back to file names (scripts, commands).
"""

from __future__ import annotations

import argparse
import sys

from gflow.cli.common import EXIT_OK, Parser

SHELLS = ("bash", "zsh", "fish")


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        {o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings}
    )


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    """Choices of positional arguments (a shell name, an action such as install)."""
    words: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.option_strings:
            continue
        words += [str(c) for c in action.choices or ()]
    return words


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return _flags(parser) + _choices(parser)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _subparsers(
    parser: argparse.ArgumentParser,
) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """``(names, parser)`` per subcommand; aliases share one entry."""
    names: dict[int, list[str]] = {}
    parsers: dict[int, argparse.ArgumentParser] = {}
    for name, sub in _subcommands(parser).items():
        names.setdefault(id(sub), []).append(name)
        parsers[id(sub)] = sub
    return [(names[key], parsers[key]) for key in names]


def _groups(parser: argparse.ArgumentParser) -> list[tuple[list[str], list[str]]]:
    """``(names, words)`` per subcommand."""
    return [(names, _options(sub)) for names, sub in _subparsers(parser)]


def bash(prog: str, parser: argparse.ArgumentParser, extra: list[str]) -> str:
    fn = "_" + prog.replace("-", "_") + "_complete"
    groups = _groups(parser)
    first = " ".join([n for names, _ in groups for n in names] + extra + _options(parser))
    lines = [
        f"{fn}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" words',
        '    if [ "$COMP_CWORD" -eq 1 ]; then',
        f'        words="{first}"',
    ]
    if groups:
        lines.append("    else")
        lines.append('        case "${COMP_WORDS[1]}" in')
        for names, options in groups:
            lines.append(f'            {"|".join(names)}) words="{" ".join(options)}" ;;')
        lines.append(f'            *) words="{" ".join(_options(parser))}" ;;')
        lines.append("        esac")
    else:
        lines.append("    else")
        lines.append(f'        words="{" ".join(_options(parser))}"')
    lines += [
        "    fi",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        f"complete -o default -o bashdefault -F {fn} {prog}",
    ]
    return "\n".join(lines) + "\n"


def zsh(prog: str, parser: argparse.ArgumentParser, extra: list[str]) -> str:
    fn = "_" + prog.replace("-", "_")
    groups = _groups(parser)
    first = " ".join([n for names, _ in groups for n in names] + extra + _options(parser))
    lines = [f"#compdef {prog}", f"{fn}() {{", "    if (( CURRENT == 2 )); then"]
    lines.append(f"        compadd -- {first}")
    lines.append("    else")
    if groups:
        lines.append("        case $words[2] in")
        for names, options in groups:
            lines.append(f"            {'|'.join(names)}) compadd -- {' '.join(options)} ;;")
        lines.append(f"            *) compadd -- {' '.join(_options(parser))} ;;")
        lines.append("        esac")
    else:
        lines.append(f"        compadd -- {' '.join(_options(parser))}")
    lines += ["    fi", "    _files", "}", f"compdef {fn} {prog}"]
    return "\n".join(lines) + "\n"


def _fish_option(prog: str, option: str, condition: str) -> str:
    flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
    if len(option) > 2 and not option.startswith("--"):
        flag = f"-o {option[1:]}"
    cond = f" -n '{condition}'" if condition else ""
    return f"complete -c {prog}{cond} {flag}"


def fish(prog: str, parser: argparse.ArgumentParser, extra: list[str]) -> str:
    groups = _groups(parser)
    lines: list[str] = []
    if groups or extra:
        first = " ".join([n for ns, _ in groups for n in ns] + extra)
        lines.append(f"complete -c {prog} -n '__fish_use_subcommand' -a '{first}'")
    top = "__fish_use_subcommand" if groups else ""
    lines += [_fish_option(prog, o, top) for o in _flags(parser)]
    for names, sub in _subparsers(parser):
        cond = "__fish_seen_subcommand_from " + " ".join(names)
        lines += [_fish_option(prog, o, cond) for o in _flags(sub)]
        if _choices(sub):
            lines.append(f"complete -c {prog} -n '{cond}' -f -a '{' '.join(_choices(sub))}'")
    return "\n".join(lines) + "\n"


def script(prog: str, parser: argparse.ArgumentParser, shell: str, extra: list[str]) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](prog, parser, extra)


def print_completion(
    prog: str, parser: argparse.ArgumentParser, shell: str, extra: list[str] | None = None
) -> int:
    sys.stdout.write(script(prog, parser, shell, extra or []))
    return EXIT_OK


def completion_parser(prog: str) -> Parser:
    p = Parser(
        f"{prog} completion",
        f"Print a shell completion script for {prog}.",
        f"source <({prog} completion bash)                 # bash, e.g. in ~/.bashrc\n"
        f"{prog} completion fish > ~/.config/fish/completions/{prog}.fish",
    )
    p.add_argument("shell", choices=SHELLS)
    return p


def completion_main(prog: str, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``<tool> completion bash|zsh|fish`` for tools without subcommands."""
    shell = completion_parser(prog).parse_args(argv).shell
    extra = ["new", "completion"] if prog == "gbatch" else ["completion"]
    return print_completion(prog, parser, shell, extra)
