"""A History keeps its events as rows (``pipelinekit._rows``): nothing observable may change.

The rows are validated in chunks, events are built from them on demand, and the state
machine replays the rows themselves. Each of those must give what validating every record
into an event model and replaying the models gives.
"""

from __future__ import annotations

import gc
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from _engines import reference_engine as forced_reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelinekit import History, demo, schemes
from pipelinekit._rows import ROW_CLASSES, RowMaker, event_of, row_of, same_event
from pipelinekit.engine import reference as reference_engine
from pipelinekit.errors import RecordError
from pipelinekit.events import Opened, event_from_record
from pipelinekit.opportunity import fold
from pipelinekit.testing import events, history_records, invalid_records

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEME = schemes.get("salesforce")


@pytest.fixture(scope="module", autouse=True)
def _reference_engine() -> Iterator[None]:
    """Rows are how the reference engine keeps events: these tests are about it."""
    with forced_reference():
        yield


@SETTINGS
@given(events(SCHEME))
def test_an_event_survives_its_row(event: Any) -> None:
    back = event_of(row_of(event))
    assert back == event
    assert type(back) is type(event)
    assert repr(back) == repr(event)
    assert back.model_fields_set == event.model_fields_set
    assert back.model_dump(mode="json") == event.model_dump(mode="json")
    assert pickle.loads(pickle.dumps(row_of(event))) == row_of(event)


def test_every_event_class_has_a_row_class_with_its_fields_in_order() -> None:
    for cls, row_cls in ROW_CLASSES.items():
        assert row_cls._fields == (*cls.model_fields, "fields_set")  # type: ignore[attr-defined]
        # the replay reads these by position (pipelinekit._rows.AT, ...)
        assert row_cls._fields[:4] == ("type", "opportunity_id", "at", "event_id")  # type: ignore[attr-defined]


def test_rows_compare_like_their_events() -> None:
    make = RowMaker()
    a = Opened(opportunity_id="o", at="2024-01-01T00:00:00Z", stage="lead")
    b = Opened(opportunity_id="o", at="2024-01-01T00:00:00Z", stage="lead", name=None)
    assert a == b and a.model_fields_set != b.model_fields_set
    assert same_event(make(a), make(b))  # model == ignores which fields were given
    assert not same_event(make(a), make(a.model_copy(update={"stage": "won"})))


@SETTINGS
@given(st.data())
def test_history_events_are_the_bulk_validated_records(data: st.DataObject) -> None:
    recs = data.draw(history_records(SCHEME, duplicates=0.1))
    h = History.from_records(recs, scheme=SCHEME)
    singles = [event_from_record(r) for r in recs]
    # each applied event is one record's event, in time order (ties in input order)
    assert len(h.events) == h.ingest.applied
    assert all(e in singles for e in h.events)
    assert [e.at for e in h.events] == sorted(e.at for e in h.events)
    assert [e.model_fields_set for e in h.events] == [
        next(s for s in singles if s == e).model_fields_set for e in h.events
    ]
    # replaying the rows and replaying the event models give the same states
    rows_states = {k: d.freeze() for k, d in fold(h._store.rows(), SCHEME).items()}
    model_states = {k: d.freeze() for k, d in fold(h.events, SCHEME).items()}
    assert rows_states == model_states
    assert History.from_events(h.events, scheme=SCHEME).to_records() == h.to_records()


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reference_engine, "CHUNK", 3)


def _strict_outcome(recs: list[Any]) -> tuple[object, ...]:
    """The error strict ingestion raises (its type, index and message), or ()."""
    try:
        History.from_records(recs, scheme=SCHEME)
    except RecordError as exc:
        return (type(exc), exc.index, str(exc))
    return ()


def _bad_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    case = draw(invalid_records(SCHEME, max_opportunities=4))
    extra = draw(invalid_records(SCHEME, max_opportunities=2))
    return [*case.records, *extra.records]


