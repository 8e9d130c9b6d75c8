"""Timestamps: the fast parser for the usual export form reads exactly what pydantic reads,
and every timestamp ends up with a fixed-offset ``datetime.timezone``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from pipelinekit import History, schemes
from pipelinekit.errors import RecordError
from pipelinekit.events import _canonical_shape, event_from_record

PYDANTIC_DATETIME = SchemaValidator(cs.datetime_schema())
DIGIT = st.one_of(
    st.sampled_from("0123456789"),
    st.sampled_from("0123456789"),
    st.sampled_from("0123456789"),
    st.sampled_from("٣۹ａxZT:+- ."),  # other digits, letters, separators
)


@st.composite
def shaped(draw: st.DrawFn) -> str:
    """Strings of the canonical shape, with every digit position drawn (mostly digits)."""
    digits = [draw(DIGIT) for _ in range(18)]
    d = "".join(digits)
    body = f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}"
    if draw(st.booleans()):
        return body + "Z"
    return body + draw(st.sampled_from("+-")) + f"{d[14:16]}:{d[16:18]}"


def _read(parse: object, text: str) -> tuple[datetime, timedelta | None] | None:
    try:
        value = parse(text)  # type: ignore[operator]
    except (ValueError, ValidationError):
        return None
    return value, value.utcoffset()


@settings(max_examples=2000, deadline=None)
@given(shaped())
def test_the_fast_parser_reads_the_canonical_shape_as_pydantic_does(text: str) -> None:
    assert _canonical_shape(text)
    assert _read(datetime.fromisoformat, text) == _read(PYDANTIC_DATETIME.validate_python, text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-05T10:00:00Z",
        "2024-01-05T10:00:00+00:00",
        "2024-01-05T10:00:00-00:00",
        "2024-01-05T10:00:00+05:30",
        "2024-12-31T23:59:59-12:00",
        "2024-02-29T00:00:00+14:00",
        "2023-02-29T00:00:00+00:00",
        "2024-01-05T24:00:00Z",
        "2024-01-05T10:00:60Z",
        "2024-01-05T10:00:00+24:00",
        "0000-01-05T10:00:00Z",
    ],
)
def test_known_canonical_strings(text: str) -> None:
    assert _canonical_shape(text)
    assert _read(datetime.fromisoformat, text) == _read(PYDANTIC_DATETIME.validate_python, text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-05T10:00:00.5Z",
        "2024-01-05 10:00:00Z",
        "2024-01-05T10:00:00z",
        "20240105T100000Z",
        "2024-01-05T10:00:00+01",
        "2024-01-05",
        " 2024-01-05T10:00:00Z",
    ],
)
def test_other_forms_go_to_pydantic(text: str) -> None:
    assert not _canonical_shape(text)


def _at(value: object, **context: object) -> datetime:
    record = {"type": "opened", "opportunity_id": "o", "stage": "lead", "at": value}
    return event_from_record(record, **context).at  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "offset"),
    [
        ("2024-01-05T10:00:00Z", timedelta(0)),
        ("2024-01-05T10:00:00+05:30", timedelta(hours=5, minutes=30)),
        ("2024-01-05T10:00:00.250-03:00", timedelta(hours=-3)),
        ("2024-01-05 10:00:00Z", timedelta(0)),
        (datetime(2024, 3, 31, 12, tzinfo=ZoneInfo("Europe/Warsaw")), timedelta(hours=2)),
        (datetime(2024, 1, 5, 10, tzinfo=timezone(timedelta(hours=1), "CET")), timedelta(hours=1)),
    ],
)
def test_every_timestamp_gets_a_fixed_offset_timezone(value: object, offset: timedelta) -> None:
    at = _at(value)
    assert type(at.tzinfo) is timezone
    assert at.utcoffset() == offset
    if offset == timedelta(0):
        assert at.tzinfo is UTC


def test_naive_timestamps_need_a_zone() -> None:
    with pytest.raises(RecordError, match="no timezone"):
        _at("2024-01-05T10:00:00")
    at = _at("2024-07-05T10:00:00", assume_tz=ZoneInfo("Europe/Warsaw"))
    assert (type(at.tzinfo), at.utcoffset()) == (timezone, timedelta(hours=2))


def test_a_history_shares_one_tzinfo_per_offset() -> None:
    offsets = ["Z", "+00:00", "+02:00", "+02:00", "-05:00", ".5+02:00", ".5Z"]
    records = [
        {
            "type": "opened",
            "opportunity_id": f"o{i}",
            "stage": "prospecting",
            "at": f"2024-01-{i + 1:02d}T10:00:00{suffix}",
        }
        for i, suffix in enumerate(offsets)
    ]
    h = History.from_records(records, scheme=schemes.get("salesforce"))
    zones = {e.at.utcoffset(): e.at.tzinfo for e in h.events}
    for e in h.events:
        assert e.at.tzinfo is zones[e.at.utcoffset()]
    assert zones[timedelta(0)] is UTC
