"""Markov chain: the textbook oracle, hand-counted transitions, merge, forecast properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.markov import (
    LOST_STATE,
    WON_STATE,
    MarkovChain,
    MarkovForecast,
    count_transitions,
)

F = Fraction
SCHEME = StageScheme.model_validate(
    {
        "name": "t",
        "stages": [
            {"key": "a", "label": "A", "weight": "20"},
            {"key": "b", "label": "B", "weight": "50"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
AS_OF = "2024-01-31T00:00:00+00:00"


def test_drunkards_walk_matches_grinstead_and_snell_exactly() -> None:
    """Grinstead & Snell, *Introduction to Probability*, 2nd rev. ed. (AMS, 1997), ch. 11
    "Markov Chains", sec. 11.2 "Absorbing Markov Chains": the Drunkard's Walk (Example
    11.13, states 0..4, 0 and 4 absorbing, a step left or right with probability 1/2) and
    its continuation, which give N = [[3/2, 1, 1/2], [1, 2, 1], [1/2, 1, 3/2]],
    t = Nc = (3, 4, 3) and B = NR = [[3/4, 1/4], [1/2, 1/2], [1/4, 3/4]].
    (Checked by hand: (I - Q) N = I for Q = [[0, 1/2, 0], [1/2, 0, 1/2], [0, 1/2, 0]].)
    """
    h = F(1, 2)
    chain = MarkovChain.from_matrix(
        ("0", "1", "2", "3", "4"),
        [
            [1, 0, 0, 0, 0],
            [h, 0, h, 0, 0],
            [0, h, 0, h, 0],
            [0, 0, h, 0, h],
            [0, 0, 0, 0, 1],
        ],
    )
    assert chain.transient == ("1", "2", "3")
    assert chain.absorbing == ("0", "4")
    assert chain.fundamental() == (
        (F(3, 2), F(1), F(1, 2)),
        (F(1), F(2), F(1)),
        (F(1, 2), F(1), F(3, 2)),
    )
    assert chain.expected_steps() == (F(3), F(4), F(3))
    assert chain.absorption_probabilities() == (
        (F(3, 4), F(1, 4)),
        (F(1, 2), F(1, 2)),
        (F(1, 4), F(3, 4)),
    )
    for row in chain.fundamental():
        assert all(isinstance(v, F) for v in row)


def _opened(oid: str, day: str, stage: str, amount: str = "900") -> dict[str, Any]:
    return {
        "type": "opened",
        "opportunity_id": oid,
        "at": f"{day}T00:00:00+00:00",
        "stage": stage,
        "amount": amount,
        "currency": "EUR",
    }


def _moved(oid: str, day: str, stage: str) -> dict[str, Any]:
    return {
        "type": "stage_changed",
        "opportunity_id": oid,
        "at": f"{day}T00:00:00+00:00",
        "stage": stage,
    }


def small_history() -> History:
    """m1 a -> b (10 d) -> won (10 d); m2 a -> lost (2 d); m3 a -> b (4 d) -> lost (4 d);
    m4 b -> won (4 d); m5 a since 01-01, open at AS_OF (30 d, no exit); m4 moves again
    after AS_OF (unseen)."""
    return History.from_records(
        [
            _opened("m1", "2024-01-01", "a"),
            _opened("m2", "2024-01-01", "a"),
            _opened("m3", "2024-01-01", "a"),
            _opened("m4", "2024-01-01", "b"),
            _opened("m5", "2024-01-01", "a"),
            _moved("m2", "2024-01-03", "lost"),
            _moved("m3", "2024-01-05", "b"),
            _moved("m4", "2024-01-05", "won"),
            _moved("m3", "2024-01-09", "lost"),
            _moved("m1", "2024-01-11", "b"),
            _moved("m1", "2024-01-21", "won"),
            _moved("m5", "2024-02-10", "b"),
        ],
        scheme=SCHEME,
    )


def test_transition_counts_and_censored_holding_times_by_hand() -> None:
    c = count_transitions(small_history(), as_of=AS_OF)
    assert [(t.source, t.target, t.count) for t in c.transitions] == [
        ("a", "b", 2),
        ("a", LOST_STATE, 1),
        ("b", WON_STATE, 2),
        ("b", LOST_STATE, 1),
    ]
    # a: 10 + 2 + 4 + 30 (m5, still there) = 46 days over 3 exits; b: 10 + 4 + 4 = 18 / 3
    exposure = {e.stage: e for e in c.exposure}
    assert exposure["a"].mean_days == F(46, 3)
    assert exposure["b"].mean_days == F(6)
    assert c.to_records()[0] == {"source": "a", "target": "b", "count": 2, "probability": 2 / 3}


def test_chain_from_counts_by_hand() -> None:
    chain = MarkovChain.from_counts(count_transitions(small_history(), as_of=AS_OF))
    assert chain.transient == ("a", "b")
    assert chain.absorbing == (WON_STATE, LOST_STATE)
    assert chain.q == ((F(0), F(2, 3)), (F(0), F(0)))
    assert chain.r == ((F(0), F(1, 3)), (F(2, 3), F(1, 3)))
    assert chain.fundamental() == ((F(1), F(2, 3)), (F(0), F(1)))
    assert chain.absorption_probabilities() == ((F(4, 9), F(5, 9)), (F(2, 3), F(1, 3)))
    assert chain.expected_steps() == (F(5, 3), F(1))
    assert chain.expected_days() == (F(46, 3) + F(2, 3) * 6, F(6))
    # given won, a always goes through b: 46/3 + 6 days
    assert chain.expected_days_to(WON_STATE) == (F(64, 3), F(6))


def test_markov_forecast_places_the_deal_at_its_expected_time_to_win() -> None:
    model = MarkovForecast(horizon=2)
    f = model.compute(small_history(), as_of=AS_OF)
    (deal,) = f.deals
    assert deal.opportunity_id == "m5"
    assert deal.win_probability == pytest.approx(4 / 9)
    assert deal.expected == Decimal("400.00")  # 900 x 4/9
    assert deal.bucket == "2024-02"  # 64/3 days after 01-31 is 02-21
    assert f.row("2024-01").won == Decimal("1800")  # m1, m4 won in January
    assert f.row("2024-02").expected == Decimal("400.00")
    stages = {s.stage: s for s in f.stages}
    assert stages["a"].expected_steps == pytest.approx(5 / 3)
    assert stages["b"].win_probability == pytest.approx(2 / 3)
    assert model.chain_.transient == ("a", "b")
    assert f.fallback is None


def test_a_stage_no_deal_ever_left_uses_its_weight_and_says_so() -> None:
    h = History.from_records(
        [
            _opened("x", "2024-01-01", "a"),
            _moved("x", "2024-01-05", "b"),
            _opened("y", "2024-01-02", "a"),
        ],
        scheme=SCHEME,
    )
    f = MarkovForecast().compute(h, as_of=AS_OF)
    assert {s.stage: (s.source, s.win_probability) for s in f.stages} == {
        "a": ("weight", 0.2),
        "b": ("weight", 0.5),
    }
    assert f.notes


def test_no_stage_change_falls_back_to_weights_and_close_dates() -> None:
    h = History.from_records([_opened("y", "2024-01-02", "b")], scheme=SCHEME)
    f = MarkovForecast().compute(h, as_of=AS_OF)
    assert f.fallback is not None
    assert f.deals[0].win_probability == 0.5


def test_singular_and_malformed_chains_are_refused() -> None:
    with pytest.raises(ArgumentError) as err:
        MarkovChain(transient=("a", "b"), absorbing=("w",), q=((0, 1), (1, 0)), r=((0,), (0,)))
    assert err.value.argument == "q"
    with pytest.raises(ArgumentError) as err:
        MarkovChain(transient=("a",), absorbing=("w",), q=((F(1, 2),),), r=((F(1, 3),),))
    assert err.value.argument == "q"
    with pytest.raises(ArgumentError) as err:
        MarkovChain(transient=("a",), absorbing=("w",), q=((0, 0),), r=((1,),))
    assert err.value.argument == "q"
    with pytest.raises(ArgumentError) as err:
        MarkovChain.from_matrix(("a", "b"), [[1, 0]])
    assert err.value.argument == "matrix"
    chain = MarkovChain(transient=("a",), absorbing=("w",), q=((0,),), r=((1,),))
    with pytest.raises(ArgumentError) as err:
        chain.absorption_probability("a", "nowhere")
    assert err.value.argument == "end"
    with pytest.raises(ArgumentError) as err:
        chain.expected_days()
    assert err.value.argument == "holding_days"


def test_transition_counts_refuse_to_merge_across_cutoffs() -> None:
    h = small_history()
    a = count_transitions(h, as_of=AS_OF)
    b = count_transitions(h, as_of="2024-02-28T00:00:00+00:00")
    with pytest.raises(ArgumentError) as err:
        a.merge(b)
    assert err.value.argument == "other"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"period": 3}, "period"), ({"horizon": -1}, "horizon"), ({"rates": {}}, "rates")],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        MarkovForecast(**kwargs)
    assert err.value.argument == argument


histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
cutoffs = st.integers(20, 340).map(
    lambda d: (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=d)).isoformat()
)


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=cutoffs, data=st.data())
def test_transition_counts_merge_over_a_split_equals_the_whole(
    history: History, as_of: str, data: st.DataObject
) -> None:
    ids = history.opportunity_ids
    mask = data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    left = history.for_opportunities(i for i, m in zip(ids, mask, strict=True) if m)
    right = history.for_opportunities(i for i, m in zip(ids, mask, strict=True) if not m)
    whole = count_transitions(history, as_of=as_of)
    assert (
        count_transitions(left, as_of=as_of).merge(count_transitions(right, as_of=as_of)) == whole
    )


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=cutoffs)
def test_markov_forecast_has_no_look_ahead_and_probabilities_in_range(
    history: History, as_of: str
) -> None:
    model = MarkovForecast(horizon=2)
    f = model.compute(history, as_of=as_of)
    assert f == model.compute(history.until(as_of), as_of=as_of)
    assert all(0 <= d.win_probability <= 1 for d in f.deals)
    for row in model.chain_.absorption_probabilities():
        assert sum(row) == 1
    assert sum(r.expected for r in f.rows) == sum(d.expected for d in f.deals)