@pytest.mark.usefixtures("tiny_chunks")
@SETTINGS
@given(st.data())
def test_chunked_validation_accounts_for_records_as_one_pass_does(data: st.DataObject) -> None:
    recs = _bad_records(data.draw)
    chunked = History.from_records(recs, scheme=SCHEME, mode="lenient")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(reference_engine, "CHUNK", 1_000_000)
        whole = History.from_records(recs, scheme=SCHEME, mode="lenient")
        expected = _strict_outcome(recs)
    # (errors are exceptions, equal only to themselves: compare what they say)
    assert chunked.ingest.to_records() == whole.ingest.to_records()
    assert [type(r.error) for r in chunked.ingest.rejected] == [
        type(r.error) for r in whole.ingest.rejected
    ]
    assert chunked.events == whole.events
    assert chunked.ingest.accounted
    assert _strict_outcome(recs) == expected


def test_a_record_error_in_a_later_chunk_names_its_own_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reference_engine, "CHUNK", 4)
    recs: list[dict[str, Any]] = [
        {
            "type": "opened",
            "opportunity_id": f"o{i}",
            "at": f"2024-01-{i + 1:02d}T00:00:00Z",
            "stage": "prospecting",
        }
        for i in range(10)
    ]
    recs[6]["amount"] = "-5"
    with pytest.raises(RecordError) as caught:
        History.from_records(recs, scheme=SCHEME)
    assert (caught.value.index, caught.value.field, caught.value.opportunity_id) == (
        6,
        "amount",
        "o6",
    )
    lenient = History.from_records(recs, scheme=SCHEME, mode="lenient")
    assert [r.index for r in lenient.ingest.rejected] == [6]
    assert lenient.opportunity_ids == tuple(f"o{i}" for i in range(10) if i != 6)


def test_from_events_refuses_subclasses_by_name() -> None:
    class Mine(Opened):
        pass

    mine = Mine(opportunity_id="o", at="2024-01-01T00:00:00Z", stage="prospecting")
    with pytest.raises(RecordError, match=r"Mine.*subclass") as caught:
        History.from_events([mine], scheme=SCHEME)
    assert caught.value.index == 0
    lenient = History.from_events([mine], scheme=SCHEME, mode="lenient")
    assert (lenient.ingest.total, len(lenient.ingest.rejected)) == (1, 1)


def test_events_are_built_once_and_equal_across_views() -> None:
    h = demo.demo_history(opportunities=15, seed=3)
    assert h.events is h.events
    assert list(h) == list(h.events)
    again = pickle.loads(pickle.dumps(list(h._store.rows())))
    assert [event_of(r) for r in again] == list(h.events)
    part = h.for_opportunities(h.opportunity_ids[:3])
    assert all(e in h.events for e in part.events)


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


@pytest.mark.usefixtures("collector_on")
def test_ingested_objects_do_not_wait_in_the_young_generation() -> None:
    """After bulk work the new objects sit in the oldest generation, so no young
    collection walks all of them (at 1M events that took about a second)."""
    recs = demo.demo_records(opportunities=400, seed=1)
    gc.collect()
    h = History.from_records(recs, scheme=SCHEME)
    draft = next(iter(h._store._states().values()))  # a tracked object made by the replay
    assert gc.is_tracked(draft)
    assert any(o is draft for o in gc.get_objects(generation=2))


@pytest.mark.usefixtures("collector_on")
def test_a_callers_frozen_objects_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        History.from_records(demo.demo_records(opportunities=50, seed=1), scheme=SCHEME)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


_FIELDS = (
    "type",
    "opportunity_id",
    "at",
    "event_id",
    "actor",
    "stage",
    "amount",
    "currency",
    "owner",
    "expected_close",
    "probability",
    "name",
    "reason",
    "kind",
    "due",
    "note",
    "zzz",
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**16), 10**16),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "x",
            "7",
            "1e3",
            "-5",
            "NaN",
            "EUR",
            "eur",
            "2024-01-05",
            "2024-01-05T10:00:00",
            "2024-01-05T10:00:00Z",
            "2024-01-05T10:00:00+05:30",
            "20240105T100000Z",
            "prospecting",
            "closed-won",
            "opened",
            "stage_changed",
            "activity_logged",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@st.composite
