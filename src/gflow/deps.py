"""The dependency engine's pure half: one model, three front-end syntaxes, one evaluator.

A request is parsed into a :class:`DepRequest` (references still unresolved: ``@``,
names, array tasks), the daemon resolves it into a :class:`Dependency` over job ids,
and :func:`evaluate` judges a dependency against its parents' states.

Semantics (the user docs repeat them): ``afterok`` needs Finished; ``afternotok``
needs Failed, Timeout or Cancelled; ``afterany`` any final state; ``after`` the parent
started, or ended without starting, plus an optional delay. Clauses are joined by AND,
or by ANY (``?`` / ``--depends-on-any``). ``on:N`` waits for N of the inverse clauses
that later ``before*`` jobs attach. ``singleton`` is judged by the planner.
"""

from __future__ import annotations

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
    """A condition over parents, all of which must meet it."""

    type: DepType
    parents: tuple[int, ...]
    delay: int = 0

    def text(self, parents: Iterable[int] | None = None) -> str:
        ids = self.parents if parents is None else tuple(parents)
        suffix = f"+{self.delay // 60}" if self.delay else ""
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
            return [[c.type.value, list(c.parents), c.delay] for c in cs]

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
            return tuple(Clause(DepType(t), tuple(int(p) for p in ps), int(d)) for t, ps, d in raw)

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


def _clause(c: Clause, views: Mapping[int, ParentView], now: float) -> Evaluation:
    pending: list[int] = []
    wakes: list[float] = []
    for parent in c.parents:
        verdict, wake = _judge(c.type, views.get(parent, _MISSING), c.delay, now)
        if verdict is Verdict.NEVER:
            return Evaluation(Verdict.NEVER, culprit=parent)
        if verdict is Verdict.PENDING:
            pending.append(parent)
            if wake is not None:
                wakes.append(wake)
    if pending:
        return Evaluation(Verdict.PENDING, pending=tuple(pending), wake_at=min(wakes, default=None))
    return Evaluation(Verdict.SATISFIED)


def _combine(parts: list[Evaluation], any_of: bool) -> Evaluation:
    if not parts:
        return Evaluation(Verdict.SATISFIED)
    verdicts = [p.verdict for p in parts]
    if any_of and Verdict.SATISFIED in verdicts:
        return Evaluation(Verdict.SATISFIED)
    if not any_of and Verdict.NEVER in verdicts:
        return next(p for p in parts if p.verdict is Verdict.NEVER)
    if any_of and all(v is Verdict.NEVER for v in verdicts):
        return Evaluation(Verdict.NEVER, culprit=parts[-1].culprit)
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
    """
    main = _combine([_clause(c, views, now) for c in dep.clauses], dep.any_of)
    if main.verdict is Verdict.NEVER or dep.on_count == 0:
        return main
    pool = [_clause(c, views, now) for c in dep.on_pool]
    done = sum(1 for p in pool if p.verdict is Verdict.SATISFIED)
    if done >= dep.on_count:
        return main
    failed = [p for p in pool if p.verdict is Verdict.NEVER]
    if len(pool) >= dep.on_count and len(pool) - len(failed) < dep.on_count:
        return Evaluation(Verdict.NEVER, culprit=failed[-1].culprit)
    awaited = tuple(i for p in pool if p.verdict is Verdict.PENDING for i in p.pending)
    wakes = [w for w in (main.wake_at, *(p.wake_at for p in pool)) if w is not None]
    return Evaluation(
        Verdict.PENDING,
        pending=tuple(dict.fromkeys((*main.pending, *awaited))),
        wake_at=min(wakes, default=None),
    )


def remaining_text(dep: Dependency, views: Mapping[int, ParentView], now: float) -> str:
    """The clauses still unmet, in Slurm form (``-`` when nothing is left to wait for)."""
    parts: list[str] = []
    for c in dep.clauses:
        left = [
            p
            for p in c.parents
            if _judge(c.type, views.get(p, _MISSING), c.delay, now)[0] is not Verdict.SATISFIED
        ]
        if left:
            parts.append(c.text(left))
        elif dep.any_of:  # one alternative is met: nothing of the others is still awaited
            parts = []
            break
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
    """A clause as typed: a type and unresolved parent references."""

    type: str
    refs: tuple[ParentToken, ...]
    delay: int = 0


@dataclass(frozen=True, slots=True)
class DepRequest:
    """A job's dependency as the user wrote it, before references are resolved."""

    clauses: tuple[RawClause, ...] = ()
    any_of: bool = False
    on_count: int = 0
    singleton: bool = False
    auto_cancel: bool = True
    texts: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not (self.clauses or self.on_count or self.singleton)

    @property
    def text(self) -> str | None:
        return " ".join(self.texts) or None

    def merge(self, other: DepRequest) -> DepRequest:
        """AND two requests together (an ANY request cannot be combined with anything)."""
        if self.is_empty and not self.texts:
            return replace(other, auto_cancel=self.auto_cancel and other.auto_cancel)
        if other.is_empty and not other.texts:
            return replace(self, auto_cancel=self.auto_cancel and other.auto_cancel)
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
                auto_cancel=self.auto_cancel and other.auto_cancel,
                texts=self.texts + other.texts,
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "clauses": [[c.type, [_ref_text(r) for r in c.refs], c.delay] for c in self.clauses],
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
                auto_cancel=bool(data["auto_cancel"]),
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


def _raw_clause(raw: Any) -> RawClause:
    if not isinstance(raw, list) or len(raw) != 3 or not isinstance(raw[1], list):
        raise InvalidInput("dependency clause", limits.brief(raw), "[type, [jobs], delay]")
    kind, refs, delay = raw
    kind = limits.text(kind, "dependency type", 20)
    if len(refs) > MAX_DEP_REFS:
        raise InvalidInput("dependency", f"{len(refs)} jobs", f"at most {MAX_DEP_REFS} jobs")
    tokens = []
    for ref in refs:
        if type(ref) is int:
            ref = str(ref)
        tokens.append(_token(limits.text(ref, "dependency job", MAX_NAME), names=True))
    return RawClause(kind, tuple(dict.fromkeys(tokens)), _delay(delay))


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
_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _token(text: str, *, names: bool) -> ParentToken:
    text = text.strip()
    try:
        return parse_ref(text, "dependency job")
    except InvalidInput:
        if names and _NAME.match(text):
            return text
        expected = "a job id, @, @~N, ARRAY_TASK" + (" or a job name" if names else "")
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
    auto_cancel: bool = True,
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
        clauses = tuple(RawClause("afterok", (r,)) for r in refs)
        anyreq = DepRequest(clauses=clauses, any_of=len(clauses) > 1, texts=(depends_on_any,))
        req = req.merge(anyreq)
    return _sized(replace(req, auto_cancel=auto_cancel))


def parse_dependency(text: str) -> DepRequest:
    """Slurm ``--dependency`` syntax, or plain job references (meaning afterok).

    Moab's ``before*:ID`` and ``on:COUNT`` are accepted too (joined with ``,`` only).
    """
    raw = _spec(text).strip()
    if not raw:
        raise InvalidInput("dependency", text, "a job id or TYPE:ID[:ID...] such as afterok:5")
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
        if any_of and (kind in ("singleton", "on") or kind in BEFORE_TYPES):
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
    if any_of and len(by_delay) > 1:
        raise InvalidInput("dependency", part, "one delay per after clause when joined with '?'")
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
