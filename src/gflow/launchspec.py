"""What starting a job needs, decided without touching a process: its launch spec, the
bash lines of its command, its job script and its environment file.

Pure (no I/O): the engine builds a :class:`LaunchSpec` from these, and the executors
(:mod:`gflow.executors`) write it out and start it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_NAME = r"GFLOW_[A-Za-z0-9_]*|CUDA_VISIBLE_DEVICES(?![A-Za-z0-9_])"
JOB_VAR = re.compile(rf"(\\)?\$(?:\{{({_JOB_NAME})\}}|({_JOB_NAME}))")
"""The variables gflow sets for a job, as a command word may name them: ``$GFLOW_*`` and
``$CUDA_VISIBLE_DEVICES``, written ``$NAME`` or ``${NAME}`` (``\\$``: a literal dollar)."""
STRIPPED_ENV = frozenset(
    {
        "TMUX",
        "TMUX_PANE",
        "BASHOPTS",
        "BASH_VERSINFO",
        "EUID",
        "PPID",
        "SHELLOPTS",
        "UID",
        "_",
    }
)


@dataclass(frozen=True, slots=True)
class RunAs:
    """The Unix identity a system daemon starts a job with."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    user: str


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    job_id: int
    run_dir: Path
    log_path: Path
    env: dict[str, str]
    script: str
    memory_mb: int | None = None
    run_as: RunAs | None = None
    gpu_ids: tuple[int, ...] = ()
    cgroup: Path | None = None
    """The job's cgroup v2 directory, made with ``memory.max`` before the job starts."""
    recheck: bool = False
    """An earlier launch of this job failed part-way: adopt the job if it did start."""
    output: str | None = None
    """The file the job's output goes to, instead of its log (opened by the job)."""
    error: str | None = None
    """The file its errors go to (None: with its output)."""
    direct: bool = False
    """The job script only sets things up and ``exec``s the job's program: the wrapper
    may run it in a subshell of its own rather than in a new bash (see :func:`execs`)."""


@dataclass(frozen=True, slots=True)
class Inherited:
    """What jobs get from the shell that started gflowd, not from the daemon's own
    hardened settings (umask 077 and the raised limit of open files)."""

    umask: int = 0o022
    nofile: int | None = None
    """The soft limit of open files; None: leave the daemon's."""


def quote_word(word: str) -> str:
    """Quote one command word for bash: it reaches the job exactly as written, except
    gflow's own variables (:data:`JOB_VAR`), filled in when the job runs, and ``\\$``
    before one of them, which keeps that ``$`` literal. Every other ``$`` is left alone
    for the program that reads the word (``awk '{print $NF}'``, ``sh -c 'echo $i'``)."""
    parts: list[str] = []
    at = 0
    for m in JOB_VAR.finditer(word):
        literal = word[at : m.start()]
        if m.group(1):  # \$NAME: the text $NAME
            literal += m.group(0)[1:]
        if literal:
            parts.append(shlex.quote(literal))
        if not m.group(1):
            parts.append(f'"${{{m.group(2) or m.group(3)}}}"')
        at = m.end()
    if at < len(word) or not parts:
        parts.append(shlex.quote(word[at:]))
    return "".join(parts)


_BUILTIN_NAMES = (
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue "
    "declare dirs disown echo enable eval exec exit export false fc fg getopts hash help "
    "history jobs kill let local logout mapfile popd printf pushd pwd read readarray "
    "readonly return set shift shopt source suspend test times trap true type typeset "
    "ulimit umask unalias unset wait"
)
BASH_BUILTINS = frozenset(_BUILTIN_NAMES.split())
"""Commands bash runs itself: a job's command named so is not ``exec``-ed."""

_RUN_SCRIPT = """__gflow_s={path}
if [ -x "$__gflow_s" ]; then exec "$__gflow_s"{args}; fi
__gflow_l=; {{ IFS= read -r __gflow_l < "$__gflow_s"; }} 2>/dev/null
case $__gflow_l in
'#!'*) read -r __gflow_i __gflow_a <<< "${{__gflow_l:2}}"
    __gflow_i=${{__gflow_i%$'\\r'}} __gflow_a=${{__gflow_a%$'\\r'}}
    if [ -n "$__gflow_i" ]; then
        exec "$__gflow_i" ${{__gflow_a:+"$__gflow_a"}} "$__gflow_s"{args}
    fi ;;
esac
exec bash "$__gflow_s"{args}"""


