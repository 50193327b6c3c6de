"""The dependency engine's pure half: one model, three front-end syntaxes, one evaluator.

A request is parsed into a :class:`DepRequest` (references still unresolved: ``@``,
names, array tasks), the daemon resolves it into a :class:`Dependency` over job ids,
and :func:`evaluate` judges a dependency against its parents' states.

Semantics (the user docs repeat them): ``afterok`` needs Finished; ``afternotok``
needs Failed, Timeout or Cancelled; ``afterany`` any final state; ``after`` the parent
started, or ended without starting, plus an optional delay. Clauses are joined by AND,
or by ANY (``?`` / ``--depends-on-any``; as in Slurm, every job of a ``?`` list is its
own alternative). ``on:N`` waits for N of the inverse clauses that later ``before*``
jobs attach. ``singleton`` is judged by the planner.

A clause over several jobs needs each of them to meet it. A clause over a whole array or
sweep (:attr:`Clause.group`) judges its tasks together, as Slurm judges an array:
``afterok`` every task succeeded; ``afternotok`` every task ended and at least one
failed; ``afterany`` every task ended; ``after`` every task started (or ended unstarted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from typing import Any

from gflow import limits
from gflow.errors import InvalidInput
from gflow.limits import MAX_DEP_REFS, MAX_NAME, MAX_SECONDS, MAX_SPEC
from gflow.parse import RecentRef, Ref, TaskRef, parse_ref
from gflow.states import FINAL_STATES, State


class DepType(StrEnum):
    AFTER = "after"
    AFTEROK = "afterok"
    AFTERNOTOK = "afternotok"
    AFTERANY = "afterany"


AFTER_TYPES = frozenset({"after", "afterok", "afternotok", "afterany", "aftercorr"})
BEFORE_TYPES: dict[str, DepType] = {
    "before": DepType.AFTER,
    "beforeok": DepType.AFTEROK,
    "beforenotok": DepType.AFTERNOTOK,
    "beforeany": DepType.AFTERANY,
}

OK_STATES = frozenset({State.FINISHED})
NOTOK_STATES = frozenset({State.FAILED, State.TIMEOUT, State.CANCELLED})


# ---------------------------------------------------------------- resolved model


@dataclass(frozen=True, slots=True)
class Clause:
    """A condition over parents.

    Without ``group`` each parent must meet it. With ``group`` (the id of an array or
    sweep named as a whole) the parents are its tasks, judged together as Slurm judges
    an array; only ``afternotok`` differs: every task ended and at least one failed.
    """

    type: DepType
    parents: tuple[int, ...]
    delay: int = 0
    group: int | None = None

    def text(self, parents: Iterable[int] | None = None) -> str:
        suffix = f"+{self.delay // 60}" if self.delay else ""
        if self.group is not None:
            return f"{self.type.value}:{self.group}{suffix}"
        ids = self.parents if parents is None else tuple(parents)
        return self.type.value + "".join(f":{p}{suffix}" for p in ids)


@dataclass(frozen=True, slots=True)
class Dependency:
    """What a job waits for, over resolved job ids."""

    clauses: tuple[Clause, ...] = ()
    any_of: bool = False
    on_count: int = 0
    on_pool: tuple[Clause, ...] = ()
    singleton: bool = False
    auto_cancel: bool = True

    @property
    def is_empty(self) -> bool:
        return not (self.clauses or self.on_count or self.singleton)

    def parents(self) -> set[int]:
        return {p for c in (*self.clauses, *self.on_pool) for p in c.parents}

    def replace_parent(self, old: int, new: int, *, keep_after: bool = False) -> Dependency:
        """Wait for ``new`` where this waited for ``old``.

        ``keep_after`` leaves ``after`` clauses alone: when a waiting job is re-pointed
        to a retry, ``old`` has started or ended, so those are already met for good.
        """
        return self.replace_parents({old: new}, keep_after=keep_after)

    def replace_parents(self, new: Mapping[int, int], *, keep_after: bool = False) -> Dependency:
        """Wait for ``new[p]`` wherever this waited for ``p`` (one pass over the clauses)."""

        def swap(cs: tuple[Clause, ...]) -> tuple[Clause, ...]:
            return tuple(
                c
                if keep_after and c.type is DepType.AFTER
                else replace(c, parents=tuple(new.get(p, p) for p in c.parents))
                for c in cs
            )

        return replace(self, clauses=swap(self.clauses), on_pool=swap(self.on_pool))

    def with_pool_clause(self, clause: Clause) -> Dependency:
        return replace(self, on_pool=(*self.on_pool, clause))

    def slurm_text(self) -> str:
        parts = [c.text() for c in self.clauses]
        text = ("?" if self.any_of else ",").join(parts)
        extra = []
        if self.singleton:
            extra.append("singleton")
        if self.on_count:
            pool = ",".join(c.text() for c in self.on_pool)
            extra.append(f"on:{self.on_count}" + (f"[{pool}]" if pool else ""))
        return ",".join(p for p in (text, *extra) if p)

    def to_json(self) -> dict[str, Any]:
        def dump(cs: tuple[Clause, ...]) -> list[list[Any]]:
            return [
                [c.type.value, list(c.parents), c.delay, *(() if c.group is None else (c.group,))]
                for c in cs
            ]

        return {
            "clauses": dump(self.clauses),
            "any_of": self.any_of,
            "on_count": self.on_count,
            "on_pool": dump(self.on_pool),
            "singleton": self.singleton,
            "auto_cancel": self.auto_cancel,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dependency:
        def load(raw: list[list[Any]]) -> tuple[Clause, ...]:
            return tuple(
                Clause(
                    DepType(t),
                    tuple(int(p) for p in ps),
                    int(d),
                    int(group[0]) if group else None,
                )
                for t, ps, d, *group in raw
            )

        return cls(
            clauses=load(data.get("clauses", [])),
            any_of=bool(data.get("any_of", False)),
            on_count=int(data.get("on_count", 0)),
            on_pool=load(data.get("on_pool", [])),
            singleton=bool(data.get("singleton", False)),
            auto_cancel=bool(data.get("auto_cancel", True)),
        )


# ---------------------------------------------------------------- evaluation


class Verdict(Enum):
    PENDING = "pending"
    SATISFIED = "satisfied"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class ParentView:
    """What the evaluator needs to know of a parent (``state`` None: no such job)."""

    state: State | None
    start_time: float | None = None
    end_time: float | None = None
    exit_unknown: bool = False
    """It ended, but whether it succeeded is unknown: ``afterok`` and ``afternotok`` wait."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    verdict: Verdict
    culprit: int | None = None
    pending: tuple[int, ...] = ()
    wake_at: float | None = None
    decided_at: float | None = None
    """For a "never" verdict: when it became certain (the culprit's end), if known."""


