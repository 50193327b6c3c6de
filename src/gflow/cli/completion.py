"""Shell completion scripts generated from a tool's argparse parser."""

from __future__ import annotations

import argparse
import sys


def _words(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    options: list[str] = []
    commands: list[str] = []
    for action in parser._actions:
        options += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            commands += list(action.choices)
    return sorted(set(options)), commands


def script(prog: str, parser: argparse.ArgumentParser, shell: str) -> str:
    options, commands = _words(parser)
    words = " ".join(commands + options)
    if shell == "bash":
        fn = f"_{prog}_complete"
        return (
            f'{fn}() {{\n  COMPREPLY=($(compgen -W "{words}" -- '
            f'"${{COMP_WORDS[COMP_CWORD]}}"))\n}}\ncomplete -o default -F {fn} {prog}\n'
        )
    if shell == "zsh":
        return f"#compdef {prog}\n_{prog}() {{ compadd -- {words} }}\ncompdef _{prog} {prog}\n"
    lines = [f"complete -c {prog} -f -a '{' '.join(commands)}'"] if commands else []
    lines += [f"complete -c {prog} -l {o[2:]}" for o in options]
    return "\n".join(lines) + "\n"


def print_completion(prog: str, parser: argparse.ArgumentParser, shell: str) -> int:
    sys.stdout.write(script(prog, parser, shell))
    return 0


def completion_main(prog: str, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("bash", "zsh", "fish"):
        print(f"usage: {prog} completion bash|zsh|fish", file=sys.stderr)
        return 2
    return print_completion(prog, parser, argv[0])
