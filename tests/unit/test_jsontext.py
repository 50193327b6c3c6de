"""The clients' JSON (without importing json) reads and writes exactly as json does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gflow import jsontext

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=30,
)


@given(VALUES)
def test_same_text_as_json(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value)
    assert jsontext.loads(json.dumps(value)) == value
    assert jsontext.loads(json.dumps(value, indent=2).encode()) == value


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]", "nul", '"\\ud800', "1 2"])
def test_bad_text_raises_what_json_raises(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        jsontext.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_constants_and_unknown_types() -> None:
    assert jsontext.loads(" [Infinity, -Infinity] \n") == [float("inf"), float("-inf")]
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"a": object()})
    assert jsontext.dumps({"a": [1, 2.5, None, "é"]}) == json.dumps({"a": [1, 2.5, None, "é"]})