_MISSING = ParentView(state=None)
_STATES = frozenset(State)


def _judge(kind: DepType, view: ParentView, delay: int, now: float) -> tuple[Verdict, float | None]:
    if view.state not in _STATES:  # None: no such job
        return Verdict.NEVER, None
    final = view.state in FINAL_STATES
    if kind is DepType.AFTER:
        base = (
            view.start_time if view.start_time is not None else (view.end_time if final else None)
        )
        if base is None:
            return Verdict.PENDING, None
        ready_at = base + delay
        return (Verdict.SATISFIED, None) if now >= ready_at else (Verdict.PENDING, ready_at)
    if not final:
        return Verdict.PENDING, None
    if kind is DepType.AFTERANY:
        return Verdict.SATISFIED, None
    if view.exit_unknown:
        return Verdict.PENDING, None
    wanted = OK_STATES if kind is DepType.AFTEROK else NOTOK_STATES
    return (Verdict.SATISFIED if view.state in wanted else Verdict.NEVER), None


def _never(parent: int, view: ParentView) -> Evaluation:
    return Evaluation(Verdict.NEVER, culprit=parent, decided_at=view.end_time)


def _when(ev: Evaluation) -> float:
    return -math.inf if ev.decided_at is None else ev.decided_at


def _first_decided(nevers: list[Evaluation]) -> Evaluation:
    """The "never" that was certain first: in an AND, that end decided the whole."""
    return min(nevers, key=_when)


