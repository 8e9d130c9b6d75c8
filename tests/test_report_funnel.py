"""Funnel conversion: hand-computed funnels, properties and bad arguments."""

from __future__ import annotations

import random

import pytest
from _small_histories import AS_OF, SCHEME, at, five, moved, opened
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, demo
from pipelinekit.calculators import compute_partitioned
from pipelinekit.errors import ArgumentError
from pipelinekit.reports.funnel import FunnelConversion, FunnelConversionResult

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
as_ofs = st.sampled_from(["2024-03-15T00:00:00Z", "2024-07-01T12:00:00Z", "2024-12-31T00:00:00Z"])


def counts(result: FunnelConversionResult) -> list[tuple[str, int, int, int]]:
    return [(r.stage, r.reached, r.won, r.lost_here) for r in result.stages]


def test_any_path_counts_skipped_stages_as_passed_through() -> None:
    r = FunnelConversion().compute(five(), as_of=AS_OF)
    # reached: lead all 5; offer d1, d2 (skipped it), d3, d5; contract d1, d2; won d1, d2
    assert counts(r) == [
        ("lead", 5, 2, 1),
        ("offer", 4, 2, 1),
        ("contract", 2, 2, 0),
        ("won", 2, 2, 0),
    ]
    assert [row.to_next for row in r.stages] == [4 / 5, 2 / 4, 2 / 2, None]
    assert [row.cumulative for row in r.stages] == [1.0, 4 / 5, 2 / 5, 2 / 5]
    assert [row.to_won for row in r.stages] == [2 / 5, 2 / 4, 1.0, 1.0]
    assert r.cohort_size == 5
    assert r.lost_at_opening == 0
    assert r.won == 2


def test_in_order_drops_a_deal_at_the_stage_it_skipped() -> None:
    r = FunnelConversion(mode="in_order").compute(five(), as_of=AS_OF)
    # in order: d1 lead-offer-contract (3, won); d2 lead then skipped offer (1);
    # d3 lead-offer (2); d4 lead (1); d5 lead-offer (2)
    assert counts(r) == [
        ("lead", 5, 2, 1),
        ("offer", 3, 1, 1),
        ("contract", 1, 1, 0),
        ("won", 1, 1, 0),
    ]
    assert r.stage("offer").to_next == 1 / 3
    assert r.stage("won").cumulative == 1 / 5


def test_movement_matrix_counts_every_stage_change() -> None:
    r = FunnelConversion().compute(five(), as_of=AS_OF)
    assert [(m.from_stage, m.to_stage, m.count) for m in r.movements] == [
        ("lead", "offer", 3),
        ("lead", "contract", 1),
        ("lead", "lost", 1),
        ("offer", "contract", 1),
        ("offer", "lost", 1),
        ("contract", "won", 2),
    ]
    assert r.movement("lead", "offer") == 3
    assert r.movement("won", "lead") == 0
    assert r.movement_records()[0] == {"from_stage": "lead", "to_stage": "offer", "count": 3}


def test_cohort_keeps_deals_opened_in_the_half_open_window() -> None:
    r = FunnelConversion(cohort=(at(1), at(3))).compute(five(), as_of=AS_OF)
    # d2 (day 1) and d3 (day 2); d4 opened exactly at the end (day 3) is outside
    assert r.cohort_size == 2
    assert counts(r) == [
        ("lead", 2, 1, 0),
        ("offer", 2, 1, 1),
        ("contract", 1, 1, 0),
        ("won", 1, 1, 0),
    ]


def test_as_of_sees_the_funnel_as_it_was() -> None:
    r = FunnelConversion().compute(five(), as_of=at(6.5))
    # d1 and d2 at contract, d3 and d4 lost, d5 at offer, nobody won yet
    assert counts(r) == [
        ("lead", 5, 0, 1),
        ("offer", 4, 0, 1),
        ("contract", 2, 0, 0),
        ("won", 0, 0, 0),
    ]
    assert r.stage("contract").to_next == 0.0


def test_rates_are_none_when_nobody_reached_the_stage() -> None:
    r = FunnelConversion().compute(five(), as_of=at(0.5))
    assert counts(r)[1:] == [("offer", 0, 0, 0), ("contract", 0, 0, 0), ("won", 0, 0, 0)]
    assert r.stage("offer").to_next is None
    assert r.stage("offer").to_won is None
    assert r.stage("lead").to_next == 0.0


def test_empty_cohort_has_no_rates() -> None:
    r = FunnelConversion(cohort=(at(100), at(200))).compute(five(), as_of=AS_OF)
    assert r.cohort_size == 0
    assert all(row.cumulative is None and row.reached == 0 for row in r.stages)


def test_deal_opened_as_lost_is_counted_apart() -> None:
    h = History.from_records([opened("x", 0, stage="lost"), opened("y", 0)], scheme=SCHEME)
    r = FunnelConversion().compute(h, as_of=AS_OF)
    assert r.lost_at_opening == 1
    assert r.stage("lead").reached == 1


