"""Hostile input at ingestion and in schemes: each case gets a typed error that names the
record and the field (or the scheme's problem), in strict and lenient mode alike, and what
is accepted survives the JSON round trip exactly."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipelinekit as pk
from pipelinekit import (
    ArgumentError,
    DuplicateEventError,
    History,
    RecordError,
    SchemeError,
    Stage,
    StageScheme,
    TransitionError,
    event_from_record,
)

S = pk.schemes.get("salesforce")
OPENED: dict[str, Any] = {
    "type": "opened",
    "opportunity_id": "o",
    "at": "2024-01-01T00:00:00Z",
    "stage": "prospecting",
}
MODES = ("strict", "lenient")


def refused(records: list[Any], *, mode: str = "strict", **kwargs: Any) -> RecordError:
    """The error of the first bad record: raised in strict mode, set aside in lenient."""
    if mode == "strict":
        with pytest.raises(RecordError) as info:
            History.from_records(records, scheme=S, **kwargs)
        return info.value
    history = History.from_records(records, scheme=S, mode="lenient", **kwargs)
    assert history.ingest.accounted and history.ingest.rejected
    return history.ingest.rejected[0].error


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# -- deep nesting and huge integers ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["colour", "amount", "stage", "at"])
def test_a_deeply_nested_value_is_a_located_error_not_a_recursion_error(
    mode: str, field: str
) -> None:
    err = refused([OPENED, {**OPENED, "opportunity_id": "p", field: nested(5000)}], mode=mode)
    assert (err.index, err.opportunity_id, err.field) == (1, "p", field)
    assert len(str(err)) < 400  # the value is shown abbreviated


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "field", ["amount", "probability", "opportunity_id", "stage", "event_id", "name", "colour"]
)
def test_a_huge_integer_is_a_located_error(mode: str, field: str) -> None:
    records = [OPENED, {**OPENED, "opportunity_id": "p", field: 10**5000}]
    err = refused(records, mode=mode)
    assert err.index == 1 and err.field == field
    assert "digits" in err.reason and len(str(err)) < 400
    if mode == "lenient":  # the good record is still applied
        assert History.from_records(records, scheme=S, mode="lenient").ingest.applied == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_huge_integer_record_type_is_located() -> None:
    # pydantic reports (on stderr) that it cannot print the tag; the error is still ours
    err = refused([OPENED, {**OPENED, "type": 10**5000}])
    assert (err.index, err.field) == (1, "type") and "digits" in err.reason


def test_lenient_mode_sets_aside_every_unreadable_record_of_a_chunk() -> None:
    records = [
        {**OPENED, "opportunity_id": "a", "name": 10**5000},
        {**OPENED, "opportunity_id": "b"},
        {**OPENED, "opportunity_id": "c", "owner": 10**6000, "amount": "-1"},
        {**OPENED, "opportunity_id": "d", "amount": nested(3000)},
    ]
    history = History.from_records(records, scheme=S, mode="lenient")
    assert history.opportunity_ids == ("b",)
    assert [(r.index, r.field) for r in history.ingest.rejected] == [
        (0, "name"),
        (2, "owner"),
        (3, "amount"),
    ]
    assert len(repr(history.ingest)) < 5000  # the report's repr abbreviates the records


def test_event_from_record_locates_a_huge_integer_too() -> None:
    with pytest.raises(RecordError) as info:
        event_from_record({**OPENED, "owner": 10**5000}, index=4)
    assert (info.value.index, info.value.field) == (4, "owner")


# -- instants whose periods cannot be represented ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999+23:59",
        "9990-01-01T00:00:00Z",
        "0009-12-31T23:59:59Z",
        datetime(9999, 12, 31, tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
    ],
)
def test_instants_outside_the_supported_range_are_refused(mode: str, at: object) -> None:
    err = refused([{**OPENED, "at": at}], mode=mode)
    assert (err.index, err.field) == (0, "at")
    assert "0010-01-01" in err.reason and "9990-01-01" in err.reason


@pytest.mark.parametrize(
    "at", ["0010-01-01T00:00:00Z", "0010-01-01T05:00:00+05:00", "9989-12-31T23:59:59.999999Z"]
)
def test_the_ends_of_the_supported_range_are_accepted(at: str) -> None:
    history = History.from_records(
        [{**OPENED, "at": at, "amount": "5", "currency": "EUR"}], scheme=S
    )
    assert history.start is not None
    end = history.start + timedelta(days=1)
    forecast = pk.forecasts.WeightedForecast(period="fiscal_year:12").compute(history, as_of=end)
    assert sum(r.expected for r in forecast.rows) == Decimal("0.5")  # 10 % of 5


def test_the_issue_reproducers_no_longer_reach_the_forecasters() -> None:
    with pytest.raises(RecordError):
        History.from_records([{**OPENED, "at": "9999-12-31T23:00:00-05:00"}], scheme=S)
    with pytest.raises(RecordError):
        History.from_records([{**OPENED, "at": "0001-01-01T00:00:00+05:00"}], scheme=S)


def test_a_forecast_horizon_past_the_last_date_is_an_argument_error() -> None:
    history = History.from_records([{**OPENED, "at": "9989-06-01T00:00:00Z"}], scheme=S)
    with pytest.raises(ArgumentError) as info:
        pk.forecasts.WeightedForecast(period="quarter", horizon=4000).compute(
            history, as_of="9989-07-01T00:00:00Z"
        )
    assert info.value.argument == "horizon"


# -- offsets with seconds ----------------------------------------------------------------


def test_a_historical_offset_with_seconds_round_trips_exactly() -> None:
    history = History.from_records(
        [{**OPENED, "at": "1900-01-01T00:00:00"}], scheme=S, assume_tz=ZoneInfo("Europe/Amsterdam")
    )
    at = history.events[0].at
    assert at.utcoffset() == timedelta(minutes=19, seconds=32)
    written = history.to_records()
    assert written[0]["at"] == "1900-01-01T00:00:00+00:19:32"
    again = History.from_records(json.loads(json.dumps(written)), scheme=S)
    assert again.events == history.events
    assert again.events[0].at.utcoffset() == at.utcoffset()


@settings(max_examples=60, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 1, 1)),
    offset=st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59, seconds=-59),
        max_value=timedelta(hours=23, minutes=59, seconds=59),
    ),
)
def test_any_fixed_offset_round_trips_through_json(when: datetime, offset: timedelta) -> None:
    at = when.replace(tzinfo=timezone(offset))
    event = event_from_record({**OPENED, "at": at})
    back = event_from_record(json.loads(json.dumps(event.model_dump(mode="json"))))
    assert back == event
    assert back.at.utcoffset() == offset and back.at.replace(tzinfo=None) == when


def test_whole_minute_offsets_are_written_as_before() -> None:
    event = event_from_record({**OPENED, "at": "2024-01-01T10:00:00+01:00"})
    assert event.model_dump(mode="json")["at"] == "2024-01-01T10:00:00+01:00"
    assert event_from_record(OPENED).model_dump(mode="json")["at"] == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "at", ["2024-01-01T00:00:00+24:00:00", "2024-01-01T00:00:00+00:60:00", "2024-01-01T+01:00:30"]
)
def test_a_bad_offset_with_seconds_is_a_located_error(at: str) -> None:
    assert refused([{**OPENED, "at": at}]).field == "at"


# -- numbers are not timestamps ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "at", [0, 1704067200, 1704067200.5, "1704067200", " 1704067200 ", "1.7e9", "20240101", True]
)
def test_a_number_is_not_a_timestamp(mode: str, at: object) -> None:
    err = refused([{**OPENED, "at": at}], mode=mode)
    assert err.field == "at"
    assert "zone" in err.reason or "timestamp" in err.reason


def test_dates_and_iso_strings_are_still_timestamps() -> None:
    for at in ("2024-01-01", date(2024, 1, 1), "2024-01-01T00:00:00+00:00"):
        history = History.from_records([{**OPENED, "at": at}], scheme=S, assume_tz=UTC)
        assert history.start == datetime(2024, 1, 1, tzinfo=UTC)


# -- assume_tz ---------------------------------------------------------------------------


def test_assume_tz_may_be_a_zone_name() -> None:
    naive = {**OPENED, "at": "2024-07-01T12:00:00"}
    by_name = History.from_records([naive], scheme=S, assume_tz="Europe/Warsaw")
    by_zone = History.from_records([naive], scheme=S, assume_tz=ZoneInfo("Europe/Warsaw"))
    assert by_name.events == by_zone.events
    assert by_name.start == datetime(2024, 7, 1, 10, tzinfo=UTC)
    event = event_from_record(naive, assume_tz="Europe/Warsaw")
    assert event == by_zone.events[0]


@pytest.mark.parametrize("zone", ["Europe/Nowhere", "", "../etc/passwd", 5, timedelta(hours=1)])
def test_a_bad_assume_tz_is_an_argument_error(zone: object) -> None:
    with pytest.raises(ArgumentError) as info:
        History.from_records([OPENED], scheme=S, assume_tz=zone)  # type: ignore[arg-type]
    assert info.value.argument == "assume_tz"
    with pytest.raises(ArgumentError):
        event_from_record(OPENED, assume_tz=zone)  # type: ignore[arg-type]


# -- empty key ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_key_is_named_as_the_field(mode: str) -> None:
    err = refused([{**OPENED, "": 1}], mode=mode)
    assert err.field == ""
    assert "field ''" in str(err) and "empty" in err.reason


# -- strict mode raises the first bad record ---------------------------------------------


def test_strict_raises_a_conflict_before_a_later_malformed_record() -> None:
    records = [
        {**OPENED, "event_id": "e"},
        {**OPENED, "event_id": "e", "opportunity_id": "q"},
        {**OPENED, "opportunity_id": "p", "amount": "-1"},
    ]
    err = refused(records)
    assert isinstance(err, DuplicateEventError) and err.index == 1


def test_strict_raises_an_illegal_move_before_a_later_malformed_record() -> None:
    records = [
        {**OPENED, "type": "stage_changed", "opportunity_id": "x"},
        OPENED,
        {**OPENED, "opportunity_id": "p", "amount": "-1"},
    ]
    err = refused(records)
    assert isinstance(err, TransitionError) and err.index == 0


def test_strict_raises_a_malformed_record_before_a_later_illegal_move() -> None:
    records = [
        OPENED,
        {**OPENED, "opportunity_id": "p", "amount": "-1"},
        {**OPENED, "type": "stage_changed"},
    ]
    err = refused(records)
    assert err.index == 1 and err.field == "amount"


def test_strict_raises_the_first_bad_record_of_a_later_chunk() -> None:
    from pipelinekit.engine.reference import CHUNK as _CHUNK

    records = [{**OPENED, "opportunity_id": f"o{i}"} for i in range(_CHUNK + 5)]
    records[_CHUNK + 3] = {**OPENED, "amount": "-1"}
    records[_CHUNK + 1] = {**OPENED, "opportunity_id": "o7"}  # opened twice
    err = refused(records)
    assert isinstance(err, TransitionError) and err.index == _CHUNK + 1


def test_from_events_strict_raises_the_first_bad_event() -> None:
    events = [event_from_record({**OPENED, "type": "stage_changed", "opportunity_id": "x"}), OPENED]
    with pytest.raises(TransitionError) as info:
        History.from_events(events, scheme=S)  # type: ignore[arg-type]
    assert info.value.index == 0


# -- schemes -----------------------------------------------------------------------------

TWO = [{"key": "a", "label": "A"}, {"key": "w", "label": "W", "outcome": "won"}]


@pytest.mark.parametrize(
    "edges",
    [{"a": None}, {"a": "w"}, {"a": 5}, {None: ["w"]}, {"a": [None]}, 7, "aw", [["a"]]],
)
def test_malformed_edges_are_a_scheme_error(edges: object) -> None:
    with pytest.raises(SchemeError) as info:
        StageScheme.model_validate(
            {"name": "s", "stages": TWO, "transitions": "graph", "edges": edges}
        )
    assert any("edges" in p for p in info.value.problems)


@pytest.mark.parametrize(
    "labels",
    [
        {"pl": "x", None: "y"},
        {"pl": None},
        {5: "x"},
        [["pl", "x"], ["pl", "y"]],
        [["pl"]],
        [["pl", "x", "y"]],
        ["pl"],
        "pl",
        5,
    ],
)
def test_malformed_labels_are_a_scheme_error(labels: object) -> None:
    stages = [{**TWO[0], "labels": labels}, TWO[1]]
    with pytest.raises(SchemeError) as info:
        StageScheme.model_validate({"name": "s", "stages": stages})
    assert any("labels" in p for p in info.value.problems)
    with pytest.raises(SchemeError):
        Stage(key="a", label="A", labels=labels)


def test_labels_given_as_pairs_round_trip_through_json() -> None:
    stage = Stage(key="a", label="A", labels=[["pl", "x"], ["en", "y"]])
    again = Stage.model_validate(json.loads(stage.model_dump_json()))
    assert again == stage
    assert stage.label_for("pl") == "x" and stage.label_for("en") == "y"
    assert Stage(key="a", label="A", labels={"en": "y", "pl": "x"}) == stage


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=4).flatmap(
        lambda d: st.permutations(sorted(d.items()))
    )
)
def test_labels_round_trip_whatever_their_order(pairs: list[tuple[str, str]]) -> None:
    stage = Stage(key="a", label="A", labels=pairs)
    assert Stage.model_validate(json.loads(stage.model_dump_json())) == stage
    assert Stage(key="a", label="A", labels=dict(pairs)) == stage


@pytest.mark.parametrize("tag", [[], {}, {"opened"}])
def test_an_unhashable_record_type_is_a_located_error(tag: object) -> None:
    with pytest.raises(RecordError) as info:
        event_from_record({**OPENED, "type": tag}, index=2)
    assert (info.value.index, info.value.field) == (2, "type")
    assert refused([OPENED, {**OPENED, "type": tag}]).field == "type"