def _last_decided(nevers: list[Evaluation]) -> Evaluation:
    """The "never" that was certain last: when every alternative failed, that end decided
    (of alternatives decided at once, the last)."""
    return max(reversed(nevers), key=_when)


def _clause(c: Clause, views: Mapping[int, ParentView], now: float) -> Evaluation:
    if c.group is not None and c.type is DepType.AFTERNOTOK:
        return _some_task_failed(c, views)
    pending: list[int] = []
    wakes: list[float] = []
    nevers: list[Evaluation] = []
    for parent in c.parents:
        view = views.get(parent, _MISSING)
        verdict, wake = _judge(c.type, view, c.delay, now)
        if verdict is Verdict.NEVER:
            nevers.append(_never(parent, view))
        elif verdict is Verdict.PENDING:
            pending.append(parent)
            if wake is not None:
                wakes.append(wake)
    if nevers:
        return _first_decided(nevers)
    if pending:
        return Evaluation(Verdict.PENDING, pending=tuple(pending), wake_at=min(wakes, default=None))
    return Evaluation(Verdict.SATISFIED)


def _some_task_failed(c: Clause, views: Mapping[int, ParentView]) -> Evaluation:
    """``afternotok`` on a whole array: every task ended, and at least one of them failed."""
    pending: list[int] = []
    failed = False
    for parent in c.parents:
        view = views.get(parent, _MISSING)
        if view.state not in _STATES:  # no such job
            return _never(parent, view)
        if view.state not in FINAL_STATES or view.exit_unknown:  # not known yet
            pending.append(parent)
            continue
        failed = failed or view.state in NOTOK_STATES
    if pending:
        return Evaluation(Verdict.PENDING, pending=tuple(pending))
    if failed:
        return Evaluation(Verdict.SATISFIED)
    return _last_decided([_never(p, views[p]) for p in c.parents])


def _combine(parts: list[Evaluation], any_of: bool) -> Evaluation:
    if not parts:
        return Evaluation(Verdict.SATISFIED)
    verdicts = [p.verdict for p in parts]
    if any_of and Verdict.SATISFIED in verdicts:
        return Evaluation(Verdict.SATISFIED)
    if not any_of and Verdict.NEVER in verdicts:
        return _first_decided([p for p in parts if p.verdict is Verdict.NEVER])
    if any_of and all(v is Verdict.NEVER for v in verdicts):
        return _last_decided(parts)
    if all(v is Verdict.SATISFIED for v in verdicts):
        return Evaluation(Verdict.SATISFIED)
    waiting = [p for p in parts if p.verdict is Verdict.PENDING]
    pending = tuple(dict.fromkeys(i for p in waiting for i in p.pending))
    wakes = [p.wake_at for p in waiting if p.wake_at is not None]
    return Evaluation(Verdict.PENDING, pending=pending, wake_at=min(wakes, default=None))


def evaluate(dep: Dependency, views: Mapping[int, ParentView], now: float) -> Evaluation:
    """Judge ``dep`` given its parents' current views (a missing parent can never satisfy).

    ``on:N`` counts the satisfied clauses of the pool that ``before*`` jobs attached. While
    fewer than N are attached more may come, so the job waits; once N or more are attached
    and too many of them can never be satisfied, the job can never start either.
    A "never" verdict names the parent whose end decided it.
    """
    main = _combine([_clause(c, views, now) for c in dep.clauses], dep.any_of)
    if main.verdict is Verdict.NEVER or dep.on_count == 0:
        return main
    pool = [_clause(c, views, now) for c in dep.on_pool]
    done = sum(1 for p in pool if p.verdict is Verdict.SATISFIED)
    if done >= dep.on_count:
        return main
    failed = sorted((p for p in pool if p.verdict is Verdict.NEVER), key=_when)
    if len(pool) >= dep.on_count and len(pool) - len(failed) < dep.on_count:
        return failed[len(pool) - dep.on_count]  # the failure that left too few
    awaited = tuple(i for p in pool if p.verdict is Verdict.PENDING for i in p.pending)
    wakes = [w for w in (main.wake_at, *(p.wake_at for p in pool)) if w is not None]
    return Evaluation(
        Verdict.PENDING,
        pending=tuple(dict.fromkeys((*main.pending, *awaited))),
        wake_at=min(wakes, default=None),
    )


