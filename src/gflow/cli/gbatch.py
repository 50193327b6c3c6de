"""gbatch: submit a command or a script (also as an array or a parameter sweep)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from gflow.cli.common import EXIT_OK, EXIT_REFUSED, Parser, add_common, run

EXAMPLES = """
gbatch python train.py --lr 0.01           run a command (in this directory, with this env)
gbatch -g 1 -t 4:00:00 -n train train.sh   a script on one GPU for at most 4 hours
gbatch --depends-on @ python eval.py       start after my previous submission succeeds
gbatch --depends-on-all 3,4 python merge.py
gbatch -d afterany:5 ./cleanup.sh          Slurm syntax;  -W depend=afterok:5  Moab syntax
gbatch --array 1-10%2 python task.py --i '$GFLOW_ARRAY_TASK_ID'
gbatch --param lr=0.1,0.01 --param bs=32,64 python train.py --lr {lr} --bs {bs}
gbatch new myjob                           write myjob.sh, a script template
"""

TEMPLATE = """#!/bin/bash
# gflow job script. Lines starting with "# GFLOW" are read by gbatch as options
# (command-line flags win over them). Remove one "#" from "## GFLOW" to use a line.
#
## GFLOW --name=my-job
## GFLOW --gpus=1            # GPUs (default 0)
## GFLOW --time=1:30:00      # time limit HH:MM:SS, MM:SS or minutes (default unlimited)
## GFLOW --memory=4G         # host memory limit (default unlimited)
## GFLOW --priority=20       # 0-255, higher runs first (default 10)
## GFLOW --depends-on=123    # start after job 123 succeeds
## GFLOW --conda-env=myenv   # activate this conda environment first
#
# gflow sets GFLOW_JOB_ID, GFLOW_JOB_NAME and CUDA_VISIBLE_DEVICES for the job.

echo "job $GFLOW_JOB_ID ($GFLOW_JOB_NAME) on GPUs: ${CUDA_VISIBLE_DEVICES:-none}"
"""

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


def build_parser() -> Parser:
    p = Parser(
        "gbatch",
        "Submit a job: a command, or a script with '# GFLOW' option lines.",
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


def main(argv: list[str]) -> int:
    if argv and argv[0] == "new":
        return _new(argv[1:])
    if argv and argv[0] == "completion":
        from gflow.cli.completion import completion_main

        return completion_main("gbatch", build_parser(), argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("a command or script to run is required")
    script = _script_path(args.command[0])
    if script is not None:
        directives = _directives(script)
        if directives:
            args = parser.parse_args(argv, namespace=_parse_directives(parser, directives))
    body = _request(args, script)
    from gflow.client import Client

    answer = Client(config=args.config).post("/v1/jobs", body)
    jobs = answer["jobs"]
    if answer.get("dry_run"):
        print(f"Would submit {len(jobs)} job{'s' if len(jobs) != 1 else ''}:")
        for job in jobs:
            extra = f", task {job['task_id']}" if job["task_id"] is not None else ""
            print(
                f"  [{job['id']}] {job['name']}: {shlex.join(job['command'])} "
                f"(GPUs: {job['gpus']}{extra})"
            )
        return EXIT_OK
    for job in jobs:
        print(f"Submitted batch job {job['id']} ({job['name']})")
    return EXIT_OK


def _script_path(first: str) -> Path | None:
    path = Path(first)
    return path.absolute() if path.is_file() else None


def _directives(script: Path) -> list[str]:
    """Options from ``# GFLOW`` (and mappable ``#SBATCH``) lines of a script."""
    try:
        lines = script.read_text(errors="replace").splitlines()[:500]
    except OSError:
        return []
    tokens: list[str] = []
    ignored: list[str] = []
    for line in lines:
        stripped = line.strip()
        for marker in ("# GFLOW", "#GFLOW", "#SBATCH"):
            if stripped.startswith(marker):
                try:
                    words = shlex.split(stripped[len(marker) :], comments=True)
                except ValueError:
                    words = stripped[len(marker) :].split()
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
        takes_value = "=" not in words[i] and flag not in ("--hold", "-H")
        group = words[i : i + (2 if takes_value and i + 1 < len(words) else 1)]
        (kept if flag in SBATCH_FLAGS else skipped).extend(group)
        i += len(group)
    return kept, skipped


