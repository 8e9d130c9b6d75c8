"""Velocity: hand-computed stage times, stage properties, cycles and pipeline velocity."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from _small_histories import AS_OF, FIVE, SCHEME, at, five, moved, opened
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.calculators import compute_partitioned
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.money import FxRates
from pipelinekit.reports.velocity import Velocity, percentile

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
as_ofs = st.sampled_from(["2024-03-15T00:00:00Z", "2024-07-01T12:00:00Z", "2024-12-31T00:00:00Z"])


def test_time_in_stage_counts_completed_stays_only_by_default() -> None:
    v = Velocity().compute(five(), as_of=AS_OF)
    lead, offer, contract = v.stage("lead"), v.stage("offer"), v.stage("contract")
    # lead stays: d1 2, d2 2, d3 2, d4 1, d5 1 days
    assert lead.durations == (1.0, 1.0, 2.0, 2.0, 2.0)
    assert (lead.stays, lead.median_days, lead.mean_days, lead.p90_days) == (5, 2.0, 1.6, 2.0)
    # offer: d1 3, d3 2; d5's stay is still running and left out
    assert (offer.stays, offer.running, offer.median_days, offer.p90_days) == (2, 0, 2.5, 3.0)
    # contract: d1 5, d2 4
    assert (contract.stays, contract.median_days, contract.mean_days) == (2, 4.5, 4.5)
    assert v.stage("won").stays == 0
    assert v.stage("won").median_days is None


def test_running_stays_of_open_deals_can_be_included() -> None:
    v = Velocity(include_open_stays=True).compute(five(), as_of=AS_OF)
    offer = v.stage("offer")
    # d5 entered offer on day 5 and is still there on day 31: 26 days
    assert offer.durations == (2.0, 3.0, 26.0)
    assert (offer.stays, offer.running, offer.median_days) == (3, 1, 3.0)
    assert offer.mean_days == pytest.approx(31 / 3)
    assert offer.p90_days == 26.0
    # closed deals' final stays never run
    assert v.stage("won").stays == 0


def test_sales_cycles_and_pipeline_velocity_by_hand() -> None:
    v = Velocity().compute(five(), as_of=AS_OF)
    # won: d1 10 days, d2 6 days; lost: d3 4 days, d4 1 day
    assert v.won_cycles == (6.0, 10.0)
    assert (v.won_cycle_median_days, v.won_cycle_mean_days) == (8.0, 8.0)
    assert (v.lost_cycle_median_days, v.lost_cycle_mean_days) == (2.5, 2.5)
    assert (v.open, v.won, v.lost, v.win_rate) == (1, 2, 2, 0.5)
    assert v.average_won_amount == Decimal(2000)
    # 1 open x 0.5 x 2000 EUR / 8 days = 125 EUR a day
    assert v.pipeline_velocity == Decimal(125)
    assert v.currency == "EUR"
    assert v.velocity_note is None
    summary = v.summary_records()[0]
    assert summary["pipeline_velocity"] == Decimal(125)


def test_hubspot_stage_properties_count_re_entries() -> None:
    scheme = StageScheme.model_validate({**SCHEME.model_dump(), "transitions": "any"})
    h = History.from_records(
        [
            opened("x", 0),
            moved("x", 2, "offer"),
            moved("x", 5, "lead"),
            moved("x", 6, "offer"),
        ],
        scheme=scheme,
    )
    v = Velocity().compute(h, as_of=at(10))
    lead, offer = v.properties
    assert (lead.stage, lead.entries, lead.date_entered, lead.date_exited) == (
        "lead",
        2,
        h.as_of(at(0))["x"].opened_at,
        h.as_of(at(10))["x"].path[2].exited_at,
    )
    assert (lead.latest_days, lead.cumulative_days) == (1.0, 3.0)  # 2 + 1 days
    assert offer.entries == 2
    assert offer.date_exited == h.as_of(at(10))["x"].path[1].exited_at  # day 5
    assert (offer.latest_days, offer.cumulative_days) == (4.0, 7.0)  # running 4 + 3 days
    assert v.stage("lead").durations == (1.0, 2.0)


def test_properties_of_an_open_deal() -> None:
    v = Velocity().compute(five(), as_of=AS_OF)
    d5 = [p for p in v.properties if p.opportunity_id == "d5"]
    assert [(p.stage, p.date_exited is None, p.latest_days, p.cumulative_days) for p in d5] == [
        ("lead", False, 1.0, 1.0),
        ("offer", True, 26.0, 26.0),
    ]
    assert v.property_records()[0]["opportunity_id"] == "d1"


def test_window_selects_stays_left_and_deals_closed_in_it() -> None:
    v = Velocity(window=(at(0), at(4.5))).compute(five(), as_of=AS_OF)
    # lead left on days 2 (d1), 3 (d2), 4 (d3), 4 (d4); d5 left it on day 5
    assert v.stage("lead").durations == (1.0, 2.0, 2.0, 2.0)
    assert (v.won, v.lost, v.win_rate) == (0, 1, 0.0)
    assert v.pipeline_velocity is None
    assert v.velocity_note is not None
    assert "no deal was won" in v.velocity_note


def test_running_stays_only_count_when_as_of_is_in_the_window() -> None:
    calc = Velocity(window=(at(0), at(4.5)), include_open_stays=True)
    assert calc.compute(five(), as_of=AS_OF).stage("offer").running == 0
    # on day 4.5 d1 (since day 2) and d3 (since day 4) are in offer
    offer = calc.compute(five(), as_of=at(4.5)).stage("offer")
    assert (offer.running, offer.durations) == (2, (0.5, 2.5))


def test_velocity_is_undefined_without_closed_deals() -> None:
    v = Velocity().compute(five(), as_of=at(3.5))
    assert v.win_rate is None
    assert v.pipeline_velocity is None
    assert v.velocity_note == "no deal was closed in the window: the win rate is undefined"


def test_velocity_is_undefined_without_won_amounts() -> None:
    h = History.from_records([opened("x", 0), moved("x", 1, "won"), opened("y", 0)], scheme=SCHEME)
    v = Velocity().compute(h, as_of=AS_OF)
    assert v.average_won_amount is None
    assert v.pipeline_velocity is None
    assert v.currency is None


def test_mixed_currencies_need_a_reporting_currency_and_rates() -> None:
    records = [dict(r) for r in FIVE]
    records[1]["currency"] = "USD"  # d2's 3000 becomes USD
    h = History.from_records(records, scheme=SCHEME)
    with pytest.raises(CurrencyError):
        Velocity().compute(h, as_of=AS_OF)
    v = Velocity(currency="EUR", rates=FxRates.static("EUR", {"USD": "0.5"})).compute(
        h, as_of=AS_OF
    )
    assert v.average_won_amount == Decimal(1250)  # (1000 + 1500) / 2
    assert v.pipeline_velocity == Decimal("78.125")  # 1 x 0.5 x 1250 / 8


def test_percentile_is_the_nearest_rank_statistical_percentile() -> None:
    assert percentile((5.0,), 0.9) == 5.0
    assert percentile((1.0, 2.0), 0.5) == 1.0
    assert percentile(tuple(float(i) for i in range(1, 21)), 0.9) == 18.0


def test_records_are_stage_rows_without_raw_durations() -> None:
    rows = Velocity().compute(five(), as_of=AS_OF).to_records()
    assert [r["stage"] for r in rows] == list(SCHEME.keys)
    assert "durations" not in rows[0]
    assert rows[0]["median_days"] == 2.0


def test_merge_of_two_halves_equals_the_whole() -> None:
    h = five()
    parts = [h.for_opportunities(["d1", "d4"]), h.for_opportunities(["d2", "d3", "d5"])]
    assert compute_partitioned(Velocity(), parts, as_of=AS_OF) == Velocity().compute(h, as_of=AS_OF)


# -- properties -----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, st.booleans())
def test_events_after_as_of_change_nothing(history: History, as_of: str, running: bool) -> None:
    calc = Velocity(include_open_stays=running)
    assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, st.randoms(use_true_random=False), st.booleans())
def test_merge_over_a_random_split_equals_the_whole(
    history: History, as_of: str, rnd: random.Random, running: bool
) -> None:
    ids = list(history.opportunity_ids)
    left = {i for i in ids if rnd.random() < 0.5}
    calc = Velocity(
        window=("2024-02-01T00:00:00Z", "2024-12-31T00:00:00Z"), include_open_stays=running
    )
    a = calc.compute(history.for_opportunities(left), as_of=as_of)
    b = calc.compute(history.for_opportunities(set(ids) - left), as_of=as_of)
    assert a.merge(b) == calc.compute(history, as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_counts_reconcile_with_the_snapshot(history: History, as_of: str) -> None:
    v = Velocity().compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    assert v.open == len(pipe.open())
    assert (v.won, v.lost) == (len(pipe.won()), len(pipe.lost()))
    exited = sum(1 for o in pipe.values() for visit in o.path if visit.exited_at is not None)
    assert sum(s.stays for s in v.stages) == exited
    assert len(v.properties) == sum(len({visit.stage for visit in o.path}) for o in pipe.values())
    for s in v.stages:
        if s.stays:
            assert s.durations[0] <= s.median_days <= s.p90_days <= s.durations[-1]  # type: ignore[operator]


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"window": (at(3), at(1))}, "window"),
        ({"window": ("2024-01-01", at(1))}, "window"),
        ({"window": [at(1)]}, "window"),
        ({"include_open_stays": "yes"}, "include_open_stays"),
        ({"currency": "eur"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"currency": "EUR", "rates": {"USD": "0.9"}}, "rates"),
        ({"rates": FxRates.static("EUR", {"USD": "0.9"})}, "currency"),
    ],
)
def test_bad_arguments_are_argument_errors(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        Velocity(**kwargs)  # type: ignore[arg-type]
    assert err.value.argument == argument


def test_unknown_stage_row_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as err:
        Velocity().compute(five(), as_of=AS_OF).stage("offerr")
    assert err.value.argument == "stage"


@pytest.mark.parametrize(
    ("other_calc", "other_as_of"),
    [
        (Velocity(include_open_stays=True), AS_OF),
        (Velocity(), at(20)),
        (Velocity(window=(at(0), at(9))), AS_OF),
    ],
)
def test_merge_refuses_different_configuration(other_calc: Velocity, other_as_of: str) -> None:
    a = Velocity().compute(five(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        a.merge(other_calc.compute(five(), as_of=other_as_of))
    assert err.value.argument == "other"


def test_merge_refuses_different_currencies() -> None:
    a = Velocity().compute(five(), as_of=AS_OF)
    usd = History.from_records(
        [opened("u", 0, amount="10", currency="USD"), moved("u", 1, "won")], scheme=SCHEME
    )
    with pytest.raises(CurrencyError):
        a.merge(Velocity().compute(usd, as_of=AS_OF))
