"""History: ingestion, ordering, de-duplication, replay, as_of/until, and every bad path."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipelinekit as pk
from pipelinekit import (
    ArgumentError,
    CurrencyError,
    DuplicateEventError,
    History,
    PipelineError,
    RecordError,
    StageScheme,
    TransitionError,
    demo,
    event_from_record,
)

SCHEME = StageScheme.model_validate(
    {
        "name": "t",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "40"},
            {"key": "nego", "label": "Negotiation", "weight": "70"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)


def rec(type_: str, oid: str, day: int, **fields: Any) -> dict[str, Any]:
    at = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(days=day)
    return {"type": type_, "opportunity_id": oid, "at": at.isoformat(), **fields}


def t(day: float) -> datetime:
    return datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(days=day)


def opened(oid: str = "o-1", day: int = 0, **fields: Any) -> dict[str, Any]:
    fields.setdefault("stage", "lead")
    fields.setdefault("amount", "1000")
    fields.setdefault("currency", "EUR")
    return rec("opened", oid, day, **fields)


# -- the happy path ---------------------------------------------------------------------


def test_state_follows_every_record_type() -> None:
    records = [
        opened(owner="ann", account="acme", product="x", source="web", name="Deal"),
        rec("stage_changed", "o-1", 2, stage="offer"),
        rec("amount_changed", "o-1", 3, amount="1500.50"),
        rec("close_date_changed", "o-1", 4, expected_close="2024-03-31"),
        rec("probability_set", "o-1", 5, probability="55"),
        rec("owner_changed", "o-1", 6, owner="bob"),
        rec("activity_logged", "o-1", 7, kind="call", note="called"),
        rec("next_action_scheduled", "o-1", 8, due="2024-01-20", note="send offer"),
    ]
    opp = History.from_records(records, scheme=SCHEME).as_of(t(30))["o-1"]
    assert opp.stage == "offer"
    assert opp.stage_entered_at == t(2)
    assert opp.amount == Decimal("1500.50")
    assert opp.currency == "EUR"
    assert opp.expected_close.isoformat() == "2024-03-31"  # type: ignore[union-attr]
    assert opp.probability == Decimal("55")
    assert opp.weighted_amount == Decimal("1500.50") * Decimal("55") / 100
    assert (opp.owner, opp.account, opp.product, opp.source, opp.name) == (
        "bob",
        "acme",
        "x",
        "web",
        "Deal",
    )
    assert [a.kind for a in opp.activities] == ["call"]
    assert opp.next_action is not None and opp.next_action.note == "send offer"
    assert [(v.stage, v.entered_at, v.exited_at) for v in opp.path] == [
        ("lead", t(0), t(2)),
        ("offer", t(2), None),
    ]
    assert opp.last_event_at == t(8)
    assert opp.is_open and opp.closed_at is None


def test_probability_override_cleared_falls_back_to_stage_weight() -> None:
    records = [
        opened(),
        rec("probability_set", "o-1", 1, probability="90"),
        rec("probability_set", "o-1", 2, probability=None),
    ]
    h = History.from_records(records, scheme=SCHEME)
    assert h.as_of(t(1))["o-1"].probability == Decimal("90")
    assert h.as_of(t(3))["o-1"].probability == Decimal("10")


def test_closing_records_who_and_when_and_field_changes_after_close_are_kept() -> None:
    records = [
        opened(actor="ann"),
        rec("stage_changed", "o-1", 5, stage="won", actor="bob"),
        rec("amount_changed", "o-1", 6, amount="900"),
    ]
    opp = History.from_records(records, scheme=SCHEME).as_of(t(10))["o-1"]
    assert opp.is_won and opp.outcome == "won"
    assert (opp.opened_by, opp.closed_by, opp.closed_at) == ("ann", "bob", t(5))
    assert opp.amount == Decimal("900")


def test_as_of_excludes_later_events_and_later_opportunities() -> None:
    records = [opened("a", 0), rec("stage_changed", "a", 5, stage="nego"), opened("b", 7)]
    h = History.from_records(records, scheme=SCHEME)
    pipe = h.as_of(t(5))
    assert list(pipe) == ["a"] and pipe["a"].stage == "nego"
    assert h.as_of(t(4.99))["a"].stage == "lead"
    assert len(h.as_of(t(-1))) == 0
    assert set(h.as_of(t(7))) == {"a", "b"}


def test_until_keeps_events_at_exactly_t_and_drops_later() -> None:
    records = [opened("a", 0), rec("stage_changed", "a", 5, stage="nego")]
    h = History.from_records(records, scheme=SCHEME)
    assert len(h.until(t(5))) == 2
    assert len(h.until(t(4))) == 1
    assert h.until(t(4)).ingest.accounted


def test_ties_keep_input_order() -> None:
    same = "2024-01-02T00:00:00+00:00"
    records = [
        opened(),
        {"type": "amount_changed", "opportunity_id": "o-1", "at": same, "amount": "1"},
        {"type": "amount_changed", "opportunity_id": "o-1", "at": same, "amount": "2"},
    ]
    h = History.from_records(records, scheme=SCHEME)
    assert h.as_of(same)["o-1"].amount == Decimal("2")


def test_out_of_order_input_is_sorted_by_time() -> None:
    records = [rec("stage_changed", "o-1", 3, stage="offer"), opened()]
    h = History.from_records(records, scheme=SCHEME)
    assert [e.type for e in h.events] == ["opened", "stage_changed"]


def test_timestamps_in_different_zones_are_ordered_by_instant() -> None:
    records = [
        {**opened(), "at": "2024-01-01T10:00:00+02:00"},  # 08:00 UTC
        {
            "type": "stage_changed",
            "opportunity_id": "o-1",
            "at": "2024-01-01T09:00:00+00:00",
            "stage": "offer",
        },
    ]
    h = History.from_records(records, scheme=SCHEME)
    assert h.as_of("2024-01-01T09:30:00Z")["o-1"].stage == "offer"


def test_naive_timestamps_take_the_zone_the_caller_names() -> None:
    records = [{**opened(), "at": "2024-03-01"}]
    h = History.from_records(records, scheme=SCHEME, assume_tz=ZoneInfo("Europe/Warsaw"))
    assert h.events[0].at.isoformat() == "2024-03-01T00:00:00+01:00"


def test_reopen_allowed_by_scheme_clears_closing() -> None:
    scheme = SCHEME.model_copy(update={"reopen": True})
    scheme = StageScheme.model_validate(scheme.model_dump())
    records = [
        opened(),
        rec("stage_changed", "o-1", 1, stage="lost"),
        rec("stage_changed", "o-1", 2, stage="offer"),
    ]
    opp = History.from_records(records, scheme=scheme).as_of(t(3))["o-1"]
    assert opp.is_open and opp.closed_at is None
    assert [v.stage for v in opp.path] == ["lead", "lost", "offer"]


def test_moving_to_the_same_stage_changes_nothing_but_the_reason() -> None:
    records = [opened(), rec("stage_changed", "o-1", 1, stage="lead", reason="still")]
    opp = History.from_records(records, scheme=SCHEME).as_of(t(2))["o-1"]
    assert len(opp.path) == 1 and opp.stage_entered_at == t(0)
    assert opp.stage_reason == "still"


def test_pipeline_views_and_totals() -> None:
    records = [
        opened("a", amount="1000"),
        opened("b", 1, amount="3000", stage="nego"),
        opened("c", 2),
        rec("stage_changed", "c", 3, stage="lost"),
    ]
    pipe = History.from_records(records, scheme=SCHEME).as_of(t(10))
    assert set(pipe.open()) == {"a", "b"}
    assert set(pipe.lost()) == {"c"} and len(pipe.won()) == 0
    assert pipe.total_amount() == Decimal("4000")
    assert pipe.weighted_total() == Decimal("100") + Decimal("2100")


def test_weighted_total_of_mixed_currencies_is_a_currency_error() -> None:
    records = [opened("a"), opened("b", 1, currency="USD")]
    pipe = History.from_records(records, scheme=SCHEME).as_of(t(10))
    with pytest.raises(CurrencyError, match="EUR', 'USD"):
        pipe.weighted_total()


def test_weighted_total_without_weights_says_it_is_unavailable() -> None:
    data = SCHEME.model_dump()
    for s in data["stages"]:
        s["weight"] = None
    scheme = StageScheme.model_validate(data)
    pipe = History.from_records([opened()], scheme=scheme).as_of(t(1))
    assert pipe["o-1"].weighted_amount is None
    with pytest.raises(ArgumentError, match="weighted totals are unavailable"):
        pipe.weighted_total()


def test_unknown_opportunity_lookup_is_a_typed_key_error() -> None:
    pipe = History.from_records([opened()], scheme=SCHEME).as_of(t(1))
    with pytest.raises(pk.UnknownOpportunityError, match="no opportunity 'zzz'") as info:
        pipe["zzz"]
    assert isinstance(info.value, KeyError) and isinstance(info.value, PipelineError)
    assert pipe.get("zzz") is None


def test_record_round_trip_through_to_records_is_lossless() -> None:
    h = demo.demo_history(opportunities=30, seed=3)
    again = History.from_records(h.to_records(), scheme=h.scheme)
    assert again.events == h.events
    for event in h.events:
        assert event_from_record(event.model_dump(mode="json")) == event


def test_empty_history_is_fine() -> None:
    h = History.from_records([], scheme=SCHEME)
    assert len(h) == 0 and h.start is None and len(h.as_of(t(0))) == 0


# -- bad input: strict mode raises, naming the record ---------------------------------


def strict_error(records: list[Any]) -> RecordError:
    with pytest.raises(RecordError) as info:
        History.from_records(records, scheme=SCHEME)
    return info.value


def test_missing_field_names_index_ids_and_field() -> None:
    err = strict_error([opened(), {**rec("stage_changed", "o-1", 1), "event_id": "e-9"}])
    assert (err.index, err.event_id, err.opportunity_id, err.field) == (1, "e-9", "o-1", "stage")
    assert "record 1 (event_id 'e-9', opportunity 'o-1'), field 'stage'" in str(err)


def test_wrong_type_names_the_field() -> None:
    err = strict_error([opened(amount="lots")])
    assert (err.index, err.field) == (0, "amount")
    assert "'lots'" in str(err)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "-5"),
        ("amount", "NaN"),
        ("amount", float("inf")),
        ("amount", "1e30"),
        ("currency", "euro"),
        ("probability", "101"),
        ("opportunity_id", ""),
        ("expected_close", "2024-02-30"),
    ],
)
def test_out_of_range_values_are_rejected_with_the_field(field: str, value: object) -> None:
    err = strict_error([opened(**{field: value})])
    assert err.field == field


def test_unknown_record_type_lists_the_known_ones() -> None:
    err = strict_error([{"type": "deleted", "opportunity_id": "o-1", "at": t(0).isoformat()}])
    assert err.field == "type" and "stage_changed" in err.reason


def test_record_without_type_is_rejected() -> None:
    assert strict_error([{"opportunity_id": "o-1"}]).field == "type"


def test_non_mapping_record_is_rejected() -> None:
    err = strict_error([opened(), "not a record"])
    assert err.index == 1 and "mapping" in err.reason


def test_unknown_field_is_rejected_not_ignored() -> None:
    assert strict_error([opened(colour="red")]).field == "colour"


def test_naive_timestamp_is_an_error_without_assume_tz() -> None:
    err = strict_error([{**opened(), "at": "2024-01-05T10:00:00"}])
    assert err.field == "at" and "assume_tz" in err.reason


def test_unknown_stage_is_rejected_with_the_scheme_keys() -> None:
    err = strict_error([opened(stage="ghost")])
    assert err.field == "stage" and "'lead'" in err.reason and err.index == 0


def test_backward_move_under_forward_policy_is_a_transition_error() -> None:
    err = strict_error([opened(stage="nego"), rec("stage_changed", "o-1", 1, stage="lead")])
    assert isinstance(err, TransitionError)
    assert (err.from_stage, err.to_stage, err.rule, err.index) == ("nego", "lead", "forward", 1)
    assert "illegal move 'nego' -> 'lead'" in str(err)


def test_leaving_a_lost_stage_without_reopen_is_a_transition_error() -> None:
    err = strict_error(
        [
            opened(),
            rec("stage_changed", "o-1", 1, stage="lost"),
            rec("stage_changed", "o-1", 2, stage="offer"),
        ]
    )
    assert isinstance(err, TransitionError) and err.rule == "reopen"


def test_event_for_an_opportunity_never_opened_is_a_transition_error() -> None:
    err = strict_error([rec("amount_changed", "ghost", 1, amount="5")])
    assert isinstance(err, TransitionError)
    assert (err.rule, err.opportunity_id, err.index) == ("not-opened", "ghost", 0)


def test_event_before_the_opening_is_not_opened() -> None:
    err = strict_error([opened(day=5), rec("amount_changed", "o-1", 1, amount="5")])
    assert isinstance(err, TransitionError) and err.rule == "not-opened" and err.index == 1


def test_second_opened_is_a_transition_error() -> None:
    err = strict_error([opened(), opened(day=1)])
    assert isinstance(err, TransitionError) and err.rule == "already-opened" and err.index == 1


def test_duplicate_event_id_with_same_content_is_a_duplicate() -> None:
    first = opened(event_id="e-1")
    h = History.from_records([first, dict(first)], scheme=SCHEME)
    assert len(h) == 1
    (dup,) = h.ingest.duplicates
    assert (dup.index, dup.first_index, dup.event_id) == (1, 0, "e-1")


def test_duplicate_event_id_with_other_content_is_an_error() -> None:
    err = strict_error([opened(event_id="e-1"), opened(event_id="e-1", amount="5")])
    assert isinstance(err, DuplicateEventError)
    assert (err.index, err.field, err.event_id) == (1, "event_id", "e-1")


def test_records_that_are_not_a_list_of_dicts_are_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as info:
        History.from_records({"type": "opened"}, scheme=SCHEME)  # type: ignore[arg-type]
    assert info.value.argument == "records"


def test_scheme_that_is_not_a_scheme_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as info:
        History.from_records([], scheme={"name": "x"})  # type: ignore[arg-type]
    assert info.value.argument == "scheme"


def test_bad_mode_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as info:
        History.from_records([], scheme=SCHEME, mode="loose")  # type: ignore[arg-type]
    assert info.value.argument == "mode"


def test_naive_as_of_is_an_argument_error() -> None:
    h = History.from_records([opened()], scheme=SCHEME)
    with pytest.raises(ArgumentError, match="no timezone"):
        h.as_of(datetime(2024, 1, 1))
    with pytest.raises(ArgumentError):
        h.until("yesterday")


def test_from_events_rejects_plain_dicts() -> None:
    with pytest.raises(RecordError, match="from_records") as info:
        History.from_events([opened()], scheme=SCHEME)  # type: ignore[list-item]
    assert info.value.index == 0


# -- lenient mode accounts for every record -----------------------------------------------


def test_lenient_mode_reports_each_record_as_applied_duplicate_or_rejected() -> None:
    records: list[Any] = [
        opened(event_id="e-1"),
        opened(event_id="e-1"),  # duplicate
        rec("stage_changed", "o-1", 1, stage="ghost"),  # unknown stage
        rec("stage_changed", "o-1", 2, stage="nego"),
        rec("stage_changed", "o-1", 3, stage="offer"),  # backwards
        {"type": "opened"},  # malformed
        42,  # not a record
        opened("o-2", 4, event_id="e-1"),  # conflicting event id
        rec("stage_changed", "o-2", 5, stage="won"),  # o-2 never opened (rejected)
    ]
    h = History.from_records(records, scheme=SCHEME, mode="lenient")
    report = h.ingest
    assert report.total == 9 and report.applied == 2 and report.accounted
    assert [d.index for d in report.duplicates] == [1]
    assert [r.index for r in report.rejected] == [2, 4, 5, 6, 7, 8]
    reasons = {r.index: r.error for r in report.rejected}
    assert reasons[2].field == "stage"
    assert isinstance(reasons[4], TransitionError)
    assert isinstance(reasons[7], DuplicateEventError)
    assert isinstance(reasons[8], TransitionError) and reasons[8].rule == "not-opened"
    assert report.rejected[0].record is records[2]
    assert h.as_of(t(10))["o-1"].stage == "nego"


# -- properties ---------------------------------------------------------------------------

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=12, seed=s))
instants = st.integers(-5, 380).map(lambda d: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=d))


@settings(max_examples=30, deadline=None)
@given(histories, instants)
def test_as_of_equals_replaying_only_events_at_or_before_t(h: History, when: datetime) -> None:
    prefix = [r for r, e in zip(h.to_records(), h.events, strict=True) if e.at <= when]
    assert History.from_records(prefix, scheme=h.scheme).as_of(when) == h.as_of(when)


@settings(max_examples=30, deadline=None)
@given(histories, instants)
def test_until_then_as_of_equals_as_of(h: History, when: datetime) -> None:
    assert h.until(when).as_of(when) == h.as_of(when)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False))
def test_shuffled_input_with_distinct_timestamps_gives_the_same_history(
    seed: int, rnd: random.Random
) -> None:
    records = demo.demo_records(opportunities=12, seed=seed)
    for i, r in enumerate(records):  # make every timestamp distinct, keeping the order
        r["at"] = (datetime.fromisoformat(r["at"]) + timedelta(microseconds=i)).isoformat()
    shuffled = list(records)
    rnd.shuffle(shuffled)
    scheme = pk.schemes.get("salesforce")
    a = History.from_records(records, scheme=scheme)
    b = History.from_records(shuffled, scheme=scheme)
    assert a.events == b.events
    assert a.as_of(a.end or t(0)) == b.as_of(b.end or t(0))


@settings(max_examples=20, deadline=None)
@given(histories)
def test_replay_is_deterministic(h: History) -> None:
    again = History.from_records(h.to_records(), scheme=h.scheme)
    end = h.end or t(0)
    assert again.as_of(end) == h.as_of(end)
    mid = end - timedelta(days=100)
    assert again.as_of(mid) == h.as_of(mid)


@settings(max_examples=30, deadline=None)
@given(histories, st.randoms(use_true_random=False), st.integers(0, 6))
def test_lenient_mode_accounts_for_every_record(
    h: History, rnd: random.Random, breakages: int
) -> None:
    records: list[Any] = h.to_records()
    for _ in range(breakages):
        i = rnd.randrange(len(records))
        choice = rnd.randrange(4)
        if not isinstance(records[i], dict):
            continue
        if choice == 0:
            records[i] = {**records[i], "at": "not a time"}
        elif choice == 1:
            records.insert(i, dict(records[i]))  # an exact repeat (no event_id: applied twice)
        elif choice == 2:
            records[i] = {**records[i], "opportunity_id": "ghost"}
        else:
            records.insert(i, 7)
    result = History.from_records(records, scheme=h.scheme, mode="lenient")
    r = result.ingest
    assert r.total == len(records)
    assert r.applied + len(r.duplicates) + len(r.rejected) == r.total
    assert r.applied == len(result.events)


def test_partitions_keep_each_opportunity_whole_and_lose_nothing() -> None:
    h = demo.demo_history(opportunities=40, seed=5)
    parts = h.partition(4)
    ids = [set(p.opportunity_ids) for p in parts]
    assert sum(len(i) for i in ids) == len(h.opportunity_ids)
    assert set().union(*ids) == set(h.opportunity_ids)
    assert sum(len(p) for p in parts) == len(h)
    # every event is in exactly one part (frozen events hash by value)
    assert Counter(e for p in parts for e in p.events) == Counter(h.events)
    for part, owned in zip(parts, ids, strict=True):
        assert all(pk.partition_of(oid, 4) == parts.index(part) for oid in owned)
        end = h.end or t(0)
        whole = h.as_of(end)
        assert all(part.as_of(end)[oid] == whole[oid] for oid in owned)


def test_partition_count_must_be_a_positive_integer() -> None:
    with pytest.raises(ArgumentError) as info:
        pk.partition_of("o-1", 0)
    assert info.value.argument == "partitions"
    with pytest.raises(ArgumentError):
        History.from_records([], scheme=SCHEME).partition(0)


def test_ingestion_restores_the_callers_garbage_collector_setting() -> None:
    import gc

    records = demo.demo_records(opportunities=5, seed=1)
    scheme = pk.schemes.get("salesforce")
    was = gc.isenabled()
    try:
        gc.enable()
        History.from_records(records, scheme=scheme).as_of("2024-06-01T00:00:00Z")
        assert gc.isenabled()
        gc.disable()
        History.from_records(records, scheme=scheme).as_of("2024-06-01T00:00:00Z")
        assert not gc.isenabled()
        gc.enable()
        with pytest.raises(RecordError):
            History.from_records([{"type": "x"}], scheme=scheme)
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_durations_across_a_daylight_saving_change_are_elapsed_time() -> None:
    # Warsaw moved clocks forward at 02:00 on 2024-03-31: 00:00 -> 04:00 local is 3 hours
    records = [
        {**opened(), "at": "2024-03-31T00:00:00"},
        {
            "type": "stage_changed",
            "opportunity_id": "o-1",
            "at": "2024-03-31T04:00:00",
            "stage": "offer",
        },
    ]
    h = History.from_records(records, scheme=SCHEME, assume_tz=ZoneInfo("Europe/Warsaw"))
    visit = h.as_of("2024-04-01T00:00:00Z")["o-1"].path[0]
    assert visit.exited_at is not None
    assert visit.exited_at - visit.entered_at == timedelta(hours=3)
    assert h.events[0].at.isoformat() == "2024-03-31T00:00:00+01:00"
    assert h.events[1].at.isoformat() == "2024-03-31T04:00:00+02:00"


def test_zoneinfo_datetimes_given_directly_become_fixed_offsets() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    start = datetime(2024, 3, 30, 12, tzinfo=warsaw)
    event = event_from_record({**opened(), "at": start})
    assert event.at == start
    assert event.at.utcoffset() == timedelta(hours=1)
    assert event.at.tzinfo is not warsaw
