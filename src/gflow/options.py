"""Every job option, declared once.

One :class:`Option` per option: its keyword (the name in requests and in Python), its
command-line flags, the kind of its value (how its text is parsed, how a JSON value is
checked, within which limits), the job field it sets, whether ``gjob update`` and ``gjob
redo`` may change it, the ``#SBATCH`` spellings that mean it, and its help. ``gbatch``,
``gjob update``, ``gjob redo`` and script directives build their command lines from
:data:`OPTIONS` and send the text the user typed; the daemon turns it into field values
with :func:`parse_texts`, and checks fields sent as JSON values with :func:`check_fields`,
so every way in accepts exactly the same values. Adding an option is one entry here
(and, if it is a new job field, that field in the model and the store).

Light on purpose: every client imports this at start-up. The parsers (:mod:`gflow.parse`,
:mod:`gflow.deps`) are imported only when a value is parsed, which the daemon does.
"""

from __future__ import annotations

from gflow import limits
from gflow.errors import InvalidInput
from gflow.limits import (
    MAX_COMMAND,
    MAX_COMMAND_WORDS,
    MAX_COUNT,
    MAX_CPUS,
    MAX_EXPANSION,
    MAX_GPUS,
    MAX_KEYS,
    MAX_MEMORY_MB,
    MAX_NAME,
    MAX_PATH,
    MAX_PROJECT,
    MAX_RETRIES,
    MAX_SECONDS,
    MAX_SPEC,
    MAX_UTC_OFFSET,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Mapping
    from typing import Any

# How the command line collects a value.
VALUE = "value"
"""One text: ``--gpus 2``."""
LIST = "list"
"""A text per use of a repeatable flag: ``--param a=1 --param b=2``."""
SWITCH = "switch"
"""Present or not: ``--hold``; sent as ``true``."""
WORDS = "words"
"""Every remaining word: ``--command python train.py``."""

# What a set of options is for.
SUBMIT = "submit"
"""A new submission (``gbatch``, ``POST /v1/jobs``)."""
CHANGE = "change"
"""A change to existing jobs (``gjob update``) or to a redo (``gjob redo``)."""

CONTEXT = frozenset({"utc_offset"})
"""Keys of an options object that are not options but say how to read them: the
client's time zone, in seconds east of UTC (``--begin 22:00`` is the submitter's 22:00)."""


class Kind:
    """The form of an option's value: how its text is parsed and its JSON value checked.

    :meth:`parse` reads what a user typed (a flag's text, a list of texts, ``True`` for a
    switch); :meth:`check` accepts the same value as a JSON request field carries it.
    Both give the field's value, within the same limits.
    """

    form = VALUE
    nullable = False
    """A change may clear the field (``null``: no limit, no begin time, no environment)."""

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> Any:
        return self.check(given, flag)

    def check(self, value: Any, field: str) -> Any:
        raise NotImplementedError


class Whole(Kind):
    """A whole number from ``lo`` to ``hi``; with ``gres``, Slurm's ``gpu:N`` too."""

    def __init__(self, lo: int, hi: int, *, gres: bool = False) -> None:
        self.lo, self.hi, self.gres = lo, hi, gres

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> int:
        from gflow.parse import parse_whole

        text = _text(given, flag).strip()
        if self.gres and text.lower().startswith("gpu:"):
            text = text.rsplit(":", 1)[1]
        return parse_whole(text, flag, self.lo, self.hi)

    def check(self, value: Any, field: str) -> int:
        return limits.whole(value, field, self.lo, self.hi)


class TimeLimit(Kind):
    """Seconds, typed ``HH:MM:SS``, ``MM:SS``, minutes or ``D-HH:MM:SS``; UNLIMITED: none."""

    nullable = True

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> int | None:
        from gflow.parse import parse_time_limit

        return parse_time_limit(_text(given, flag))

    def check(self, value: Any, field: str) -> int | None:
        return None if value is None else limits.whole(value, field, 1, MAX_SECONDS)


class WarningSignal(Kind):
    """Slurm's ``[B:]SIG[@SECONDS]`` (:mod:`gflow.jobsignal`), kept in its normal form."""

    nullable = True

    def check(self, value: Any, field: str) -> str | None:
        from gflow import jobsignal

        if value is None:
            return None
        return str(jobsignal.parse(limits.text(value, field, MAX_NAME, line=True), field))


class FilePattern(Kind):
    """A file path with sbatch's ``%`` patterns (:mod:`gflow.jobfiles`); blank: none."""

    nullable = True

    def check(self, value: Any, field: str) -> str | None:
        from gflow import jobfiles

        if value is None:
            return None
        text = limits.text(value, field, MAX_PATH, line=True)
        return jobfiles.check(text, field) if text.strip() else None


class Size(Kind):
    """MiB, typed ``512`` (MiB), ``1024M``, ``2G``, ``1.5T``."""

    nullable = True

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> int:
        from gflow.parse import parse_memory_mb

        return parse_memory_mb(_text(given, flag), flag)

    def check(self, value: Any, field: str) -> int | None:
        return None if value is None else limits.whole(value, field, 1, MAX_MEMORY_MB)


class Instant(Kind):
    """Seconds since the epoch, typed ``now+1h``, ``22:00``, ``2026-05-01T14:00``..."""

    nullable = True

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> float:
        from gflow.parse import parse_begin

        return limits.instant(parse_begin(_text(given, flag), now()), flag)

    def check(self, value: Any, field: str) -> float | None:
        return None if value is None else limits.instant(value, field)


class Text(Kind):
    """Text of at most ``limit`` characters; ``line``: one printable line.

    ``blank``: what empty text means (None: the field's default; else an error).
    """

    def __init__(self, limit: int, *, line: bool = True, blank: bool = False) -> None:
        self.limit, self.line, self.blank = limit, line, blank
        self.nullable = blank

    def check(self, value: Any, field: str) -> str | None:
        if value is None and self.blank:
            return None
        text = limits.text(value, field, self.limit, line=self.line)
        if not text.strip():
            if self.blank:
                return None
            raise InvalidInput(field, text, "non-empty text")
        return text


class Name(Kind):
    """A job name: one printable line; blank text asks for a readable random name."""

    def check(self, value: Any, field: str) -> str:
        return limits.text(value, field, MAX_NAME, line=True).strip()


class Project(Kind):
    """A project code: 1 to MAX_PROJECT printable characters."""

    def check(self, value: Any, field: str) -> str:
        code = limits.text(value, field, MAX_PROJECT * 4, line=True).strip()
        if not code or len(code) > MAX_PROJECT:
            raise InvalidInput(field, code, f"1 to {MAX_PROJECT} characters")
        return code


class Choice(Kind):
    """One of a few words, in any case."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def check(self, value: Any, field: str) -> str:
        word = limits.text(value, field, MAX_NAME, line=True).strip().lower()
        if word not in self.choices:
            raise InvalidInput(field, value, " or ".join(self.choices))
        return word


class Switch(Kind):
    """On or off; on the command line, present or not."""

    form = SWITCH

    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def check(self, value: Any, field: str) -> bool | None:
        if value is None and self.nullable:
            return None
        if type(value) is not bool:
            raise InvalidInput(field, limits.brief(value), "true or false")
        return value


class Dependency(Kind):
    """One way of writing what a job waits for; every such option sets ``dependency``.

    ``syntax``: ``gflow`` (a job, or Slurm's ``afterok:1:2,afterany:3``), ``all``, ``any``
    (comma-separated jobs), ``moab`` (``depend=...``), ``no_auto_cancel`` (a switch) or
    ``kill_on_invalid`` (Slurm's ``yes`` or ``no``); the last two say only whether the job
    is cancelled when its dependency can never be met.
    """

    def __init__(self, syntax: str, form: str = VALUE) -> None:
        self.syntax, self.form = syntax, form

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> Any:
        from gflow import deps

        if self.syntax == "no_auto_cancel":
            return deps.DepRequest(auto_cancel=not Switch().check(given, flag))
        if self.syntax == "kill_on_invalid":
            answer = _text(given, flag).strip().lower()
            if answer not in ("yes", "no"):
                raise InvalidInput(flag, answer, "yes (cancel the job) or no (keep it queued)")
            return deps.DepRequest(auto_cancel=answer == "yes")
        texts = _texts(given, flag) if self.form == LIST else [_text(given, flag)]
        request = deps.DepRequest()
        for text in texts:
            if self.syntax == "all":
                request = request.merge(deps.from_gflow(depends_on_all=text))
            elif self.syntax == "any":
                request = request.merge(deps.from_gflow(depends_on_any=text))
            elif self.syntax == "moab":
                request = request.merge(deps.parse_moab(text))
            else:
                request = request.merge(deps.parse_dependency(text))
        return request

    def check(self, value: Any, field: str) -> Any:
        from gflow.deps import DepRequest

        return DepRequest.from_json(value)


class Params(Kind):
    """A sweep: ``KEY=V1,V2`` texts (ranges ``start:stop[:step]``); as JSON,
    ``[["key", ["v1", "v2"]], ...]``."""

    form = LIST

    def parse(
        self, given: Any, flag: str, now: Callable[[], datetime.datetime]
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        from gflow.parse import parse_param

        pairs = [parse_param(text) for text in _texts(given, flag)]
        return tuple((key, tuple(values)) for key, values in pairs)

    def check(self, value: Any, field: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        ok = (
            isinstance(value, list)
            and len(value) <= MAX_KEYS
            and all(
                isinstance(p, list)
                and len(p) == 2
                and isinstance(p[0], str)
                and isinstance(p[1], list)
                and 1 <= len(p[1]) <= MAX_EXPANSION
                for p in value
            )
        )
        if not ok:
            raise InvalidInput(
                field, limits.brief(value), 'a list of ["key", ["v1", "v2"]] pairs, values given'
            )
        return tuple(
            (
                limits.text(k, "param", MAX_NAME, line=True),
                tuple(limits.text(v, f"param {k}", MAX_SPEC) for v in vs),
            )
            for k, vs in value
        )


class ParamFile(Kind):
    """A CSV file of sweep rows, read by the client (the daemon opens no user's path);
    as JSON, the rows: ``[{"key": "value", ...}, ...]``."""

    def parse(self, given: Any, flag: str, now: Callable[[], datetime.datetime]) -> Any:
        raise InvalidInput(flag, limits.brief(given), "rows read by the client (param_rows)")

    def check(self, value: Any, field: str) -> tuple[dict[str, str], ...]:
        ok = (
            isinstance(value, list)
            and len(value) <= MAX_EXPANSION
            and all(isinstance(r, dict) and len(r) <= MAX_KEYS for r in value)
        )
        if not ok:
            raise InvalidInput(field, limits.brief(value), "a list of objects of strings")
        for row in value:
            for k, v in row.items():
                limits.text(k, "param file key", MAX_NAME, line=True)
                limits.text(v, f"param {k}", MAX_SPEC)
        return tuple(value)


class Words(Kind):
    """A command: a non-empty list of words (one word with spaces is shell code)."""

    form = WORDS

    def check(self, value: Any, field: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or len(value) > MAX_COMMAND_WORDS:
            raise InvalidInput(
                field, limits.brief(value), f"a list of 1 to {MAX_COMMAND_WORDS} command words"
            )
        words = tuple(limits.text(w, field, MAX_COMMAND, line=False) for w in value)
        if sum(map(len, words)) > MAX_COMMAND:
            raise InvalidInput(
                field, "(too long)", f"a command of at most {MAX_COMMAND} characters"
            )
        return words


MAIL_TYPES = ("BEGIN", "END", "FAIL", "TIMEOUT", "REQUEUE")
"""When a job's mail is sent (Slurm's ``--mail-type``); ``ALL`` is all of them."""
_MAIL_ALIASES = {"TIME_LIMIT": "TIMEOUT", "ALL": ",".join(MAIL_TYPES)}


class MailType(Kind):
    """Slurm's ``--mail-type``: some of BEGIN, END, FAIL, TIMEOUT, REQUEUE, or ALL, or NONE
    (no mail); kept as the canonical list (``"END,FAIL"``), None for none."""

    nullable = True

    def check(self, value: Any, field: str) -> str | None:
        if value is None:
            return None
        text = limits.text(value, field, MAX_SPEC, line=True)
        words = {w.strip().upper() for w in text.split(",") if w.strip()}
        expanded: set[str] = set()
        for word in words:
            expanded.update(_MAIL_ALIASES.get(word, word).split(","))
        unknown = sorted(expanded - set(MAIL_TYPES) - {"NONE"})
        if unknown or not words or ("NONE" in expanded and len(words) > 1):
            raise InvalidInput(
                field,
                text,
                "a comma-separated list of BEGIN, END, FAIL, TIMEOUT, REQUEUE, or ALL, or NONE",
            )
        chosen = [t for t in MAIL_TYPES if t in expanded]
        return ",".join(chosen) or None


class MailUser(Kind):
    """Where a job's mail goes: an address (``me@lab.org``) or a user name of this host's
    mail configuration."""

    nullable = True

    def check(self, value: Any, field: str) -> str | None:
        from gflow.addresses import is_address

        if value is None:
            return None
        text = limits.text(value, field, 254, line=True).strip()
        plain = text.replace("-", "").replace("_", "").replace(".", "")
        if not (is_address(text) or (plain.isascii() and plain.isalnum())):
            raise InvalidInput(field, text, "a mail address such as me@lab.example.org")
        return text


class Url(Kind):
    """An ``http://`` or ``https://`` URL (``--notify-url``)."""

    nullable = True

    def check(self, value: Any, field: str) -> str | None:
        from gflow.addresses import MAX_URL, is_http_url

        if value is None:
            return None
        text = limits.text(value, field, MAX_URL, line=True).strip()
        if not is_http_url(text):
            raise InvalidInput(field, text, "an http:// or https:// URL")
        return text


class Option:
    """One job option (see the module's docstring)."""

    __slots__ = ("field", "flags", "help", "key", "kind", "local", "metavar", "sbatch", "update")

    def __init__(
        self,
        key: str,
        flags: tuple[str, ...],
        kind: Kind,
        help: str,
        *,
        field: str | None = None,
        metavar: str | None = None,
        update: bool | str = True,
        sbatch: tuple[str, ...] = (),
        local: bool = False,
    ) -> None:
        self.key = key
        """The keyword: the option's key in a request's ``options``, and in Python."""
        self.flags = flags
        """The command-line spellings, the usual one first among the long ones."""
        self.kind = kind
        self.help = help
        self.field = field or key
        """The request and job field the option sets (several options may share one)."""
        self.metavar = metavar
        self.update = update
        """True if ``gjob update`` and ``gjob redo`` may change it; else why not."""
        self.sbatch = sbatch
        """The flags of an ``#SBATCH`` line that mean this option."""
        self.local = local
        """Read by the client (a file of the user's, :data:`gflow.paramfile.READERS`),
        sent as the field's JSON value: the daemon opens no path a user names."""

    @property
    def flag(self) -> str:
        """The name a message shows: the first long flag."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0])

    def __repr__(self) -> str:
        return f"Option({self.key!r})"


_DEPS = "dependency"
DEFAULT_PRIORITY = 10
ADJUSTS = {"nice": "priority"}
"""Fields that adjust another one and are folded into it: ``--nice N`` is a priority N
lower than ``-p``'s (or the default), never below 0."""

OPTIONS: tuple[Option, ...] = (
    Option(
        "name",
        ("-n", "--name", "-J", "--job-name"),
        Name(),
        "job name (default: a random readable name)",
        metavar="NAME",
        sbatch=("--job-name", "-J"),
    ),
    Option(
        "gpus",
        ("-g", "--gpus", "--gres", "-G"),
        Whole(0, MAX_GPUS, gres=True),
        "GPUs to allocate (also Slurm's gpu:N)",
        metavar="N",
        sbatch=("--gres", "--gpus", "-G"),
    ),
    Option(
        "shared",
        ("--shared",),
        Switch(),
        "share GPUs by memory (needs --gpu-memory)",
    ),
    Option(
        "gpu_memory",
        ("--gpu-memory", "--max-gpu-mem", "--max-gpu-memory"),
        Size(),
        "GPU memory the job uses, e.g. 8G",
        field="gpu_memory_mb",
        metavar="SIZE",
    ),
    Option(
        "time",
        ("-t", "--time", "--time-limit", "--timelimit"),
        TimeLimit(),
        "time limit: HH:MM:SS, MM:SS or minutes",
        field="time_limit",
        metavar="TIME",
        sbatch=("--time", "-t"),
    ),
    Option(
        "signal",
        ("--signal",),
        WarningSignal(),
        "send SIG (default USR1) SECONDS (default 60) before the time limit; "
        "B: to the job's command only",
        metavar="[B:]SIG[@SECONDS]",
        sbatch=("--signal",),
    ),
    Option(
        "memory",
        ("-m", "--memory", "--max-mem", "--max-memory", "--mem", "--memory-limit"),
        Size(),
        "host memory limit: 512 (MB), 1024M, 2G",
        field="memory_mb",
        metavar="SIZE",
        sbatch=("--mem",),
    ),
    Option(
        "cpus_per_task",
        ("--cpus-per-task",),
        Whole(1, MAX_CPUS),
        "CPUs the job uses (sets SLURM_CPUS_PER_TASK; not enforced)",
        metavar="N",
        sbatch=("--cpus-per-task", "-c"),
    ),
    Option(
        "output",
        ("-o", "--output"),
        FilePattern(),
        "write the job's output to this file (%j id, %x name, %A/%a array/task, %u user)",
        metavar="FILE",
        sbatch=("--output", "-o"),
    ),
    Option(
        "error",
        ("-e", "--error"),
        FilePattern(),
        "write the job's errors to this file (default: with its output)",
        metavar="FILE",
        sbatch=("--error", "-e"),
    ),
    Option(
        "priority",
        ("-p", "--priority"),
        Whole(0, limits.MAX_PRIORITY),
        f"higher runs first (default {DEFAULT_PRIORITY})",
        metavar="0-255",
    ),
    Option(
        "nice",
        ("--nice",),
        Whole(0, limits.MAX_PRIORITY),
        f"lower the priority by N, as Slurm's --nice ({DEFAULT_PRIORITY} - N, or -p's - N)",
        metavar="N",
        sbatch=("--nice",),
    ),
    Option(
        "begin",
        ("--begin",),
        Instant(),
        "start no earlier than HH:MM[:SS], YYYY-MM-DD[THH:MM[:SS]], now+N[smhd]",
        field="begin_at",
        metavar="WHEN",
        sbatch=("--begin",),
    ),
    Option(
        "conda_env",
        ("-c", "--conda-env"),
        Text(1000, blank=True),
        "conda environment (default for commands: $CONDA_DEFAULT_ENV)",
        metavar="ENV",
    ),
    Option(
        "project",
        ("-P", "--project"),
        Project(),
        f"project code (at most {MAX_PROJECT} characters)",
        metavar="CODE",
        update="a job's project is set when it is submitted",
    ),
    Option(
        "executor",
        ("--executor",),
        Choice("local", "slurm"),
        "run on this machine or on the Slurm cluster (when gflowd has both)",
        field="run_on",
        metavar="local|slurm",
    ),
    Option(
        "depends_on",
        ("-d", "--depends-on", "--dependency"),
        Dependency("gflow", LIST),
        "after X succeeds; or Slurm form afterok:1:2,afterany:3",
        field=_DEPS,
        metavar="DEP",
        sbatch=("--dependency", "-d"),
    ),
    Option(
        "depends_on_all",
        ("--depends-on-all",),
        Dependency("all"),
        "after all of them succeed",
        field=_DEPS,
        metavar="IDS",
    ),
    Option(
        "depends_on_any",
        ("--depends-on-any",),
        Dependency("any"),
        "after any one of them succeeds",
        field=_DEPS,
        metavar="IDS",
    ),
    Option(
        "no_auto_cancel",
        ("--no-auto-cancel",),
        Dependency("no_auto_cancel", SWITCH),
        "stay queued (marked) instead of being cancelled when a dependency fails",
        field=_DEPS,
    ),
    Option(
        "kill_on_invalid_dep",
        ("--kill-on-invalid-dep",),
        Dependency("kill_on_invalid"),
        "Slurm's form: yes = cancel when a dependency fails (the default), no = --no-auto-cancel",
        field=_DEPS,
        metavar="yes|no",
        sbatch=("--kill-on-invalid-dep",),
    ),
    Option(
        "moab",
        ("-W",),
        Dependency("moab", LIST),
        "Moab/Torque: depend=afterok:1:2,before:3,on:1",
        field=_DEPS,
        metavar="depend=SPEC",
    ),
    Option(
        "array",
        ("-a", "--array"),
        Text(MAX_SPEC),
        "job array: 1-10, 1,3,5, 0-20:2, 1-100%4",
        metavar="SPEC",
        update="the tasks of an array are made when it is submitted",
        sbatch=("--array", "-a"),
    ),
    Option(
        "param",
        ("--param",),
        Params(),
        "parameter sweep (repeatable; ranges start:stop[:step])",
        field="params",
        metavar="K=V1,V2",
        update="the jobs of a sweep are made when it is submitted",
    ),
    Option(
        "param_file",
        ("--param-file",),
        ParamFile(),
        "one job per CSV row (header = keys)",
        field="param_rows",
        metavar="CSV",
        update="the jobs of a sweep are made when it is submitted",
        local=True,
    ),
    Option(
        "name_template",
        ("--name-template",),
        Text(1000),
        "job names such as 'run_{lr}'",
        metavar="TEMPLATE",
        update="the jobs of a sweep are named when it is submitted",
    ),
    Option(
        "max_concurrent",
        ("--max-concurrent",),
        Whole(1, MAX_COUNT),
        "at most N jobs of this submission run",
        metavar="N",
        update="it limits a whole submission: use gctl set-limit",
    ),
    Option(
        "max_retries",
        ("--max-retries",),
        Whole(0, MAX_RETRIES),
        "resubmit up to N times after a failure",
        metavar="N",
    ),
    Option(
        "retry_on_timeout",
        ("--retry-on-timeout",),
        Switch(),
        "also retry after a timeout",
    ),
    Option(
        "hold",
        ("-H", "--hold"),
        Switch(),
        "submit held (gjob release later)",
        update="use gjob hold and gjob release",
        sbatch=("--hold", "-H"),
    ),
    Option(
        "auto_close",
        ("--auto-close",),
        Switch(nullable=True),
        "close the tmux session at the end",
    ),
    Option(
        "mail_type",
        ("--mail-type",),
        MailType(),
        "mail on BEGIN, END, FAIL, TIMEOUT, REQUEUE (comma-separated), ALL or NONE",
        metavar="TYPES",
        sbatch=("--mail-type",),
    ),
    Option(
        "mail_user",
        ("--mail-user",),
        MailUser(),
        "where the mail goes (default: your address in the configuration)",
        metavar="ADDRESS",
        sbatch=("--mail-user",),
    ),
    Option(
        "notify_url",
        ("--notify-url",),
        Url(),
        "POST this job's events as JSON to this http(s) URL (Slack/Discord/Teams work)",
        metavar="URL",
    ),
    Option(
        "dry_run",
        ("--dry-run",),
        Switch(),
        "show what would be submitted",
        update="only a submission has a dry run",
    ),
    Option(
        "command",
        ("--command",),
        Words(),
        "new command (last option)",
    ),
)

BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}
"""Each option by its keyword (``gpus``, ``time``, ``depends_on``...)."""
BY_FIELD: dict[str, Option] = {}
"""The option that checks each field's JSON value (the first that sets it)."""
for _option in OPTIONS:
    BY_FIELD.setdefault(_option.field, _option)
CHANGEABLE = frozenset(o.field for o in OPTIONS if o.update is True)
"""Fields ``gjob update`` and ``gjob redo`` may change."""


def allowed(option: Option, purpose: str) -> bool:
    return purpose == SUBMIT or option.update is True


def check_fields(data: Mapping[str, Any], purpose: str) -> dict[str, Any]:
    """The option fields of a JSON request (``{"gpus": 2, "time_limit": 600}``), checked.

    Keys that are not option fields are the caller's business. At a submission ``null``
    means the default; in a change it clears the field, where that is allowed.
    """
    out: dict[str, Any] = {}
    for field, value in data.items():
        option = BY_FIELD.get(field)
        if option is None:
            continue
        if purpose == CHANGE and field not in CHANGEABLE:
            raise InvalidInput("update field", field, f"one of {', '.join(sorted(CHANGEABLE))}")
        if value is None:
            if purpose == CHANGE and not option.kind.nullable:
                raise InvalidInput(field, "null", "a value (this field cannot be cleared)")
            if purpose == CHANGE:
                out[field] = None
            continue
        out[field] = option.kind.check(value, field)
    return _adjusted(out)


def parse_texts(options: Any, purpose: str) -> dict[str, Any]:
    """Field values from options as typed: ``{"gpus": "gpu:2", "depends_on": ["@"]}``.

    The one parser of option text, whatever wrote it: gbatch's command line, a script's
    directives, ``gjob update`` or ``gjob redo``, or a program.
    """
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidInput("options", limits.brief(options), "an object of option texts")
    now = _client_clock(options.get("utc_offset"))
    out: dict[str, Any] = {}
    dependency: list[tuple[Option, Any]] = []
    for key, given in options.items():
        if key in CONTEXT:
            continue
        option = BY_KEY.get(key)
        if option is None:
            raise InvalidInput("option", limits.brief(key), f"one of {', '.join(BY_KEY)}")
        if not allowed(option, purpose):
            raise InvalidInput(
                "option", option.flag, f"one gjob update can change ({option.update})"
            )
        if given is None or given is False or given == []:
            continue
        value = option.kind.parse(given, option.flag, now)
        if option.field == _DEPS:
            dependency.append((option, value))
        else:
            out[option.field] = value
    if dependency:
        out[_DEPS] = _merge(dependency)
    return _adjusted(out)


def _adjusted(out: dict[str, Any]) -> dict[str, Any]:
    """``nice`` folded into ``priority`` (see :data:`ADJUSTS`)."""
    nice = out.pop("nice", None)
    if nice is not None:
        out["priority"] = max(0, out.get("priority", DEFAULT_PRIORITY) - nice)
    return out


def _merge(parts: list[tuple[Option, Any]]) -> Any:
    """One dependency from the dependency options, in the order of the table."""
    order = {o.key: i for i, o in enumerate(OPTIONS)}
    parts.sort(key=lambda part: order[part[0].key])
    request = parts[0][1]
    for _, more in parts[1:]:
        request = request.merge(more)
    return request


def _text(given: Any, flag: str) -> str:
    return limits.text(given, flag, MAX_SPEC)


def _texts(given: Any, flag: str) -> list[str]:
    if isinstance(given, str):
        return [_text(given, flag)]
    if not isinstance(given, list) or len(given) > MAX_KEYS:
        raise InvalidInput(flag, limits.brief(given), f"a list of at most {MAX_KEYS} texts")
    return [_text(t, flag) for t in given]


def _client_clock(offset: Any) -> Callable[[], datetime.datetime]:
    """Now, in the client's time zone (``--begin 22:00`` means the submitter's 22:00)."""

    def now() -> datetime.datetime:
        import datetime

        if offset is None:
            return datetime.datetime.now().astimezone()
        seconds = limits.whole(offset, "utc_offset", -MAX_UTC_OFFSET, MAX_UTC_OFFSET)
        return datetime.datetime.now(datetime.timezone(datetime.timedelta(seconds=seconds)))

    return now
