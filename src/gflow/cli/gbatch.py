"""gbatch: submit a command or a script (also as an array or a parameter sweep)."""

from __future__ import annotations

import os
import sys

from gflow.cli import jobopts
from gflow.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    REMAINDER,
    Parser,
    UsageError,
    add_common,
    command_text,
    run,
    safe,
)
from gflow.options import SUBMIT

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


def build_parser() -> Parser:
    p = Parser(
        "gbatch",
        DESCRIPTION,
        EXAMPLES,
        usage="gbatch [options] <script | command> [args...]\n"
        "       gbatch new NAME | gbatch completion bash|zsh|fish",
    )
    add_common(p)
    jobopts.add(p, SUBMIT)
    p.add_argument("command", nargs=REMAINDER, help="script or command, then its args")
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
        where = str(script or "the script on stdin")
        tokens = _directives(text, where)
        if tokens:
            _apply_directives(parser, args, tokens, where)
    body = _request(args, script)
    from gflow.client import Client

    answer = Client(config=args.config).post("/v1/jobs", body)
    jobs = answer["jobs"]
    if answer.get("dry_run"):
        _print_dry_run(jobs)
        return EXIT_OK
    _print_submitted(jobs, "array" if args.array else "sweep")
    _note_unstartable(jobs)
    return EXIT_OK


def _print_submitted(jobs: list[dict[str, Any]], kind: str) -> None:
    """One line per submission, as sbatch prints it (an array: its first id and range)."""
    first = jobs[0]
    if len(jobs) == 1:
        print(f"Submitted batch job {first['id']} ({safe(first['name'])})")
        return
    what = f"array of {len(jobs)} tasks" if kind == "array" else f"sweep of {len(jobs)} jobs"
    print(f"Submitted batch job {first['id']} ({what}: {first['id']}-{jobs[-1]['id']})")


def _note_unstartable(jobs: list[dict[str, Any]]) -> None:
    """Say so when the dependency of what was just submitted can already never be met."""
    for state, reason, verb in (
        ("Cancelled", None, "cancelled at once"),
        ("Queued", "DependencyNeverSatisfied", "queued but can never start"),
    ):
        hit = [j for j in jobs if j["state"] == state and reason in (None, j.get("reason"))]
        if not hit:
            continue
        who = f"job {hit[0]['id']} was" if len(jobs) == 1 else f"{len(hit)} of the jobs were"
        why = safe(hit[0].get("reason") or state)
        print(
            f"gbatch: note: {who} {verb}: the dependency can never be met ({why})",
            file=sys.stderr,
        )


def _print_dry_run(jobs: list[dict[str, Any]]) -> None:
    print(f"Would submit {len(jobs)} batch job{'s' if len(jobs) != 1 else ''} (nothing submitted):")
    for job in jobs:
        extra = f", task {job['task_id']}" if job["task_id"] is not None else ""
        shown = command_text(job["command"])
        if "\n" in shown:
            shown = shown.strip().splitlines()[0] + " ..."
        line = f"  [{job['id']}] {job['name']}: {shown} (GPUs: {job['gpus']}{extra})"
        print(safe(line))


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


def _directives(text: str, where: str) -> list[str]:
    """The options of a script's header; the #SBATCH options gflow ignores are named."""
    from gflow import directives

    found = directives.read(text, where)
    if found.ignored:
        print(
            f"gbatch: warning: ignoring #SBATCH options gflow does not honour "
            f"(in {where}): {' '.join(found.ignored)}",
            file=sys.stderr,
        )
    return found.tokens


def _apply_directives(parser: Parser, args: Any, tokens: list[str], where: str) -> None:
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


def script_options(path: str) -> dict[str, Any]:
    """The job options the directives of the script at ``path`` give, as typed (what
    :meth:`gflow.Client.submit` sends for a script, under the options of the call)."""
    text = _read_script(path)
    tokens = _directives(text, path) if text is not None else []
    if not tokens:
        return {}
    parser = build_parser()
    args = parser.parse_args([])
    _apply_directives(parser, args, tokens, path)
    return jobopts.given(args, SUBMIT)


def _request(args: Any, script: str | None) -> dict[str, Any]:
    """The submission: option values go as typed, the daemon parses them.

    Nothing here imports a parser, so ``gbatch`` in a shell loop costs little more than
    Python's start-up; a bad value comes back as a usage error naming the option.
    """
    options = jobopts.given(args, SUBMIT)
    if "conda_env" not in options and script is None and os.environ.get("CONDA_DEFAULT_ENV"):
        options["conda_env"] = os.environ["CONDA_DEFAULT_ENV"]
    if options.get("shared") and not options.get("gpu_memory"):
        raise UsageError("--shared needs --gpu-memory SIZE (the GPU memory the job uses)")
    body: dict[str, Any] = {
        "command": [script, *args.command[1:]] if script else list(args.command),
        "script": script,
        "workdir": os.getcwd(),
        "env": dict(os.environ),
    }
    body.update(jobopts.read_local(options))  # files are read here, as the user
    if "begin" in options:
        import time

        options["utc_offset"] = time.localtime().tm_gmtoff
    body["options"] = options
    return body


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
