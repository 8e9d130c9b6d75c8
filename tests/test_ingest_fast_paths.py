"""The speed-motivated internals of ingestion must not change any observable behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pipelinekit as pk
from pipelinekit.opportunity import Activity, StageVisit

SCHEME = pk.schemes.get("salesforce")


def _records() -> list[dict[str, object]]:
    return [
        {
            "type": "opened",
            "opportunity_id": "a",
            "at": "2024-01-05T10:00:00+00:00",
            "stage": "prospecting",
            "amount": "100.50",
            "currency": "USD",
            "event_id": "1",
        },
        {
            "type": "opened",
            "opportunity_id": "b",
            "at": "2024-01-05T11:30:00+01:00",
            "stage": "qualification",
            "event_id": "2",
        },
        {
            "type": "activity_logged",
            "opportunity_id": "a",
            "at": "2024-01-06T09:00:00Z",
            "kind": "call",
            "event_id": "3",
        },
        {
            "type": "stage_changed",
            "opportunity_id": "a",
            "at": "2024-01-07T09:00:00-05:00",
            "stage": "closed-lost",
            "reason": "price",
            "event_id": "4",
        },
        {
            "type": "next_action_scheduled",
            "opportunity_id": "b",
            "at": "2024-01-06T08:00:00+00:00",
            "due": "2024-02-01",
            "event_id": "5",
        },
    ]


def test_mixed_offsets_are_ordered_by_instant_and_keep_their_offsets() -> None:
    h = pk.History.from_records(_records(), scheme=SCHEME)
    times = [e.at for e in h.events]
    assert times == sorted(times)
    # b opened at 10:30 UTC, after a (10:00 UTC), although its local time reads 11:30
    assert [e.opportunity_id for e in h.events][:2] == ["a", "b"]
    offsets = {e.event_id: e.at.utcoffset() for e in h.events}
    assert offsets["2"] == timedelta(hours=1)
    assert offsets["4"] == timedelta(hours=-5)
    assert h.to_records()[1]["at"] == "2024-01-05T11:30:00+01:00"


def test_bulk_and_single_validation_give_equal_events() -> None:
    h = pk.History.from_records(_records(), scheme=SCHEME)
    singles = sorted((pk.event_from_record(r) for r in _records()), key=lambda e: e.at)
    assert list(h.events) == singles
    assert [repr(e) for e in h.events] == [repr(e) for e in singles]
    assert [e.model_fields_set for e in h.events] == [e.model_fields_set for e in singles]


def test_shared_fields_sets_do_not_leak_between_copies() -> None:
    h = pk.History.from_records(_records(), scheme=SCHEME)
    first, *_ = (e for e in h.events if e.type == "opened")
    copy = first.model_copy(update={"name": "renamed"})
    assert "name" in copy.model_fields_set
    assert all("name" not in e.model_fields_set for e in h.events)


def test_frozen_states_match_model_construct() -> None:
    h = pk.History.from_records(_records(), scheme=SCHEME)
    opp = h.as_of("2024-02-01T00:00:00Z")["a"]
    reference = pk.Opportunity.model_construct(**dict(opp))
    assert opp == reference
    assert repr(opp) == repr(reference)
    assert opp.model_fields_set == reference.model_fields_set
    assert opp.model_dump(mode="json") == reference.model_dump(mode="json")
    visit = opp.path[0]
    assert visit == StageVisit.model_construct(**dict(visit))
    assert repr(visit) == repr(StageVisit.model_construct(**dict(visit)))
    activity = opp.activities[0]
    assert activity == Activity.model_construct(**dict(activity))
    assert opp.model_copy(update={"owner": "x"}).model_fields_set == opp.model_fields_set
    assert pk.Opportunity.model_validate(opp.model_dump()) == opp


def test_as_of_with_datetimes_of_other_tzinfo_types() -> None:
    h = pk.History.from_records(_records(), scheme=SCHEME)
    at = datetime(2024, 1, 7, 14, 0, tzinfo=UTC)  # exactly the closed-lost instant
    assert h.as_of(at)["a"].is_lost
    before = datetime(2024, 1, 7, 8, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert h.as_of(before)["a"].is_open
    assert len(h.until(before)) == 4


def test_trusted_deal_forecasts_equal_validated_ones() -> None:
    """Forecasters build their per-deal rows without validating again: each must equal
    the row validation builds from the same arguments, fields-set included."""
    from pipelinekit import demo
    from pipelinekit.forecasts import HistoricalForecast, OutcomeDistribution, WeightedForecast
    from pipelinekit.forecasts.result import DealForecast

    history = demo.demo_history(opportunities=60, seed=7)
    every = set(DealForecast.model_fields)
    for forecaster, given in (
        (WeightedForecast(), every),
        (OutcomeDistribution(), every),
        (HistoricalForecast(), every - {"category"}),  # as DealForecast(...) was called
    ):
        deals = forecaster.compute(history, as_of="2024-09-30T00:00:00Z").deals  # type: ignore[attr-defined]
        assert deals
        for deal in deals:
            validated = DealForecast(**{k: getattr(deal, k) for k in given})
            assert deal == validated
            assert repr(deal) == repr(validated)
            assert deal.model_fields_set == validated.model_fields_set == given
