"""The job model: one state machine, one writer of state, times and exit code."""

from __future__ import annotations

import pytest

from gflow.errors import Conflict
from gflow.model import (
    ALLOWED,
    BROKEN_END,
    Reason,
    State,
    StopIntent,
    Wake,
    can_transition,
    transition,
)
from tests.unit.conftest import make_job

JOB = make_job(1)


@pytest.mark.parametrize("field", ["state", "start_time", "end_time", "exit_code"])
def test_only_transition_sets_state_times_and_exit_code(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        JOB.replace(**{field: None})
    with pytest.raises(TypeError, match=field):
        JOB.again(2, 1.0, **{field: None})
    if field != "exit_code":  # a parameter of transition, stamped on a final state only
        with pytest.raises(TypeError, match=field):
            transition(JOB, State.RUNNING, 5.0, **{field: None})
    assert JOB.replace(reason=Reason.GPU, priority=3).state is State.QUEUED


def test_transition_stamps_the_moment_or_when_it_happened() -> None:
    running = transition(JOB, State.RUNNING, 5.0, pid=42)
    assert (running.state, running.start_time, running.pid) == (State.RUNNING, 5.0, 42)
    assert transition(JOB, State.RUNNING, 5.0, at=4.0).start_time == 4.0
    ended = transition(running, State.FAILED, 9.0, exit_code=3, at=8.5, reason=None)
    assert (ended.end_time, ended.exit_code, ended.start_time) == (8.5, 3, 5.0)
    released = transition(transition(JOB, State.HOLD, 1.0), State.QUEUED, 2.0, begin_at=7.0)
    assert (released.begin_at, released.start_time) == (7.0, None)


def test_an_end_read_from_a_file_time_never_comes_before_the_start() -> None:
    """File times tick coarser than the clock: a fast job's result file may be stamped
    a moment before the start the daemon took from the clock."""
    running = transition(JOB, State.RUNNING, 5.0)
    assert transition(running, State.FINISHED, 9.0, exit_code=0, at=4.999).end_time == 5.0


@pytest.mark.parametrize("old", list(State))
@pytest.mark.parametrize("new", list(State))
def test_the_table_alone_decides_which_change_is_allowed(old: State, new: State) -> None:
    job = make_job(1, state=old)
    if new in ALLOWED[old]:
        assert transition(job, new, 1.0).state is new
    else:
        with pytest.raises(Conflict, match=f"cannot become {new.value}"):
            transition(job, new, 1.0)


def test_a_job_with_broken_data_ends_by_an_allowed_change() -> None:
    assert all(can_transition(old, new) for old, new in BROKEN_END.items())


def test_stored_names_do_not_change() -> None:
    """Reasons, stop intents and states are stored: their texts are part of the database."""
    assert [s.value for s in StopIntent] == ["cancel", "timeout"]
    assert (Reason.TIME_LIMIT, Reason.NO_EXIT_CODE) == ("TimeLimit", "NoExitCode")
    assert (Reason.EXIT_UNKNOWN, Reason.parent_exit_unknown(3)) == (
        "ExitCodeUnknown",
        "DependencyExitUnknown:3",
    )
    assert (Reason.retry_of(4), Reason.redo_of(5)) == ("RetryOf:4", "RedoOf:5")
    assert {w.value for w in Wake} == {"begin", "dep", "limit", "warn", "kill", "replan", "close"}
    assert Reason.stop_signal(StopIntent.TIMEOUT, "SIGINT") == "TimeLimit:SIGINT"
    assert Reason.warning_signal("B:USR1@60") == "Signal:B:USR1@60"