def _mangled_records(draw: st.DrawFn) -> Any:
    base = draw(history_records(SCHEME, min_opportunities=1, max_opportunities=1, max_events=3))
    record: dict[str, Any] = dict(draw(st.sampled_from(base)))
    for field in draw(st.lists(st.sampled_from(_FIELDS), max_size=3)):
        if draw(st.booleans()):
            record[field] = draw(_VALUES)
        else:
            record.pop(field, None)
    return draw(st.one_of(st.just(record), _VALUES))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mangled_records())
def test_bulk_and_single_validation_agree_on_any_record(record: Any) -> None:
    """History.from_records validates records straight into rows with a schema derived
    from the event models; it must accept, coerce and reject exactly as the models do."""
    try:
        single: Any = event_from_record(record, index=0)
    except RecordError as exc:
        single = (exc.field, exc.reason, exc.event_id, exc.opportunity_id)
    try:
        h = History.from_records([record], scheme=SCHEME, mode="lenient")
    except RecordError as exc:  # pragma: no cover - lenient mode sets records aside
        pytest.fail(f"lenient ingestion raised {exc}")
    if isinstance(single, tuple):  # invalid: rejected with the same error
        assert len(h.ingest.rejected) == 1
        err = h.ingest.rejected[0].error
        assert (err.field, err.reason, err.event_id, err.opportunity_id) == single
    else:  # valid: the same event (perhaps then refused by the state machine, alike)
        twin = History.from_events([single], scheme=SCHEME, mode="lenient")
        assert twin.to_records() == h.to_records()
        assert [r.error.reason for r in twin.ingest.rejected] == [
            r.error.reason for r in h.ingest.rejected
        ]


def test_an_event_object_among_records_is_pointed_to_from_events() -> None:
    event = Opened(opportunity_id="o", at="2024-01-01T00:00:00Z", stage="prospecting")
    with pytest.raises(
        RecordError, match=r"got Opened \(an event object: use History\.from_events\)"
    ):
        History.from_records([event], scheme=SCHEME)  # type: ignore[list-item]
    assert History.from_events([event], scheme=SCHEME).events == (event,)


def test_a_history_pickles_with_its_rows() -> None:
    h = demo.demo_history(opportunities=30, seed=2)
    mid = "2024-06-30T00:00:00Z"
    for before in (False, True):
        if before:  # with a kept prefix and a final snapshot inside
            h.as_of(mid)
            h.as_of(h.end)  # type: ignore[arg-type]
        back = pickle.loads(pickle.dumps(h))
        assert back.events == h.events
        assert back.ingest == h.ingest
        assert back.as_of(mid) == h.as_of(mid)
        assert back.as_of(h.end) == h.as_of(h.end)  # type: ignore[arg-type]


def test_iterating_builds_events_one_at_a_time_and_keeps_none() -> None:
    from pipelinekit.reports.activity import ActivityReport
    from pipelinekit.reports.movement import PipelineMovement

    h = demo.demo_history(opportunities=30, seed=2)
    assert list(h) == list(demo.demo_history(opportunities=30, seed=2).events)
    assert h._events is None
    as_of = "2024-09-30T00:00:00Z"
    ActivityReport(window=("2024-07-01T00:00:00Z", "2024-09-30T00:00:00Z")).compute(h, as_of=as_of)
    PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-07-01")).compute(
        h, as_of=as_of
    )
    assert h._events is None
    assert h.until(as_of)._events is None
    assert h.events is h.events  # reading the attribute builds and keeps them
    assert list(h) == list(h.events)


def test_records_of_two_types_with_the_same_keys_get_their_own_fields_sets() -> None:
    """Rows of a DataFrame all have every column; a key a type lacks (holding a missing
    value) is not in its fields-set, even when a record of another type had it first."""
    recs = [
        {"type": "opened", "opportunity_id": "o-1", "at": "2024-01-01T00:00:00Z",
         "stage": "prospecting", "amount": None},
        {"type": "amount_changed", "opportunity_id": "o-1", "at": "2024-01-02T00:00:00Z",
         "stage": None, "amount": "5"},
    ]  # fmt: skip
    opened, changed = History.from_records(recs, scheme=SCHEME).events
    assert opened.model_fields_set == {"type", "opportunity_id", "at", "stage", "amount"}
    assert changed.model_fields_set == {"type", "opportunity_id", "at", "amount"}
