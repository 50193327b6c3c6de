"""Tests for gflow.deps: the three front-end syntaxes, the model, and the evaluator.

Every form of both seed documents parses into one :class:`DepRequest`; malformed specs
name the offending token; the evaluator's verdict is checked for every type against
every parent state, for AND and ANY, ``on:N`` pools and ``after:ID+minutes`` delays.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gflow.deps import (
    Clause,
    Dependency,
    DepRequest,
    DepType,
    ParentView,
    RawClause,
    Verdict,
    evaluate,
    from_gflow,
    parse_dependency,
    parse_moab,
    remaining_text,
)
from gflow.errors import InvalidInput
from gflow.parse import RecentRef, TaskRef

# ---------------------------------------------------------------- gflow flags


def test_depends_on_one_id_is_afterok() -> None:
    req = from_gflow("5")
    assert req.clauses == (RawClause("afterok", (5,)),)
    assert not req.any_of and req.auto_cancel is None and not req.singleton


@pytest.mark.parametrize(
    ("text", "ref"),
    [("@", RecentRef(0)), ("@~1", RecentRef(1)), ("@~2", RecentRef(2)), ("12_3", TaskRef(12, 3))],
)
def test_depends_on_recent_and_task_references(text: str, ref: Any) -> None:
    assert from_gflow(text).clauses == (RawClause("afterok", (ref,)),)


def test_depends_on_all_is_one_afterok_clause_over_all_parents() -> None:
    req = from_gflow(depends_on_all="101,102, 103")
    assert req.clauses == (RawClause("afterok", (101, 102, 103)),)
    assert not req.any_of


def test_depends_on_all_with_recent_references() -> None:
    req = from_gflow(depends_on_all="@,@~1,@~2")
    assert req.clauses == (RawClause("afterok", (RecentRef(0), RecentRef(1), RecentRef(2))),)


def test_depends_on_any_is_one_clause_per_parent_joined_by_any() -> None:
    req = from_gflow(depends_on_any="201,202,203")
    assert req.any_of
    assert req.clauses == tuple(RawClause("afterok", (i,), each_job=True) for i in (201, 202, 203))


def test_depends_on_any_with_one_parent_is_plain_but_an_array_stands_for_its_tasks() -> None:
    req = from_gflow(depends_on_any="7")
    assert req.clauses == (RawClause("afterok", (7,), each_job=True),) and not req.any_of


def test_no_auto_cancel_is_kept_whatever_the_form() -> None:
    assert not from_gflow("1", auto_cancel=False).auto_cancel
    assert not from_gflow(depends_on_any="1,2", auto_cancel=False).auto_cancel
    assert not from_gflow(depends_on_all="1,2", auto_cancel=False).auto_cancel
    req = from_gflow(None, "1", None, auto_cancel=False).merge(parse_dependency("afterany:2"))
    assert not req.auto_cancel


def test_depends_on_and_depends_on_all_combine_with_and() -> None:
    req = from_gflow("3", "1,2")
    assert req.clauses == (RawClause("afterok", (3,)), RawClause("afterok", (1, 2)))
    assert not req.any_of
    assert req.text == "3 1,2"


def test_depends_on_any_cannot_be_combined_with_other_dependency_options() -> None:
    with pytest.raises(InvalidInput, match="any-of"):
        from_gflow("3", None, "1,2")
    with pytest.raises(InvalidInput, match="any-of"):
        parse_dependency("afterok:1?afterok:2").merge(parse_dependency("afterok:3"))


@pytest.mark.parametrize(
    ("text", "token"),
    [("prep", "prep"), ("1,,2", "1,,2"), ("1,x", "x"), ("-1", "-1"), ("@~x", "@~x")],
)
def test_gflow_lists_take_ids_only_and_name_the_bad_token(text: str, token: str) -> None:
    for kwargs in ({"depends_on_all": text}, {"depends_on_any": text}, {"depends_on": text}):
        with pytest.raises(InvalidInput) as err:
            from_gflow(**kwargs)
        assert repr(token) in err.value.message


def test_0_is_no_job_in_a_list_but_no_dependency_in_slurms_form() -> None:
    for kwargs in ({"depends_on_all": "0"}, {"depends_on_any": "1,0"}):
        with pytest.raises(InvalidInput, match="'0'"):
            from_gflow(**kwargs)
    for text in ("0", "", "  "):
        req = parse_dependency(text)
        assert req.is_empty and req.sets_dependency and req.text is None


def test_empty_request() -> None:
    req = from_gflow()
    assert req.is_empty and req.text is None
    assert DepRequest().merge(DepRequest()).is_empty


# ---------------------------------------------------------------- Slurm


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("after:1", [("after", (1,), 0)]),
        ("afterok:1:2", [("afterok", (1, 2), 0)]),
        ("afternotok:3", [("afternotok", (3,), 0)]),
        ("afterany:4:5:6", [("afterany", (4, 5, 6), 0)]),
        ("aftercorr:7", [("aftercorr", (7,), 0)]),
        ("AFTEROK:1", [("afterok", (1,), 0)]),
        (" afterok:1 , afterany:2 ", [("afterok", (1,), 0), ("afterany", (2,), 0)]),
        ("after:5+10", [("after", (5,), 600)]),
        ("after:5+10:6", [("after", (5,), 600), ("after", (6,), 0)]),
        ("after:5+1:6+1", [("after", (5, 6), 60)]),
        (
            "afterok:@,afterany:@~1",
            [("afterok", (RecentRef(0),), 0), ("afterany", (RecentRef(1),), 0)],
        ),
        ("afterok:12_3", [("afterok", (TaskRef(12, 3),), 0)]),
    ],
)
def test_slurm_types_joined_by_comma_are_all(text: str, clauses: list[Any]) -> None:
    req = parse_dependency(text)
    assert req.clauses == tuple(RawClause(t, r, d) for t, r, d in clauses)
    assert not req.any_of
    assert req.texts == (text.strip(),)


def test_slurm_question_mark_is_any_and_every_job_is_its_own_alternative() -> None:
    req = parse_dependency("afterok:1?afternotok:2?afterany:3:4")
    assert req.any_of
    assert req.clauses == (
        RawClause("afterok", (1,)),
        RawClause("afternotok", (2,)),
        RawClause("afterany", (3,)),
        RawClause("afterany", (4,)),
    )
    req = parse_dependency("afterok:20:21?afterany:23")  # 20 ok OR 21 ok OR 23 ended
    assert req.clauses == (
        RawClause("afterok", (20,)),
        RawClause("afterok", (21,)),
        RawClause("afterany", (23,)),
    )
    req = parse_dependency("after:1+5:2?afterok:3")  # each alternative has its own delay
    assert req.clauses == (
        RawClause("after", (1,), 300),
        RawClause("after", (2,)),
        RawClause("afterok", (3,)),
    )


def test_plain_ids_keep_gflows_meaning_afterok() -> None:
    assert parse_dependency("5").clauses == (RawClause("afterok", (5,)),)
    both = parse_dependency("5,6")
    assert both.clauses == (RawClause("afterok", (5,)), RawClause("afterok", (6,)))
    assert not both.any_of
    either = parse_dependency("5?6")
    assert either.any_of and len(either.clauses) == 2


def test_singleton() -> None:
    req = parse_dependency("singleton")
    assert req.singleton and not req.clauses and not req.is_empty
    req = parse_dependency("afterok:1,singleton")
    assert req.singleton and req.clauses == (RawClause("afterok", (1,)),)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("afterok:1,afterok:2?afterok:3", "afterok:1,afterok:2?afterok:3"),
        ("afterok:1?singleton", "afterok:1?singleton"),
        ("afterok:1+5", "afterok:1+5"),
        ("after:1+x", "after:1+x"),
        ("after:1+", "after:1+"),
        ("aftercorr:1?afterok:3", "aftercorr:1?afterok:3"),
        ("afterfoo:1", "afterfoo"),
        ("expand:1", "expand"),
        ("afterok:", "afterok:"),
        ("afterok:1:", "afterok:1:"),
        ("afterok:abc", "abc"),
        ("afterok:1,", "afterok:1,"),
        ("?afterok:1", "?afterok:1"),
        ("x", "x"),
    ],
)
def test_malformed_slurm_specs_name_the_token(text: str, token: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_dependency(text)
    assert repr(token) in err.value.message


def test_moab_clauses_in_dependency_flag() -> None:
    req = parse_dependency("afterok:1,before:3,beforeok:train,on:2")
    assert req.clauses == (
        RawClause("afterok", (1,)),
        RawClause("before", (3,)),
        RawClause("beforeok", ("train",)),
    )
    assert req.on_count == 2 and not req.any_of
    for text in ("before:3?afterok:1", "afterok:1?on:1"):
        with pytest.raises(InvalidInput, match="joined with ',' not '\\?'"):
            parse_dependency(text)
    with pytest.raises(InvalidInput, match="'on:0'"):
        parse_dependency("on:0")


def test_mixing_comma_and_question_mark_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidInput, match=r"all by ',' \(all\) or all by '\?' \(any\)"):
        parse_dependency("afterok:1,afterok:2?afterok:3")


# ---------------------------------------------------------------- Moab / Torque


@pytest.mark.parametrize("prefix", ["depend=", "x=depend:", "DEPEND=", "X=Depend:"])
def test_moab_prefixes(prefix: str) -> None:
    req = parse_moab(prefix + "afterok:1:2")
    assert req.clauses == (RawClause("afterok", (1, 2)),)


@pytest.mark.parametrize(
    ("body", "clauses", "on"),
    [
        ("after:1", [("after", (1,))], 0),
        ("afterany:1:2", [("afterany", (1, 2))], 0),
        ("afternotok:prep", [("afternotok", ("prep",))], 0),
        ("afterok:prep:7", [("afterok", ("prep", 7))], 0),
        ("before:3", [("before", (3,))], 0),
        ("beforeok:3:4", [("beforeok", (3, 4))], 0),
        ("beforenotok:train", [("beforenotok", ("train",))], 0),
        ("beforeany:3", [("beforeany", (3,))], 0),
        ("on:2", [], 2),
        ("afterok:1,on:1", [("afterok", (1,))], 1),
        ("afterok:1,afterany:@", [("afterok", (1,)), ("afterany", (RecentRef(0),))], 0),
        ("on:1,on:2", [], 3),
    ],
)
def test_moab_types(body: str, clauses: list[Any], on: int) -> None:
    req = parse_moab("depend=" + body)
    assert req.clauses == tuple(RawClause(t, r) for t, r in clauses)
    assert req.on_count == on
    assert not req.any_of
    assert not req.is_empty


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("group_list=x", "group_list=x"),
        ("depend=", "depend="),
        ("depend=afterok", "afterok"),
        ("depend=afterok:", "afterok:"),
        ("depend=afterok:1::2", "1::2"),
        ("depend=afterok:1,", "afterok:1,"),
        ("depend=on:0", "on:0"),
        ("depend=on:x", "on:x"),
        ("depend=on:-1", "on:-1"),
        ("depend=synccount:2", "synccount"),
        ("depend=syncwith:2", "syncwith"),
        ("depend=aftercorr:1", "aftercorr"),
        ("depend=singleton:1", "singleton"),
        ("depend=after:1+5", "1+5"),
        ("depend=afterok:a b", "a b"),
    ],
)
def test_malformed_moab_specs_name_the_token(text: str, token: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_moab(text)
    assert repr(token) in err.value.message


# ---------------------------------------------------------------- the request on the wire


def test_request_survives_json() -> None:
    req = from_gflow(None, "1,@", None, auto_cancel=False)
    req = req.merge(parse_moab("depend=afterok:prep:12_3,before:4,on:2"))
    req = req.merge(parse_dependency("after:9+2,singleton"))
    back = DepRequest.from_json(json.loads(json.dumps(req.to_json())))
    assert back == req


@pytest.mark.parametrize(
    "data",
    [
        {
            "clauses": [["afterfoo", ["1"], 0]],
            "any_of": False,
            "on_count": 0,
            "singleton": False,
            "auto_cancel": True,
        },
        {
            "clauses": [["afterok", ["1"], 60]],
            "any_of": False,
            "on_count": 0,
            "singleton": False,
            "auto_cancel": True,
        },
        {
            "clauses": [["after", ["1"], -1]],
            "any_of": False,
            "on_count": 0,
            "singleton": False,
            "auto_cancel": True,
        },
        {
            "clauses": [["afterok", [], 0]],
            "any_of": False,
            "on_count": 0,
            "singleton": False,
            "auto_cancel": True,
        },
        {"clauses": [], "any_of": False, "on_count": -2, "singleton": False, "auto_cancel": True},
        {
            "clauses": [["afterok", ["1 2"], 0]],
            "any_of": False,
            "on_count": 0,
            "singleton": False,
            "auto_cancel": True,
        },
        {"clauses": "x"},
        {},
        [],
    ],
)
def test_malformed_request_objects_are_invalid_input(data: Any) -> None:
    with pytest.raises(InvalidInput):
        DepRequest.from_json(data)


def test_no_request_object_is_no_dependency() -> None:
    assert DepRequest.from_json(None).is_empty


# ---------------------------------------------------------------- the resolved model

clause_types = st.sampled_from(list(DepType))
ids = st.integers(1, 10**6)
clauses = st.builds(
    Clause,
    clause_types,
    st.lists(ids, min_size=1, max_size=4).map(tuple),
    st.sampled_from([0, 60]),
    st.none() | ids,
)
dependencies = st.builds(
    Dependency,
    st.lists(clauses, max_size=4).map(tuple),
    st.booleans(),
    st.integers(0, 3),
    st.lists(clauses, max_size=3).map(tuple),
    st.booleans(),
    st.booleans(),
)


@given(dependencies)
def test_dependency_survives_json(dep: Dependency) -> None:
    assert Dependency.from_json(json.loads(json.dumps(dep.to_json()))) == dep


@given(dependencies, ids, ids)
def test_replace_parent(dep: Dependency, old: int, new: int) -> None:
    moved = dep.replace_parent(old, new)
    expected = {new if p == old else p for p in dep.parents()}
    assert moved.parents() == expected
    kept = dep.replace_parent(old, new, keep_after=True)
    for before, after in zip(dep.clauses + dep.on_pool, kept.clauses + kept.on_pool, strict=True):
        if before.type is DepType.AFTER:
            assert after == before
        else:
            assert after.parents == tuple(new if p == old else p for p in before.parents)


def test_slurm_text() -> None:
    dep = Dependency(
        (Clause(DepType.AFTEROK, (1, 2)), Clause(DepType.AFTER, (3,), 120)),
        singleton=True,
    )
    assert dep.slurm_text() == "afterok:1:2,after:3+2,singleton"
    either = Dependency((Clause(DepType.AFTEROK, (1,)), Clause(DepType.AFTERNOTOK, (2,))), True)
    assert either.slurm_text() == "afterok:1?afternotok:2"
    pooled = Dependency(on_count=1, on_pool=(Clause(DepType.AFTER, (9,)),))
    assert pooled.slurm_text() == "on:1[after:9]"
    assert Dependency().slurm_text() == "" and Dependency().is_empty


# ---------------------------------------------------------------- the evaluator

T0 = 1000.0
NOW = 2000.0

VIEWS: dict[str, ParentView] = {
    "Queued": ParentView("Queued"),
    "Hold": ParentView("Hold"),
    "Running": ParentView("Running", start_time=T0),
    "Finished": ParentView("Finished", start_time=T0, end_time=T0 + 5),
    "Failed": ParentView("Failed", start_time=T0, end_time=T0 + 5),
    "Timeout": ParentView("Timeout", start_time=T0, end_time=T0 + 5),
    "Cancelled (ran)": ParentView("Cancelled", start_time=T0, end_time=T0 + 5),
    "Cancelled (never ran)": ParentView("Cancelled", end_time=T0 + 5),
    "Missing": ParentView("Missing"),
}
P, S, N = Verdict.PENDING, Verdict.SATISFIED, Verdict.NEVER
#                 Queued Hold Running Finished Failed Timeout CA(ran) CA(never) Missing
TRUTH: dict[DepType, tuple[Verdict, ...]] = {
    DepType.AFTER: (P, P, S, S, S, S, S, S, N),
    DepType.AFTEROK: (P, P, P, S, N, N, N, N, N),
    DepType.AFTERNOTOK: (P, P, P, N, S, S, S, S, N),
    DepType.AFTERANY: (P, P, P, S, S, S, S, S, N),
}
CASES = [(kind, state, TRUTH[kind][i]) for kind in DepType for i, state in enumerate(VIEWS)]


@pytest.mark.parametrize(("kind", "state", "verdict"), CASES)
def test_truth_table(kind: DepType, state: str, verdict: Verdict) -> None:
    views = {} if state == "Missing" else {7: VIEWS[state]}
    ev = evaluate(Dependency((Clause(kind, (7,)),)), views, NOW)
    assert ev.verdict is verdict
    assert ev.culprit == (7 if verdict is N else None)
    assert ev.pending == ((7,) if verdict is P else ())
    assert ev.wake_at is None


def _dep(*clauses: tuple[DepType, tuple[int, ...]], any_of: bool = False) -> Dependency:
    return Dependency(tuple(Clause(k, p) for k, p in clauses), any_of)


STATE_NAMES = st.sampled_from(list(VIEWS))


@given(st.lists(st.tuples(st.sampled_from(list(DepType)), STATE_NAMES), min_size=1, max_size=5))
def test_and_is_never_if_any_clause_is_never_else_satisfied_only_if_all_are(
    parts: list[tuple[DepType, str]],
) -> None:
    views = {i: VIEWS[s] for i, (_, s) in enumerate(parts, 1) if s != "Missing"}
    dep = _dep(*((k, (i,)) for i, (k, _) in enumerate(parts, 1)))
    singles = [TRUTH[k][list(VIEWS).index(s)] for k, s in parts]
    ev = evaluate(dep, views, NOW)
    if N in singles:
        assert ev.verdict is N
        nevers = [i for i, v in enumerate(singles, 1) if v is N]
        ended = {i: views[i].end_time if i in views else None for i in nevers}
        first = min(nevers, key=lambda i: -1.0 if ended[i] is None else ended[i])
        assert ev.culprit == first  # the end that decided it (a missing parent: at once)
    elif all(v is S for v in singles):
        assert ev.verdict is S
    else:
        assert ev.verdict is P
        assert ev.pending == tuple(i for i, v in enumerate(singles, 1) if v is P)


@given(st.lists(st.tuples(st.sampled_from(list(DepType)), STATE_NAMES), min_size=2, max_size=5))
def test_any_is_satisfied_if_one_clause_is_never_only_if_all_are(
    parts: list[tuple[DepType, str]],
) -> None:
    views = {i: VIEWS[s] for i, (_, s) in enumerate(parts, 1) if s != "Missing"}
    dep = _dep(*((k, (i,)) for i, (k, _) in enumerate(parts, 1)), any_of=True)
    singles = [TRUTH[k][list(VIEWS).index(s)] for k, s in parts]
    ev = evaluate(dep, views, NOW)
    if S in singles:
        assert ev.verdict is S
    elif all(v is N for v in singles):
        assert ev.verdict is N
        assert ev.culprit is not None
    else:
        assert ev.verdict is P
        assert set(ev.pending) == {i for i, v in enumerate(singles, 1) if v is P}


def test_or_dependent_survives_one_failed_parent() -> None:
    """The lesson from the reference: one failed alternative must not doom an OR-dependent."""
    dep = _dep((DepType.AFTEROK, (1,)), (DepType.AFTEROK, (2,)), any_of=True)
    failed, running = VIEWS["Failed"], VIEWS["Running"]
    assert evaluate(dep, {1: failed, 2: running}, NOW).verdict is P
    assert evaluate(dep, {1: failed, 2: VIEWS["Finished"]}, NOW).verdict is S
    assert evaluate(dep, {1: failed, 2: VIEWS["Timeout"]}, NOW).verdict is N


def test_a_clause_over_several_parents_needs_all_of_them() -> None:
    dep = _dep((DepType.AFTEROK, (1, 2, 3)))
    fin, run = VIEWS["Finished"], VIEWS["Running"]
    ev = evaluate(dep, {1: fin, 2: run, 3: VIEWS["Queued"]}, NOW)
    assert (ev.verdict, ev.pending) == (P, (2, 3))
    ev = evaluate(dep, {1: fin, 2: VIEWS["Failed"], 3: VIEWS["Queued"]}, NOW)
    assert (ev.verdict, ev.culprit) == (N, 2)
    assert evaluate(dep, {1: fin, 2: fin, 3: fin}, NOW).verdict is S


def test_no_clauses_is_satisfied() -> None:
    assert evaluate(Dependency(singleton=True), {}, NOW).verdict is S


# ---------------------------------------------------------------- delays


def test_after_with_delay_waits_from_the_parents_start() -> None:
    dep = Dependency((Clause(DepType.AFTER, (1,), 600),))
    running = {1: ParentView("Running", start_time=T0)}
    ev = evaluate(dep, running, T0 + 599)
    assert (ev.verdict, ev.pending, ev.wake_at) == (P, (1,), T0 + 600)
    assert evaluate(dep, running, T0 + 600).verdict is S
    ev = evaluate(dep, {1: ParentView("Queued")}, T0)
    assert (ev.verdict, ev.wake_at) == (P, None)


def test_after_with_delay_counts_from_the_end_of_a_parent_that_never_ran() -> None:
    dep = Dependency((Clause(DepType.AFTER, (1,), 120),))
    never_ran = {1: ParentView("Cancelled", end_time=T0)}
    assert evaluate(dep, never_ran, T0 + 60).wake_at == T0 + 120
    assert evaluate(dep, never_ran, T0 + 120).verdict is S


def test_earliest_wake_is_reported_across_clauses() -> None:
    dep = Dependency(
        (Clause(DepType.AFTER, (1,), 600), Clause(DepType.AFTER, (2,), 60)), any_of=True
    )
    views = {1: ParentView("Running", start_time=T0), 2: ParentView("Running", start_time=T0)}
    ev = evaluate(dep, views, T0 + 1)
    assert (ev.verdict, ev.wake_at) == (P, T0 + 60)
    assert evaluate(dep, views, T0 + 60).verdict is S
    both = Dependency(dep.clauses)
    ev = evaluate(both, views, T0 + 60)
    assert (ev.verdict, ev.wake_at, ev.pending) == (P, T0 + 600, (1,))


def test_a_missing_parent_of_after_is_never() -> None:
    """An ``after`` on a job that no longer exists must not wait forever."""
    dep = Dependency((Clause(DepType.AFTER, (1,), 60),))
    assert evaluate(dep, {}, NOW).verdict is N


# ---------------------------------------------------------------- on:N pools


def _pool(
    *states: str, on: int, main: tuple[Clause, ...] = ()
) -> tuple[Dependency, dict[int, Any]]:
    pool = tuple(Clause(DepType.AFTEROK, (100 + i,)) for i in range(len(states)))
    views = {100 + i: VIEWS[s] for i, s in enumerate(states) if s != "Missing"}
    return Dependency(main, on_count=on, on_pool=pool), views


@pytest.mark.parametrize(
    ("states", "on", "verdict"),
    [
        ((), 1, P),  # nothing attached yet: wait for before* jobs
        (("Queued",), 1, P),
        (("Finished",), 1, S),
        (("Finished",), 2, P),  # one of two releases so far
        (("Finished", "Running"), 2, P),
        (("Finished", "Finished"), 2, S),
        (("Finished", "Failed", "Finished"), 2, S),  # more attached than needed
        (("Failed",), 2, P),  # fewer attached than needed: more may come
        (("Failed",), 1, N),  # the only release can never come
        (("Finished", "Failed"), 2, N),
        (("Failed", "Queued"), 1, P),  # another release may still come
        (("Failed", "Failed"), 1, N),
    ],
)
def test_on_count_pool(states: tuple[str, ...], on: int, verdict: Verdict) -> None:
    dep, views = _pool(*states, on=on)
    ev = evaluate(dep, views, NOW)
    assert ev.verdict is verdict
    if verdict is N:
        assert ev.culprit is not None and ev.culprit >= 100
    if verdict is P:
        assert set(ev.pending) == {
            100 + i for i, s in enumerate(states) if s in ("Queued", "Running", "Hold")
        }


def test_on_count_and_main_clauses_must_both_hold() -> None:
    main = (Clause(DepType.AFTEROK, (1,)),)
    dep, views = _pool("Finished", on=1, main=main)
    assert evaluate(dep, {**views, 1: VIEWS["Running"]}, NOW).verdict is P
    assert evaluate(dep, {**views, 1: VIEWS["Finished"]}, NOW).verdict is S
    ev = evaluate(dep, {**views, 1: VIEWS["Failed"]}, NOW)
    assert (ev.verdict, ev.culprit) == (N, 1)
    dep, views = _pool("Queued", on=1, main=main)
    ev = evaluate(dep, {**views, 1: VIEWS["Finished"]}, NOW)
    assert (ev.verdict, ev.pending) == (P, (100,))


@pytest.mark.parametrize(
    ("kind", "state", "verdict"),
    [
        (DepType.AFTER, "Running", S),  # before: released when the before-job starts
        (DepType.AFTER, "Queued", P),
        (DepType.AFTEROK, "Finished", S),  # beforeok
        (DepType.AFTEROK, "Failed", N),
        (DepType.AFTERNOTOK, "Failed", S),  # beforenotok
        (DepType.AFTERNOTOK, "Finished", N),
        (DepType.AFTERANY, "Cancelled (never ran)", S),  # beforeany
    ],
)
def test_pool_clause_types(kind: DepType, state: str, verdict: Verdict) -> None:
    dep = Dependency(on_count=1, on_pool=(Clause(kind, (5,)),))
    assert evaluate(dep, {5: VIEWS[state]}, NOW).verdict is verdict


# ---------------------------------------------------------------- what gqueue shows


def test_remaining_text_lists_only_what_is_still_awaited() -> None:
    dep = Dependency(
        (Clause(DepType.AFTEROK, (1, 2)), Clause(DepType.AFTERANY, (3,))), singleton=True
    )
    views = {1: VIEWS["Finished"], 2: VIEWS["Running"], 3: VIEWS["Queued"]}
    assert remaining_text(dep, views, NOW) == "afterok:2,afterany:3,singleton"
    views = {1: VIEWS["Finished"], 2: VIEWS["Finished"], 3: VIEWS["Failed"]}
    assert remaining_text(dep, views, NOW) == "singleton"
    assert remaining_text(Dependency(dep.clauses), views, NOW) == "-"


def test_remaining_text_of_a_met_any_dependency_is_empty() -> None:
    dep = _dep((DepType.AFTEROK, (1,)), (DepType.AFTEROK, (2,)), any_of=True)
    assert remaining_text(dep, {1: VIEWS["Running"], 2: VIEWS["Queued"]}, NOW) == (
        "afterok:1?afterok:2"
    )
    assert remaining_text(dep, {1: VIEWS["Running"], 2: VIEWS["Finished"]}, NOW) == "-"


def test_remaining_text_of_pools_and_delays() -> None:
    dep, views = _pool("Finished", "Queued", on=2)
    assert remaining_text(dep, views, NOW) == "on:1"
    delayed = Dependency((Clause(DepType.AFTER, (1,), 300),))
    assert remaining_text(delayed, {1: VIEWS["Queued"]}, NOW) == "after:1+5"


def test_a_failed_alternative_is_no_longer_awaited() -> None:
    dep = _dep((DepType.AFTEROK, (1,)), (DepType.AFTEROK, (2,)), any_of=True)
    views = {1: VIEWS["Failed"], 2: VIEWS["Queued"]}
    assert remaining_text(dep, views, NOW) == "afterok:2"
    views = {1: VIEWS["Failed"], 2: VIEWS["Failed"]}  # every one failed: all are shown
    assert remaining_text(dep, views, NOW) == "afterok:1?afterok:2"


# ---------------------------------------------------------------- a whole array as a parent

ARRAY = (11, 12, 13)


def _array(kind: DepType, *states: str) -> tuple[Dependency, dict[int, ParentView]]:
    dep = Dependency((Clause(kind, ARRAY, group=11),))
    return dep, {i: VIEWS[s] for i, s in zip(ARRAY, states, strict=True)}


@pytest.mark.parametrize(
    ("kind", "states", "verdict"),
    [
        # afterok: every task succeeded; never once one did not
        (DepType.AFTEROK, ("Finished", "Finished", "Finished"), S),
        (DepType.AFTEROK, ("Finished", "Running", "Failed"), N),
        (DepType.AFTEROK, ("Finished", "Running", "Queued"), P),
        # afternotok: every task ended and at least one failed
        (DepType.AFTERNOTOK, ("Finished", "Failed", "Finished"), S),
        (DepType.AFTERNOTOK, ("Timeout", "Cancelled (never ran)", "Failed"), S),
        (DepType.AFTERNOTOK, ("Finished", "Failed", "Running"), P),  # not every task ended
        (DepType.AFTERNOTOK, ("Finished", "Finished", "Running"), P),
        (DepType.AFTERNOTOK, ("Finished", "Finished", "Finished"), N),
        (DepType.AFTERNOTOK, ("Failed", "Missing", "Finished"), N),  # a task is gone
        # afterany: every task ended
        (DepType.AFTERANY, ("Finished", "Failed", "Cancelled (never ran)"), S),
        (DepType.AFTERANY, ("Finished", "Failed", "Running"), P),
        # after: every task started (or ended without starting)
        (DepType.AFTER, ("Running", "Finished", "Cancelled (never ran)"), S),
        (DepType.AFTER, ("Running", "Queued", "Running"), P),
    ],
)
def test_a_whole_array_is_judged_as_slurm_judges_one(
    kind: DepType, states: tuple[str, ...], verdict: Verdict
) -> None:
    dep, views = _array(kind, *states)
    assert evaluate(dep, views, NOW).verdict is verdict


def test_a_task_whose_exit_is_unknown_holds_afternotok_on_its_array() -> None:
    dep, views = _array(DepType.AFTERNOTOK, "Finished", "Failed", "Finished")
    views[12] = ParentView("Failed", start_time=T0, end_time=T0 + 5, exit_unknown=True)
    ev = evaluate(dep, views, NOW)
    assert (ev.verdict, ev.pending) == (P, (12,))


def test_afternotok_on_an_array_that_all_succeeded_names_the_last_task_to_end() -> None:
    dep, views = _array(DepType.AFTERNOTOK, "Finished", "Finished", "Finished")
    views[12] = ParentView("Finished", start_time=T0, end_time=T0 + 50)
    ev = evaluate(dep, views, NOW)
    assert (ev.verdict, ev.culprit) == (N, 12)


def test_an_array_alternative_in_an_any_of_list_is_judged_whole() -> None:
    either = Dependency(
        (Clause(DepType.AFTERNOTOK, ARRAY, group=11), Clause(DepType.AFTEROK, (5,))), True
    )
    views = {11: VIEWS["Finished"], 12: VIEWS["Failed"], 13: VIEWS["Running"], 5: VIEWS["Failed"]}
    assert evaluate(either, views, NOW).verdict is P
    views[13] = VIEWS["Finished"]
    assert evaluate(either, views, NOW).verdict is S


def test_a_whole_array_is_shown_by_its_id_and_survives_json() -> None:
    dep = Dependency((Clause(DepType.AFTEROK, (1,)), Clause(DepType.AFTERNOTOK, ARRAY, group=11)))
    assert dep.slurm_text() == "afterok:1,afternotok:11"
    assert Dependency.from_json(json.loads(json.dumps(dep.to_json()))) == dep
    views = {1: VIEWS["Finished"], 11: VIEWS["Finished"], 12: VIEWS["Running"]}
    assert remaining_text(dep, views, NOW) == "afternotok:11"
    old = {"clauses": [["afterok", [1, 2], 0]], "any_of": False}  # stored before groups
    assert Dependency.from_json(old).clauses == (Clause(DepType.AFTEROK, (1, 2)),)


def test_when_every_alternative_fails_the_last_to_end_is_named() -> None:
    dep = _dep((DepType.AFTEROK, (1,)), (DepType.AFTEROK, (2,)), any_of=True)
    late = ParentView("Failed", start_time=T0, end_time=T0 + 60)
    early = ParentView("Failed", start_time=T0, end_time=T0 + 5)
    assert evaluate(dep, {1: late, 2: early}, NOW).culprit == 1
    assert evaluate(dep, {1: early, 2: late}, NOW).culprit == 2
    both = _dep((DepType.AFTEROK, (1, 2)))  # all of them: the first failure decided
    assert evaluate(both, {1: late, 2: early}, NOW).culprit == 2
