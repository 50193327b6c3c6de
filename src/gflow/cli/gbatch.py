"""gbatch: submit a command or a script (also as an array or a parameter sweep)."""

from __future__ import annotations

import argparse
import os
import sys

from gflow.cli.common import EXIT_OK, EXIT_REFUSED, Parser, UsageError, add_common, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXAMPLES = """
gbatch python train.py --lr 0.01           run a command (in this directory, with this env)
gbatch -g 1 -t 4:00:00 -n train train.sh   a script on one GPU for at most 4 hours
gbatch --depends-on @ python eval.py       start after my previous submission succeeds
gbatch --depends-on-all 3,4 python merge.py
gbatch -d afterany:5 ./cleanup.sh          Slurm syntax;  -W depend=afterok:5  Moab syntax
gbatch --array 1-10%2 python task.py --i '$GFLOW_ARRAY_TASK_ID'
gbatch --param lr=0.1,0.01 --param bs=32,64 python train.py --lr {lr} --bs {bs}
gbatch --dry-run -g 2 python train.py      show what would be submitted, submit nothing
gbatch < job.sh                            a script on standard input
gbatch new myjob                           write myjob.sh, a script template
gbatch completion bash                     a shell completion script
"""

DESCRIPTION = """\
Submit a job: a command, or a script whose '# GFLOW' lines hold options.
Everything after the first word that is not an option belongs to the job.
Options on the command line win over '# GFLOW' and '#SBATCH' lines in the script.

time:   HH:MM:SS, MM:SS, or a bare number of minutes (also D-HH:MM:SS, UNLIMITED)
memory: 512 (MB), 1024M, 2G
begin:  HH:MM[:SS], YYYY-MM-DD[THH:MM[:SS]], now+N[s|m|h|d], today, tomorrow"""

TEMPLATE = """#!/bin/bash
# gflow job script: submit it with  gbatch {name}
#
# Lines starting with "# GFLOW" are read by gbatch as options; options given on the
# command line win over them. Remove one "#" from a "## GFLOW" line to use it.
#
## GFLOW --name={stem}
## GFLOW --gpus=1
#   GPUs to allocate (default: 0)
## GFLOW --time=1:30:00
#   time limit: HH:MM:SS, MM:SS or minutes (default: unlimited)
## GFLOW --memory=4G
#   host memory limit: 512 (MB), 1024M, 2G (default: unlimited)
## GFLOW --priority=20
#   0-255, higher runs first (default: 10)
## GFLOW --depends-on=123
#   start after job 123 succeeds (also @, the previous submission)
## GFLOW --conda-env=myenv
#   activate this conda environment first (default: none)
#
# The job runs in the directory it was submitted from, with GFLOW_JOB_ID,
# GFLOW_JOB_NAME and CUDA_VISIBLE_DEVICES set.

# --- Your script starts here ---
echo "job $GFLOW_JOB_ID ($GFLOW_JOB_NAME) on $HOSTNAME, GPUs: ${{CUDA_VISIBLE_DEVICES:-none}}"
"""

# Slurm options that mean the same here; any other #SBATCH option is reported and skipped.
SBATCH_FLAGS = {
    "--job-name",
    "-J",
    "--time",
    "-t",
    "--gres",
    "--gpus",
    "-G",
    "--dependency",
    "-d",
    "--mem",
    "--array",
    "-a",
    "--begin",
    "--hold",
    "-H",
}
SBATCH_SWITCHES = {"--hold", "-H"}
DIRECTIVE_MARKERS = ("# GFLOW", "#GFLOW", "#SBATCH")
DIRECTIVE_LINES = 500


