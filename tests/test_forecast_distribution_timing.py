"""Distribution forecasts with a learned source: deals spread over the horizon by their
per-period chances, new business with its spread, and the method's past errors in the band."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
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
    SimulatedForecast,
)
from pipelinekit.forecasts.markov import MarkovForecast
from pipelinekit.forecasts.new_business import NewBusinessLag
from pipelinekit.forecasts.period_error import PeriodError
from pipelinekit.forecasts.result import DealForecast, Forecast, ForecastRow
from pipelinekit.money import total
from pipelinekit.testing import check_calculator

AS_OF = "2024-03-15T12:00:00+00:00"
MARCH, APRIL = (date(2024, 3, 1), date(2024, 4, 1)), (date(2024, 4, 1), date(2024, 5, 1))


def two_deals() -> History:
    """Two open deals, a (100) and b (200), typed to close in March; 50 won in March."""
    records: list[dict[str, Any]] = [
        {"type": "opened", "opportunity_id": oid, "at": "2024-02-01T00:00:00+00:00",
         "stage": "prospecting", "amount": amount, "currency": "EUR",
         "expected_close": "2024-03-28"}
        for oid, amount in (("a", "100"), ("b", "200"))
    ]  # fmt: skip
    records += [
        {"type": "opened", "opportunity_id": "w", "at": "2024-02-01T00:00:00+00:00",
         "stage": "prospecting", "amount": "50", "currency": "EUR"},
        {"type": "stage_changed", "opportunity_id": "w", "at": "2024-03-02T00:00:00+00:00",
         "stage": "closed-won"},
    ]  # fmt: skip
    return History.from_records(records, scheme=schemes.get("salesforce"))


def source(
    new: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0)),
    table: tuple[NewBusinessLag, ...] = (),
) -> Forecast:
    """A hand-made learned forecast: a is won in March 0.5, in April 0.25 (0.9 in all);
    b in April 0.5 (0.5 in all)."""

    class Learned(Forecast):
        new_business: tuple[NewBusinessLag, ...] = ()

    deal = {"stage": "prospecting", "expected": Decimal(0), "bucket": "2024-03"}
    return Learned(
        method="hand",
        as_of=datetime(2024, 3, 15, 12, tzinfo=UTC),
        currency="EUR",
        rows=(
            ForecastRow(bucket="2024-03", start=MARCH[0], end=MARCH[1], new=new[0]),
            ForecastRow(bucket="2024-04", start=APRIL[0], end=APRIL[1], new=new[1]),
        ),
        deals=(
            DealForecast(
                opportunity_id="a",
                amount=Decimal(100),
                win_probability=0.9,
                periods=(0.5, 0.25),
                **deal,
            ),
            DealForecast(
                opportunity_id="b",
                amount=Decimal(200),
                win_probability=0.5,
                periods=(0.0, 0.5),
                **deal,
            ),
        ),
        new_business=table,
    )


def test_deals_land_in_every_period_with_their_chances_by_hand() -> None:
    f = OutcomeDistribution(horizon=2, probabilities=source()).compute(two_deals(), as_of=AS_OF)
    assert f.timing == "deal periods"
    march, april, later = f.row("2024-03"), f.row("2024-04"), f.row("later")
    # March: 50 won + a (100 @ 0.5); April: a (100 @ 0.25) + b (200 @ 0.5); later: a @ 0.15
    assert (march.won, march.expected, march.deals) == (Decimal(50), Decimal("50.0"), 1)
    assert (april.expected, april.deals) == (Decimal("125.00"), 2)
    assert (later.expected, later.deals) == (Decimal("15.00"), 1)
    assert (march.p10, march.p50, march.p90) == (Decimal(50), Decimal(50), Decimal(150))
    # April: 0 (.75 * .5 = .375), 100 (.125), 200 (.375), 300 (.125); P(<= 100) = .5
    assert (april.p10, april.p50, april.p90) == (Decimal(0), Decimal(100), Decimal(300))
    assert f.probability_of_reaching(200, "2024-04") == pytest.approx(0.5)
    assert april.std == Decimal(math.sqrt(100**2 * 0.25 * 0.75 + 200**2 * 0.25)).quantize(
        Decimal("0.01")
    )
    assert {d.opportunity_id: d.bucket for d in f.deals} == {"a": "2024-03", "b": "2024-04"}
    assert sum(r.expected for r in f.rows) == sum(d.expected for d in f.deals)
    # the typed close date (March) is ignored: nothing is overdue or placed by it
    assert [r.bucket for r in f.rows] == ["2024-03", "2024-04", "later"]


def test_a_horizon_shorter_than_the_source_puts_the_rest_later() -> None:
    f = OutcomeDistribution(horizon=1, probabilities=source()).compute(two_deals(), as_of=AS_OF)
    assert f.row("later").expected == Decimal(100) * Decimal("0.4") + Decimal(100)
    assert [d.periods for d in f.deals] == [(0.5,), (0.0,)]


def test_new_business_is_drawn_from_its_past_values_by_hand() -> None:
    table = (
        NewBusinessLag(lag=0, bucket="2024-03", mean=Decimal(25), values=(Decimal(0), Decimal(50)),
                       origins=2, insufficient=False),
        NewBusinessLag(lag=1, bucket="2024-04", mean=Decimal(0), origins=0, insufficient=True),
    )  # fmt: skip
    src = source(new=(Decimal(25), Decimal(0)), table=table)
    f = OutcomeDistribution(horizon=2, probabilities=src).compute(two_deals(), as_of=AS_OF)
    march = f.row("2024-03")
    # 50 won + a (100 @ .5) + new business 0 or 50: 50, 100, 150, 200 with .25 each
    assert (march.new, march.total) == (Decimal(25), Decimal("125.0"))
    assert (march.p10, march.p50, march.p90) == (Decimal(50), Decimal(100), Decimal(200))
    assert f.probability_of_reaching(150, "2024-03") == pytest.approx(0.5)
    assert march.std == Decimal(math.sqrt(100**2 * 0.25 + 25**2)).quantize(Decimal("0.01"))
    assert f.new_business == table
    assert any("no evidence for new business in ['2024-04']" in n for n in f.notes)
    grouped = OutcomeDistribution(horizon=2, probabilities=src, group_by="owner")
    g = grouped.compute(two_deals(), as_of=AS_OF)
    assert all(r.new == 0 for r in g.rows) and g.new_business == ()
    assert any("not forecast by group" in n for n in g.notes)


def test_new_business_without_past_values_is_a_fixed_amount_and_says_so() -> None:
    f = OutcomeDistribution(horizon=2, probabilities=source(new=(Decimal(30), Decimal(0)))).compute(
        two_deals(), as_of=AS_OF
    )
    march = f.row("2024-03")
    assert (march.p10, march.p90) == (Decimal(80), Decimal(180))
    assert any("no spread" in n for n in f.notes)


def test_past_errors_multiply_the_open_revenue_by_hand() -> None:
    table = (PeriodError(lag=0, bucket="2024-03", ratios=(0.5,), origins=1),)
    src = source()
    f = OutcomeDistribution(horizon=1, probabilities=src, period_error=table).compute(
        two_deals(), as_of=AS_OF
    )
    march = f.row("2024-03")
    # 50 won + R x (a: 100 @ .5), R = 1 or 0.5 equally: 50, 50, 100, 150 with .25 each
    assert (march.p10, march.p50, march.p90) == (Decimal(50), Decimal(50), Decimal(150))
    assert f.to_records()[0]["law"] == "past errors"
    assert f.probability_of_reaching(100, "2024-03") == pytest.approx(0.5)
    # Var(R Y) = E[R²] E[Y²] − E[R]² E[Y]² = .625 * 5000 − .5625 * 2500
    assert march.std == Decimal(math.sqrt(0.625 * 5000 - 0.5625 * 2500)).quantize(Decimal("0.01"))
    assert march.total == Decimal("100.0")  # the mean forecast is the method's own
    with pytest.raises(ArgumentError, match="2024-04") as err:
        OutcomeDistribution(horizon=2, probabilities=src, period_error=table).compute(
            two_deals(), as_of=AS_OF
        )
    assert err.value.argument == "period_error"


def test_a_forecaster_as_source_is_run_at_the_same_as_of() -> None:
    h = demo.crm_history(months=14, deals_per_month=40, seed=5)
    when = "2023-01-11T00:00:00Z"
    markov = MarkovForecast(horizon=2)
    by_forecaster = OutcomeDistribution(horizon=2, probabilities=markov).compute(h, as_of=when)
    by_result = OutcomeDistribution(horizon=2, probabilities=markov.compute(h, as_of=when)).compute(
        h, as_of=when
    )
    assert by_forecaster == by_result
    assert by_forecaster.timing == "deal periods"
    assert [x.bucket for x in by_forecaster.new_business] == ["2023-01", "2023-02"]
    assert by_forecaster.row("2023-02").new == markov.compute(h, as_of=when).row("2023-02").new


def test_learned_past_errors_come_from_the_forecasters_past_forecasts() -> None:
    h = demo.crm_history(months=14, deals_per_month=40, seed=5)
    when = "2023-01-11T00:00:00Z"
    od = OutcomeDistribution(horizon=2, period_error="learned", error_periods=3)
    f = od.compute(h, as_of=when)
    lag0, lag1 = f.period_error
    assert (lag0.bucket, lag0.origins, lag1.bucket, lag1.origins) == ("2023-01", 3, "2023-02", 3)
    plain = OutcomeDistribution(horizon=2)
    first = next(p for p in f.past_forecasts if p.lag == 0)
    assert first.origin == datetime(2022, 12, 11, tzinfo=UTC)
    then = plain.compute(h, as_of=first.origin).row("2022-12")
    assert first.forecast == then.expected + then.new
    won = h.as_of(when)
    actual = sum(
        (o.amount or 0 for o in won.values()
         if o.is_won and o.closed_at is not None and first.origin < o.closed_at
         and o.closed_at.date() < date(2023, 1, 1)),
        Decimal(0),
    )  # fmt: skip
    assert first.actual == actual and first.ratio == pytest.approx(float(actual / first.forecast))
    assert lag0.ratios == tuple(p.ratio for p in f.past_forecasts if p.lag == 0)
    # the same table given back gives the same forecast (as partitions need)
    again = OutcomeDistribution(horizon=2, period_error=f.period_error).compute(h, as_of=when)
    assert again.rows == f.rows
    # a history that starts in as_of's month has no past forecast: chance alone, and said
    young = od.compute(h, as_of="2022-01-20T00:00:00Z")
    assert all(e.insufficient and e.ratios == () for e in young.period_error)
    assert any("insufficient history" in n for n in young.notes)


def test_simulated_deals_are_won_at_most_once_and_agree_with_the_law() -> None:
    table = (
        NewBusinessLag(lag=0, bucket="2024-03", mean=Decimal(25), values=(Decimal(0), Decimal(50)),
                       origins=2, insufficient=False),
    )  # fmt: skip
    src = source(new=(Decimal(25), Decimal(0)), table=table)
    mc = MonteCarloForecast(horizon=2, trials=20_000, seed=3, probabilities=src)
    sim = mc.compute(two_deals(), as_of=AS_OF)
    assert sim.timing == "deal periods"
    a_in = [t for t in sim.totals if t.bucket in ("2024-03", "later")]
    for trial in zip(*(t.cents for t in a_in), strict=True):
        assert sum(trial) in (0, 10_000)  # a (100.00) lands in one bucket at most
    exact = OutcomeDistribution(horizon=2, probabilities=src).compute(two_deals(), as_of=AS_OF)
    for row in exact.rows:
        mine = sim.row(row.bucket)
        assert abs(mine.expected - row.expected) <= 3 * (row.std or 1) / Decimal(math.sqrt(20_000))
    assert sim.row("2024-03").new == Decimal(25)
    assert sim.probability_of_reaching(150, "2024-03") == pytest.approx(0.5, abs=0.02)
    errors = (PeriodError(lag=0, bucket="2024-03", ratios=(0.5,), origins=1),
              PeriodError(lag=1, bucket="2024-04", ratios=(2.0,), origins=1))  # fmt: skip
    scaled = MonteCarloForecast(horizon=2, trials=20_000, seed=3, probabilities=src,
                                period_error=errors).compute(two_deals(), as_of=AS_OF)  # fmt: skip
    march = scaled.row("2024-03")
    assert march.expected == sim.row("2024-03").expected  # the mean forecast is unchanged
    # 50 won + R (a + new): R = 1 or .5; a: 0/100, new: 0/50
    assert (march.p10, march.p90) == (Decimal(50), Decimal(200))


def test_bad_sources_and_period_errors_are_refused_by_name() -> None:
    class Broken:
        def compute(self, history: History, *, as_of: Any) -> int:
            return 3

    with pytest.raises(ArgumentError, match="returned int") as err:
        OutcomeDistribution(probabilities=Broken()).compute(two_deals(), as_of=AS_OF)  # type: ignore[arg-type]
    assert err.value.argument == "probabilities"
    quarterly = MarkovForecast(period="quarter", horizon=1)
    with pytest.raises(ArgumentError, match="periods") as err:
        OutcomeDistribution(horizon=1, probabilities=quarterly).compute(two_deals(), as_of=AS_OF)
    assert err.value.argument == "probabilities"
    with pytest.raises(ArgumentError, match="horizon of at least 3") as err:
        OutcomeDistribution(horizon=3, probabilities=source()).compute(two_deals(), as_of=AS_OF)
    assert err.value.argument == "probabilities"
    for bad in ("always", 0.2, [0.2], ()):
        with pytest.raises(ArgumentError) as err:
            OutcomeDistribution(period_error=bad)  # type: ignore[arg-type]
        assert err.value.argument == "period_error"
    for count in (0, 1.5, True):
        with pytest.raises(ArgumentError) as err:
            MonteCarloForecast(seed=1, error_periods=count)  # type: ignore[arg-type]
        assert err.value.argument == "error_periods"


def test_merges_keep_new_business_once_and_refuse_other_errors() -> None:
    h = demo.crm_history(months=14, deals_per_month=40, seed=5)
    when = "2023-01-11T00:00:00Z"
    evidence = MarkovForecast(horizon=2).learn(h, as_of=when)
    shared = MarkovForecast(horizon=2, learned=evidence)
    od = OutcomeDistribution(horizon=2, probabilities=shared)
    a, b = h.partition(2)
    fa, fb = od.compute(a, as_of=when), od.compute(b, as_of=when)
    assert fa.row("2023-02").new == fb.row("2023-02").new > 0
    assert fa.merge(fb) == od.compute(h, as_of=when)
    # partitions that learn their own past errors do not merge
    learned = OutcomeDistribution(horizon=2, period_error="learned")
    with pytest.raises(ArgumentError, match="period error") as err:
        learned.compute(a, as_of=when).merge(learned.compute(b, as_of=when))
    assert err.value.argument == "other"


@cache
def _crm(seed: int) -> History:
    return demo.crm_history(months=14, deals_per_month=25, seed=seed)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 3),
    parts=st.integers(2, 3),
    day=st.integers(1, 28),
    trials=st.sampled_from([0, 50]),
)
def test_partitions_with_shared_evidence_and_errors_merge_into_the_whole(
    seed: int, parts: int, day: int, trials: int
) -> None:
    h = _crm(seed)
    when = datetime(2022, 11, day, tzinfo=UTC)
    source = MarkovForecast(horizon=2, learned=MarkovForecast(horizon=2).learn(h, as_of=when))
    # past errors are learned on the whole (a source with learned evidence cannot forecast
    # at past origins) and given to every partition
    errors = OutcomeDistribution(
        horizon=2, probabilities=MarkovForecast(horizon=2), period_error="learned",
        error_periods=2,
    ).compute(h, as_of=when).period_error  # fmt: skip
    assert all(e.ratios for e in errors)
    forecaster: OutcomeDistribution | MonteCarloForecast
    if trials:
        forecaster = MonteCarloForecast(horizon=2, trials=trials, seed=seed, probabilities=source,
                                        period_error=errors, shock=0.2)  # fmt: skip
    else:
        forecaster = OutcomeDistribution(horizon=2, probabilities=source, period_error=errors)
    pieces = [forecaster.compute(p, as_of=when) for p in h.partition(parts)]
    merged = pieces[0]
    for piece in pieces[1:]:
        merged = merged.merge(piece)
    whole = forecaster.compute(h, as_of=when)
    assert merged.rows == whole.rows
    assert merged.deals == whole.deals
    if isinstance(whole, SimulatedForecast):
        assert isinstance(merged, SimulatedForecast)
        for row in whole.rows:
            assert merged._cents(row.bucket, row.group) == whole._cents(row.bucket, row.group)
    else:
        assert isinstance(merged, DistributionForecast)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 3))
def test_learned_sources_and_errors_keep_the_calculator_laws(seed: int) -> None:
    h = demo.demo_history(opportunities=25, seed=seed)
    od = OutcomeDistribution(
        horizon=2, probabilities=MarkovForecast(horizon=2), period_error="learned",
        error_periods=2,
    )  # fmt: skip
    assert check_calculator(od, h, merge=False) == ("no-look-ahead", "determinism")
    for when in ("2024-06-15T00:00:00Z", "2024-10-01T00:00:00Z"):
        f = od.compute(h, as_of=when)
        for row in f.rows:
            assert row.p10 is not None and row.p50 is not None and row.p90 is not None
            assert row.p10 <= row.p50 <= row.p90
            reach = [f.probability_of_reaching(t, row.bucket) for t in (row.p10, row.p90)]
            assert reach == sorted(reach, reverse=True)
        for d in f.deals:
            assert sum(d.periods) <= d.win_probability + 1e-9


def test_spread_deals_merge_exactly_whatever_the_digits() -> None:
    amounts = ("999999999999999", "7.1234567890123456789", "0.333333333333333333333")
    records: list[dict[str, Any]] = []
    for i, amount in enumerate(amounts * 4):
        oid = f"d{i}"
        records.append(
            {"type": "opened", "opportunity_id": oid, "at": f"2024-01-{i + 1:02d}T00:00:00Z",
             "stage": "prospecting", "amount": amount, "currency": "EUR"}
        )  # fmt: skip
        if i % 3 != 2:
            stage = "closed-won" if i % 2 else "qualification"
            records.append(
                {"type": "stage_changed", "opportunity_id": oid,
                 "at": f"2024-02-{i + 1:02d}T00:00:00Z", "stage": stage}
            )  # fmt: skip
    h = History.from_records(records, scheme=schemes.get("salesforce"))
    when = "2024-03-10T00:00:00Z"
    source = MarkovForecast(horizon=2, learned=MarkovForecast(horizon=2).learn(h, as_of=when))
    od = OutcomeDistribution(horizon=2, probabilities=source)
    parts = h.partition(3)
    merged = od.compute(parts[0], as_of=when)
    for part in parts[1:]:
        merged = merged.merge(od.compute(part, as_of=when))
    whole = od.compute(h, as_of=when)
    assert whole.timing == "deal periods"
    assert merged.rows == whole.rows
    assert total(r.expected for r in whole.rows) == total(d.expected for d in whole.deals)
