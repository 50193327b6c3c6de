"""Shell completion scripts (bash, zsh, fish) generated from a tool's argparse parser.

Subcommands complete in first position, then the options of the chosen subcommand.
Where a job is named (a positional or an option whose metavar is ``IDS``, ``JOB`` or
``DEP``) the user's recent job ids are offered, asked of gflowd (at most two seconds,
nothing when it is down). Once gbatch's command has begun (the first word that is
neither an option nor an option's value), only file names complete. Anything else falls
back to file names.
"""

from __future__ import annotations

import argparse
import sys

from gflow.cli.common import EXIT_OK, Parser, argparser

SHELLS = ("bash", "zsh", "fish")
JOB_METAVARS = frozenset({"IDS", "JOB", "DEP"})
JOB_IDS = "timeout 2 gqueue -a -n -50 -f JOBID 2>/dev/null | tail -n +2"
"""The shell command that prints the user's recent job ids, one per line."""


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        {o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings}
    )


def _valued(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """(flags that name jobs, other flags that take a value)."""
    jobs: list[str] = []
    others: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        (jobs if action.metavar in JOB_METAVARS else others).extend(action.option_strings)
    return sorted(jobs), sorted(others)


def _names_jobs(parser: argparse.ArgumentParser) -> bool:
    """Whether a positional argument of ``parser`` names jobs."""
    return any(not a.option_strings and a.metavar in JOB_METAVARS for a in parser._actions)


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


# ---------------------------------------------------------------- bash


def _bash_case(parser: argparse.ArgumentParser, indent: str) -> list[str]:
    """Lines that set ``words`` (and ``ids``) for the options and arguments of ``parser``."""
    jobs, others = _valued(parser)
    lines = [f'{indent}words="{" ".join(_options(parser))}"']
    if _names_jobs(parser):
        lines.append(f"{indent}ids=1")
    lines.append(f'{indent}case "$prev" in')
    if jobs:
        lines.append(f'{indent}    {"|".join(jobs)}) words="$(_gflow_job_ids)"; ids=0 ;;')
    if others:
        lines.append(f"{indent}    {'|'.join(others)}) return 0 ;;")
    lines.append(f"{indent}esac")
    return lines


def _bash_command_started(parser: argparse.ArgumentParser) -> list[str]:
    """gbatch: return (file names) once the job's command has begun before the cursor."""
    _, others = _valued(parser)
    skip = "|".join(others)
    return [
        "    local i=1 w",
        '    while [ "$i" -lt "$COMP_CWORD" ]; do',
        '        w="${COMP_WORDS[i]}"',
        '        case "$w" in',
        "            =) i=$((i + 1)) ;;",
        f'            {skip}) [ "${{COMP_WORDS[i + 1]}}" = "=" ] && i=$((i + 1)); i=$((i + 1)) ;;',
        "            -*) ;;",
        "            *) return 0 ;;",
        "        esac",
        "        i=$((i + 1))",
        "    done",
    ]


def bash(prog: str, parser: argparse.ArgumentParser, extra: list[str]) -> str:
    fn = "_" + prog.replace("-", "_") + "_complete"
    subs = _subparsers(parser)
    lines = [
        f"_gflow_job_ids() {{ {JOB_IDS}; }}",
        f"{fn}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD - 1]}"',
        "    local words ids=0",
        "    COMPREPLY=()",
        '    [ "$prev" = "=" ] && prev="${COMP_WORDS[COMP_CWORD - 2]}"',
    ]
    if prog == "gbatch":
        lines += _bash_command_started(parser)
    if subs:
        first = [n for names, _ in subs for n in names] + extra + _options(parser)
        lines += [
            '    if [ "$COMP_CWORD" -eq 1 ]; then',
            f'        words="{" ".join(first)}"',
            "    else",
            '        case "${COMP_WORDS[1]}" in',
        ]
        for names, sub in subs:
            lines.append(f"            {'|'.join(names)})")
            lines += _bash_case(sub, "                ")
            lines.append("                ;;")
        lines += ["        esac", "    fi"]
    else:
        lines += _bash_case(parser, "    ")
        if extra:
            lines.append(f'    [ "$COMP_CWORD" -eq 1 ] && words="$words {" ".join(extra)}"')
    lines += [
        '    if [ "$ids" = 1 ] && [ "${cur#-}" = "$cur" ]; then',
        '        words="$words $(_gflow_job_ids)"',
        "    fi",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        f"complete -o default -o bashdefault -F {fn} {prog}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- zsh


def _zsh_case(parser: argparse.ArgumentParser, indent: str) -> list[str]:
    jobs, others = _valued(parser)
    lines = [f"{indent}case $words[CURRENT-1] in"]
    if jobs:
        lines.append(f"{indent}    {'|'.join(jobs)}) compadd -- $(_gflow_job_ids); return ;;")
    if others:
        lines.append(f"{indent}    {'|'.join(others)}) _files; return ;;")
    lines.append(f"{indent}esac")
    lines.append(f"{indent}compadd -- {' '.join(_options(parser))}")
    if _names_jobs(parser):
        lines.append(f"{indent}compadd -- $(_gflow_job_ids)")
    return lines


def zsh(prog: str, parser: argparse.ArgumentParser, extra: list[str]) -> str:
    fn = "_" + prog.replace("-", "_")
    subs = _subparsers(parser)
    lines = [f"#compdef {prog}", f"_gflow_job_ids() {{ {JOB_IDS}; }}", f"{fn}() {{"]
    if prog == "gbatch":
        _, others = _valued(parser)
        lines += [
            "    local i=2",
            "    while (( i < CURRENT )); do",
            "        case $words[i] in",
            f"            {'|'.join(others)}) (( i++ )) ;;",
            "            -*) ;;",
            "            *) _files; return ;;",
            "        esac",
            "        (( i++ ))",
            "    done",
        ]
    if subs:
        first = [n for names, _ in subs for n in names] + extra + _options(parser)
        lines += [
            "    if (( CURRENT == 2 )); then",
            f"        compadd -- {' '.join(first)}",
            "    else",
            "        case $words[2] in",
        ]
        for names, sub in subs:
            lines.append(f"            {'|'.join(names)})")
            lines += _zsh_case(sub, "                ")
            lines.append("                ;;")
        lines += ["        esac", "    fi"]
    else:
        lines += _zsh_case(parser, "    ")
        if extra:
            lines.append(f"    (( CURRENT == 2 )) && compadd -- {' '.join(extra)}")
    lines += ["    _files", "}", f"compdef {fn} {prog}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- fish


def _fish_option(prog: str, option: str, condition: str, jobs: bool) -> str:
    flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
    if len(option) > 2 and not option.startswith("--"):
        flag = f"-o {option[1:]}"
    cond = f" -n '{condition}'" if condition else ""
    ids = f" -r -f -a '({JOB_IDS})'" if jobs else ""
    return f"complete -c {prog}{cond} {flag}{ids}"


def _fish_options(prog: str, parser: argparse.ArgumentParser, condition: str) -> list[str]:
    jobs = set(_valued(parser)[0])
    return [_fish_option(prog, o, condition, o in jobs) for o in _flags(parser)]


def fish(prog: str, parser: argparse.ArgumentParser, extra: list[str]) -> str:
    subs = _subparsers(parser)
    lines: list[str] = []
    if subs or extra:
        first = " ".join([n for ns, _ in subs for n in ns] + extra)
        lines.append(f"complete -c {prog} -n '__fish_use_subcommand' -a '{first}'")
    top = "__fish_use_subcommand" if subs else ""
    lines += _fish_options(prog, parser, top)
    if _names_jobs(parser):
        lines.append(f"complete -c {prog} -f -a '({JOB_IDS})'")
    for names, sub in subs:
        cond = "__fish_seen_subcommand_from " + " ".join(names)
        lines += _fish_options(prog, sub, cond)
        if _choices(sub):
            lines.append(f"complete -c {prog} -n '{cond}' -f -a '{' '.join(_choices(sub))}'")
        if _names_jobs(sub):
            lines.append(f"complete -c {prog} -n '{cond}' -f -a '({JOB_IDS})'")
    return "\n".join(lines) + "\n"


def script(
    prog: str, parser: Parser | argparse.ArgumentParser, shell: str, extra: list[str]
) -> str:
    parser = argparser(parser)
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](prog, parser, extra)


def print_completion(
    prog: str, parser: Parser | argparse.ArgumentParser, shell: str, extra: list[str] | None = None
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


def completion_main(prog: str, parser: Parser | argparse.ArgumentParser, argv: list[str]) -> int:
    """``<tool> completion bash|zsh|fish`` for tools without subcommands."""
    shell = completion_parser(prog).parse_args(argv).shell
    extra = ["new", "completion"] if prog == "gbatch" else ["completion"]
    return print_completion(prog, parser, shell, extra)