def render_command(words: tuple[str, ...], script: str | None) -> str:
    """The bash lines that run a job's command.

    A single word containing whitespace is shell code, as written (``gbatch "a && b"``).
    Otherwise every word is one argument, and the command replaces the job's shell
    (``exec``), so the job's signals reach it and its exit status is the job's.

    A script runs directly when it is executable; else with the interpreter its ``#!``
    line names (with the one argument that line may give, as the kernel reads it), and
    with bash when it has none. The job's own shell decides, with its user's rights (the
    daemon, maybe root, must not look at a file on the user's behalf).
    """
    if script is not None:
        args = "".join(" " + quote_word(w) for w in words[1:])
        return _RUN_SCRIPT.format(path=quote_word(script), args=args)
    if is_shell_code(words):
        return words[0]
    line = " ".join(quote_word(w) for w in words)
    return line if words[0] in BASH_BUILTINS else f"exec {line}"


def execs(words: tuple[str, ...], script: str | None, conda_env: str | None) -> bool:
    """Whether a job's command is a program that replaces the job's shell, with nothing
    of the shell left to run: no script, no shell code, no builtin, no conda activation.

    Such a job's script is run by the wrapper in a subshell (a fork, not a second bash
    to start), which the program then replaces: the same process, environment, limits,
    directory and signals as from a new bash, a millisecond sooner."""
    if script is not None or conda_env or not words or is_shell_code(words):
        return False
    return words[0] not in BASH_BUILTINS


def is_shell_code(words: tuple[str, ...]) -> bool:
    """A command given as one word holding whitespace is shell code (``gbatch "a && b"``)."""
    return len(words) == 1 and any(c.isspace() for c in words[0])


def job_script(
    command: str,
    workdir: str,
    conda_env: str | None,
    memory_mb: int | None,
    *,
    rlimit: bool = True,
    inherited: Inherited = Inherited(),
) -> str:
    """The bash script of one job.

    ``memory_mb`` with ``rlimit`` sets ``ulimit -d`` (RLIMIT_DATA, in KiB): it caps the
    memory a job writes to, while address space merely reserved (CUDA reserves tens of
    GiB) does not count, as it would with RLIMIT_AS. Without ``rlimit`` the limit is the
    job's cgroup's business. The job gets the umask and open-file limit of ``inherited``.
    """
    lines = [
        "#!/bin/bash",
        f"umask {inherited.umask:04o}",
        f"cd -- {shlex.quote(workdir)} || exit 1",
    ]
    if inherited.nofile is not None:
        lines.append(f"ulimit -Sn {inherited.nofile} 2>/dev/null")
    if memory_mb and rlimit:
        lines.append(f"ulimit -d {memory_mb * 1024} 2>/dev/null")
    if conda_env:
        env = shlex.quote(conda_env)
        lines += [
            'if command -v conda >/dev/null 2>&1; then eval "$(conda shell.bash hook)"; fi',
            f"conda activate {env} || {{ echo 'gflow: cannot activate conda env '{env} >&2; "
            "exit 1; }",
        ]
    lines.append(command)
    return "\n".join(lines) + "\n"


def job_environment(env: dict[str, str]) -> dict[str, str]:
    """What of a submitter's environment a job gets: variables a shell can set, but not
    those that belong to the submitter's terminal or shell (``TMUX``, ``PPID``...)."""
    return {k: v for k, v in env.items() if _NAME.match(k) and k not in STRIPPED_ENV}


_AT_START = """if [ -n "${BASH_ENV-}" ]; then . "$BASH_ENV"; fi
"""


def with_environment(script: str, env: dict[str, str]) -> str:
    """The job script as the run directory holds it: the job's environment set first.

    One file rather than two: every file a launch creates is an inode the filesystem
    allocates, a real cost when hundreds of jobs start at once. The job sees what it
    would have inherited: bash ignores an ``IFS`` it inherits, and reads the file named
    by ``BASH_ENV`` before the script (environment modules rely on it)."""
    head, newline, rest = script.partition("\n")
    kept = {k: v for k, v in job_environment(env).items() if k != "IFS"}
    lines = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(kept.items()))
    block = f"{{\n{lines}}} 2>/dev/null\n{_AT_START}" if lines else ""
    if not head.startswith("#!"):
        return block + script
    return f"{head}{newline}{block}{rest}"
