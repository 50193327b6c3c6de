"""The states of a job, and their short codes: the one vocabulary every module speaks.

Pure and tiny, so that the dependency evaluator (:mod:`gflow.deps`), statistics and the
model all import the states instead of spelling them as strings. Which state may follow
which is :mod:`gflow.model`'s business.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    QUEUED = "Queued"
    HOLD = "Hold"
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"

    @property
    def code(self) -> str:
        return CODES[self]

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self not in FINAL_STATES

    @property
    def is_waiting(self) -> bool:
        """Queued or held: not started yet, still changeable by the user."""
        return self in (State.QUEUED, State.HOLD)

    @classmethod
    def parse(cls, text: str) -> State:
        """Accept a state name or its short code, in any case."""
        key = text.strip().lower()
        for state in cls:
            if key in (state.value.lower(), state.code.lower()):
                return state
        aliases = {"pending": cls.QUEUED, "held": cls.HOLD, "completed": cls.FINISHED}
        if key in aliases:
            return aliases[key]
        from gflow.errors import InvalidInput

        names = ", ".join(f"{s.value} ({s.code})" for s in cls)
        raise InvalidInput("state", text, f"one of {names}")


CODES: dict[State, str] = {
    State.QUEUED: "PD",
    State.HOLD: "H",
    State.RUNNING: "R",
    State.FINISHED: "CD",
    State.FAILED: "F",
    State.CANCELLED: "CA",
    State.TIMEOUT: "TO",
}

FINAL_STATES = frozenset({State.FINISHED, State.FAILED, State.CANCELLED, State.TIMEOUT})
ACTIVE_STATES = frozenset({State.QUEUED, State.HOLD, State.RUNNING})
