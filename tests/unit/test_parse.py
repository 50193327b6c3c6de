"""Tests for gflow.parse: every accepted form, every error, and properties over any text."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gflow.errors import InvalidInput
from gflow.paramfile import read_param_file
from gflow.parse import (
    MAX_EXPANSION,
    ArraySpec,
    RecentRef,
    TaskRef,
    expand_params,
    format_duration,
    format_memory_mb,
    parse_array_spec,
    parse_begin,
    parse_id_list,
    parse_index_set,
    parse_memory_mb,
    parse_nonneg_int,
    parse_param,
    parse_priority,
    parse_ref,
    parse_since,
    parse_time_limit,
    render_template,
)

UTC = datetime.UTC
NOW = datetime.datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)
NAIVE_NOW = datetime.datetime(2024, 3, 10, 12, 0, 0)
HOUR = 3600
DAY = 86400


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> float:
    return datetime.datetime(year, month, day, hour, minute, sec, tzinfo=UTC).timestamp()


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> float:
    return datetime.datetime(year, month, day, hour, minute, sec).timestamp()


# --- time limits and durations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90 * 60),
        ("1", 60),
        ("1:30", 90),
        ("90:00", 90 * 60),
        ("01:02:03", HOUR + 2 * 60 + 3),
        ("100:00:00", 100 * HOUR),
        ("2-0", 2 * DAY),
        ("1-12", DAY + 12 * HOUR),
        ("1-02:30", DAY + 2 * HOUR + 30 * 60),
        ("1-02:03:04", DAY + 2 * HOUR + 3 * 60 + 4),
        ("0-00:00:01", 1),
        ("  00:00:05\n", 5),
    ],
)
def test_parse_time_limit(text: str, seconds: int) -> None:
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize("text", ["UNLIMITED", "unlimited", "INFINITE", " Infinite "])
def test_parse_time_limit_unlimited(text: str) -> None:
    assert parse_time_limit(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "0",
        "00:00",
        "0:0:0",
        "0-0",
        "-5",
        "-1:00",
        "1:60",
        "1:00:60",
        "1:60:00",
        "1-24",
        "1-1:60",
        "1:2:3:4",
        "1-2:3:4:5",
        "1-",
        "-",
        "1--2",
        "1:",
        ":30",
        "1.5",
        "1h",
        "abc",
        "١٢",
        "9" * 30,
        "36601-0",
        "never",
    ],
)
def test_parse_time_limit_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_time_limit(text)
    assert info.value.field == "time limit"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "UNLIMITED"),
        (0, "00:00:00"),
        (59.999, "00:00:59"),
        (3661, "01:01:01"),
        (DAY - 1, "23:59:59"),
        (DAY, "1-00:00:00"),
        (2 * DAY + 3 * HOUR + 4 * 60 + 5.9, "2-03:04:05"),
        (-5, "00:00:00"),
        (-0.5, "00:00:00"),
        (math.nan, "00:00:00"),
        (math.inf, "UNLIMITED"),
        (-math.inf, "00:00:00"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=100 * 366 * DAY))
@example(1)
@example(DAY)
@example(DAY - 1)
def test_duration_round_trip(seconds: int) -> None:
    assert parse_time_limit(format_duration(seconds)) == seconds


# --- memory, gpus, small integers ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("512", 512),
        ("1024M", 1024),
        ("1024MB", 1024),
        ("1024mb", 1024),
        ("512MiB", 512),
        ("512mib", 512),
        ("2G", 2048),
        ("2g", 2048),
        ("2GB", 2048),
        ("2GiB", 2048),
        ("1.5G", 1536),
        ("0.5g", 512),
        (".5G", 512),
        ("1T", 1024 * 1024),
        ("1TiB", 1024 * 1024),
        ("4096K", 4),
        ("4096KiB", 4),
        ("4097K", 5),
        ("1K", 1),
        ("0.1", 1),
        ("1.0001M", 2),
        (" 2 G ", 2048),
        ("1024T", 1024**3),
    ],
)
def test_parse_memory_mb(text: str, mb: int) -> None:
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0G",
        "0.0M",
        "-1G",
        "G",
        "1.",
        "1.G",
        "1X",
        "1GG",
        "1B",
        "1e3",
        "1,5G",
        "1 024",
        "2P",
    ],
)
def test_parse_memory_mb_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_memory_mb(text, field="gpu memory")
    assert info.value.field == "gpu memory"


def test_parse_memory_mb_too_large() -> None:
    with pytest.raises(InvalidInput, match="at most"):
        parse_memory_mb("1025T")
    with pytest.raises(InvalidInput):
        parse_memory_mb("9" * 40 + "G")
    with pytest.raises(InvalidInput):
        parse_memory_mb("0." + "0" * 40 + "1")


@pytest.mark.parametrize(
    ("mb", "text"),
    [(None, "-"), (2048, "2G"), (1024, "1G"), (1536, "1536M"), (1, "1M"), (0, "0M")],
)
def test_format_memory_mb(mb: int | None, text: str) -> None:
    assert format_memory_mb(mb) == text


@given(st.integers(min_value=1, max_value=1024**3))
@example(1024)
@example(1023)
def test_memory_round_trip(mb: int) -> None:
    assert parse_memory_mb(format_memory_mb(mb)) == mb


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("255", 255), (" 10 ", 10), ("007", 7)])
def test_parse_priority(text: str, value: int) -> None:
    assert parse_priority(text) == value


@pytest.mark.parametrize("text", ["", "256", "-1", "+5", "1.0", "ten", "1 0"])
def test_parse_priority_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_priority(text)
    assert info.value.field == "priority"


def test_parse_nonneg_int() -> None:
    assert parse_nonneg_int("0", "retries") == 0
    assert parse_nonneg_int(" 12 ", "retries") == 12
    for bad in ["", "-1", "1.5", "x", "9" * 19, "٣"]:
        with pytest.raises(InvalidInput) as info:
            parse_nonneg_int(bad, "retries")
        assert info.value.field == "retries"


# --- begin and since -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", utc(2024, 3, 10, 12)),
        ("NOW", utc(2024, 3, 10, 12)),
        ("now+30", utc(2024, 3, 10, 12, 0, 30)),
        ("now+30s", utc(2024, 3, 10, 12, 0, 30)),
        ("now+5m", utc(2024, 3, 10, 12, 5)),
        ("now+5min", utc(2024, 3, 10, 12, 5)),
        ("now + 2 hours", utc(2024, 3, 10, 14)),
        ("now+1h", utc(2024, 3, 10, 13)),
        ("now+1d", utc(2024, 3, 11, 12)),
        ("now+1w", utc(2024, 3, 17, 12)),
        ("13:30", utc(2024, 3, 10, 13, 30)),
        ("12:00", utc(2024, 3, 10, 12)),
        ("11:59", utc(2024, 3, 11, 11, 59)),
        ("9:05:07", utc(2024, 3, 11, 9, 5, 7)),
        ("2024-03-20", utc(2024, 3, 20)),
        ("2024-3-5", utc(2024, 3, 5)),
        ("2024-03-20T08:15", utc(2024, 3, 20, 8, 15)),
        ("2024-03-20 08:15:30", utc(2024, 3, 20, 8, 15, 30)),
        ("2020-01-01", utc(2020, 1, 1)),
        ("today", utc(2024, 3, 10)),
        ("tomorrow", utc(2024, 3, 11)),
        (" Tomorrow ", utc(2024, 3, 11)),
    ],
)
def test_parse_begin_aware(text: str, expected: float) -> None:
    assert parse_begin(text, NOW) == expected


def test_parse_begin_uses_now_zone() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=2))
    now = datetime.datetime(2024, 3, 10, 23, 0, tzinfo=tz)
    assert parse_begin("tomorrow", now) == datetime.datetime(2024, 3, 11, tzinfo=tz).timestamp()
    assert parse_begin("22:00", now) == datetime.datetime(2024, 3, 11, 22, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", local(2024, 3, 10, 12)),
        ("13:00", local(2024, 3, 10, 13)),
        ("11:00", local(2024, 3, 11, 11)),
        ("2024-03-20", local(2024, 3, 20)),
        ("2024-03-20T08:15:00", local(2024, 3, 20, 8, 15)),
        ("today", local(2024, 3, 10)),
        ("tomorrow", local(2024, 3, 11)),
    ],
)
def test_parse_begin_naive_is_local(text: str, expected: float) -> None:
    assert parse_begin(text, NAIVE_NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "later",
        "now+",
        "now-5",
        "now+5x",
        "now+1.5h",
        "now+" + "9" * 30,
        "now+1000000w",
        "24:00",
        "12:60",
        "12:00:60",
        "123:00",
        "2024-13-01",
        "2024-02-30",
        "0000-01-01",
        "2024-03-20T25:00",
        "2024-03-20X08:00",
        "2024/03/20",
        "yesterday",
        "1h",
    ],
)
def test_parse_begin_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_begin(text, NOW)
    assert info.value.field == "begin time"


def test_parse_begin_out_of_range_dates() -> None:
    with pytest.raises(InvalidInput):
        parse_begin("tomorrow", datetime.datetime(9999, 12, 31, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", utc(2024, 3, 10, 11, 59, 15)),
        ("30m", utc(2024, 3, 10, 11, 30)),
        ("30 min", utc(2024, 3, 10, 11, 30)),
        ("1h", utc(2024, 3, 10, 11)),
        ("3 hours", utc(2024, 3, 10, 9)),
        ("2d", utc(2024, 3, 8, 12)),
        ("1w", utc(2024, 3, 3, 12)),
        ("today", utc(2024, 3, 10)),
        ("yesterday", utc(2024, 3, 9)),
        ("2024-01-01", utc(2024, 1, 1)),
        ("2024-01-01T06:30", utc(2024, 1, 1, 6, 30)),
        ("2024-01-01 06:30:15", utc(2024, 1, 1, 6, 30, 15)),
    ],
)
def test_parse_since(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == expected


def test_parse_since_naive_is_local() -> None:
    assert parse_since("today", NAIVE_NOW) == local(2024, 3, 10)
    assert parse_since("1h", NAIVE_NOW) == local(2024, 3, 10, 11)


@pytest.mark.parametrize("text", ["", "1", "1y", "h", "-1h", "now", "tomorrow", "2024-02-30"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_since(text, NOW)
    assert info.value.field == "since"


# --- job references --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "ref"),
    [
        ("42", 42),
        ("1", 1),
        (" 7 ", 7),
        ("@", RecentRef(0)),
        ("@~0", RecentRef(0)),
        ("@~2", RecentRef(2)),
        ("100_3", TaskRef(100, 3)),
        ("100_0", TaskRef(100, 0)),
    ],
)
def test_parse_ref(token: str, ref: int | RecentRef | TaskRef) -> None:
    assert parse_ref(token) == ref


@pytest.mark.parametrize(
    "token",
    [
        "",
        "0",
        "-1",
        "abc",
        "@~",
        "@1",
        "@~-1",
        "@@",
        "~2",
        "0_3",
        "100_",
        "_3",
        "1_2_3",
        "4.0",
        "1-3",
    ],
)
def test_parse_ref_rejects(token: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_ref(token, field="dependency")
    assert info.value.field == "dependency"


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("42", [42]),
        ("1,2,3", [1, 2, 3]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1,3,5-7", [1, 3, 5, 6, 7]),
        ("3, 1 ,2", [3, 1, 2]),
        ("5-5", [5]),
        ("2,1-3,2", [2, 1, 3]),
        ("@", [RecentRef(0)]),
        ("@~1,7", [RecentRef(1), 7]),
        ("100_3,100_3,@", [TaskRef(100, 3), RecentRef(0)]),
    ],
)
def test_parse_id_list(text: str, refs: list[int | RecentRef | TaskRef]) -> None:
    assert parse_id_list(text) == refs


@pytest.mark.parametrize(
    "text", ["", "  ", ",", "1,", ",1", "1,,2", "5-1", "0-3", "1-", "-3", "a-b", "1-2-3", "x", "0"]
)
def test_parse_id_list_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_id_list(text)
    assert info.value.field == "job ids"


def test_parse_id_list_expansion_limit() -> None:
    assert len(parse_id_list(f"1-{MAX_EXPANSION}")) == MAX_EXPANSION
    with pytest.raises(InvalidInput, match="at most"):
        parse_id_list(f"1-{MAX_EXPANSION + 1}")
    with pytest.raises(InvalidInput, match="at most"):
        parse_id_list(f"1-{MAX_EXPANSION},1")
    with pytest.raises(InvalidInput, match="at most"):
        parse_id_list("1-999999999999999999")


def test_long_input_is_shortened_in_message() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_id_list(",".join(["1"] * (MAX_EXPANSION + 1)))
    assert len(info.value.message) < 300


# --- arrays ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("1-10", ArraySpec(tuple(range(1, 11)), None)),
        ("1,3,5", ArraySpec((1, 3, 5), None)),
        ("0-20:2", ArraySpec(tuple(range(0, 21, 2)), None)),
        ("0-9:4", ArraySpec((0, 4, 8), None)),
        ("1-100%4", ArraySpec(tuple(range(1, 101)), 4)),
        ("1-3,7,10-20:5%2", ArraySpec((1, 2, 3, 7, 10, 15, 20), 2)),
        ("5,1,3-4,1", ArraySpec((1, 3, 4, 5), None)),
        ("0", ArraySpec((0,), None)),
        (" 1 - 3 , 5 % 1 ", ArraySpec((1, 2, 3, 5), 1)),
    ],
)
def test_parse_array_spec(text: str, spec: ArraySpec) -> None:
    assert parse_array_spec(text) == spec


@pytest.mark.parametrize(
    "text",
    [
        "",
        "%2",
        "1-10%0",
        "1-10%",
        "1-10%-1",
        "1-10%2%3",
        "10-1",
        "-1",
        "1-",
        "1,,2",
        "1-10:0",
        "1:2",
        "1-10:2:3",
        "a-b",
        "1.5",
        f"0-{MAX_EXPANSION}",
        f"0-{MAX_EXPANSION - 1},{MAX_EXPANSION}",
    ],
)
def test_parse_array_spec_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_array_spec(text)
    assert info.value.field == "array"


def test_parse_array_spec_limit_is_inclusive() -> None:
    spec = parse_array_spec(f"0-{MAX_EXPANSION - 1}")
    assert len(spec.task_ids) == MAX_EXPANSION
    assert len(parse_array_spec("0-1000000000000:100000000000").task_ids) == 11


ARRAY_ITEM = st.one_of(
    st.integers(0, 10**6).map(str),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**4), st.integers(1, 10**4)).map(
        lambda t: f"{t[0]}-{t[0] + t[1]}:{t[2]}"
    ),
    st.tuples(st.integers(0, 10**6), st.integers(0, 5000)).map(lambda t: f"{t[0]}-{t[0] + t[1]}"),
)


@given(
    st.lists(ARRAY_ITEM, min_size=1, max_size=8),
    st.none() | st.integers(1, 1000),
)
def test_array_spec_properties(items: list[str], limit: int | None) -> None:
    text = ",".join(items) + ("" if limit is None else f"%{limit}")
    spec = parse_array_spec(text)
    ids = list(spec.task_ids)
    assert ids == sorted(set(ids))
    assert 1 <= len(ids) <= MAX_EXPANSION
    assert all(i >= 0 for i in ids)
    assert spec.max_running == limit


# --- params and sweeps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("k=v1,v2,v3", ("k", ["v1", "v2", "v3"])),
        ("lr=0.01", ("lr", ["0.01"])),
        ("n=1:5", ("n", ["1", "2", "3", "4", "5"])),
        ("n=0:10:5", ("n", ["0", "5", "10"])),
        ("n=0:9:5", ("n", ["0", "5"])),
        ("n=3:3", ("n", ["3"])),
        ("n=-2:2:2", ("n", ["-2", "0", "2"])),
        ("lr=0.1:0.5:0.1", ("lr", ["0.1", "0.2", "0.3", "0.4", "0.5"])),
        ("x=0:1:0.25", ("x", ["0.0", "0.25", "0.5", "0.75", "1.0"])),
        ("x=1.5:3", ("x", ["1.5", "2.5"])),
        ("x=-0.5:0.5:0.5", ("x", ["-0.5", "0.0", "0.5"])),
        ("x=0.10:0.30:0.10", ("x", ["0.1", "0.2", "0.3"])),
        ("mix=a,1:3", ("mix", ["a", "1", "2", "3"])),
        (" _k9 = a , b ", ("_k9", ["a", "b"])),
        ("url=http://x:80", ("url", ["http://x:80"])),
        ("eq=a=b", ("eq", ["a=b"])),
        ("t=a:b", ("t", ["a:b"])),
    ],
)
def test_parse_param(text: str, parsed: tuple[str, list[str]]) -> None:
    assert parse_param(text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "k",
        "=v",
        "1k=v",
        "k-1=v",
        "ké=v",
        "k=",
        "k=a,,b",
        "k=a,",
        "k=5:1",
        "k=1:5:0",
        "k=1:5:-1",
        "k=0:1:0.0",
        f"k=1:{MAX_EXPANSION + 1}",
        f"k=a,1:{MAX_EXPANSION}",
        "k=0:1:0." + "0" * 20 + "1",
        "k=1" + "0" * 20 + ":2" + "0" * 20,
    ],
)
def test_parse_param_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_param(text)
    assert info.value.field == "param"


def test_parse_param_limit_is_inclusive() -> None:
    key, values = parse_param(f"k=1:{MAX_EXPANSION}")
    assert key == "k"
    assert len(values) == MAX_EXPANSION
    assert values[-1] == str(MAX_EXPANSION)
    with pytest.raises(InvalidInput):
        parse_param("k=" + ",".join(["a"] * (MAX_EXPANSION + 1)))


@given(
    st.integers(-1000, 1000),
    st.integers(1, 1000),
    st.integers(0, 50),
    st.integers(1, 4),
)
def test_float_ranges_have_no_noise(start: int, step: int, count: int, decimals: int) -> None:
    scale = 10**decimals
    text = f"{start / scale:.{decimals}f}:{(start + step * count) / scale:.{decimals}f}"
    text += f":{step / scale:.{decimals}f}"
    _, values = parse_param(f"x={text}")
    assert len(values) == count + 1
    for i, value in enumerate(values):
        assert len(value.partition(".")[2]) <= decimals
        assert round(float(value) * scale) == start + i * step


def test_read_param_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text('lr, batch\n0.1,32\n\n0.01, "64"\n  \n', encoding="utf-8")
    assert read_param_file(str(path)) == [
        {"lr": "0.1", "batch": "32"},
        {"lr": "0.01", "batch": "64"},
    ]


def test_read_param_file_bom_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text('\ufeffname,cmd\n"a,b","x y"\n', encoding="utf-8")
    assert read_param_file(str(path)) == [{"name": "a,b", "cmd": "x y"}]


def test_read_param_file_names_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text("a,b\n1,2\n\n3,4,5\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 4"):
        read_param_file(str(path))


@pytest.mark.parametrize(
    "content",
    ["", "\n\n", "a,b\n", "1a,b\n1,2\n", "a,a\n1,2\n", "a,,b\n1,2,3\n", "a b\n1\n"],
)
def test_read_param_file_rejects(tmp_path: Path, content: str) -> None:
    path = tmp_path / "sweep.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput):
        read_param_file(str(path))


def test_read_param_file_unreadable(tmp_path: Path) -> None:
    bad_utf8 = tmp_path / "latin1.csv"
    bad_utf8.write_bytes(b"k\n\xe9\n")
    for path in [str(tmp_path / "missing.csv"), str(tmp_path), str(bad_utf8), "a\0b"]:
        with pytest.raises(InvalidInput) as info:
            read_param_file(path)
        assert info.value.field == "param file"


def test_expand_params() -> None:
    assert expand_params([("a", ["1", "2"]), ("b", ["x", "y", "z"])]) == [
        {"a": "1", "b": "x"},
        {"a": "1", "b": "y"},
        {"a": "1", "b": "z"},
        {"a": "2", "b": "x"},
        {"a": "2", "b": "y"},
        {"a": "2", "b": "z"},
    ]
    assert expand_params([]) == [{}]
    assert expand_params([("a", ["1"]), ("b", [])]) == []


def test_expand_params_rejects() -> None:
    with pytest.raises(InvalidInput):
        expand_params([("a", ["1"]), ("a", ["2"])])
    with pytest.raises(InvalidInput):
        expand_params([("not a key", ["1"])])
    huge = [(f"k{i}", [str(v) for v in range(10)]) for i in range(12)]
    with pytest.raises(InvalidInput, match="combinations"):
        expand_params(huge)
    assert len(expand_params([("a", ["x"] * 1000), ("b", ["y"] * 100)])) == MAX_EXPANSION


KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)


@given(st.dictionaries(KEYS, st.lists(st.text(max_size=3), max_size=6), max_size=4))
def test_expand_params_size_is_product(params: dict[str, list[str]]) -> None:
    combos = expand_params(list(params.items()))
    assert len(combos) == math.prod(len(v) for v in params.values())
    assert all(list(combo) == list(params) for combo in combos)
    if combos:
        assert combos[0] == {k: v[0] for k, v in params.items()}


# --- templates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("python train.py --lr {lr}", "python train.py --lr 0.1"),
        ("{lr}{lr}-{bs}", "0.10.1-32"),
        ("echo ${HOME} $HOME", "echo ${HOME} $HOME"),
        ("echo ${lr}", "echo $0.1"),
        ("{{lr}}", "{lr}"),
        ("{{{lr}}}", "{0.1}"),
        ("a{b c}", "a{b c}"),
        ("{", "{"),
        ("}", "}"),
        ("{}", "{}"),
        ("{ lr }", "{ lr }"),
        ("{1}", "{1}"),
        ("awk '{print $1}'", "awk '{print $1}'"),
        ("for i in {1..3}; do :; done", "for i in {1..3}; do :; done"),
        ("no braces at all", "no braces at all"),
    ],
)
def test_render_template(template: str, rendered: str) -> None:
    assert render_template(template, {"lr": "0.1", "bs": "32"}) == rendered


def test_render_template_unknown_placeholder() -> None:
    with pytest.raises(InvalidInput) as info:
        render_template("run --x {epochs}", {"lr": "0.1"}, field="script")
    assert info.value.field == "script"
    assert "{epochs}" in info.value.message
    assert "lr" in info.value.message


def test_render_template_value_is_not_rescanned() -> None:
    assert render_template("{a}", {"a": "{b}"}) == "{b}"


# --- index sets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "indices"),
    [
        ("all", None),
        (" ALL ", None),
        ("0", [0]),
        ("0,2", [0, 2]),
        ("2,0,2", [0, 2]),
        ("0-3", [0, 1, 2, 3]),
        ("1,3-4", [1, 3, 4]),
        (" 1 , 3 - 4 ", [1, 3, 4]),
        ("1023", [1023]),
    ],
)
def test_parse_index_set(text: str, indices: list[int] | None) -> None:
    assert parse_index_set(text) == indices


def test_parse_index_set_expansion_limit() -> None:
    assert parse_index_set(",".join(["0-999"] * 100)) == list(range(1000))
    with pytest.raises(InvalidInput, match="at most"):
        parse_index_set(",".join(["0-1023"] * 100))


@pytest.mark.parametrize(
    "text", ["", "none", "1024", "-1", "3-1", "1,", "1,,2", "0-1024", "a", "1-2-3", "1.0"]
)
def test_parse_index_set_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_index_set(text, field="visible gpus")
    assert info.value.field == "visible gpus"


# --- any text: a value of the right type, or InvalidInput ------------------------------

DIGITISH = st.text(alphabet="0123456789-:,%@~_. xXGMKkgimbTtsdhw+=na{}$", max_size=30)
ANY_TEXT = st.text() | DIGITISH


def _is_ref(value: object) -> bool:
    return (isinstance(value, int) and value >= 1) or isinstance(value, RecentRef | TaskRef)


CHECKS: dict[str, tuple[Callable[[str], object], Callable[[object], bool]]] = {
    "time_limit": (parse_time_limit, lambda v: v is None or (isinstance(v, int) and v > 0)),
    "memory": (parse_memory_mb, lambda v: isinstance(v, int) and v > 0),
    "priority": (parse_priority, lambda v: isinstance(v, int) and 0 <= v <= 255),
    "nonneg": (lambda t: parse_nonneg_int(t, "n"), lambda v: isinstance(v, int) and v >= 0),
    "begin": (lambda t: parse_begin(t, NOW), lambda v: isinstance(v, float)),
    "begin_naive": (lambda t: parse_begin(t, NAIVE_NOW), lambda v: isinstance(v, float)),
    "since": (lambda t: parse_since(t, NOW), lambda v: isinstance(v, float)),
    "since_naive": (lambda t: parse_since(t, NAIVE_NOW), lambda v: isinstance(v, float)),
    "ref": (parse_ref, _is_ref),
    "id_list": (
        parse_id_list,
        lambda v: isinstance(v, list) and 0 < len(v) <= MAX_EXPANSION and all(map(_is_ref, v)),
    ),
    "array": (parse_array_spec, lambda v: isinstance(v, ArraySpec) and len(v.task_ids) > 0),
    "param": (
        parse_param,
        lambda v: isinstance(v, tuple) and isinstance(v[1], list) and len(v[1]) > 0,
    ),
    "template": (lambda t: render_template(t, {"a": "1", "HOME": "/h"}), lambda v: True),
    "index_set": (
        parse_index_set,
        lambda v: v is None or (isinstance(v, list) and v == sorted(set(v))),
    ),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
@given(text=ANY_TEXT)
@example(text="")
@example(text="\n")
@example(text="0" * 5000)
@example(text="9" * 5000)
def test_any_text_gives_value_or_invalid_input(name: str, text: str) -> None:
    parser, valid = CHECKS[name]
    try:
        value = parser(text)
    except InvalidInput as exc:
        assert exc.message
        return
    assert valid(value), value


@given(st.text() | DIGITISH)
def test_template_without_placeholders_is_unchanged(text: str) -> None:
    if "{" not in text and "}" not in text:
        assert render_template(text, {"a": "1"}) == text


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text() | st.text(alphabet='ab,"\n \r_=1', max_size=40))
def test_any_param_file_gives_rows_or_invalid_input(tmp_path: Path, content: str) -> None:
    path = tmp_path / "params.csv"
    path.write_text(content, encoding="utf-8", newline="")
    try:
        rows = read_param_file(str(path))
    except InvalidInput:
        return
    assert rows
    assert all(list(row) == list(rows[0]) for row in rows)
