"""Reading the first or last lines of a log in chunks gives what a whole read would."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gflow.cli import logtail


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logtail, "CHUNK", 3)  # lines cross chunk boundaries


@given(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"")), st.integers(0, 8))
def test_first_and_last_lines_match_a_whole_read(data: bytes, count: int) -> None:
    lines = data.split(b"\n")
    whole = [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    assert logtail.first_lines(io.BytesIO(data), count) == b"".join(whole[:count])
    last = logtail.last_lines(io.BytesIO(data), count, len(data))
    assert last == (b"".join(whole[-count:]) if count else b"")
