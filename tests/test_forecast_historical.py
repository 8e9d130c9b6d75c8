"""HistoricalForecast: hand-computed rates, Wilson intervals, shrinkage, censoring, spreading."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.historical import HistoricalForecast, HistoricalForecastResult

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
AS_OF = "2024-06-20T00:00:00+00:00"


def _opened(oid: str, day: str, stage: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "opened",
        "opportunity_id": oid,
        "at": f"{day}T00:00:00+00:00",
        "stage": stage,
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


def _moved(oid: str, day: str, stage: str) -> dict[str, Any]:
    return {
        "type": "stage_changed",
        "opportunity_id": oid,
        "at": f"{day}T00:00:00+00:00",
        "stage": stage,
    }


def small_records() -> list[dict[str, Any]]:
    """Closed before AS_OF:
    c1 a(01-01) -> b(01-11) -> won(01-21), 1000: reached a, b; days to win a 20, b 10
    c2 a(01-01) -> won(02-20), 2000 (skips b, still reached it): days to win a 50
    c3 a(01-01) -> lost(01-05), 500: reached a
    c4 a(01-01) -> b(01-06) -> lost(01-16), 800: reached a, b
    c8 a(06-01) -> won(06-05), 300: reached a, b; days to win a 4; won in June
    Open at AS_OF (censored, never losses):
    c5 a since 06-15 (age 5), 1000; c6 b since 06-10 (age 10), 600, lost on 07-01 (after
    AS_OF: unseen); c7 a since 03-01 (age 111), 2000.
    Rates: a 3/5 = 0.6, b 3/4 = 0.75.
    """
    return [
        _opened("c1", "2024-01-01", "a", "1000", product="x"),
        _opened("c2", "2024-01-01", "a", "2000", product="y"),
        _opened("c3", "2024-01-01", "a", "500", product="x"),
        _opened("c4", "2024-01-01", "a", "800", product="x"),
        _moved("c3", "2024-01-05", "lost"),
        _moved("c4", "2024-01-06", "b"),
        _moved("c1", "2024-01-11", "b"),
        _moved("c4", "2024-01-16", "lost"),
        _moved("c1", "2024-01-21", "won"),
        _moved("c2", "2024-02-20", "won"),
        _opened("c7", "2024-03-01", "a", "2000", product="x"),
        _opened("c8", "2024-06-01", "a", "300", product="y"),
        _moved("c8", "2024-06-05", "won"),
        _opened("c6", "2024-06-10", "b", "600", product="x"),
        _opened("c5", "2024-06-15", "a", "1000", product="x"),
        _moved("c6", "2024-07-01", "lost"),
    ]


def small_history() -> History:
    return History.from_records(small_records(), scheme=SCHEME)


def _wilson(w: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = w / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_stage_rates_count_reached_deals_and_carry_wilson_intervals() -> None:
    model = HistoricalForecast(horizon=3, new_business=False)
    f = model.compute(small_history(), as_of=AS_OF)
    a, b = f.stage_rates
    assert (a.stage, a.deals, a.won, a.rate, a.source) == ("a", 5, 3, 0.6, "history")
    assert (b.stage, b.deals, b.won, b.rate) == ("b", 4, 3, 0.75)
    # 3 of 5: p = 0.6, z = 1.96 -> about [0.231, 0.882]
    assert (round(a.low or 0, 3), round(a.high or 0, 3)) == (0.231, 0.882)
    assert (a.low, a.high) == pytest.approx(_wilson(3, 5))
    assert (b.low, b.high) == pytest.approx(_wilson(3, 4))
    assert a.wins_timed == 3
    assert a.median_days == 20.0
    assert b.wins_timed == 1
    assert b.median_days == 10.0
    assert model.stage_rates_ == f.stage_rates
    assert f.stage_rates_records()[0]["rate"] == 0.6


def test_open_deals_are_censored_not_counted_as_losses() -> None:
    f = HistoricalForecast(new_business=False).compute(small_history(), as_of=AS_OF)
    # c5, c6, c7 are open at AS_OF (c6 is lost only later): 5 closed deals reached a
    assert f.stage_rates[0].deals == 5
    assert {d.opportunity_id for d in f.deals} == {"c5", "c6", "c7"}


def test_expected_value_is_spread_by_the_time_to_win_after_the_time_already_spent() -> None:
    f = HistoricalForecast(horizon=3, new_business=False).compute(small_history(), as_of=AS_OF)
    # c5: 1000 x 0.6 = 600; a-durations 4, 20, 50 of which 20 and 50 exceed its age 5:
    #     15 days after 06-20 (July) and 45 days (08-04, August): 300 each.
    # c6: 600 x 0.75 = 450; the only b-duration (10) does not exceed its age 10: overdue.
    # c7: 2000 x 0.6 = 1200; age 111 exceeds every a-duration: overdue.
    rows = {r.bucket: r for r in f.rows}
    assert rows["2024-06"].won == Decimal("300")  # c8
    assert rows["2024-06"].expected == 0
    assert rows["2024-07"].expected == Decimal("300.00")
    assert rows["2024-08"].expected == Decimal("300.00")
    assert rows["overdue"].expected == Decimal("1650.00")
    assert rows["overdue"].deals == 2
    deals = {d.opportunity_id: d for d in f.deals}
    assert deals["c5"].win_probability == 0.6
    assert deals["c5"].expected == Decimal("600.00")
    assert deals["c6"].bucket == "overdue"


def test_a_deal_follows_only_the_wins_that_stayed_in_its_stage_longer_than_it_has() -> None:
    # c9 has been in a for 15 days (since 06-05). Wins that were in a: c1 stayed 10 days
    # (won 20 days after entering), c2 stayed 50 (won after 50), c8 stayed 4 (won after 4).
    # Only c2 stayed longer than 15 days, so c9 closes 50 - 15 = 35 days after 06-20 (July).
    # c1's whole duration (20) also exceeds 15, but c1 had left a after 10 days: taking it
    # would put half of c9 in June, 5 days ahead, which is what the forecaster once did.
    records = [*small_records(), _opened("c9", "2024-06-05", "a", "500", product="x")]
    h = History.from_records(records, scheme=SCHEME)
    f = HistoricalForecast(horizon=3, new_business=False).compute(h, as_of=AS_OF)
    deals = {d.opportunity_id: d for d in f.deals}
    assert deals["c9"].expected == Decimal("300.00")  # 500 x 0.6
    assert deals["c9"].bucket == "2024-07"
    rows = {r.bucket: r for r in f.rows}
    assert rows["2024-06"].expected == 0
    # c5 (age 5) still follows c1 and c2: 300 in July, 300 in August; c9 adds 300 in July
    assert rows["2024-07"].expected == Decimal("600.00")
    assert rows["2024-08"].expected == Decimal("300.00")


def test_spreading_adds_up_to_each_deals_expected_value() -> None:
    h = demo.demo_history(opportunities=80, seed=5)
    f = HistoricalForecast(horizon=2).compute(h, as_of="2024-08-15T00:00:00+00:00")
    assert sum(r.expected for r in f.rows) == sum(d.expected for d in f.deals)
    assert f.fallback is None


def test_new_business_means_per_lag_scaled_by_the_rest_of_the_current_period() -> None:
    f = HistoricalForecast(horizon=3).compute(small_history(), as_of=AS_OF)
    # complete months Jan..May; lag 0: Jan won 1000 from Jan deals (c1) over 5 months = 200
    # lag 1: Feb..May usable, c2 (Jan -> Feb) 2000 / 4 = 500; lag 2: Mar..May, nothing.
    assert [(n.lag, n.mean, n.periods) for n in f.new_business] == [
        (0, Decimal("200.00"), 5),
        (1, Decimal("500.00"), 4),
        (2, Decimal("0"), 3),
    ]
    left = Decimal(11) / Decimal(30)  # 06-20 00:00 -> 07-01: 11 of June's 30 days
    rows = {r.bucket: r for r in f.rows}
    assert rows["2024-06"].new == (left * 200).quantize(Decimal("0.01"))
    assert rows["2024-07"].new == (200 + left * 500).quantize(Decimal("0.01"))
    assert rows["2024-08"].new == Decimal("700.00")
    assert rows["2024-06"].total == rows["2024-06"].won + rows["2024-06"].new


def test_segment_rates_shrink_towards_the_overall_rate() -> None:
    k = 2.0
    f = HistoricalForecast(segment_by="product", prior_strength=k, new_business=False).compute(
        small_history(), as_of=AS_OF
    )
    table = {(r.segment, r.stage): r for r in f.stage_rates}
    # product x: c1 (won), c3 (lost), c4 (lost) reached a: 1 of 3; overall a = 0.6
    x_a = table[("x", "a")]
    assert (x_a.deals, x_a.won, x_a.source) == (3, 1, "shrunk")
    assert x_a.rate == pytest.approx((1 + k * 0.6) / (3 + k))
    # product y: c2, c8 both won: 2 of 2
    assert table[("y", "a")].rate == pytest.approx((2 + k * 0.6) / (2 + k))
    deals = {d.opportunity_id: d for d in f.deals}
    assert deals["c5"].win_probability == pytest.approx((1 + k * 0.6) / (3 + k))
    assert deals["c5"].group == "x"


def test_zero_prior_strength_uses_the_raw_segment_share() -> None:
    f = HistoricalForecast(segment_by="product", prior_strength=0).compute(
        small_history(), as_of=AS_OF
    )
    table = {(r.segment, r.stage): r.rate for r in f.stage_rates}
    assert table[("x", "a")] == pytest.approx(1 / 3)


def test_without_closed_history_it_falls_back_to_stage_weights_and_says_so() -> None:
    records = [_opened("o", "2024-06-01", "b", "1000", expected_close="2024-07-10")]
    f = HistoricalForecast().compute(History.from_records(records, scheme=SCHEME), as_of=AS_OF)
    assert f.fallback is not None
    assert "stage weights" in f.fallback
    assert f.deals[0].win_probability == 0.5
    assert f.row("2024-07").expected == Decimal("500.00")


def test_lookback_ignores_deals_closed_before_it() -> None:
    f = HistoricalForecast(lookback=timedelta(days=30), new_business=False).compute(
        small_history(), as_of=AS_OF
    )
    assert f.stage_rates[0].deals == 1  # only c8 closed in the last 30 days


def test_condition_on_age_lowers_a_deal_that_sat_longer_than_won_deals_did() -> None:
    plain = HistoricalForecast(new_business=False).compute(small_history(), as_of=AS_OF)
    aged = HistoricalForecast(new_business=False, condition_on_age=True).compute(
        small_history(), as_of=AS_OF
    )
    p = {d.opportunity_id: d.win_probability for d in plain.deals}
    q = {d.opportunity_id: d.win_probability for d in aged.deals}
    # c7 has sat 111 days in a; won deals stayed 4, 10 and 50 days, lost ones 4 and 5
    # Sw = (0 + 1) / (3 + 2), Sl = (0 + 1) / (2 + 2): 0.6*0.2 / (0.6*0.2 + 0.4*0.25)
    assert q["c7"] == pytest.approx(0.12 / (0.12 + 0.1))
    assert q["c7"] < p["c7"]


def test_historical_forecasts_merge_only_with_the_same_tables() -> None:
    h = small_history()
    f = HistoricalForecast().compute(h, as_of=AS_OF)
    assert f.merge(f).row("2024-06").won == Decimal("600")
    other = HistoricalForecast().compute(h.for_opportunities(["c1", "c5"]), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        f.merge(other)
    assert err.value.argument == "other"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"period": "fortnight"}, "period"),
        ({"horizon": 0}, "horizon"),
        ({"segment_by": "region"}, "segment_by"),
        ({"prior_strength": -1}, "prior_strength"),
        ({"prior_strength": float("nan")}, "prior_strength"),
        ({"lookback": timedelta(0)}, "lookback"),
        ({"lookback": 30}, "lookback"),
        ({"new_business": "yes"}, "new_business"),
        ({"new_business_periods": 0}, "new_business_periods"),
        ({"condition_on_age": 1}, "condition_on_age"),
        ({"currency": "euro"}, "currency"),
        ({"tz": "UTC"}, "tz"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        HistoricalForecast(**kwargs)
    assert err.value.argument == argument


def test_bad_as_of_names_as_of() -> None:
    with pytest.raises(ArgumentError) as err:
        HistoricalForecast().compute(small_history(), as_of="2024-06-20")
    assert err.value.argument == "as_of"


histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
cutoffs = st.integers(30, 330).map(
    lambda d: (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=d)).isoformat()
)


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=cutoffs, segment=st.sampled_from([None, "owner", "product"]))
def test_no_look_ahead_probabilities_and_reconciliation(
    history: History, as_of: str, segment: Any
) -> None:
    model = HistoricalForecast(horizon=2, segment_by=segment)
    whole = model.compute(history, as_of=as_of)
    assert whole == model.compute(history.until(as_of), as_of=as_of)
    assert isinstance(whole, HistoricalForecastResult)
    assert all(0 <= d.win_probability <= 1 for d in whole.deals)
    assert all(0 <= r.rate <= 1 for r in whole.stage_rates)
    assert sum(r.expected for r in whole.rows) == sum(d.expected for d in whole.deals)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_learners_fast_reach_agrees_with_reached_stages(data: st.DataObject) -> None:
    """HistoricalForecast counts reached stages through ``_Funnel`` (one index per deal);
    it must agree with the library's one definition, ``reached_stages``, on every deal."""
    from pipelinekit import schemes
    from pipelinekit.forecasts.historical import _Funnel
    from pipelinekit.opportunity import reached_stages
    from pipelinekit.testing import history_records, stage_schemes

    scheme = data.draw(
        st.one_of(st.sampled_from([schemes.get("salesforce"), SCHEME]), stage_schemes())
    )
    recs = data.draw(history_records(scheme))
    pipeline = History.from_records(recs, scheme=scheme).as_of("2100-01-01T00:00:00Z")
    funnel = _Funnel(scheme)
    for opp in pipeline.values():
        reach = funnel.reach(opp)
        fast = tuple(k for k, i in zip(funnel.opens, funnel.open_index, strict=True) if i <= reach)
        assert fast == reached_stages(opp, scheme)


