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
    QUANTUM,
    WON_STATE,
    MarkovChain,
    MarkovForecast,
    count_transitions,
)
from pipelinekit.testing import check_calculator

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


def small_records() -> list[dict[str, Any]]:
    """m1 a -> b (10 d) -> won (10 d); m2 a -> lost (2 d); m3 a -> b (4 d) -> lost (4 d);
    m4 b -> won (4 d); m5 a since 01-01, open at AS_OF (30 d, no exit); m5 moves
    after AS_OF (unseen)."""
    return [
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
    ]


def small_history() -> History:
    return History.from_records(small_records(), scheme=SCHEME)


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


def test_a_deal_older_than_every_stay_that_ended_counts_as_staying() -> None:
    model = MarkovForecast(horizon=2, new_business=False)
    f = model.compute(small_history(), as_of=AS_OF)
    (deal,) = f.deals
    # m5 has been in a for 30 days; the stays in a that ended lasted 2, 4 and 10 days
    assert deal.opportunity_id == "m5"
    assert (deal.win_probability, deal.expected) == (0.0, Decimal("0.00"))
    assert deal.periods == (0.0, 0.0)
    assert deal.bucket == "later"
    assert f.row("2024-01").won == Decimal("1800")  # m1, m4 won in January
    stages = {s.stage: s for s in f.stages}
    assert (stages["a"].stays, stages["a"].exits, stages["a"].longest_exit_days) == (4, 3, 10)
    # the jump chain (every deal leaves some day) still reports its expected steps
    assert stages["a"].expected_steps == pytest.approx(5 / 3)
    # from entering a (Kaplan-Meier with competing exits): lost on day 2 (1 in 4 at risk),
    # to b on day 4 (1 in 3) and day 10 (1 in 2); the rest, a quarter, stays (m5 is there)
    assert stages["a"].stay_probability == pytest.approx(3 / 4 * 2 / 3 * 1 / 2)
    assert any("a (10 days)" in n for n in f.notes)
    assert model.chain_.transient == ("a", "b")
    assert f.fallback is None


def test_semi_markov_chances_by_the_age_in_the_stage_by_hand() -> None:
    h = History.from_records(
        [*small_records(), _opened("m6", "2024-01-28", "a"), _opened("m7", "2024-01-26", "b")],
        scheme=SCHEME,
    )
    f = MarkovForecast(horizon=2, new_business=False).compute(h, as_of=AS_OF)
    deals = {d.opportunity_id: d for d in f.deals}
    # b: stays of 4 (won), 4 (lost), 10 (won) days, and m7 there for 5 days: a deal that
    # has waited 5 days can only follow the stay of 10 days, won 10.5 - 5 days after AS_OF
    m7 = deals["m7"]
    assert m7.win_probability == pytest.approx(1.0)
    assert m7.periods == pytest.approx((0.0, 1.0))
    assert (m7.expected, m7.bucket) == (Decimal("900.00"), "2024-02")
    # from entering b: won 1/4 on day 4, then half of the deals are left and all win
    stages = {s.stage: s for s in f.stages}
    assert stages["b"].win_probability == pytest.approx(3 / 4)
    # m6: 3 days in a, past the loss of day 2: leaves for b on day 4 (1/3), on day 10
    # (1/3) or stays (1/3, like m5); from b it is won with 3/4 within 11 days
    m6 = deals["m6"]
    assert m6.win_probability == pytest.approx(2 / 3 * 3 / 4)
    assert m6.periods == pytest.approx((0.0, 0.5))
    assert m6.expected == Decimal("450.00")
    assert f.row("2024-02").expected == Decimal("1350.00")
    assert sum(r.expected for r in f.rows) == sum(d.expected for d in f.deals)
    # a horizon of one period: February is after it
    one = MarkovForecast(horizon=1, new_business=False).compute(h, as_of=AS_OF)
    assert one.row("later").expected == Decimal("1350.00")
    assert [d.periods for d in one.deals] == [(0.0,), (0.0,), (0.0,)]


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


def test_new_business_without_evidence_is_reported_not_silently_zero() -> None:
    # the history starts on 2024-01-01: no earlier origin lies inside it
    f = MarkovForecast(horizon=2).compute(small_history(), as_of=AS_OF)
    assert [(x.bucket, x.origins, x.insufficient, x.mean) for x in f.new_business] == [
        ("2024-01", 0, True, Decimal("0.00")),
        ("2024-02", 0, True, Decimal("0.00")),
    ]
    assert any("no evidence for new business in ['2024-01', '2024-02']" in n for n in f.notes)