def _parse_directives(parser: Parser, tokens: list[str]) -> argparse.Namespace:
    try:
        ns, extra = parser.parse_known_args([*tokens, "true"])
    except SystemExit:
        raise _directive_error(" ".join(tokens)) from None
    if extra:
        raise _directive_error(" ".join(extra))
    del ns.command
    return ns


def _directive_error(text: str) -> Exception:
    from gflow.errors import InvalidInput

    return InvalidInput("script directive", text, "gbatch options such as --gpus=1 --time=10")


def _gpus(text: str | None) -> int:
    if text is None:
        return 0
    from gflow.parse import parse_nonneg_int

    value = text.strip()
    if value.lower().startswith("gpu:"):
        value = value.rsplit(":", 1)[1]
    return parse_nonneg_int(value, "--gpus")


def _request(args: argparse.Namespace, script: Path | None) -> dict[str, Any]:
    import datetime

    from gflow import deps, parse

    dep = deps.from_gflow(
        None, args.depends_on_all, args.depends_on_any, auto_cancel=not args.no_auto_cancel
    )
    for text in args.depends_on or []:
        dep = dep.merge(deps.parse_dependency(text))
    for text in args.moab or []:
        dep = dep.merge(deps.parse_moab(text))
    conda = args.conda_env
    if conda is None and script is None:
        conda = os.environ.get("CONDA_DEFAULT_ENV") or None
    command = [str(script), *args.command[1:]] if script else list(args.command)
    params = [list(parse.parse_param(p)) for p in args.param or []]
    now = datetime.datetime.now().astimezone()
    body: dict[str, Any] = {
        "command": command,
        "script": str(script) if script else None,
        "workdir": os.getcwd(),
        "env": dict(os.environ),
        "name": args.name,
        "gpus": _gpus(args.gpus),
        "shared": args.shared,
        "gpu_memory_mb": parse.parse_memory_mb(args.gpu_memory, "--gpu-memory")
        if args.gpu_memory
        else None,
        "memory_mb": parse.parse_memory_mb(args.memory, "--memory") if args.memory else None,
        "time_limit": parse.parse_time_limit(args.time) if args.time else None,
        "priority": parse.parse_priority(args.priority) if args.priority is not None else 10,
        "begin_at": parse.parse_begin(args.begin, now) if args.begin else None,
        "conda_env": conda,
        "project": args.project,
        "auto_close": True if args.auto_close else None,
        "dependency": dep.to_json(),
        "array": args.array,
        "params": params,
        "param_rows": parse.read_param_file(args.param_file) if args.param_file else [],
        "name_template": args.name_template,
        "max_concurrent": parse.parse_nonneg_int(args.max_concurrent, "--max-concurrent")
        if args.max_concurrent
        else None,
        "max_retries": parse.parse_nonneg_int(args.max_retries, "--max-retries")
        if args.max_retries
        else 0,
        "retry_on_timeout": args.retry_on_timeout,
        "hold": args.hold,
        "dry_run": args.dry_run,
    }
    if args.array:
        parse.parse_array_spec(args.array)
    return body


def _new(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: gbatch new NAME", file=sys.stderr)
        return 2
    path = Path(argv[0] if argv[0].endswith(".sh") else argv[0] + ".sh")
    if path.exists():
        print(f"Error: {path} already exists", file=sys.stderr)
        return EXIT_REFUSED
    path.write_text(TEMPLATE)
    path.chmod(0o755)
    print(f"Wrote {path}; edit it, then: gbatch {path}")
    return EXIT_OK


def entry() -> None:
    run("gbatch", main)


if __name__ == "__main__":
    entry()
