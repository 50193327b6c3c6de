"""Expanding one submission into its jobs: a single job, an array, or a parameter sweep."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from gflow.errors import InvalidInput
from gflow.limits import MAX_BATCH_TEXT, MAX_COMMAND, MAX_EXPANSION, MAX_NAME
from gflow.parse import expand_params, parse_array_spec, render_template
from gflow.protocol import SubmitRequest, check_name

_ADJECTIVES = (
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "daring",
    "eager",
    "fancy",
    "gentle",
    "golden",
    "happy",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "merry",
    "mighty",
    "noble",
    "quick",
    "quiet",
    "rapid",
    "silent",
    "snowy",
    "solar",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zesty",
)
_NOUNS = (
    "badger",
    "beacon",
    "cedar",
    "comet",
    "condor",
    "falcon",
    "fern",
    "fox",
    "glacier",
    "harbor",
    "heron",
    "island",
    "lagoon",
    "lark",
    "lynx",
    "maple",
    "meadow",
    "nebula",
    "orchid",
    "otter",
    "panda",
    "pebble",
    "pine",
    "quasar",
    "raven",
    "river",
    "robin",
    "summit",
    "tiger",
    "tulip",
    "valley",
    "walrus",
    "willow",
    "wren",
    "yak",
    "zephyr",
)


def random_name(rng: random.Random | None = None) -> str:
    """A readable default job name such as ``swift-otter``."""
    r = rng or random
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}"


@dataclass(frozen=True, slots=True)
class Task:
    """One job a submission creates, before it gets an id."""

    name: str
    command: tuple[str, ...]
    task_id: int | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Expansion:
    tasks: list[Task]
    max_concurrent: int | None
    is_group: bool


def _combinations(req: SubmitRequest) -> list[dict[str, str]]:
    rows = [dict(r) for r in req.param_rows] or [{}]
    swept = expand_params([(k, list(vs)) for k, vs in req.params]) if req.params else [{}]
    if len(rows) * len(swept) > MAX_EXPANSION:
        raise InvalidInput(
            "params",
            f"{len(rows) * len(swept)} combinations",
            f"at most {MAX_EXPANSION} jobs in one submission",
        )
    if not swept:
        raise InvalidInput("params", "(no values)", "at least one value for each key")
    out = []
    for row, combo in itertools.product(rows, swept):
        clash = set(row) & set(combo)
        if clash:
            raise InvalidInput("param", sorted(clash)[0], "a key given once (file or --param)")
        out.append({**row, **combo})
    return out


def _render(
    command: tuple[str, ...], templated: list[int], combo: dict[str, str]
) -> tuple[str, ...]:
    """``command`` with the sweep values filled into the words that hold placeholders."""
    if not templated:
        return command
    words = list(command)
    for i in templated:
        words[i] = render_template(words[i], combo)
    if sum(map(len, words)) > MAX_COMMAND:
        raise InvalidInput(
            "command", "(with the values filled in)", f"at most {MAX_COMMAND} characters"
        )
    return tuple(words)


def expand(req: SubmitRequest, first_id: int = 0) -> Expansion:
    """The jobs one ``gbatch`` call stands for, the first with id ``first_id``.

    A name left to chance is drawn from the first id, so a dry run shows the name the
    submission then gets (when no other job came in between).
    """
    base = req.name or random_name(random.Random(first_id))
    if req.array and (req.params or req.param_rows):
        raise InvalidInput("--array", req.array, "either --array or --param/--param-file, not both")
    if req.array:
        spec = parse_array_spec(req.array)
        tasks = [Task(base, req.command, task_id=t) for t in spec.task_ids]
        return Expansion(tasks, spec.max_running or req.max_concurrent, True)
    if req.params or req.param_rows:
        tasks = []
        templated = [i for i, w in enumerate(req.command) if "{" in w]
        per_task = sum(len(req.command[i]) for i in templated)
        for index, combo in enumerate(_combinations(req)):
            if (index + 1) * per_task > MAX_BATCH_TEXT:
                raise InvalidInput(
                    "command",
                    f"{per_task} characters with {{placeholders}}, {index + 1}+ jobs",
                    f"at most {MAX_BATCH_TEXT} characters of commands rendered in one sweep",
                )
            command = _render(req.command, templated, combo)
            if req.name_template:
                name = render_template(req.name_template, combo, "name template")
            else:
                name = f"{base}-" + "-".join(f"{k}{v}" for k, v in combo.items())
            tasks.append(Task(check_name(name[:MAX_NAME]), command, task_id=index, params=combo))
        return Expansion(tasks, req.max_concurrent, True)
    if req.name_template:
        raise InvalidInput("--name-template", req.name_template, "used together with --param")
    return Expansion([Task(base, req.command)], req.max_concurrent, False)
