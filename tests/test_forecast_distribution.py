"""OutcomeDistribution and MonteCarloForecast: exact laws by hand, approximation error,
simulation convergence, determinism, merges and bad arguments."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, demo, schemes
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.distribution import (
    DistributionForecast,
    MonteCarloForecast,
    OutcomeDistribution,
    _Exact,
    _Mixture,
)
from pipelinekit.forecasts.weighted import WeightedForecast

AS_OF = "2024-03-15T12:00:00+00:00"


def three_deals(won: bool = False) -> History:
    """Three open March deals: 100 @ 0.2, 200 @ 0.5, 400 @ 0.8 (+ 1 000 won in March)."""
    records: list[dict[str, Any]] = [
        {"type": "opened", "opportunity_id": oid, "at": "2024-02-01T00:00:00+00:00",
         "stage": "prospecting", "amount": amount, "currency": "EUR",
         "probability": probability, "expected_close": "2024-03-28"}
        for oid, amount, probability in (("a", "100", "20"), ("b", "200", "50"),
                                         ("c", "400", "80"))
    ]  # fmt: skip
    if won:
        records += [
            {"type": "opened", "opportunity_id": "w", "at": "2024-02-01T00:00:00+00:00",
             "stage": "prospecting", "amount": "1000", "currency": "EUR"},
            {"type": "stage_changed", "opportunity_id": "w", "at": "2024-03-02T00:00:00+00:00",
             "stage": "closed-won"},
        ]  # fmt: skip
    return History.from_records(records, scheme=schemes.get("salesforce"))


# The 8 outcomes (a, b, c won?) of the three deals, by hand:
#   none    0   .8*.5*.2 = .08      a       100 .2*.5*.2 = .02
#   b       200 .8*.5*.2 = .08      a+b     300 .2*.5*.2 = .02
#   c       400 .8*.5*.8 = .32      a+c     500 .2*.5*.8 = .08
#   b+c     600 .8*.5*.8 = .32      a+b+c   700 .2*.5*.8 = .08
# CDF: 0 .08 | 100 .10 | 200 .18 | 300 .20 | 400 .52 | 500 .60 | 600 .92 | 700 1.00
# mean = 20 + 100 + 320 = 440; variance = 100²·.16 + 200²·.25 + 400²·.16 = 37 200


def test_exact_law_of_three_deals_by_hand() -> None:
    f = OutcomeDistribution(horizon=1).compute(three_deals(), as_of=AS_OF)
    march = f.row("2024-03")
    assert march.expected == Decimal(440)
    assert march.std == Decimal("192.87")  # sqrt(37 200) = 192.8730...
    # P10: F(100) = .10 reaches .10 exactly; P50: F(400) = .52; P90: F(600) = .92
    assert (march.p10, march.p50, march.p90) == (Decimal(100), Decimal(400), Decimal(600))
    assert f.to_records()[0]["law"] == "exact"
    law = f._law("2024-03", None)
    assert isinstance(law, _Exact)
    assert law.values == tuple(Decimal(v) for v in range(0, 800, 100))
    assert law.probs == pytest.approx((0.08, 0.02, 0.08, 0.02, 0.32, 0.08, 0.32, 0.08))
    assert f.quantile(0.19, "2024-03") == Decimal(300)
    assert f.quantile(0.6, "2024-03") == Decimal(500)


def test_probability_of_reaching_counts_won_revenue() -> None:
    f = OutcomeDistribution(horizon=1).compute(three_deals(won=True), as_of=AS_OF)
    march = f.row("2024-03")
    assert march.won == Decimal(1000)
    assert (march.p10, march.p50, march.p90) == (Decimal(1100), Decimal(1400), Decimal(1600))
    assert f.probability_of_reaching(1500, "2024-03") == pytest.approx(0.48)  # .08+.32+.08
    assert f.probability_of_reaching("1450.5", "2024-03") == pytest.approx(0.48)
    assert f.probability_of_reaching(1000, "2024-03") == 1.0
    assert f.probability_of_reaching(1700, "2024-03") == pytest.approx(0.08)
    assert f.probability_of_reaching(1701, "2024-03") == 0.0


def test_callable_probabilities_and_forecast_probabilities() -> None:
    half = OutcomeDistribution(horizon=1, probabilities=lambda opp: 0.5)
    f = half.compute(three_deals(), as_of=AS_OF)
    assert f.row("2024-03").expected == Decimal(350)
    weighted = WeightedForecast(horizon=1).compute(three_deals(), as_of=AS_OF)
    g = OutcomeDistribution(horizon=1, probabilities=weighted).compute(three_deals(), as_of=AS_OF)
    assert g.row("2024-03").expected == Decimal(440)


def test_distribution_mean_matches_weighted_forecast() -> None:
    h = demo.demo_history(opportunities=60, seed=42)
    as_of = "2024-09-30T00:00:00+00:00"
    d = OutcomeDistribution().compute(h, as_of=as_of)
    w = WeightedForecast().compute(h, as_of=as_of)
    assert [(r.bucket, r.won, r.expected, r.std) for r in d.rows] == [
        (r.bucket, r.won, r.expected, r.std) for r in w.rows
    ]


def _pipeline(seed: int, n: int) -> list[tuple[Decimal, float]]:
    rng = random.Random(seed)
    return [
        (Decimal(rng.randrange(1, 100) * 1000), rng.choice([0.1, 0.2, 0.5, 0.75, 0.9]))
        for _ in range(n)
    ]


def test_approximation_error_on_a_60_deal_pipeline() -> None:
    """Measured: mixture P10/P50/P90 errors +0.40 %, -0.47 %, +0.32 % of sigma (exact law
    by convolution over the 3 065 distinct sums); a plain normal curve: +1.12, -1.17, +0.54."""
    deals = _pipeline(2, 60)
    exact = _Exact.of(Decimal(0), deals)
    mixture = _Mixture.of(Decimal(0), deals, 10)
    sigma = math.sqrt(sum(float(a) ** 2 * p * (1 - p) for a, p in deals))
    for q in (0.1, 0.5, 0.9):
        error = float(mixture.quantile(q) - exact.quantile(q)) / sigma
        assert abs(error) < 0.01
    target = Decimal(1_900_000)
    assert mixture.at_least(target) == pytest.approx(exact.at_least(target), abs=0.01)


def test_approximation_follows_a_whale_deal() -> None:
    """One 200 000 deal among forty small ones (all p = 0.1): the sum is bimodal. Measured
    errors in sigma: mixture P10 +0.14 %, P50 +0.70 %; normal -19 %, +31 %. P(X >= 100 000):
    exact 0.1018, mixture 0.1013, normal 0.233."""
    rng = random.Random(5)
    deals = [(Decimal(rng.randrange(1, 20) * 1000), 0.1) for _ in range(40)]
    deals.append((Decimal(200_000), 0.1))
    exact = _Exact.of(Decimal(0), deals)
    mixture = _Mixture.of(Decimal(0), deals, 10)
    sigma = math.sqrt(sum(float(a) ** 2 * p * (1 - p) for a, p in deals))
    for q in (0.1, 0.5):
        assert abs(float(mixture.quantile(q) - exact.quantile(q))) / sigma < 0.01
    target = Decimal(100_000)
    assert mixture.at_least(target) == pytest.approx(exact.at_least(target), abs=0.001)
    assert _Mixture.of(Decimal(0), deals, 0).at_least(target) > 0.2  # the normal curve


def test_large_buckets_use_the_mixture_and_exact_limit_zero_the_normal() -> None:
    h = demo.demo_history(opportunities=60, seed=42)
    as_of = "2024-09-30T00:00:00+00:00"
    laws = {r["bucket"]: r["law"] for r in OutcomeDistribution(exact_limit=3).compute(
        h, as_of=as_of).to_records()}  # fmt: skip
    assert laws["later"] == "mixture"  # 7 deals > 3
    assert laws["2024-09"] == "exact"
    normal = OutcomeDistribution(exact_limit=0).compute(h, as_of=as_of)
    assert {r["law"] for r in normal.to_records()} == {"normal"}


# -- Monte Carlo ---------------------------------------------------------------------------

DEMO = demo.demo_history(opportunities=60, seed=42)
DEMO_AS_OF = "2024-09-30T00:00:00+00:00"


def test_simulation_mean_converges_to_the_analytic_mean() -> None:
    """At seed 11 with 20 000 trials every bucket's simulated mean is within 3 standard
    errors (sigma / sqrt(trials)) of the exact mean won + Σ a p."""
    analytic = OutcomeDistribution().compute(DEMO, as_of=DEMO_AS_OF)
    sim = MonteCarloForecast(trials=20_000, seed=11).compute(DEMO, as_of=DEMO_AS_OF)
    for a, s in zip(analytic.rows, sim.rows, strict=True):
        assert (a.bucket, a.won, a.deals) == (s.bucket, s.won, s.deals)
        assert a.std is not None
        standard_error = float(a.std) / math.sqrt(20_000)
        assert abs(float(s.expected - a.expected)) <= 3 * standard_error + 0.01
        assert s.std is not None
        assert float(s.std) == pytest.approx(float(a.std), rel=0.05)


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    one = MonteCarloForecast(trials=500, seed=3).compute(DEMO, as_of=DEMO_AS_OF)
    two = MonteCarloForecast(trials=500, seed=3).compute(DEMO, as_of=DEMO_AS_OF)
    other = MonteCarloForecast(trials=500, seed=4).compute(DEMO, as_of=DEMO_AS_OF)
    assert one == two
    assert one.totals == two.totals
    assert one.totals != other.totals


def test_common_shock_widens_the_spread() -> None:
    calm = MonteCarloForecast(trials=5000, seed=1).compute(DEMO, as_of=DEMO_AS_OF)
    shocked = MonteCarloForecast(trials=5000, seed=1, shock=0.8).compute(DEMO, as_of=DEMO_AS_OF)
    for bucket in ("2024-10", "later"):
        calm_std, shocked_std = calm.row(bucket).std, shocked.row(bucket).std
        assert calm_std is not None
        assert shocked_std is not None
        assert shocked_std > calm_std


def test_simulated_probability_of_reaching() -> None:
    sim = MonteCarloForecast(trials=4000, seed=5).compute(three_deals(won=True), as_of=AS_OF)
    assert sim.probability_of_reaching(1000, "2024-03") == 1.0
    assert sim.probability_of_reaching(1701, "2024-03") == 0.0
    # exact .48; 3 standard errors of a share at n = 4000 is 3 * sqrt(.48 * .52 / 4000)
    assert abs(sim.probability_of_reaching(1500, "2024-03") - 0.48) < 3 * math.sqrt(
        0.48 * 0.52 / 4000
    )
    assert sim.row("2024-03").p10 == Decimal(1100)
    assert sim.row("2024-03").p90 == Decimal(1600)


# -- properties ----------------------------------------------------------------------------

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
as_ofs = st.datetimes(min_value=datetime(2024, 1, 15), max_value=datetime(2025, 1, 15)).map(
    lambda d: d.replace(tzinfo=UTC)
)
masks = st.lists(st.booleans(), min_size=25, max_size=25)


def _split(history: History, mask: list[bool]) -> tuple[History, History]:
    ids = history.opportunity_ids
    left = {i for i, keep in zip(ids, mask, strict=False) if keep}
    return (
        history.for_opportunities(left),
        history.for_opportunities(i for i in ids if i not in left),
    )


@settings(max_examples=25, deadline=None)
@given(histories, as_ofs, masks)
def test_distribution_merge_over_a_split_equals_the_whole(
    history: History, as_of: datetime, mask: list[bool]
) -> None:
    od = OutcomeDistribution(group_by="product", exact_limit=4)
    left, right = _split(history, mask)
    whole = od.compute(history, as_of=as_of)
    merged = od.compute(left, as_of=as_of).merge(od.compute(right, as_of=as_of))
    assert isinstance(merged, DistributionForecast)
    assert merged.rows == whole.rows  # laws rebuilt from the merged deals: std, quantiles too
    assert merged.deals == whole.deals


@settings(max_examples=25, deadline=None)
@given(histories, as_ofs, masks, st.sampled_from([0.0, 0.5]))
def test_simulation_merge_over_a_split_equals_the_whole(
    history: History, as_of: datetime, mask: list[bool], shock: float
) -> None:
    mc = MonteCarloForecast(trials=200, seed=9, shock=shock)
    left, right = _split(history, mask)
    whole = mc.compute(history, as_of=as_of)
    merged = mc.compute(left, as_of=as_of).merge(mc.compute(right, as_of=as_of))
    assert merged.rows == whole.rows
    for row in whole.rows:
        assert merged._cents(row.bucket, row.group) == whole._cents(row.bucket, row.group)


@settings(max_examples=25, deadline=None)
@given(histories, as_ofs)
def test_no_look_ahead_and_probabilities_in_unit_interval(
    history: History, as_of: datetime
) -> None:
    od = OutcomeDistribution()
    f = od.compute(history, as_of=as_of)
    assert f == od.compute(history.until(as_of), as_of=as_of)
    mc = MonteCarloForecast(trials=100, seed=1, shock=0.3)
    assert mc.compute(history, as_of=as_of) == mc.compute(history.until(as_of), as_of=as_of)
    assert all(0 <= d.win_probability <= 1 for d in f.deals)
    for row in f.rows:
        assert row.p10 is not None
        assert row.p50 is not None
        assert row.p90 is not None
        assert (
            row.won
            <= row.p10
            <= row.p50
            <= row.p90
            <= row.won
            + sum(
                (d.amount for d in f.deals if (d.bucket, d.group) == (row.bucket, row.group)),
                Decimal(0),
            )
        )
        chances = [f.probability_of_reaching(t, row.bucket) for t in (row.won, row.p50, row.p90)]
        assert all(0 <= c <= 1 for c in chances)
        assert chances == sorted(chances, reverse=True)


# -- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"horizon": 0}, "horizon"),
        ({"group_by": "team"}, "group_by"),
        ({"period": "fortnight"}, "period"),
        ({"exact_limit": 25}, "exact_limit"),
        ({"exact_limit": -1}, "exact_limit"),
        ({"probabilities": "stage"}, "probabilities"),
        ({"probabilities": 0.5}, "probabilities"),
    ],
)
def test_bad_distribution_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        OutcomeDistribution(**kwargs)
    assert err.value.argument == argument


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"trials": 0, "seed": 1}, "trials"),
        ({"trials": 2.5, "seed": 1}, "trials"),
        ({"seed": -1}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"seed": 1, "shock": -0.1}, "shock"),
        ({"seed": 1, "shock": math.inf}, "shock"),
        ({"seed": 1, "horizon": 0}, "horizon"),
        ({"seed": 1, "period": "fortnight"}, "period"),
        ({"seed": 1, "group_by": "team"}, "group_by"),
    ],
)
def test_bad_simulation_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        MonteCarloForecast(**kwargs)
    assert err.value.argument == argument


def test_probability_outside_unit_interval_or_missing_names_probabilities() -> None:
    with pytest.raises(ArgumentError) as err:
        OutcomeDistribution(probabilities=lambda o: 1.5).compute(three_deals(), as_of=AS_OF)
    assert err.value.argument == "probabilities"
    partial = WeightedForecast(horizon=1).compute(
        three_deals().for_opportunities(["a"]), as_of=AS_OF
    )
    with pytest.raises(ArgumentError) as err:
        OutcomeDistribution(probabilities=partial).compute(three_deals(), as_of=AS_OF)
    assert err.value.argument == "probabilities"


def test_bad_queries_and_merges() -> None:
    f = OutcomeDistribution(horizon=1).compute(three_deals(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        f.probability_of_reaching(10, "2031-01")
    assert err.value.argument == "bucket"
    with pytest.raises(ArgumentError) as err:
        f.probability_of_reaching("lots", "2024-03")
    assert err.value.argument == "target"
    with pytest.raises(ArgumentError) as err:
        f.quantile(1.0, "2024-03")
    assert err.value.argument == "q"
    g = OutcomeDistribution(horizon=1, exact_limit=2).compute(three_deals(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        f.merge(g)
    assert err.value.argument == "other"
    s1 = MonteCarloForecast(trials=10, seed=1).compute(three_deals(), as_of=AS_OF)
    s2 = MonteCarloForecast(trials=10, seed=2).compute(three_deals(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        s1.merge(s2)
    assert err.value.argument == "other"