def remaining_text(dep: Dependency, views: Mapping[int, ParentView], now: float) -> str:
    """The clauses still unmet, in Slurm form (``-`` when nothing is left to wait for).

    Of an any-of dependency, an alternative that can no longer be met is not awaited
    (while another one can still be).
    """
    evals = [_clause(c, views, now) for c in dep.clauses]
    verdicts = [e.verdict for e in evals]
    parts: list[str] = []
    if not (dep.any_of and Verdict.SATISFIED in verdicts):
        hopeless = dep.any_of and any(v is not Verdict.NEVER for v in verdicts)
        for c, verdict in zip(dep.clauses, verdicts, strict=True):
            if verdict is Verdict.SATISFIED or (hopeless and verdict is Verdict.NEVER):
                continue
            if c.group is not None:
                parts.append(c.text())
                continue
            left = [
                p
                for p in c.parents
                if _judge(c.type, views.get(p, _MISSING), c.delay, now)[0] is not Verdict.SATISFIED
            ]
            parts.append(c.text(left))
    text = ("?" if dep.any_of else ",").join(parts)
    extra = []
    if dep.on_count:
        done = sum(1 for c in dep.on_pool if _clause(c, views, now).verdict is Verdict.SATISFIED)
        if done < dep.on_count:
            extra.append(f"on:{dep.on_count - done}")
    if dep.singleton:
        extra.append("singleton")
    return ",".join(p for p in (text, *extra) if p) or "-"


# ---------------------------------------------------------------- parsed requests

ParentToken = Ref | str


@dataclass(frozen=True, slots=True)
class RawClause:
    """A clause as typed: a type and unresolved parent references.

    ``each_job``: every job the references stand for is an alternative of its own
    (``--depends-on-any``, where an array stands for its tasks).
    """

    type: str
    refs: tuple[ParentToken, ...]
    delay: int = 0
    each_job: bool = False