def test_new_business_by_hand() -> None:
    # as_of is 10 days into March; origins are the 11th of January and February (00:00)
    records = [
        _opened("old", "2024-01-02", "a", "100"),  # created before the January origin
        _moved("old", "2024-01-20", "won"),
        _opened("n1", "2024-01-15", "a", "200"),  # after it: January's new business, lag 0
        _moved("n1", "2024-01-25", "won"),
        _opened("n2", "2024-01-20", "b", "300"),  # won in February: lag 1 of January
        _moved("n2", "2024-02-05", "won"),
        _opened("n3", "2024-02-12", "b", "400"),  # February's lag 0 and January's lag 1
        _moved("n3", "2024-02-20", "won"),
        _opened("n4", "2024-02-01", "b", "500"),  # before February's origin: not new there
        _moved("n4", "2024-02-25", "won"),  # ... but lag 1 of January
        _opened("late", "2024-03-02", "b", "600"),  # won in March: not a complete period
        _moved("late", "2024-03-05", "won"),
    ]
    h = History.from_records(records, scheme=SCHEME)
    as_of = "2024-03-11T00:00:00+00:00"
    f = MarkovForecast(horizon=2).compute(h, as_of=as_of)
    lag0, lag1 = f.new_business
    assert (lag0.bucket, lag0.values, lag0.mean) == ("2024-03", (200, 400), Decimal("300.00"))
    assert (lag1.bucket, lag1.values, lag1.mean) == ("2024-04", (1200,), Decimal("1200.00"))
    assert (f.row("2024-03").new, f.row("2024-04").new) == (Decimal("300.00"), Decimal("1200.00"))
    assert f.row("2024-03").won == Decimal("600")
    fewer = MarkovForecast(horizon=2, new_business_periods=1).compute(h, as_of=as_of)
    assert fewer.new_business[0].values == (400,)
    off = MarkovForecast(horizon=2, new_business=False).compute(h, as_of=as_of)
    assert off.new_business == () and all(r.new == 0 for r in off.rows)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"new_business": "yes"}, "new_business"),
        ({"new_business_periods": 0}, "new_business_periods"),
        ({"new_business_periods": 2.5}, "new_business_periods"),
        ({"horizon": 0}, "horizon"),
        ({"period": "fortnight"}, "period"),
    ],
)
def test_bad_new_business_settings_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        MarkovForecast(**kwargs)
    assert err.value.argument == argument


def test_evidence_learned_with_other_settings_is_refused() -> None:
    h = demo.demo_history(opportunities=30, seed=4)
    as_of = "2024-08-10T00:00:00Z"
    cases = [
        (MarkovForecast(new_business=False), MarkovForecast(), "no new business"),
        (MarkovForecast(period="quarter"), MarkovForecast(), "'quarter' grid"),
        (MarkovForecast(horizon=1), MarkovForecast(horizon=3), "1 lags"),
    ]
    for learned_by, used_by, message in cases:
        evidence = learned_by.learn(h, as_of=as_of)
        using = MarkovForecast(period=used_by.period, horizon=used_by.horizon, learned=evidence)
        with pytest.raises(ArgumentError, match=message) as err:
            using.compute(h, as_of=as_of)
        assert err.value.argument == "learned"
    # evidence with new business serves a forecaster without it
    evidence = MarkovForecast().learn(h, as_of=as_of)
    assert MarkovForecast(new_business=False, learned=evidence).compute(
        h, as_of=as_of
    ) == MarkovForecast(new_business=False).compute(h, as_of=as_of)


def test_evidence_merge_refuses_other_evidence() -> None:
    h = demo.demo_history(opportunities=30, seed=4)
    as_of = "2024-08-10T00:00:00Z"
    with_new = MarkovForecast().learn(h, as_of=as_of)
    without = MarkovForecast(new_business=False).learn(h, as_of=as_of)
    with pytest.raises(ArgumentError, match="with and without") as err:
        with_new.merge(without)
    assert err.value.argument == "other"
    with pytest.raises(ArgumentError) as err:
        with_new.merge(count_transitions(h, as_of=as_of))  # type: ignore[arg-type]
    assert err.value.argument == "other"
    assert with_new.new_business is not None
    longer = MarkovForecast(horizon=2).learn(h, as_of=as_of).new_business
    assert longer is not None
    with pytest.raises(ArgumentError, match="lags") as err:
        with_new.new_business.merge(longer)
    with pytest.raises(ArgumentError) as err:
        with_new.new_business.merge(with_new.counts)  # type: ignore[arg-type]
    assert err.value.argument == "other"
    usd = with_new.new_business.model_copy(update={"currency": "USD"})
    with pytest.raises(ArgumentError, match="'EUR' and 'USD'") as err:
        with_new.new_business.merge(usd)


monthly = st.sampled_from(["month", "quarter"])


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=cutoffs, horizon=st.integers(1, 3), period=monthly)
def test_deal_chances_are_a_distribution_over_the_horizon(
    history: History, as_of: str, horizon: int, period: str
) -> None:
    f = MarkovForecast(period=period, horizon=horizon).compute(history, as_of=as_of)
    labels = [r.bucket for r in f.rows if r.end is not None]
    assert len(labels) == horizon
    for d in f.deals:
        assert len(d.periods) == horizon
        assert all(0 <= p <= 1 for p in d.periods)
        assert sum(d.periods) <= d.win_probability + 1e-9
        assert d.expected == (d.amount * Decimal(repr(d.win_probability))).quantize(QUANTUM)
    assert sum(r.expected for r in f.rows) == sum(d.expected for d in f.deals)
    assert [x.bucket for x in f.new_business] == labels
    for x, row in zip(f.new_business, f.rows, strict=False):
        assert row.new == x.mean
        assert x.insufficient == (x.origins == 0)
    if any(x.insufficient for x in f.new_business):
        assert any("no evidence for new business" in n for n in f.notes)


