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


def test_stage_rates_are_cumulative_incidence_with_open_deals_in_the_risk_set() -> None:
    model = HistoricalForecast(horizon=3, new_business=False)
    f = model.compute(small_history(), as_of=AS_OF)
    a, b = f.stage_rates
    # closed deals that reached a / b: 3 of 5 and 3 of 4 won (what a closed-only rate says)
    assert (a.stage, a.deals, a.won, a.observed, a.source) == ("a", 5, 3, 0.6, "history")
    assert (b.stage, b.deals, b.won, b.observed) == ("b", 4, 3, 0.75)
    # Deals that were in a, days from their last entry to the close or to AS_OF:
    # c8 won 4, c3 lost 4, c5 open 5, c4 lost 15, c1 won 20, c2 won 50, c7 open 111.
    # Aalen-Johansen: at 4 (7 at risk) F = 1/7, S = 5/7; at 15 (4 at risk) S = 15/28;
    # at 20 (3) F += 15/28 / 3 -> 9/28, S = 10/28; at 50 (2) F += 10/28 / 2 -> 1/2.
    # Smoothed towards the weight 0.2 by 2 pseudo-deals: (0.5 x 7 + 2 x 0.2) / 9.
    assert a.rate == pytest.approx((0.5 * 7 + 2 * 0.2) / 9)
    # still open at the oldest age five deals were open at (4 days): 5/7
    assert (a.in_stage, a.never_closed) == (7, pytest.approx(5 / 7))
    # b: c1 won 10, c4 lost 10, c6 open 10 (censored at the same time is at risk):
    # F = 1/3, S = 1/3; smoothed towards 0.5: (1/3 x 3 + 2 x 0.5) / 5 = 0.4
    assert b.rate == pytest.approx(0.4)
    assert (b.in_stage, b.never_closed) == (3, 1.0)  # fewer than five deals: at age 0
    assert a.insufficient and b.insufficient  # fewer than min_deals=20 deals each
    assert any("insufficient history" in n for n in f.notes)
    # 3 of 5: p = 0.6, z = 1.96 -> about [0.231, 0.882]
    assert (round(a.low or 0, 3), round(a.high or 0, 3)) == (0.231, 0.882)
    assert (a.low, a.high) == pytest.approx(_wilson(3, 5))
    assert (b.low, b.high) == pytest.approx(_wilson(3, 4))
    assert a.wins_timed == 3
    assert a.median_days == 20.0
    assert b.wins_timed == 1
    assert b.median_days == 10.0
    assert model.stage_rates_ == f.stage_rates
    assert f.stage_rates_records()[0]["rate"] == a.rate


def test_open_deals_are_censored_not_counted_as_losses() -> None:
    f = HistoricalForecast(new_business=False).compute(small_history(), as_of=AS_OF)
    # c5, c6, c7 are open at AS_OF (c6 is lost only later): 5 closed deals reached a
    assert f.stage_rates[0].deals == 5
    assert {d.opportunity_id for d in f.deals} == {"c5", "c6", "c7"}


def test_expected_value_is_spread_by_what_became_of_deals_that_stayed_as_long() -> None:
    f = HistoricalForecast(horizon=3, new_business=False).compute(small_history(), as_of=AS_OF)
    # A deal still in a after 5 days is compared with the deals whose stay in a lasted
    # longer: c4 (lost 15 days after entering), c5 itself (open at 5), c1 (won at 20), c2
    # (won at 50), c7 (open at 111). Among them: lost at 15, won at 20 (F = 1/4), won at
    # 50 (F = 1/2). Eventually 1/2, smoothed over their 5 deals towards the weight 0.2:
    # (0.5 x 5 + 2 x 0.2) / 7 = 0.41429; within 11 days (June) 0, days 11-42 (July) 1/4,
    # days 42-73 (August) 1/4, both scaled to 0.41429: 0.20714 each.
    # c7 has sat 111 days, longer than all but one deal stayed (fewer than five): it is
    # taken at the age five deals still stayed, which is c5's.
    # b had 3 deals (fewer than five): c6 is compared with all of them: F = 1/3 within
    # 10 days, smoothed to (1/3 x 3 + 2 x 0.5) / 5 = 0.4, all of it in June.
    rows = {r.bucket: r for r in f.rows}
    assert rows["2024-06"].won == Decimal("300")  # c8
    assert rows["2024-06"].expected == Decimal("240.00")  # c6: 600 x 0.4
    assert rows["2024-07"].expected == Decimal("621.43")  # c5 207.14 + c7 414.29
    assert rows["2024-08"].expected == Decimal("621.42")  # c5 207.14 + c7 414.28
    assert rows["later"].expected == Decimal("0.01")
    assert "overdue" not in rows  # an old deal gets its chance, not a bucket of its own
    deals = {d.opportunity_id: d for d in f.deals}
    assert deals["c5"].win_probability == pytest.approx(2.9 / 7)
    assert deals["c5"].expected == Decimal("414.29")
    assert deals["c5"].periods == pytest.approx((0.0, 0.20714, 0.20714), abs=1e-5)
    assert deals["c6"].bucket == "2024-06"