def test_deal_opened_at_a_later_stage_reached_the_earlier_ones_in_any_path_mode() -> None:
    h = History.from_records([opened("x", 0, stage="contract")], scheme=SCHEME)
    assert counts(FunnelConversion().compute(h, as_of=AS_OF))[:3] == [
        ("lead", 1, 0, 0),
        ("offer", 1, 0, 0),
        ("contract", 1, 0, 0),
    ]
    in_order = FunnelConversion(mode="in_order").compute(h, as_of=AS_OF)
    assert [row.reached for row in in_order.stages] == [0, 0, 0, 0]


def test_records_have_one_row_per_open_stage_and_won() -> None:
    r = FunnelConversion().compute(five(), as_of=AS_OF)
    rows = r.to_records()
    assert [row["stage"] for row in rows] == ["lead", "offer", "contract", "won"]
    assert rows[0]["label"] == "Lead"
    assert rows[-1]["kind"] == "won"
    assert "Funnel conversion" in r._repr_html_()


def test_merge_of_two_halves_equals_the_whole() -> None:
    h = five()
    parts = [h.for_opportunities(["d1", "d3"]), h.for_opportunities(["d2", "d4", "d5"])]
    whole = FunnelConversion().compute(h, as_of=AS_OF)
    assert compute_partitioned(FunnelConversion(), parts, as_of=AS_OF) == whole


# -- properties -----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_events_after_as_of_change_nothing(history: History, as_of: str) -> None:
    for mode in ("any_path", "in_order"):
        calc = FunnelConversion(mode=mode)
        assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(
    histories, as_ofs, st.randoms(use_true_random=False), st.sampled_from(["any_path", "in_order"])
)
def test_merge_over_a_random_split_equals_the_whole(
    history: History, as_of: str, rnd: random.Random, mode: str
) -> None:
    ids = list(history.opportunity_ids)
    left = {i for i in ids if rnd.random() < 0.5}
    calc = FunnelConversion(mode=mode, cohort=("2024-02-01T00:00:00Z", "2024-10-01T00:00:00Z"))
    a = calc.compute(history.for_opportunities(left), as_of=as_of)
    b = calc.compute(history.for_opportunities(set(ids) - left), as_of=as_of)
    assert a.merge(b) == calc.compute(history, as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_reached_never_grows_along_the_funnel_and_in_order_never_exceeds_any_path(
    history: History, as_of: str
) -> None:
    any_path = FunnelConversion().compute(history, as_of=as_of)
    in_order = FunnelConversion(mode="in_order").compute(history, as_of=as_of)
    reached = [row.reached for row in any_path.stages]
    assert reached == sorted(reached, reverse=True)
    for a, b in zip(any_path.stages, in_order.stages, strict=True):
        assert b.reached <= a.reached
        assert b.won <= a.won <= a.reached


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_funnel_reconciles_with_the_snapshot(history: History, as_of: str) -> None:
    r = FunnelConversion().compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    assert r.cohort_size == len(pipe)
    assert r.won == len(pipe.won())
    assert sum(row.lost_here for row in r.stages) + r.lost_at_opening == len(pipe.lost())
    assert sum(m.count for m in r.movements) == sum(len(o.path) - 1 for o in pipe.values())


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "cohort",
    [
        (at(5), at(1)),
        (at(1), at(1)),
        ("2024-01-01", at(1)),
        (at(1),),
        "2024-01-01T00:00:00Z",
        (at(1), "tomorrow"),
    ],
)
def test_bad_cohort_is_an_argument_error(cohort: object) -> None:
    with pytest.raises(ArgumentError) as err:
        FunnelConversion(cohort=cohort)  # type: ignore[arg-type]
    assert err.value.argument == "cohort"


def test_unknown_mode_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as err:
        FunnelConversion(mode="strict")
    assert err.value.argument == "mode"


def test_naive_as_of_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as err:
        FunnelConversion().compute(five(), as_of="2024-02-01T00:00:00")
    assert err.value.argument == "as_of"


def test_unknown_row_is_an_argument_error() -> None:
    r = FunnelConversion().compute(five(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        r.stage("negotiation")
    assert err.value.argument == "stage"


@pytest.mark.parametrize(
    ("other_calc", "other_as_of"),
    [
        (FunnelConversion(mode="in_order"), AS_OF),
        (FunnelConversion(), at(20)),
        (FunnelConversion(cohort=(at(0), at(2))), AS_OF),
    ],
)
def test_merge_refuses_different_configuration(
    other_calc: FunnelConversion, other_as_of: str
) -> None:
    a = FunnelConversion().compute(five(), as_of=AS_OF)
    b = other_calc.compute(five(), as_of=other_as_of)
    with pytest.raises(ArgumentError) as err:
        a.merge(b)
    assert err.value.argument == "other"


def test_merge_refuses_another_scheme() -> None:
    a = FunnelConversion().compute(five(), as_of=AS_OF)
    b = FunnelConversion().compute(demo.demo_history(opportunities=3, seed=1), as_of=AS_OF)
    with pytest.raises(ArgumentError):
        a.merge(b)


def test_in_order_is_unaffected_by_a_skip_after_the_stage() -> None:
    h = History.from_records(
        [opened("x", 0), moved("x", 1, "offer"), moved("x", 2, "won")], scheme=SCHEME
    )
    r = FunnelConversion(mode="in_order").compute(h, as_of=AS_OF)
    assert [row.reached for row in r.stages] == [1, 1, 0, 0]
