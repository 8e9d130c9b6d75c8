"""StalledDeals: each rule by hand, learned thresholds, merging, properties, bad arguments."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError
from pipelinekit.money import FxRates
from pipelinekit.reports.stalled import StalledDeals, stage_stay_percentiles

SIMPLE = StageScheme.model_validate(
    {
        "name": "simple",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "50"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
AS_OF = "2024-03-01T00:00:00+00:00"
QUIET = {"next_action": False, "past_close": False}


def ev(type_: str, oid: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "opportunity_id": oid, "at": f"{at}T00:00:00Z", **fields}


def opened(oid: str, at: str, amount: str | None, owner: str, **extra: Any) -> dict[str, Any]:
    currency = "EUR" if amount else None
    return ev("opened", oid, at, stage="lead", amount=amount, currency=currency, owner=owner) | (
        extra
    )


RECORDS = [
    # a: in lead 60 days (2024 is a leap year), idle 60, no next action, close date passed
    opened("a", "2024-01-01", "500", "ann", expected_close="2024-02-20"),
    # b: in lead 10 days, next action overdue
    opened("b", "2024-02-20", "900", "bob"),
    ev("next_action_scheduled", "b", "2024-02-20", due="2024-02-25"),
    # c: a 31-day lead stay, then 29 days in offer, active 2 days ago, owner carl
    opened("c", "2024-01-01", None, "carl"),
    ev("stage_changed", "c", "2024-02-01", stage="offer"),
    ev("activity_logged", "c", "2024-02-28", kind="call"),
    ev("next_action_scheduled", "c", "2024-02-28", due="2024-03-10"),
    # d and e are closed: they only teach stay lengths (lead 10 and 30, offer 10 and 10)
    opened("d", "2024-01-01", "800", "ann"),
    ev("stage_changed", "d", "2024-01-11", stage="offer"),
    ev("stage_changed", "d", "2024-01-21", stage="won"),
    opened("e", "2024-01-01", "100", "ann"),
    ev("stage_changed", "e", "2024-01-31", stage="offer"),
    ev("stage_changed", "e", "2024-02-10", stage="lost"),
]


def history() -> History:
    return History.from_records(RECORDS, scheme=SIMPLE)


def flagged(calc: StalledDeals) -> list[tuple[str, tuple[str, ...]]]:
    return [(d.opportunity_id, d.codes) for d in calc.compute(history(), as_of=AS_OF).deals]


def test_default_rules_flag_missing_or_overdue_next_actions_and_passed_close_dates() -> None:
    # sorted by amount: b 900 before a 500; c has a future next action and no close date
    assert flagged(StalledDeals()) == [
        ("b", ("next_action_overdue",)),
        ("a", ("no_next_action", "past_close")),
    ]


def test_fixed_days_in_stage_per_stage_or_for_all() -> None:
    assert flagged(StalledDeals(max_days_in_stage={"lead": 30}, **QUIET)) == [
        ("a", ("over_max_days",))
    ]
    assert flagged(StalledDeals(max_days_in_stage=20, **QUIET)) == [
        ("a", ("over_max_days",)),
        ("c", ("over_max_days",)),
    ]


def test_stage_percentile_learns_from_completed_stays() -> None:
    # lead stays 10, 30, 31 -> P50 = 30; offer stays 10, 10 -> P50 = 10
    calc = StalledDeals(stage_percentile=50, **QUIET)
    r = calc.compute(history(), as_of=AS_OF)
    assert [(t.stage, t.days, t.stays) for t in r.thresholds] == [
        ("lead", 30.0, 3),
        ("offer", 10.0, 2),
    ]
    assert calc.thresholds_ == r.thresholds
    assert r.learned_days() == {"lead": 30.0, "offer": 10.0}
    assert [(d.opportunity_id, d.days_in_stage) for d in r.deals] == [("a", 60.0), ("c", 29.0)]
    assert "50 % of past stays" in r.deals[1].reasons[0].text


def test_idle_days_are_reset_by_any_event() -> None:
    r = StalledDeals(idle_days=20, **QUIET).compute(history(), as_of=AS_OF)
    assert [(d.opportunity_id, d.days_idle) for d in r.deals] == [("a", 60.0)]


def test_owners_not_in_the_active_list_are_flagged() -> None:
    r = StalledDeals(active_owners=("ann", "bob"), **QUIET).compute(history(), as_of=AS_OF)
    assert [(d.opportunity_id, d.owner, d.codes) for d in r.deals] == [
        ("c", "carl", ("inactive_owner",))
    ]
    assert r.deals[0].reasons[0].text == "owner 'carl' is not active"


def test_per_stage_summary_and_reason_counts() -> None:
    r = StalledDeals(max_days_in_stage=20).compute(history(), as_of=AS_OF)
    assert r.stage_records() == [
        {"stage": "lead", "open": 2, "flagged": 2},
        {"stage": "offer", "open": 1, "flagged": 1},
    ]
    assert dict(r.reasons) == {
        "over_max_days": 2,
        "no_next_action": 1,
        "next_action_overdue": 1,
        "past_close": 1,
    }
    assert r.to_records()[1]["reasons"] == "over_max_days, no_next_action, past_close"


def test_amounts_in_a_reporting_currency() -> None:
    records = [opened("u", "2024-01-01", "100", "ann") | {"currency": "USD"}]
    h = History.from_records(records, scheme=SIMPLE)
    rates = FxRates.static("EUR", {"USD": "0.9"})
    r = StalledDeals(currency="EUR", rates=rates).compute(h, as_of=AS_OF)
    assert (r.deals[0].amount, r.deals[0].currency) == (Decimal("90.0"), "EUR")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_days_in_stage": -1}, "max_days_in_stage"),
        ({"max_days_in_stage": {"lead": "x"}}, "max_days_in_stage"),
        ({"max_days_in_stage": float("nan")}, "max_days_in_stage"),
        ({"stage_percentile": 0}, "stage_percentile"),
        ({"stage_percentile": 100}, "stage_percentile"),
        ({"stage_percentile": True}, "stage_percentile"),
        ({"idle_days": -3}, "idle_days"),
        ({"next_action": "yes"}, "next_action"),
        ({"past_close": 1}, "past_close"),
        ({"active_owners": "ann"}, "active_owners"),
        ({"currency": "eur"}, "currency"),
        ({"rates": FxRates.static("EUR", {"USD": "1"})}, "currency"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        StalledDeals(**kwargs)
    assert err.value.argument == argument


@pytest.mark.parametrize("stage", ["nope", "won"])
def test_limits_for_unknown_or_closed_stages_are_named(stage: str) -> None:
    with pytest.raises(ArgumentError) as err:
        StalledDeals(max_days_in_stage={stage: 3}).compute(history(), as_of=AS_OF)
    assert err.value.argument == "max_days_in_stage"
    with pytest.raises(ArgumentError) as err:
        stage_stay_percentiles(history(), as_of=AS_OF, percentile=120)
    assert err.value.argument == "percentile"


def test_merge_refuses_learned_thresholds_and_different_settings() -> None:
    learned = StalledDeals(stage_percentile=90).compute(history(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        learned.merge(learned)
    assert err.value.argument == "stage_percentile"
    fixed = StalledDeals(idle_days=3).compute(history(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        fixed.merge(StalledDeals(idle_days=4).compute(history(), as_of=AS_OF))
    assert err.value.argument == "other"


histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
instants = st.sampled_from(["2024-05-01T00:00:00+00:00", "2024-09-30T00:00:00+00:00"])


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=instants)
def test_summary_reconciles_with_the_snapshot(history: History, as_of: str) -> None:
    r = StalledDeals(max_days_in_stage=15, idle_days=10).compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    assert sum(s.open for s in r.stages) == len(pipe.open())
    assert sum(s.flagged for s in r.stages) == len(r.deals)
    assert all(d.opportunity_id in pipe.open() for d in r.deals)
    amounts = [d.amount or Decimal(-1) for d in r.deals]
    assert amounts == sorted(amounts, reverse=True)


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=instants)
def test_no_look_ahead(history: History, as_of: str) -> None:
    for calc in (StalledDeals(idle_days=7), StalledDeals(stage_percentile=80)):
        assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(history=histories, as_of=instants, seed=st.integers(0, 1000))
def test_merge_over_a_split_equals_the_whole(history: History, as_of: str, seed: int) -> None:
    ids = list(history.opportunity_ids)
    random.Random(seed).shuffle(ids)
    cut = len(ids) // 2
    calc = StalledDeals(max_days_in_stage=20, idle_days=10, active_owners=("ann", "bob"))
    left = calc.compute(history.for_opportunities(ids[:cut]), as_of=as_of)
    right = calc.compute(history.for_opportunities(ids[cut:]), as_of=as_of)
    assert left.merge(right) == calc.compute(history, as_of=as_of)


@settings(max_examples=25, deadline=None)
@given(history=histories, seed=st.integers(0, 1000))
def test_learned_thresholds_passed_to_partitions_flag_the_same_deals(
    history: History, seed: int
) -> None:
    as_of = "2024-09-30T00:00:00+00:00"
    whole = StalledDeals(stage_percentile=75, **QUIET).compute(history, as_of=as_of)
    ids = list(history.opportunity_ids)
    random.Random(seed).shuffle(ids)
    calc = StalledDeals(max_days_in_stage=whole.learned_days(), **QUIET)
    left = calc.compute(history.for_opportunities(ids[:10]), as_of=as_of)
    right = calc.compute(history.for_opportunities(ids[10:]), as_of=as_of)
    merged = left.merge(right)
    assert [d.opportunity_id for d in merged.deals] == [d.opportunity_id for d in whole.deals]
