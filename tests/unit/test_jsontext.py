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


ROWS = st.lists(
    st.tuples(
        st.integers(0, 10**6),
        st.text(),
        st.lists(st.integers()),
        st.lists(st.text(alphabet='[], 0123456789"x')),
        st.none() | st.floats(allow_nan=False),
    ).map(list),
    max_size=30,
)


@given(ROWS, st.integers(1, 50), st.sampled_from([(", ", ": "), (",", ":")]))
def test_a_listing_read_while_it_arrives_is_the_whole_listing(
    rows: list[Any], size: int, separators: tuple[str, str]
) -> None:
    """Rows in any pieces, as the daemon writes them (pages joined by a bare comma)."""
    pages = [
        json.dumps(rows[i : i + 3], separators=separators)[1:-1] for i in range(0, len(rows), 3)
    ]
    text = '{"now": 1.5, "fields": ["a", "jobs"], "jobs": [' + ",".join(pages) + "]}"
    data = text.encode()
    chunks = iter([data[i : i + size] for i in range(0, len(data), size)])
    head, batches = jsontext.head_and_batches(chunks, "jobs")
    assert head == {"now": 1.5, "fields": ["a", "jobs"], "jobs": []}
    assert [list(item) for batch in batches for item in batch] == json.loads(text)["jobs"]


def test_a_listing_cut_short_is_an_error() -> None:
    _head, batches = jsontext.head_and_batches(iter([b'{"now": 1, "jobs": [[1, 2], [3']), "jobs")
    with pytest.raises(ValueError):
        list(batches)