def build_parser() -> Parser:
    p = Parser(
        "gbatch",
        DESCRIPTION,
        EXAMPLES,
        usage="gbatch [options] <script | command> [args...]\n"
        "       gbatch new NAME | gbatch completion bash|zsh|fish",
    )
    add_common(p)
    p.add_argument(
        "-n",
        "--name",
        "-J",
        "--job-name",
        dest="name",
        metavar="NAME",
        help="job name (default: a random readable name)",
    )
    p.add_argument(
        "-g",
        "--gpus",
        "--gres",
        "-G",
        dest="gpus",
        metavar="N",
        help="GPUs to allocate (also Slurm's gpu:N)",
    )
    p.add_argument(
        "--shared", action="store_true", help="share GPUs by memory (needs --gpu-memory)"
    )
    p.add_argument(
        "--gpu-memory",
        "--max-gpu-mem",
        "--max-gpu-memory",
        dest="gpu_memory",
        metavar="SIZE",
        help="GPU memory the job uses, e.g. 8G",
    )
    p.add_argument(
        "-t",
        "--time",
        "--time-limit",
        "--timelimit",
        dest="time",
        metavar="TIME",
        help="time limit: HH:MM:SS, MM:SS or minutes",
    )
    p.add_argument(
        "-m",
        "--memory",
        "--max-mem",
        "--max-memory",
        "--mem",
        dest="memory",
        metavar="SIZE",
        help="host memory limit: 512 (MB), 1024M, 2G",
    )
    p.add_argument(
        "-p",
        "--priority",
        "--nice",
        dest="priority",
        metavar="0-255",
        help="higher runs first (default 10)",
    )
    p.add_argument(
        "--begin",
        metavar="WHEN",
        help="start no earlier than HH:MM[:SS], YYYY-MM-DD[THH:MM[:SS]], now+N[smhd]",
    )
    p.add_argument(
        "-c",
        "--conda-env",
        dest="conda_env",
        metavar="ENV",
        help="conda environment (default for commands: $CONDA_DEFAULT_ENV)",
    )
    p.add_argument("-P", "--project", metavar="CODE", help="project code (at most 64 characters)")
    p.add_argument(
        "-d",
        "--depends-on",
        "--dependency",
        dest="depends_on",
        action="append",
        metavar="DEP",
        help="after X succeeds; or Slurm form afterok:1:2,afterany:3",
    )
    p.add_argument("--depends-on-all", metavar="IDS", help="after all of them succeed")
    p.add_argument("--depends-on-any", metavar="IDS", help="after any one of them succeeds")
    p.add_argument(
        "--no-auto-cancel",
        action="store_true",
        help="stay queued (marked) instead of being cancelled when a dependency fails",
    )
    p.add_argument(
        "-W",
        dest="moab",
        action="append",
        metavar="depend=SPEC",
        help="Moab/Torque: depend=afterok:1:2,before:3,on:1",
    )
    p.add_argument("-a", "--array", metavar="SPEC", help="job array: 1-10, 1,3,5, 0-20:2, 1-100%%4")
    p.add_argument(
        "--param",
        action="append",
        metavar="K=V1,V2",
        help="parameter sweep (repeatable; ranges start:stop[:step])",
    )
    p.add_argument("--param-file", metavar="CSV", help="one job per CSV row (header = keys)")
    p.add_argument("--name-template", metavar="TEMPLATE", help="job names such as 'run_{lr}'")
    p.add_argument("--max-concurrent", metavar="N", help="at most N jobs of this submission run")
    p.add_argument("--max-retries", metavar="N", help="resubmit up to N times after a failure")
    p.add_argument("--retry-on-timeout", action="store_true", help="also retry after a timeout")
    p.add_argument("-H", "--hold", action="store_true", help="submit held (gjob release later)")
    p.add_argument("--auto-close", action="store_true", help="close the tmux session at the end")
    p.add_argument("--dry-run", action="store_true", help="show what would be submitted")
    p.add_argument("command", nargs=argparse.REMAINDER, help="script or command, then its args")
    return p


def new_parser() -> Parser:
    p = Parser(
        "gbatch new",
        "Write NAME.sh, a job script template with commented '# GFLOW' option lines.",
        "gbatch new train        writes train.sh; edit it, then: gbatch train.sh",
    )
    p.add_argument("name", metavar="NAME")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["new"]:
        return _new(new_parser().parse_args(argv[1:]).name)
    if argv[:1] == ["completion"]:
        from gflow.cli.completion import completion_main

        return completion_main("gbatch", build_parser(), argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]  # "gbatch -- new": a command named like a subcommand
    script = _script_path(args.command[0]) if args.command else None
    if script is not None:
        text = _read_script(script)
    elif not args.command:
        text = _stdin_script()
        args.command = [text]
    else:
        text = None
    if text is not None:
        tokens = _directives(text)
        if tokens:
            _apply_directives(parser, args, tokens, str(script or "the script on stdin"))
    body = _request(args, script)
    from gflow.client import Client

    answer = Client(config=args.config).post("/v1/jobs", body)
    jobs = answer["jobs"]
    if answer.get("dry_run"):
        _print_dry_run(jobs)
        return EXIT_OK
    for job in jobs:
        print(f"Submitted batch job {job['id']} ({job['name']})")
    return EXIT_OK


def _print_dry_run(jobs: list[dict[str, Any]]) -> None:
    import shlex

    print(f"Would submit {len(jobs)} batch job{'s' if len(jobs) != 1 else ''} (nothing submitted):")
    for job in jobs:
        extra = f", task {job['task_id']}" if job["task_id"] is not None else ""
        words = job["command"]
        shown = words[0] if len(words) == 1 else shlex.join(words)
        if "\n" in shown:
            shown = shown.strip().splitlines()[0] + " ..."
        print(f"  [{job['id']}] {job['name']}: {shown} (GPUs: {job['gpus']}{extra})")


def _script_path(first: str) -> str | None:
    """The absolute path of ``first`` when it names a file (script form), else None."""
    return os.path.abspath(first) if os.path.isfile(first) else None