@settings(max_examples=15, deadline=None)
@given(history=histories, as_of=cutoffs)
def test_a_longer_horizon_does_not_change_the_chances_of_the_first_periods(
    history: History, as_of: str
) -> None:
    one = MarkovForecast(horizon=1).compute(history, as_of=as_of)
    three = MarkovForecast(horizon=3).compute(history, as_of=as_of)
    for a, b in zip(one.deals, three.deals, strict=True):
        assert a.periods[0] == pytest.approx(b.periods[0], abs=1e-12)
        assert a.win_probability == pytest.approx(b.win_probability, abs=1e-12)


@settings(max_examples=10, deadline=None)
@given(history=histories)
def test_markov_forecast_and_learner_keep_the_calculator_laws(history: History) -> None:
    assert check_calculator(MarkovForecast(horizon=2), history, merge=False) == (
        "no-look-ahead",
        "determinism",
    )
    laws = check_calculator(MarkovForecast(horizon=2).learner(), history, merge=True)
    assert laws == ("no-look-ahead", "determinism", "merge")


def test_partitions_merge_exactly_whatever_the_digits() -> None:
    # amounts whose sums need more than the default 28 significant digits
    amounts = ("999999999999999", "7.1234567890123456789", "0.333333333333333333333")
    records: list[dict[str, Any]] = []
    for i, amount in enumerate(amounts * 3):
        oid = f"d{i}"
        records.append(_opened(oid, f"2024-01-{i + 1:02d}", "a", amount))
        if i % 3 == 0:
            records.append(_moved(oid, f"2024-01-{i + 12:02d}", "b"))
        if i % 4 == 1:
            records.append(_moved(oid, f"2024-01-{i + 14:02d}", "won" if i % 2 else "lost"))
    h = History.from_records(records, scheme=SCHEME)
    forecaster = MarkovForecast(horizon=2)
    evidence = forecaster.learn(h, as_of=AS_OF)
    using = MarkovForecast(horizon=2, learned=evidence)
    parts = h.partition(3)
    merged = using.compute(parts[0], as_of=AS_OF)
    for part in parts[1:]:
        merged = merged.merge(using.compute(part, as_of=AS_OF))
    whole = forecaster.compute(h, as_of=AS_OF)
    assert merged == whole
    assert sum(d.expected for d in whole.deals) > Decimal("999999999999999") * Decimal("0.01")


def test_a_lookback_learns_the_stays_of_the_recent_past_by_hand() -> None:
    # window from 01-06: m2's (2 days) and m3's (4 days) stays in a ended before it; m1's
    # (10 days, to b) and m5's (30 days, still there) are at risk from day 5, when it began
    c = count_transitions(small_history(), as_of=AS_OF, lookback=timedelta(days=25))
    stays = {s.stage: s for s in c.stays}
    assert stays["a"].exits == ((10, "b", 1),)
    assert stays["a"].censored == ((30, 1),)
    assert stays["a"].entered == ((5, 2),)
    assert c.transitions == count_transitions(small_history(), as_of=AS_OF).transitions
    f = MarkovForecast(horizon=2, lookback=timedelta(days=25), new_business=False).compute(
        small_history(), as_of=AS_OF
    )
    a = next(s for s in f.stages if s.stage == "a")
    assert a.stay_probability == pytest.approx(1 / 2)  # one of the two at risk left on day 10
    evidence = MarkovForecast(lookback=timedelta(days=25)).learn(small_history(), as_of=AS_OF)
    assert evidence.counts == count_transitions(
        small_history(), as_of=AS_OF, lookback=timedelta(days=25)
    )
    with pytest.raises(ArgumentError, match="lookback") as err:
        MarkovForecast(learned=evidence).compute(small_history(), as_of=AS_OF)
    assert err.value.argument == "learned"
    with pytest.raises(ArgumentError, match="lookback") as err:
        c.merge(count_transitions(small_history(), as_of=AS_OF))
    assert err.value.argument == "other"


@pytest.mark.parametrize("lookback", [timedelta(0), timedelta(days=-1), 30, "90 days"])
def test_a_bad_lookback_is_refused_by_name(lookback: Any) -> None:
    with pytest.raises(ArgumentError) as err:
        MarkovForecast(lookback=lookback)
    assert err.value.argument == "lookback"
    with pytest.raises(ArgumentError) as err:
        count_transitions(small_history(), as_of=AS_OF, lookback=lookback)
    assert err.value.argument == "lookback"
