"""Weak areas: Little's-law expectations by hand, flags, properties and bad arguments."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from _small_histories import SCHEME, at, five
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, demo
from pipelinekit.calculators import compute_partitioned
from pipelinekit.errors import ArgumentError
from pipelinekit.reports.weak_areas import WeakAreas

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
as_ofs = st.sampled_from(["2024-03-15T00:00:00Z", "2024-07-01T12:00:00Z", "2024-12-31T00:00:00Z"])
AS_OF = at(12)


def test_expected_counts_by_hand_over_the_whole_history() -> None:
    r = WeakAreas().compute(five(), as_of=AS_OF)
    assert r.span_start == five().as_of(AS_OF)["d1"].opened_at  # day 0
    assert r.span_days == 12.0
    lead, offer, contract = r.stages
    # lead: 5 arrivals in 12 days; stays 2, 2, 2, 1, 1 -> 1.6 days; expected 5/12 x 1.6
    assert (lead.arrivals, lead.stays, lead.mean_days) == (5, 5, 1.6)
    assert lead.arrival_rate_per_day == pytest.approx(5 / 12)
    assert lead.expected_count == pytest.approx(2 / 3)
    assert (lead.actual_count, lead.ratio, lead.status) == (0, 0.0, "deficit")
    # offer: arrivals d1, d3, d5; stays 3 and 2 days; expected 3/12 x 2.5; d5 is there
    assert (offer.arrivals, offer.stays, offer.mean_days) == (3, 2, 2.5)
    assert offer.expected_count == pytest.approx(0.625)
    assert offer.actual_count == 1
    assert offer.ratio == pytest.approx(1.6)
    assert offer.status == "excess"
    # contract: arrivals d2, d1; stays 4 and 5 days; expected 2/12 x 4.5; nobody there
    assert contract.expected_count == pytest.approx(0.75)
    assert (contract.actual_count, contract.status) == (0, "deficit")
    assert contract.difference == pytest.approx(-0.75)


def test_values_use_the_average_amount_of_the_arrivals() -> None:
    r = WeakAreas().compute(five(), as_of=AS_OF)
    lead, offer, contract = r.stages
    assert lead.expected_value == Decimal("960.00")  # 2/3 x 7200/5
    assert offer.expected_value == Decimal("729.17")  # 0.625 x 3500/3
    assert contract.expected_value == Decimal("1500.00")  # 0.75 x 4000/2
    assert [row.actual_value for row in r.stages] == [Decimal(0), Decimal(2000), Decimal(0)]
    assert r.currency == "EUR"


def test_flags_are_sorted_by_the_size_of_the_gap() -> None:
    r = WeakAreas().compute(five(), as_of=AS_OF)
    assert [(row.stage, row.status) for row in r.flagged] == [
        ("contract", "deficit"),  # 0.75 deals short
        ("lead", "deficit"),  # 0.67 deals short
        ("offer", "excess"),  # 0.375 deals too many
    ]
    assert r.flagged[0].severity == pytest.approx(0.75)
    assert "contract deficit" in r._repr_html_()


def test_tolerance_widens_the_band() -> None:
    r = WeakAreas(tolerance=0.7).compute(five(), as_of=AS_OF)
    assert [row.status for row in r.stages] == ["deficit", "ok", "deficit"]
    assert r.stage("offer").severity == 0.0


def test_window_measures_arrivals_and_stays_inside_it() -> None:
    r = WeakAreas(window=(at(0), at(6))).compute(five(), as_of=AS_OF)
    assert r.span_days == 6.0
    lead, offer, contract = r.stages
    assert lead.expected_count == pytest.approx(5 / 6 * 1.6)
    # offer: arrivals days 2, 4, 5; only d1's 3-day stay ended before day 6
    assert (offer.arrivals, offer.stays, offer.mean_days) == (3, 1, 3.0)
    assert offer.expected_count == pytest.approx(1.5)
    assert offer.status == "deficit"
    # contract: no stay ended in the window: no expectation
    assert (contract.status, contract.expected_count, contract.ratio) == ("no data", None, None)
    assert contract.severity == 0.0


def test_window_running_past_as_of_is_cut_at_as_of() -> None:
    whole = WeakAreas().compute(five(), as_of=AS_OF)
    wide = WeakAreas(window=(at(0), at(100))).compute(five(), as_of=AS_OF)
    assert wide.span_end == whole.span_end
    assert wide.stages == whole.stages


def test_a_deal_where_none_is_expected_is_an_excess() -> None:
    # in (5.5, 9]: nobody entered contract, d2 left it after 4 days, d1 is still there
    r = WeakAreas(window=(at(5.5), at(20))).compute(five(), as_of=at(9))
    contract = r.stage("contract")
    assert (contract.arrivals, contract.stays, contract.expected_count) == (0, 1, 0.0)
    assert (contract.actual_count, contract.ratio, contract.status) == (1, None, "excess")
    assert contract.severity == 1.0


def test_empty_history_has_no_data() -> None:
    r = WeakAreas().compute(History.from_records([], scheme=SCHEME), as_of=AS_OF)
    assert r.span_start is None
    assert all(row.status == "no data" for row in r.stages)
    assert r.flagged == ()


def test_records_have_one_row_per_open_stage() -> None:
    rows = WeakAreas().compute(five(), as_of=AS_OF).to_records()
    assert [row["stage"] for row in rows] == ["lead", "offer", "contract"]
    assert "stay_microseconds" not in rows[0]


def test_merge_of_two_halves_equals_the_whole() -> None:
    h = five()
    parts = [h.for_opportunities(["d2", "d5"]), h.for_opportunities(["d1", "d3", "d4"])]
    assert compute_partitioned(WeakAreas(), parts, as_of=AS_OF) == WeakAreas().compute(
        h, as_of=AS_OF
    )


# -- properties -----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_events_after_as_of_change_nothing(history: History, as_of: str) -> None:
    calc = WeakAreas()
    assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, st.randoms(use_true_random=False), st.booleans())
def test_merge_over_a_random_split_equals_the_whole(
    history: History, as_of: str, rnd: random.Random, windowed: bool
) -> None:
    ids = list(history.opportunity_ids)
    left = {i for i in ids if rnd.random() < 0.5}
    window = ("2024-02-01T00:00:00Z", "2024-08-01T00:00:00Z") if windowed else None
    calc = WeakAreas(window=window)
    a = calc.compute(history.for_opportunities(left), as_of=as_of)
    b = calc.compute(history.for_opportunities(set(ids) - left), as_of=as_of)
    assert a.merge(b) == calc.compute(history, as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_actual_figures_reconcile_with_the_snapshot(history: History, as_of: str) -> None:
    r = WeakAreas().compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    assert sum(row.actual_count for row in r.stages) == len(pipe.open())
    assert sum((row.actual_value for row in r.stages), Decimal(0)) == pipe.total_amount()
    severities = [row.severity for row in r.flagged]
    assert severities == sorted(severities, reverse=True)


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"tolerance": -0.1}, "tolerance"),
        ({"tolerance": "0.25"}, "tolerance"),
        ({"tolerance": float("nan")}, "tolerance"),
        ({"tolerance": float("inf")}, "tolerance"),
        ({"tolerance": True}, "tolerance"),
        ({"window": (at(2), at(2))}, "window"),
        ({"window": (at(2), None)}, "window"),
        ({"currency": "EURO"}, "currency"),
    ],
)
def test_bad_arguments_are_argument_errors(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        WeakAreas(**kwargs)  # type: ignore[arg-type]
    assert err.value.argument == argument


def test_unknown_stage_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as err:
        WeakAreas().compute(five(), as_of=AS_OF).stage("won")
    assert err.value.argument == "stage"


@pytest.mark.parametrize(
    ("other", "other_as_of"),
    [
        (WeakAreas(tolerance=0.5), AS_OF),
        (WeakAreas(), at(11)),
        (WeakAreas(window=(at(0), at(5))), AS_OF),
    ],
)
def test_merge_refuses_different_configuration(other: WeakAreas, other_as_of: str) -> None:
    a = WeakAreas().compute(five(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        a.merge(other.compute(five(), as_of=other_as_of))
    assert err.value.argument == "other"