_days = st.floats(min_value=0, max_value=400, allow_nan=False).map(lambda d: round(d, 2))


@settings(max_examples=200, deadline=None)
@given(
    wins=st.lists(
        st.tuples(_days, _days).map(lambda p: (min(p), max(p))),  # a stay is within its duration
        max_size=12,
    ),
    deals=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10**7), _days), min_size=1, max_size=12
    ),
    months_ahead=st.integers(min_value=1, max_value=4),
)
def test_the_sweep_spreads_each_deal_over_the_wins_that_outstayed_it(
    wins: list[tuple[float, float]], deals: list[tuple[int, float]], months_ahead: int
) -> None:
    from pipelinekit.forecasts._learned import Horizon, spread, spread_by_stay
    from pipelinekit.periods import months

    first = months().period_of(datetime(2024, 3, 1, tzinfo=UTC).date())
    periods = [first]
    for _ in range(months_ahead - 1):
        periods.append(periods[-1].next())
    horizon = Horizon.of(tuple(periods), datetime(2024, 3, 10, tzinfo=UTC), UTC)
    values = [Decimal(cents) / 100 for cents, _ in deals]
    ages = [age for _, age in deals]
    swept = spread_by_stay(values, ages, wins, horizon)
    for value, age, got in zip(values, ages, swept, strict=True):
        possible = sorted(duration for stay, duration in wins if stay > age)
        expected = spread(value, possible, age, horizon) if possible else None
        assert got == expected
        if got is not None:
            assert sum(got.values()) == value.quantize(Decimal("0.01"))
