"""Tests for pipelinekit.periods: hand-checked calendars, bad arguments and properties."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipelinekit.errors import ArgumentError
from pipelinekit.periods import (
    Period,
    PeriodKind,
    fiscal_years,
    months,
    period_kind,
    quarters,
    weeks,
)

D = date
# Values of the wrong type, typed Any so the tests can pass them where mypy would object.
A_STRING: Any = "2024-01-01"
A_FLOAT: Any = 4.0


def span(kind: PeriodKind, d: date) -> tuple[str, date, date]:
    p = kind.period_of(d)
    return (p.label, p.start, p.end)


# --- hand-checked calendars -------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2024, 2, 29), ("2024-02", D(2024, 2, 1), D(2024, 3, 1))),
        (D(2023, 2, 28), ("2023-02", D(2023, 2, 1), D(2023, 3, 1))),
        (D(2023, 12, 31), ("2023-12", D(2023, 12, 1), D(2024, 1, 1))),
        (D(2024, 1, 1), ("2024-01", D(2024, 1, 1), D(2024, 2, 1))),
    ],
)
def test_month_contains_its_dates_and_ends_on_the_first_of_the_next(
    d: date, expected: tuple[str, date, date]
) -> None:
    assert span(months(), d) == expected


def test_february_has_29_days_in_leap_years_only() -> None:
    assert months().period_of(D(2024, 2, 1)).days == 29
    assert months().period_of(D(2023, 2, 1)).days == 28
    assert months().period_of(D(1900, 2, 1)).days == 28
    assert months().period_of(D(2000, 2, 1)).days == 29


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2024, 3, 31), ("2024-Q1", D(2024, 1, 1), D(2024, 4, 1))),
        (D(2024, 4, 1), ("2024-Q2", D(2024, 4, 1), D(2024, 7, 1))),
        (D(2023, 12, 31), ("2023-Q4", D(2023, 10, 1), D(2024, 1, 1))),
    ],
)
def test_calendar_quarters(d: date, expected: tuple[str, date, date]) -> None:
    assert span(quarters(), d) == expected


@pytest.mark.parametrize(
    ("start_month", "d", "expected"),
    [
        (4, D(2024, 4, 1), ("FY2025-Q1", D(2024, 4, 1), D(2024, 7, 1))),
        (4, D(2025, 3, 31), ("FY2025-Q4", D(2025, 1, 1), D(2025, 4, 1))),
        (4, D(2024, 12, 31), ("FY2025-Q3", D(2024, 10, 1), D(2025, 1, 1))),
        (7, D(2024, 6, 30), ("FY2024-Q4", D(2024, 4, 1), D(2024, 7, 1))),
        (7, D(2024, 7, 1), ("FY2025-Q1", D(2024, 7, 1), D(2024, 10, 1))),
        (10, D(2024, 10, 1), ("FY2025-Q1", D(2024, 10, 1), D(2025, 1, 1))),
        (10, D(2024, 9, 30), ("FY2024-Q4", D(2024, 7, 1), D(2024, 10, 1))),
        (2, D(2024, 1, 31), ("FY2024-Q4", D(2023, 11, 1), D(2024, 2, 1))),
        (2, D(2024, 2, 1), ("FY2025-Q1", D(2024, 2, 1), D(2024, 5, 1))),
    ],
)
def test_fiscal_quarters_are_named_by_the_year_the_fiscal_year_ends_in(
    start_month: int, d: date, expected: tuple[str, date, date]
) -> None:
    assert span(quarters(fiscal_start_month=start_month), d) == expected


@pytest.mark.parametrize(
    ("start_month", "d", "expected"),
    [
        (1, D(2024, 12, 31), ("2024", D(2024, 1, 1), D(2025, 1, 1))),
        (4, D(2024, 4, 1), ("FY2025", D(2024, 4, 1), D(2025, 4, 1))),
        (4, D(2024, 3, 31), ("FY2024", D(2023, 4, 1), D(2024, 4, 1))),
        (7, D(2024, 7, 1), ("FY2025", D(2024, 7, 1), D(2025, 7, 1))),
        (7, D(2025, 6, 30), ("FY2025", D(2024, 7, 1), D(2025, 7, 1))),
        (10, D(2024, 10, 1), ("FY2025", D(2024, 10, 1), D(2025, 10, 1))),
        (10, D(2024, 9, 30), ("FY2024", D(2023, 10, 1), D(2024, 10, 1))),
        (12, D(2024, 12, 1), ("FY2025", D(2024, 12, 1), D(2025, 12, 1))),
    ],
)
def test_fiscal_years_are_named_by_the_year_they_end_in(
    start_month: int, d: date, expected: tuple[str, date, date]
) -> None:
    assert span(fiscal_years(start_month=start_month), d) == expected


def test_fiscal_year_starting_in_a_leap_february_month_has_366_days() -> None:
    assert fiscal_years(start_month=2).period_of(D(2024, 2, 1)).days == 366
    assert fiscal_years(start_month=4).period_of(D(2024, 2, 29)).days == 366


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2024, 2, 1), ("2024-W05", D(2024, 1, 29), D(2024, 2, 5))),
        (D(2020, 12, 31), ("2020-W53", D(2020, 12, 28), D(2021, 1, 4))),
        (D(2021, 1, 3), ("2020-W53", D(2020, 12, 28), D(2021, 1, 4))),
        (D(2021, 1, 4), ("2021-W01", D(2021, 1, 4), D(2021, 1, 11))),
        (D(2019, 12, 30), ("2020-W01", D(2019, 12, 30), D(2020, 1, 6))),
        (D(2024, 12, 30), ("2025-W01", D(2024, 12, 30), D(2025, 1, 6))),
    ],
)
def test_monday_weeks_use_iso_year_and_week_number(
    d: date, expected: tuple[str, date, date]
) -> None:
    assert span(weeks(), d) == expected


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2024, 1, 28), ("week of 2024-01-28", D(2024, 1, 28), D(2024, 2, 4))),
        (D(2024, 2, 3), ("week of 2024-01-28", D(2024, 1, 28), D(2024, 2, 4))),
        (D(2024, 2, 4), ("week of 2024-02-04", D(2024, 2, 4), D(2024, 2, 11))),
        (D(2024, 1, 1), ("week of 2023-12-31", D(2023, 12, 31), D(2024, 1, 7))),
    ],
)
def test_sunday_weeks_are_labelled_by_their_first_day(
    d: date, expected: tuple[str, date, date]
) -> None:
    assert span(weeks(week_start=6), d) == expected


def test_next_and_previous_cross_year_boundaries() -> None:
    dec = months().period_of(D(2023, 12, 5))
    assert dec.next().label == "2024-01"
    assert dec.next().previous() == dec
    w53 = weeks().period_of(D(2020, 12, 31))
    assert w53.next().label == "2021-W01"
    assert w53.previous().label == "2020-W52"
    fy = fiscal_years(start_month=4).period_of(D(2024, 4, 1))
    assert (fy.previous().label, fy.label, fy.next().label) == ("FY2024", "FY2025", "FY2026")


def test_between_returns_every_overlapping_period_in_order() -> None:
    got = quarters(fiscal_start_month=4).between(D(2024, 3, 15), D(2024, 7, 1))
    assert [p.label for p in got] == ["FY2024-Q4", "FY2025-Q1"]
    assert months().between(D(2024, 5, 1), D(2024, 5, 2)) == (months().period_of(D(2024, 5, 1)),)
    assert months().between(D(2024, 5, 1), D(2024, 5, 1)) == ()


def test_following_gives_n_consecutive_periods() -> None:
    got = weeks().following(D(2020, 12, 31), 3)
    assert [p.label for p in got] == ["2020-W53", "2021-W01", "2021-W02"]
    assert months().following(D(2024, 1, 1), 1) == (months().period_of(D(2024, 1, 1)),)


# --- instants and time zones ------------------------------------------------------------


def test_instants_are_mapped_to_the_local_date_in_the_given_zone() -> None:
    t = datetime(2024, 3, 31, 22, 30, tzinfo=UTC)
    warsaw = ZoneInfo("Europe/Warsaw")  # UTC+2 on 2024-03-31 (summer time began that day)
    assert months().period_of_instant(t).label == "2024-03"
    assert months().period_of_instant(t, warsaw).label == "2024-04"
    mar = months().period_of(D(2024, 3, 1))
    assert mar.contains_instant(t)
    assert not mar.contains_instant(t, warsaw)
    assert months().period_of_instant("2024-03-31T22:30:00+00:00", warsaw).label == "2024-04"


def test_start_and_end_instants_are_local_midnights() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    q1 = quarters().period_of(D(2024, 2, 1))
    assert q1.start_instant() == datetime(2024, 1, 1, tzinfo=UTC)
    assert q1.start_instant(warsaw).isoformat() == "2024-01-01T00:00:00+01:00"
    assert q1.end_instant(warsaw).isoformat() == "2024-04-01T00:00:00+02:00"
    assert q1.end_instant(warsaw) == q1.next().start_instant(warsaw)


def test_start_instant_is_the_first_existing_wall_time_when_dst_skips_midnight() -> None:
    santiago = ZoneInfo("America/Santiago")  # 2023-09-03 00:00 -> 01:00
    week = weeks(week_start=6).period_of(D(2023, 9, 3))
    start = week.start_instant(santiago)
    assert start.isoformat() == "2023-09-03T01:00:00-03:00"
    assert week.contains_instant(start)
    just_before = start.astimezone(UTC) - timedelta(microseconds=1)
    assert not week.contains_instant(just_before, santiago)


# --- values: equality, order, hashing, serialisation ------------------------------------


def test_periods_round_trip_through_json_and_pickle() -> None:
    for kind in (months(), quarters(fiscal_start_month=7), weeks(week_start=6), fiscal_years()):
        p = kind.period_of(D(2024, 8, 15))
        assert Period.model_validate(p.model_dump(mode="json")) == p
        assert Period.model_validate_json(p.model_dump_json()) == p
        assert pickle.loads(pickle.dumps(p)) == p


def test_periods_are_hashable_and_sort_by_start() -> None:
    ps = months().following(D(2024, 1, 1), 4)
    shuffled = [ps[2], ps[0], ps[3], ps[1]]
    assert sorted(shuffled) == list(ps)
    assert len({*ps, *months().following(D(2024, 1, 1), 4)}) == 4
    assert ps[0] < ps[1] <= ps[1] < ps[3]
    assert ps[3] > ps[2] >= ps[2]


def test_period_validation_refuses_fields_that_do_not_describe_a_period() -> None:
    good = months().period_of(D(2024, 3, 1)).model_dump(mode="json")
    for change in ({"start": "2024-03-02"}, {"end": "2024-05-01"}, {"label": "March"}):
        with pytest.raises(ValidationError, match="not a month period"):
            Period.model_validate({**good, **change})
    with pytest.raises(ValidationError):
        Period.model_validate({**good, "colour": "red"})


def test_period_kind_accepts_a_spec_string_when_validated() -> None:
    assert PeriodKind.model_validate("fiscal_year:4") == fiscal_years(start_month=4)
    with pytest.raises(ValidationError):
        PeriodKind.model_validate("fortnight")


def test_period_kind_refuses_settings_its_unit_does_not_use() -> None:
    with pytest.raises(ValidationError, match="fiscal_start_month applies"):
        PeriodKind(unit="month", fiscal_start_month=4)
    with pytest.raises(ValidationError, match="week_start applies"):
        PeriodKind(unit="quarter", week_start=6)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("month", months()),
        ("quarter", quarters()),
        ("quarter:4", quarters(fiscal_start_month=4)),
        ("week", weeks()),
        ("week:6", weeks(week_start=6)),
        ("fiscal_year", fiscal_years()),
        ("fiscal_year:4", fiscal_years(start_month=4)),
        ("fiscal_year:1", fiscal_years()),
    ],
)
def test_period_kind_parses_specs(spec: str, kind: PeriodKind) -> None:
    assert period_kind(spec) == kind
    assert period_kind(kind.spec) == kind
    assert period_kind(kind) is kind


# --- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["", "months", "Month", "month:1", "quarter:", "quarter:0", "quarter:13", "quarter: 4",
     "quarter:+4", "week:7", "fiscal_year:x", "fiscal_year:4:1", 4, None],
)  # fmt: skip
def test_bad_period_specs_name_the_period_argument(spec: object) -> None:
    with pytest.raises(ArgumentError) as info:
        period_kind(spec)  # type: ignore[arg-type]
    assert info.value.argument == "period"


def test_unknown_spec_error_lists_the_valid_specs() -> None:
    with pytest.raises(ArgumentError, match=r"'month', 'quarter'.*'fiscal_year:<start month"):
        period_kind("year")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: quarters(fiscal_start_month=0), "fiscal_start_month"),
        (lambda: quarters(fiscal_start_month=13), "fiscal_start_month"),
        (lambda: quarters(fiscal_start_month=True), "fiscal_start_month"),
        (lambda: fiscal_years(start_month=13), "start_month"),
        (lambda: fiscal_years(start_month=A_FLOAT), "start_month"),
        (lambda: weeks(week_start=-1), "week_start"),
        (lambda: weeks(week_start=7), "week_start"),
        (lambda: months().following(D(2024, 1, 1), 0), "n"),
        (lambda: months().following(D(2024, 1, 1), True), "n"),
        (lambda: months().between(D(2024, 2, 1), D(2024, 1, 31)), "end"),
        (lambda: months().between(datetime(2024, 1, 1, tzinfo=UTC), D(2024, 2, 1)), "start"),
        (lambda: months().between(D(2024, 1, 1), A_STRING), "end"),
        (lambda: months().period_of(datetime(2024, 1, 1, tzinfo=UTC)), "d"),
        (lambda: months().period_of(A_STRING), "d"),
        (lambda: months().period_of_instant(datetime(2024, 1, 1)), "t"),
        (lambda: months().period_of_instant(datetime(2024, 1, 1, tzinfo=UTC), A_STRING), "tz"),
        (lambda: datetime(2024, 1, 5, tzinfo=UTC) in months().period_of(D(2024, 1, 1)), "d"),
        (lambda: months().period_of(D(2024, 1, 1)).contains_instant(datetime(2024, 1, 5)), "t"),
        (lambda: months().period_of(D(2024, 1, 1)).start_instant(A_STRING), "tz"),
        (lambda: months().period_of(D(9999, 12, 31)), "d"),
        (lambda: weeks(week_start=6).period_of(D(1, 1, 1)), "d"),
        (lambda: months().following(D(9999, 11, 1), 3), "n"),
    ],
)
def test_bad_arguments_raise_argument_error_naming_the_argument(
    call: object, argument: str
) -> None:
    with pytest.raises(ArgumentError) as info:
        call()  # type: ignore[operator]
    assert info.value.argument == argument


def test_next_and_previous_past_the_representable_dates_overflow() -> None:
    with pytest.raises(OverflowError, match="no month period after 9999-11"):
        months().period_of(D(9999, 11, 1)).next()
    with pytest.raises(OverflowError, match="no week period before 0001-W01"):
        weeks().period_of(D(1, 1, 1)).previous()


# --- properties -------------------------------------------------------------------------

kinds = st.one_of(
    st.just(months()),
    st.builds(quarters, fiscal_start_month=st.integers(1, 12)),
    st.builds(weeks, week_start=st.integers(0, 6)),
    st.builds(fiscal_years, start_month=st.integers(1, 12)),
)
dates = st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 12, 31))
zones: st.SearchStrategy[tzinfo] = st.one_of(
    st.just(UTC),
    st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60)),
    st.sampled_from(
        [ZoneInfo(z) for z in ("Europe/Warsaw", "America/Santiago", "Asia/Kolkata", "Pacific/Apia")]
    ),
)


@given(kinds, dates)
def test_a_date_is_in_its_period_and_neighbours_are_contiguous(kind: PeriodKind, d: date) -> None:
    p = kind.period_of(d)
    assert d in p
    assert p.start < p.end
    assert kind.period_of(p.start) == p
    assert kind.period_of(p.end - timedelta(days=1)) == p
    assert p.next().start == p.end
    assert p.previous().end == p.start
    assert p.next().previous() == p
    assert p.previous().next() == p
    assert p.previous() < p < p.next()
    assert Period.model_validate(p.model_dump(mode="json")) == p


@settings(max_examples=50)
@given(kinds, dates, st.integers(0, 400))
def test_between_covers_the_range_with_contiguous_increasing_periods(
    kind: PeriodKind, a: date, length: int
) -> None:
    b = a + timedelta(days=length)
    ps = kind.between(a, b)
    if a == b:
        assert ps == ()
        return
    assert ps[0].start <= a < ps[0].end
    assert ps[-1].start < b <= ps[-1].end
    assert all(x.end == y.start for x, y in pairwise(ps))
    assert all(x < y for x, y in pairwise(ps))
    assert len(set(ps)) == len(ps)


@given(kinds, dates, st.integers(1, 30))
def test_following_is_n_contiguous_periods_from_the_one_containing_d(
    kind: PeriodKind, d: date, n: int
) -> None:
    ps = kind.following(d, n)
    assert len(ps) == n
    assert ps[0] == kind.period_of(d)
    assert all(x.next() == y for x, y in pairwise(ps))


@given(
    kinds,
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2100, 1, 1),
        timezones=zones,
        allow_imaginary=False,
    ),
    zones,
)
def test_period_of_instant_agrees_with_period_of_on_the_local_date(
    kind: PeriodKind, t: datetime, tz: tzinfo
) -> None:
    p = kind.period_of_instant(t, tz)
    assert p == kind.period_of(t.astimezone(tz).date())
    assert p.contains_instant(t, tz)
    # Compare in UTC: aware datetimes sharing a tzinfo compare by wall time.
    assert p.start_instant(tz).astimezone(UTC) <= t.astimezone(UTC) < p.end_instant(tz)