@dataclass(frozen=True, slots=True)
class DepRequest:
    """A job's dependency as the user wrote it, before references are resolved.

    ``texts``: the specs as typed. A request without clauses or texts sets no dependency
    (it may still say ``auto_cancel``); one without clauses but with a text sets "none"
    (``-d ''``, ``-d 0``).
    ``auto_cancel``: None when not said (at submission: auto-cancel; in a change: as it
    was).
    """

    clauses: tuple[RawClause, ...] = ()
    any_of: bool = False
    on_count: int = 0
    singleton: bool = False
    auto_cancel: bool | None = None
    texts: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not (self.clauses or self.on_count or self.singleton)

    @property
    def sets_dependency(self) -> bool:
        """True when it says what to wait for (possibly nothing), not only how."""
        return bool(self.texts) or not self.is_empty

    @property
    def text(self) -> str | None:
        return " ".join(t for t in self.texts if t) or None

    def merge(self, other: DepRequest) -> DepRequest:
        """AND two requests together (an ANY request cannot be combined with anything)."""
        auto = _either(self.auto_cancel, other.auto_cancel)
        if self.is_empty or other.is_empty:
            full = other if self.is_empty else self
            return replace(full, auto_cancel=auto, texts=self.texts + other.texts)
        for req in (self, other):
            if req.any_of and len(req.clauses) > 1:
                raise InvalidInput(
                    "dependency",
                    " ".join(req.texts),
                    "an any-of dependency (--depends-on-any or '?') on its own, not combined "
                    "with other dependency options",
                )
        return _sized(
            DepRequest(
                clauses=self.clauses + other.clauses,
                on_count=self.on_count + other.on_count,
                singleton=self.singleton or other.singleton,
                auto_cancel=auto,
                texts=self.texts + other.texts,
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "clauses": [
                [c.type, [_ref_text(r) for r in c.refs], c.delay, *((True,) if c.each_job else ())]
                for c in self.clauses
            ],
            "any_of": self.any_of,
            "on_count": self.on_count,
            "singleton": self.singleton,
            "auto_cancel": self.auto_cancel,
            "texts": list(self.texts),
        }

    @classmethod
    def from_json(cls, data: Any) -> DepRequest:
        """Rebuild a request sent over the wire; malformed data is an InvalidInput."""
        if data is None:
            return cls()
        expected = "an object with clauses, any_of, on_count, singleton and auto_cancel"
        if not isinstance(data, dict) or not isinstance(data.get("clauses"), list):
            raise InvalidInput("dependency", limits.brief(data), expected)
        if len(data["clauses"]) > MAX_DEP_REFS:
            raise InvalidInput("dependency", "(too many clauses)", f"at most {MAX_DEP_REFS}")
        try:
            req = cls(
                clauses=tuple(_raw_clause(c) for c in data["clauses"]),
                any_of=bool(data["any_of"]),
                on_count=limits.whole(data["on_count"], "dependency on:COUNT", 0, MAX_DEP_REFS),
                singleton=bool(data["singleton"]),
                auto_cancel=_flag(data["auto_cancel"]),
                texts=_texts(data.get("texts", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("dependency", limits.brief(data), expected) from exc
        _sized(req)
        for c in req.clauses:
            if c.type not in AFTER_TYPES and c.type not in BEFORE_TYPES:
                raise InvalidInput("dependency type", c.type, _TYPES_EXPECTED)
            if not c.refs or c.delay < 0 or (c.delay and c.type != "after"):
                raise InvalidInput("dependency", c.type, "TYPE:JOB[:JOB...], a delay only on after")
        if req.on_count < 0:
            raise InvalidInput("dependency", f"on:{req.on_count}", "on:COUNT with COUNT >= 1")
        return req


def _either(a: bool | None, b: bool | None) -> bool | None:
    """Two auto-cancel settings together: unsaid yields; "keep waiting" (False) wins."""
    if a is None or b is None:
        return b if a is None else a
    return a and b


def _flag(value: Any) -> bool | None:
    if value is not None and type(value) is not bool:
        raise InvalidInput("dependency auto_cancel", limits.brief(value), "true, false or null")
    return value


def _raw_clause(raw: Any) -> RawClause:
    if not isinstance(raw, list) or len(raw) not in (3, 4) or not isinstance(raw[1], list):
        raise InvalidInput(
            "dependency clause", limits.brief(raw), "[type, [jobs], delay] or [..., each_job]"
        )
    kind, refs, delay, *each = raw
    if each and type(each[0]) is not bool:
        raise InvalidInput("dependency clause each_job", limits.brief(each[0]), "true or false")
    kind = limits.text(kind, "dependency type", 20)
    if len(refs) > MAX_DEP_REFS:
        raise InvalidInput("dependency", f"{len(refs)} jobs", f"at most {MAX_DEP_REFS} jobs")
    tokens = []
    for ref in refs:
        if type(ref) is int:
            ref = str(ref)
        tokens.append(_token(limits.text(ref, "dependency job", MAX_NAME), names=True))
    return RawClause(kind, tuple(dict.fromkeys(tokens)), _delay(delay), bool(each and each[0]))


def _delay(value: object) -> int:
    return limits.whole(value, "dependency delay", 0, MAX_SECONDS)


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 100:
        raise InvalidInput("dependency texts", limits.brief(value), "a list of texts")
    return tuple(limits.text(t, "dependency", MAX_SPEC) for t in value)


def _sized(req: DepRequest) -> DepRequest:
    """Refuse a dependency naming more jobs than one job may wait for."""
    count = sum(len(c.refs) for c in req.clauses)
    if req.on_count > MAX_DEP_REFS:
        raise InvalidInput(
            "dependency", f"on:{req.on_count}", f"on:COUNT of at most {MAX_DEP_REFS}"
        )
    if count > MAX_DEP_REFS:
        raise InvalidInput("dependency", f"{count} job references", f"at most {MAX_DEP_REFS} jobs")
    return req


def _spec(text: str, field: str = "dependency") -> str:
    return limits.text(text, field, MAX_SPEC)


def _ref_text(ref: ParentToken) -> str:
    if isinstance(ref, RecentRef):
        return "@" if ref.back == 0 else f"@~{ref.back}"
    if isinstance(ref, TaskRef):
        return f"{ref.array_id}_{ref.task_id}"
    return str(ref)


_TYPES_EXPECTED = (
    "after, afterok, afternotok, afterany, aftercorr, singleton (Slurm), "
    "before, beforeok, beforenotok, beforeany, on:<count> (Moab/Torque)"
)
_REF_LIKE = re.compile(r"^(@.*|[0-9][0-9_+~]*)$")
"""Text that can only be a (malformed) job reference, never a job name."""


def _token(text: str, *, names: bool) -> ParentToken:
    text = text.strip()
    try:
        return parse_ref(text, "dependency job")
    except InvalidInput:
        if names and text and not _REF_LIKE.match(text) and not any(c.isspace() for c in text):
            return text
        expected = "a job id, @, @~N or ARRAY_TASK" + (
            " (or a job name: other text, without spaces)" if names else ""
        )
        raise InvalidInput("dependency job", text, expected) from None


def _refs(text: str, *, names: bool, sep: str = ",") -> tuple[ParentToken, ...]:
    parts = [p.strip() for p in _spec(text).split(sep)]
    if any(not p for p in parts):
        example = sep.join(("1", "2", "3"))
        raise InvalidInput(
            "dependency", text, f"a {sep!r}-separated list of jobs such as {example}"
        )
    if len(parts) > MAX_DEP_REFS:
        raise InvalidInput("dependency", f"{len(parts)} jobs", f"at most {MAX_DEP_REFS} jobs")
    return tuple(dict.fromkeys(_token(p, names=names) for p in parts))


def from_gflow(
    depends_on: str | None = None,
    depends_on_all: str | None = None,
    depends_on_any: str | None = None,
    *,
    auto_cancel: bool | None = None,
) -> DepRequest:
    """The gflow flags: ``--depends-on`` (also Slurm form), ``--depends-on-all/-any``."""
    req = DepRequest(auto_cancel=auto_cancel)
    if depends_on:
        req = req.merge(parse_dependency(depends_on))
    if depends_on_all:
        refs = _refs(depends_on_all, names=False)
        req = req.merge(DepRequest(clauses=(RawClause("afterok", refs),), texts=(depends_on_all,)))
    if depends_on_any:
        refs = _refs(depends_on_any, names=False)
        clauses = tuple(RawClause("afterok", (r,), each_job=True) for r in refs)
        anyreq = DepRequest(clauses=clauses, any_of=len(clauses) > 1, texts=(depends_on_any,))
        req = req.merge(anyreq)
    return _sized(replace(req, auto_cancel=auto_cancel))


def parse_dependency(text: str) -> DepRequest:
    """Slurm ``--dependency`` syntax, or plain job references (meaning afterok).

    Moab's ``before*:ID`` and ``on:COUNT`` are accepted too (joined with ``,`` only).
    As in Slurm, an empty spec or ``0`` means no dependency (``gjob update -d ''``
    clears one).
    """
    raw = _spec(text).strip()
    if raw in ("", "0"):
        return DepRequest(texts=("",))
    if "," in raw and "?" in raw:
        raise InvalidInput(
            "dependency", text, "clauses joined all by ',' (all) or all by '?' (any)"
        )
    any_of = "?" in raw
    clauses: list[RawClause] = []
    singleton = False
    on_count = 0
    for part in raw.split("?" if any_of else ","):
        part = part.strip()
        if not part:
            raise InvalidInput(
                "dependency", text, "clauses joined by ',' or '?', none of them empty"
            )
        kind = part.partition(":")[0].strip().lower()
        if any_of and (kind in ("singleton", "on", "aftercorr") or kind in BEFORE_TYPES):
            raise InvalidInput("dependency", text, f"{kind} joined with ',' not '?'")
        if kind == "singleton" and part.lower() == "singleton":
            singleton = True
        elif kind == "on" or kind in BEFORE_TYPES:
            moab = parse_moab("depend=" + part)
            clauses.extend(moab.clauses)
            on_count += moab.on_count
        else:
            clauses.extend(_slurm_clause(part, any_of))
    return _sized(
        DepRequest(
            tuple(clauses),
            any_of=any_of and len(clauses) > 1,
            on_count=on_count,
            singleton=singleton,
            texts=(raw,),
        )
    )


def _slurm_clause(part: str, any_of: bool) -> list[RawClause]:
    if ":" not in part:
        return [RawClause("afterok", (_token(part, names=False),))]
    kind, _, rest = part.partition(":")
    kind = kind.strip().lower()
    if kind not in AFTER_TYPES:
        raise InvalidInput(
            "dependency type", kind, "after, afterok, afternotok, afterany, aftercorr or singleton"
        )
    by_delay: dict[int, list[ParentToken]] = {}
    for item in rest.split(":"):
        ref_text, plus, minutes = item.partition("+")
        delay = 0
        if plus:
            digits = minutes.strip()
            if kind != "after" or not (digits.isascii() and digits.isdigit()):
                raise InvalidInput("dependency", part, "a delay only as after:ID+MINUTES")
            digits = digits.lstrip("0") or "0"
            if len(digits) > 9 or int(digits) * 60 > MAX_SECONDS:
                limit = MAX_SECONDS // 60
                raise InvalidInput("dependency", part, f"a delay of at most {limit} minutes")
            delay = int(digits) * 60
        if not ref_text.strip():
            raise InvalidInput("dependency", part, f"{kind}:ID[:ID...]")
        by_delay.setdefault(delay, []).append(_token(ref_text, names=False))
    if any_of:  # as in Slurm, every job of a '?' list is an alternative of its own
        return [
            RawClause(kind, (ref,), delay)
            for delay, refs in by_delay.items()
            for ref in dict.fromkeys(refs)
        ]
    return [RawClause(kind, tuple(dict.fromkeys(refs)), delay) for delay, refs in by_delay.items()]


def parse_moab(text: str) -> DepRequest:
    """Moab/Torque ``-W depend=...`` or ``-W x=depend:...``."""
    raw = _spec(text, "-W").strip()
    lowered = raw.lower()
    for prefix in ("x=depend:", "depend="):
        if lowered.startswith(prefix):
            body = raw[len(prefix) :]
            break
    else:
        raise InvalidInput("-W", text, "depend=TYPE:JOB[:JOB...] or x=depend:TYPE:JOB")
    if not body.strip():
        raise InvalidInput("-W", text, "depend=TYPE:JOB[:JOB...]")
    clauses: list[RawClause] = []
    on_count = 0
    for part in body.split(","):
        kind, sep, rest = part.strip().partition(":")
        kind = kind.lower()
        if not sep or not rest.strip():
            raise InvalidInput("dependency", part or body, "TYPE:JOB[:JOB...] or on:COUNT")
        if kind == "on":
            count = rest.strip()
            if not (count.isascii() and count.isdigit() and len(count) <= 9) or not (
                1 <= int(count) <= MAX_DEP_REFS
            ):
                raise InvalidInput(
                    "dependency", part, f"on:COUNT with COUNT from 1 to {MAX_DEP_REFS}"
                )
            on_count += int(count)
            continue
        if kind == "aftercorr" or (kind not in AFTER_TYPES and kind not in BEFORE_TYPES):
            raise InvalidInput(
                "dependency type",
                kind,
                _TYPES_EXPECTED.replace("aftercorr, ", "").replace("singleton (Slurm), ", ""),
            )
        clauses.append(RawClause(kind, _refs(rest, names=True, sep=":")))
    return _sized(DepRequest(tuple(clauses), on_count=on_count, texts=(raw,)))