def _read_script(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(256 * 1024)
    except OSError:
        return None
    if b"\0" in head[:4096]:
        return None  # a binary program, not a script: no directives
    return head.decode(errors="replace")


def _stdin_script() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("a command or script to run is required")
    text = sys.stdin.read()
    if not text.strip():
        raise UsageError("a command or script to run is required (standard input was empty)")
    return text


def _directives(text: str) -> list[str]:
    """Options from the ``# GFLOW`` (and mappable ``#SBATCH``) lines of a script."""
    import shlex

    tokens: list[str] = []
    ignored: list[str] = []
    for line in text.splitlines()[:DIRECTIVE_LINES]:
        stripped = line.strip()
        for marker in DIRECTIVE_MARKERS:
            if stripped.startswith(marker):
                rest = stripped[len(marker) :]
                if rest[:1] not in ("", " ", "\t"):
                    break  # e.g. "# GFLOWS": not a directive
                try:
                    words = shlex.split(rest, comments=True)
                except ValueError:
                    words = rest.split()
                if marker == "#SBATCH":
                    words, skipped = _sbatch(words)
                    ignored += skipped
                tokens += words
                break
    if ignored:
        print(
            f"gbatch: note: ignoring #SBATCH options gflow has no use for: {' '.join(ignored)}",
            file=sys.stderr,
        )
    return tokens


def _sbatch(words: list[str]) -> tuple[list[str], list[str]]:
    kept: list[str] = []
    skipped: list[str] = []
    i = 0
    while i < len(words):
        flag = words[i].split("=", 1)[0]
        takes_value = "=" not in words[i] and flag not in SBATCH_SWITCHES
        group = words[i : i + (2 if takes_value and i + 1 < len(words) else 1)]
        (kept if flag in SBATCH_FLAGS else skipped).extend(group)
        i += len(group)
    return kept, skipped


def _apply_directives(
    parser: Parser, args: argparse.Namespace, tokens: list[str], where: str
) -> None:
    """Fill every option not given on the command line from the script's directives."""
    try:
        found = parser.parse_args(tokens)
    except UsageError as exc:
        raise UsageError(f"in the '# GFLOW'/'#SBATCH' lines of {where}: {exc}") from None
    if found.command:
        raise UsageError(
            f"in the '# GFLOW' lines of {where}: unexpected word {found.command[0]!r} "
            "(expected options such as --gpus=1 --time=10)"
        )
    for dest, value in vars(found).items():
        if dest in ("command", "config"):
            continue
        if getattr(args, dest) == parser.get_default(dest):
            setattr(args, dest, value)


def _request(args: argparse.Namespace, script: str | None) -> dict[str, Any]:
    """The submission: option values go as typed, the daemon parses them.

    Nothing here imports a parser, so ``gbatch`` in a shell loop costs little more than
    Python's start-up; a bad value comes back as a usage error naming the option.
    """
    import time

    conda = args.conda_env
    if conda is None and script is None:
        conda = os.environ.get("CONDA_DEFAULT_ENV") or None
    command = [script, *args.command[1:]] if script else list(args.command)
    if args.shared and not args.gpu_memory:
        raise UsageError("--shared needs --gpu-memory SIZE (the GPU memory the job uses)")
    options = {
        "gpus": args.gpus,
        "time": args.time,
        "memory": args.memory,
        "gpu_memory": args.gpu_memory,
        "priority": args.priority,
        "begin": args.begin,
        "utc_offset": time.localtime().tm_gmtoff if args.begin else None,
        "params": args.param or [],
        "max_concurrent": args.max_concurrent,
        "max_retries": args.max_retries,
        "depends_on": args.depends_on or [],
        "depends_on_all": args.depends_on_all,
        "depends_on_any": args.depends_on_any,
        "moab": args.moab or [],
        "no_auto_cancel": args.no_auto_cancel,
    }
    rows: list[dict[str, str]] = []
    if args.param_file:
        from gflow.parse import read_param_file

        rows = read_param_file(args.param_file)
    return {
        "command": command,
        "script": script,
        "workdir": os.getcwd(),
        "env": dict(os.environ),
        "name": args.name,
        "shared": args.shared,
        "conda_env": conda,
        "project": args.project,
        "auto_close": True if args.auto_close else None,
        "array": args.array,
        "param_rows": rows,
        "name_template": args.name_template,
        "retry_on_timeout": args.retry_on_timeout,
        "hold": args.hold,
        "dry_run": args.dry_run,
        "options": {k: v for k, v in options.items() if v not in (None, [], False)},
    }


def _new(name: str) -> int:
    if not name or name.startswith("-"):
        raise UsageError(f"invalid name {name!r}: expected a file name such as train")
    path = name if name.endswith(".sh") else name + ".sh"
    stem = os.path.basename(path)[:-3] or "job"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
    except FileExistsError:
        print(f"gbatch: error: {path} already exists", file=sys.stderr)
        return EXIT_REFUSED
    with os.fdopen(fd, "w") as fh:
        fh.write(TEMPLATE.format(name=path, stem=stem))
    print(f"Wrote {path}; edit it, then: gbatch {path}")
    return EXIT_OK


def entry() -> None:
    run("gbatch", main)


if __name__ == "__main__":
    entry()
