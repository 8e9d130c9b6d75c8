"""Lead requirement: hand-computed requirements, undefined cases, properties, bad arguments."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from _small_histories import AS_OF, FIVE, SCHEME, at, five, moved, opened
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, demo
from pipelinekit.calculators import compute_partitioned
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.money import FxRates
from pipelinekit.reports.lead_requirement import LeadRequirement, LeadRequirementResult

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
as_ofs = st.sampled_from(["2024-03-15T00:00:00Z", "2024-07-01T12:00:00Z", "2024-12-31T00:00:00Z"])


def needed(r: LeadRequirementResult) -> list[tuple[str, float | None, int | None]]:
    return [(s.stage, s.stage_to_won, s.needed) for s in r.stages]


def test_requirement_by_hand_with_the_open_deal_censored() -> None:
    r = LeadRequirement(target=Decimal(5000)).compute(five(), as_of=AS_OF)
    # cohort: won d1 (1000) and d2 (3000), lost d3 and d4, d5 open (censored, not lost)
    assert (r.opportunities, r.won, r.lost, r.open) == (5, 2, 2, 1)
    assert r.lead_to_win_rate == 0.5  # 2 / 4, not 2 / 5
    assert r.average_won_amount == Decimal(2000)
    assert r.deals_needed == 3  # ceil(5000 / 2000)
    assert r.leads_needed == 6  # ceil(3 / 0.5)
    assert r.defined
    assert r.reason is None
    assert r.currency == "EUR"
    # lead: all 5 reached, 2 won 2 lost; offer: d1 d2 d3 d5 -> 2 won, 1 lost;
    # contract: d1 d2 -> 2 won
    assert needed(r) == [("lead", 0.5, 6), ("offer", 2 / 3, 5), ("contract", 1.0, 3)]
    assert [(s.reached, s.won, s.lost) for s in r.stages] == [(5, 2, 2), (4, 2, 1), (2, 2, 0)]


def test_ceilings_are_exact() -> None:
    r = LeadRequirement(target="6000").compute(five(), as_of=AS_OF)
    assert (r.deals_needed, r.leads_needed) == (3, 6)  # 6000 / 2000 is exactly 3 deals
    r = LeadRequirement(target="6000.01").compute(five(), as_of=AS_OF)
    assert (r.deals_needed, r.leads_needed) == (4, 8)


def test_won_so_far_leaves_only_the_remaining_target() -> None:
    r = LeadRequirement(target=5000, won_so_far=4000).compute(five(), as_of=AS_OF)
    assert r.remaining == Decimal(1000)
    assert (r.deals_needed, r.leads_needed) == (1, 2)
    assert needed(r) == [("lead", 0.5, 2), ("offer", 2 / 3, 2), ("contract", 1.0, 1)]


def test_target_already_met_needs_nothing() -> None:
    r = LeadRequirement(target=5000, won_so_far="6000").compute(five(), as_of=AS_OF)
    assert r.remaining == 0
    assert (r.deals_needed, r.leads_needed, r.defined) == (0, 0, True)
    assert all(s.needed == 0 for s in r.stages)


def test_no_win_in_the_window_makes_the_requirement_undefined() -> None:
    # opened in [day 2, day 4): d3 and d4, both lost
    r = LeadRequirement(target=1000, window=(at(2), at(4))).compute(five(), as_of=AS_OF)
    assert (r.won, r.lost, r.lead_to_win_rate) == (0, 2, 0.0)
    assert (r.deals_needed, r.leads_needed, r.defined) == (None, None, False)
    assert r.reason is not None
    assert "was won" in r.reason
    assert all(s.needed is None for s in r.stages)
    assert "undefined" in r._repr_html_()


def test_nothing_closed_yet_makes_the_requirement_undefined() -> None:
    r = LeadRequirement(target=1000).compute(five(), as_of=at(3.5))
    assert r.lead_to_win_rate is None
    assert r.reason is not None
    assert "closed yet" in r.reason


def test_won_deals_without_amounts_make_the_requirement_undefined() -> None:
    h = History.from_records([opened("x", 0), moved("x", 1, "won")], scheme=SCHEME)
    r = LeadRequirement(target=1000).compute(h, as_of=AS_OF)
    assert r.lead_to_win_rate == 1.0
    assert r.average_won_amount is None
    assert r.reason is not None
    assert "no amount" in r.reason


def test_mixed_currencies_need_rates() -> None:
    records = [dict(r) for r in FIVE]
    records[1]["currency"] = "USD"
    h = History.from_records(records, scheme=SCHEME)
    with pytest.raises(CurrencyError):
        LeadRequirement(target=1000).compute(h, as_of=AS_OF)
    r = LeadRequirement(
        target=1000, currency="EUR", rates=FxRates.static("EUR", {"USD": "0.5"})
    ).compute(h, as_of=AS_OF)
    assert r.average_won_amount == Decimal(1250)


def test_records_and_summary() -> None:
    r = LeadRequirement(target=5000).compute(five(), as_of=AS_OF)
    assert [row["stage"] for row in r.to_records()] == ["lead", "offer", "contract"]
    assert r.summary_records()[0]["leads_needed"] == 6
    assert "6 leads" in r._repr_html_()


def test_merge_of_two_halves_equals_the_whole() -> None:
    h = five()
    parts = [h.for_opportunities(["d2", "d3"]), h.for_opportunities(["d1", "d4", "d5"])]
    calc = LeadRequirement(target=5000)
    assert compute_partitioned(calc, parts, as_of=AS_OF) == calc.compute(h, as_of=AS_OF)


# -- properties -----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_events_after_as_of_change_nothing(history: History, as_of: str) -> None:
    calc = LeadRequirement(target=250_000)
    assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, st.randoms(use_true_random=False))
def test_merge_over_a_random_split_equals_the_whole(
    history: History, as_of: str, rnd: random.Random
) -> None:
    ids = list(history.opportunity_ids)
    left = {i for i in ids if rnd.random() < 0.5}
    calc = LeadRequirement(target=250_000, window=("2024-01-01T00:00:00Z", "2024-09-01T00:00:00Z"))
    a = calc.compute(history.for_opportunities(left), as_of=as_of)
    b = calc.compute(history.for_opportunities(set(ids) - left), as_of=as_of)
    assert a.merge(b) == calc.compute(history, as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_requirement_is_consistent(history: History, as_of: str) -> None:
    r = LeadRequirement(target=250_000).compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    assert (r.won, r.lost, r.open) == (len(pipe.won()), len(pipe.lost()), len(pipe.open()))
    assert r.defined == (r.reason is None)
    if r.defined:
        assert r.deals_needed is not None
        assert r.leads_needed is not None
        assert r.leads_needed >= r.deals_needed
        assert r.average_won_amount is not None
        assert r.deals_needed * r.average_won_amount >= r.remaining
        # the first stage is reached by every deal of the demo: it needs every lead
        assert r.stages[0].needed == r.leads_needed


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"target": -1}, "target"),
        ({"target": 0}, "target"),
        ({"target": 1000.5}, "target"),
        ({"target": "lots"}, "target"),
        ({"target": "NaN"}, "target"),
        ({"target": True}, "target"),
        ({"target": 1000, "won_so_far": -5}, "won_so_far"),
        ({"target": 1000, "won_so_far": 2.5}, "won_so_far"),
        ({"target": 1000, "window": (at(4), at(2))}, "window"),
        ({"target": 1000, "currency": "euro"}, "currency"),
        ({"target": 1000, "currency": "EUR", "rates": "0.9"}, "rates"),
    ],
)
def test_bad_arguments_are_argument_errors(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        LeadRequirement(**kwargs)  # type: ignore[arg-type]
    assert err.value.argument == argument


def test_target_is_required() -> None:
    with pytest.raises(TypeError):
        LeadRequirement()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "other",
    [
        LeadRequirement(target=4000),
        LeadRequirement(target=5000, won_so_far=1),
        LeadRequirement(target=5000, window=(at(0), at(9))),
    ],
)
def test_merge_refuses_different_configuration(other: LeadRequirement) -> None:
    a = LeadRequirement(target=5000).compute(five(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        a.merge(other.compute(five(), as_of=AS_OF))
    assert err.value.argument == "other"