def test_an_old_deal_in_a_stage_of_zombies_gets_a_small_chance() -> None:
    # 30 deals entered a on 01-01 and never closed; 10 entered on 01-01 and were won within
    # 20 days. A deal open in a for 100 days has outlived every win: its chance is 0 (the
    # closed-only rate would give it 10 / 10 = 1).
    records: list[dict[str, Any]] = []
    for i in range(30):
        records.append(_opened(f"z{i}", "2024-01-01", "a", "100"))
    for i in range(10):
        records.append(_opened(f"w{i}", "2024-01-01", "a", "100"))
        records.append(_moved(f"w{i}", f"2024-01-{11 + i:02d}", "won"))
    records.append(_opened("old", "2024-03-01", "a", "1000"))
    h = History.from_records(records, scheme=SCHEME)
    f = HistoricalForecast(horizon=1, new_business=False, stage_prior=0).compute(h, as_of=AS_OF)
    a = f.stage_rates[0]
    assert a.observed == 1.0  # every closed deal was won
    assert a.rate == pytest.approx(10 / 41)  # 41 deals were in a, 10 won
    assert a.never_closed == pytest.approx(31 / 41)
    deals = {d.opportunity_id: d for d in f.deals}
    assert deals["old"].win_probability == 0.0
    assert deals["z0"].win_probability == 0.0


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
    june = rows["2024-06"]
    assert june.total == june.won + june.expected + june.new


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
    # a deal's chance is its stage's (from the deals that stayed as long) times how its
    # segment's closed deals fared against the stage's (0.44 against 0.6)
    stage_a = 2.9 / 7  # c5's chance from the deals that stayed in a as long (above)
    assert deals["c5"].win_probability == pytest.approx(stage_a * ((1 + k * 0.6) / (3 + k)) / 0.6)
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


def test_a_deals_chance_falls_with_the_time_it_has_sat_in_its_stage() -> None:
    h = demo.crm_history(months=18, deals_per_month=80, seed=5)
    f = HistoricalForecast(new_business=False).compute(h, as_of="2023-06-01T00:00:00Z")
    by_age: dict[str, list[tuple[float, float]]] = {}
    when = datetime(2023, 6, 1, tzinfo=UTC)
    pipeline = h.as_of(when)
    for d in f.deals:
        age = (when - pipeline[d.opportunity_id].stage_entered_at).days
        by_age.setdefault(d.stage, []).append((age, d.win_probability))
    young = [p for age, p in by_age["proposal"] if age < 15]
    old = [p for age, p in by_age["proposal"] if age > 120]
    assert young and old
    assert max(old) < min(young)


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
        ({"stage_prior": -1}, "stage_prior"),
        ({"min_deals": -1}, "min_deals"),
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


_outcomes = st.lists(
    st.tuples(st.integers(min_value=0, max_value=60).map(float), st.sampled_from((0, 1, 2))),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(outcomes=_outcomes, age=st.integers(min_value=0, max_value=70).map(float))
def test_incidence_is_a_distribution_over_won_lost_and_still_open(
    outcomes: list[tuple[float, int]], age: float
) -> None:
    from pipelinekit.forecasts._survival import Incidence

    c = Incidence.of(outcomes)
    end = float("inf")
    # won + lost + still open = 1 at every time, each share in [0, 1], F and 1 - S rising
    assert 0.0 <= c.won_by(end) <= 1.0 - c.open_at(end) + 1e-12
    previous = (0.0, 1.0)
    for t in (*c.times, end):
        assert c.won_by(t) >= previous[0] - 1e-12 and c.open_at(t) <= previous[1] + 1e-12
        previous = (c.won_by(t), c.open_at(t))
    # the chances of the periods add up to the eventual chance
    eventual = c.won_after(age)
    pieces = c.won_within(age, 0, 10) + c.won_within(age, 10, 30) + c.won_within(age, 30, 1e9)
    assert pieces == pytest.approx(eventual, abs=1e-9)
    assert 0.0 <= eventual <= 1.0 + 1e-9


@settings(max_examples=100, deadline=None)
@given(
    outcomes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=60).map(float), st.sampled_from((1, 2))),
        min_size=1,
        max_size=40,
    )
)
def test_without_open_deals_the_incidence_is_the_share_won(
    outcomes: list[tuple[float, int]],
) -> None:
    from pipelinekit.forecasts._survival import WON, Incidence

    c = Incidence.of(outcomes)
    won = sum(1 for _, code in outcomes if code == WON)
    assert c.won_by(float("inf")) == pytest.approx(won / len(outcomes))
    for t in (0.0, 10.0, 30.0):
        by_t = sum(1 for d, code in outcomes if code == WON and d <= t)
        assert c.won_by(t) == pytest.approx(by_t / len(outcomes))
