"""ProjectionForecast: a tiny history by hand, the calculator laws, merging, bad settings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.backtest import backtest
from pipelinekit.forecasts.projection import (
    ProjectionEvidence,
    ProjectionForecast,
    ProjectionLearner,
)
from pipelinekit.testing import check_calculator

SCHEME = StageScheme.model_validate(
    {
        "name": "t",
        "stages": [
            {"key": "a", "label": "A", "weight": "20"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
AS_OF = "2024-04-01T00:00:00+00:00"
PLAIN: dict[str, Any] = {
    "horizon": 1,
    "age_bands": (30,),
    "half_life": None,
    "season": None,
    "prior_strength": 0,
    "min_deals": 2,
}


def _rec(kind: str, oid: str, day: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "opportunity_id": oid, "at": f"{day}T12:00:00+00:00", **extra}


def tiny() -> History:
    """d1..d6, opened in stage a; the comments give each deal's fate."""
    return History.from_records(
        [
            _rec("opened", "d1", "2023-12-15", stage="a", amount="100"),  # won 10 Jan
            _rec("opened", "d2", "2023-12-20", stage="a", amount="200"),  # lost 5 Feb
            _rec("opened", "d6", "2024-01-05", stage="a", amount="50"),  # won 20 Jan
            _rec("stage_changed", "d1", "2024-01-10", stage="won"),
            _rec("opened", "d3", "2024-01-15", stage="a", amount="300"),  # won 10 Mar
            _rec("stage_changed", "d6", "2024-01-20", stage="won"),
            _rec("stage_changed", "d2", "2024-02-05", stage="lost"),
            _rec("opened", "d4", "2024-02-10", stage="a", amount="400"),  # open
            _rec("stage_changed", "d3", "2024-03-10", stage="won"),
            _rec("opened", "d5", "2024-03-20", stage="a", amount="500"),  # open
        ],
        scheme=SCHEME,
    )


def test_a_tiny_projection_by_hand() -> None:
    f = ProjectionForecast(**PLAIN).compute(tiny(), as_of=AS_OF)
    # Origins 1 Jan, 1 Feb, 1 Mar. Deals open then, by age band, and won in that month:
    #   <30 days:  1 Jan d1 (100, won 100), d2 (200); 1 Feb d3 (300); 1 Mar d4 (400)
    #              -> 100 / 1000 = 0.1 of the amount, 1 of 4 deals
    #   30+ days:  1 Feb d2 (200); 1 Mar d3 (300, won 300) -> 300 / 500 = 0.6, 1 of 2
    # Today: d4 is 51 days old (0.6), d5 12 days (0.1): 400 x 0.6 + 500 x 0.1 = 290.
    # New business: won in the month by deals opened after its first day: Jan 50 (d6),
    # Feb 0, Mar 0: mean 16.67.
    (row,) = f.rows
    assert (row.bucket, row.won, row.expected, row.new) == (
        "2024-04",
        Decimal(0),
        Decimal("290.00"),
        Decimal("16.67"),
    )
    assert row.total == Decimal("306.67")
    rates = {(r.band, r.lag): r for r in f.rates}
    young, old = rates["<30d", 0], rates["30d+", 0]
    assert (young.deals, young.won, young.rate, young.amount_rate) == (4, 1, 0.25, 0.1)
    assert (old.deals, old.won, old.rate, old.amount_rate) == (2, 1, 0.5, 0.6)
    assert (young.level, young.insufficient, old.insufficient) == ("stage x age", False, False)
    deals = {d.opportunity_id: d for d in f.deals}
    assert (deals["d4"].win_probability, deals["d4"].expected) == (0.5, Decimal("240.00"))
    assert deals["d5"].periods == (0.25,)
    (nb,) = f.new_business
    assert (nb.origins, nb.insufficient, nb.mean) == (3, False, Decimal("16.67"))


def test_its_own_past_errors_are_recomputed_with_what_was_known_then() -> None:
    f = ProjectionForecast(**PLAIN).compute(tiny(), as_of=AS_OF)
    errors = {e.origin.date().isoformat(): e for e in f.errors}
    # 1 Mar, learning from 1 Jan and 1 Feb only: <30 days 100/600, 30+ days 0/200;
    # d3 (30+) 300 x 0 + d4 (<30) 400 / 6 + new (50 + 0) / 2 = 91.67; won: 300 (d3).
    march = errors["2024-03-01"]
    assert (march.forecast, march.actual) == (Decimal("91.67"), Decimal("300.00"))
    # 1 Feb, learning from 1 Jan only: the 30+ band has no evidence, so it takes the
    # stage's rate 100/300: (200 + 300) / 3 + new 50 = 216.67; nothing won in February.
    february = errors["2024-02-01"]
    assert (february.forecast, february.actual, february.ratio) == (
        Decimal("216.67"),
        Decimal("0.00"),
        0.0,
    )
    # 1 Jan has no earlier origin to learn from: no past forecast there
    assert set(errors) == {"2024-02-01", "2024-03-01"}
    row = f.rows[0]
    assert row.p10 is not None and row.p50 is not None and row.p90 is not None
    assert Decimal(0) <= row.p10 <= row.p50 <= row.p90


def test_deals_still_open_are_outcomes_not_left_out() -> None:
    # d4 was open on 1 Mar and is still open: it counts in the <30 cell's deals (and so
    # lowers its rate) instead of being dropped as censored
    f = ProjectionForecast(**PLAIN).compute(tiny(), as_of=AS_OF)
    young = next(r for r in f.rates if r.band == "<30d")
    assert young.deals == 4


def test_thin_cells_shrink_towards_the_stage_and_are_flagged() -> None:
    f = ProjectionForecast(**{**PLAIN, "prior_strength": 2, "min_deals": 3}).compute(
        tiny(), as_of=AS_OF
    )
    old = next(r for r in f.rates if r.band == "30d+")
    # count rate: (1 + 2 x stage rate 2/6) / (2 + 2) = 0.41666...
    assert old.rate == pytest.approx((1 + 2 * (2 / 6)) / 4)
    assert old.insufficient  # 2 deals < min_deals 3
    assert f.insufficient
    assert any("fewer than 3 deals" in n for n in f.notes)


def test_a_history_without_a_past_period_says_so_instead_of_a_silent_zero() -> None:
    h = tiny()
    f = ProjectionForecast(**PLAIN).compute(h, as_of="2023-12-25T00:00:00+00:00")
    (row,) = f.rows
    assert (row.expected, row.new) == (Decimal(0), Decimal(0))
    assert f.insufficient
    assert f.new_business[0].insufficient
    assert any("insufficient history" in n for n in f.notes)
    assert {r.level for r in f.rates} == {"none"}


def test_unpriced_deals_are_reported_apart() -> None:
    h = History.from_records(
        [*tiny().to_records(), _rec("opened", "d7", "2024-03-25", stage="a")], scheme=SCHEME
    )
    f = ProjectionForecast(**PLAIN).compute(h, as_of=AS_OF)
    assert f.unpriced == ("d7",)
    assert "d7" not in {d.opportunity_id for d in f.deals}


def test_horizon_lags_learn_from_origins_whose_outcome_is_known() -> None:
    f = ProjectionForecast(**{**PLAIN, "horizon": 3}).compute(tiny(), as_of=AS_OF)
    assert [r.bucket for r in f.rows] == ["2024-04", "2024-05", "2024-06"]
    # lag 2 (June) can only learn from 1 Jan (its March is known): d1 (<30) won nothing
    # in March, d2 had been lost by then
    lag2 = next(r for r in f.rates if r.lag == 2 and r.band == "<30d")
    assert (lag2.deals, lag2.won) == (2, 0)
    assert [n.origins for n in f.new_business] == [3, 2, 1]


def test_seasonal_auto_keeps_the_plain_projection_when_seasons_do_not_help() -> None:
    h = demo.crm_history(months=18, deals_per_month=60, seed=3, quarter_end_push=0.0)
    f = ProjectionForecast(horizon=1).compute(h, as_of="2023-06-01T00:00:00Z")
    assert any("season='auto' chose" in n for n in f.notes)


def test_seasonal_auto_finds_a_quarter_end_push() -> None:
    h = demo.crm_history(months=30, deals_per_month=150, seed=1, quarter_end_push=0.9)
    f = ProjectionForecast(horizon=1).compute(h, as_of="2024-06-01T00:00:00Z")
    assert any("chose the seasonal" in n for n in f.notes)


def test_projection_beats_the_weighted_forecast_on_the_synthetic_crm() -> None:
    h = demo.crm_history(months=24, deals_per_month=120, seed=2)
    bt = backtest(
        {
            "projection": ProjectionForecast(horizon=1),
            "weighted": _weighted(),
        },
        h,
        as_of_dates=("2023-07-01T00:00:00Z", "2023-12-01T00:00:00Z", "month"),
    )
    proj, weighted = bt.accuracy_of("projection"), bt.accuracy_of("weighted")
    assert proj.wape is not None and weighted.wape is not None
    assert proj.wape < weighted.wape / 3
    assert proj.coverage is not None and proj.bands == 6


def _weighted() -> Any:
    from pipelinekit.forecasts.weighted import WeightedForecast

    return WeightedForecast(horizon=1)


_DEMO: dict[int, History] = {}


def _demo(seed: int) -> History:
    if seed not in _DEMO:
        _DEMO[seed] = demo.demo_history(opportunities=70, seed=seed)
    return _DEMO[seed]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 3),
    cut=st.integers(1, 69),
    kwargs=st.sampled_from(
        [{}, {"segment_by": "owner"}, {"period": "quarter", "horizon": 2}, {"lookback": 4}]
    ),
)
def test_evidence_of_partitions_merges_into_the_whole(
    seed: int, cut: int, kwargs: dict[str, Any]
) -> None:
    h = _demo(seed)
    ids = h.opportunity_ids
    learn = ProjectionForecast(**kwargs).learn
    when = "2024-09-15T00:00:00Z"
    a = learn(h.for_opportunities(ids[:cut]), as_of=when)
    b = learn(h.for_opportunities(ids[cut:]), as_of=when)
    whole = learn(h, as_of=when)
    assert a.merge(b) == whole
    assert b.merge(a) == whole


def test_forecasts_with_merged_evidence_merge_into_the_whole_with_its_bands() -> None:
    h = _demo(1)
    when = "2024-09-01T00:00:00Z"
    parts = h.partition(3)
    learner = ProjectionForecast(horizon=2).learner()
    evidence = reduce(ProjectionEvidence.merge, (learner.compute(p, as_of=when) for p in parts))
    forecaster = ProjectionForecast(horizon=2, learned=evidence)
    merged = reduce(lambda x, y: x.merge(y), (forecaster.compute(p, as_of=when) for p in parts))
    whole = ProjectionForecast(horizon=2).compute(h, as_of=when)
    assert merged.rows == whole.rows
    assert merged.deals == whole.deals


def test_the_calculator_laws_hold() -> None:
    h = _demo(2)
    laws = check_calculator(
        ProjectionForecast(horizon=2),
        h,
        as_of_dates=["2024-06-01T00:00:00Z", "2024-09-17T08:00:00Z"],
        merge=False,
    )
    assert "no-look-ahead" in laws and "determinism" in laws


def test_merging_forecasts_that_learned_separately_is_refused() -> None:
    h = _demo(0)
    when = "2024-09-01T00:00:00Z"
    a, b = h.partition(2)
    fa = ProjectionForecast().compute(a, as_of=when)
    fb = ProjectionForecast().compute(b, as_of=when)
    with pytest.raises(ArgumentError) as err:
        fa.merge(fb)
    assert err.value.argument == "other"


def test_evidence_learned_with_other_settings_is_refused() -> None:
    h = _demo(0)
    evidence = ProjectionForecast(horizon=1).learn(h, as_of="2024-09-01T00:00:00Z")
    with pytest.raises(ArgumentError) as err:
        ProjectionForecast(horizon=2, learned=evidence).compute(h, as_of="2024-09-01T00:00:00Z")
    assert err.value.argument == "learned"
    with pytest.raises(ArgumentError):
        ProjectionForecast(horizon=1, learned=evidence).compute(h, as_of="2024-08-01T00:00:00Z")
    other = ProjectionForecast(horizon=1, segment_by="owner").learn(h, as_of="2024-09-01T00:00:00Z")
    with pytest.raises(ArgumentError):
        evidence.merge(other)
    with pytest.raises(ArgumentError):
        evidence.merge("evidence")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"horizon": 0}, "horizon"),
        ({"period": "fortnight"}, "period"),
        ({"segment_by": "region"}, "segment_by"),
        ({"age_bands": (90, 30)}, "age_bands"),
        ({"age_bands": (0,)}, "age_bands"),
        ({"age_bands": "30"}, "age_bands"),
        ({"half_life": 0}, "half_life"),
        ({"season": 1}, "season"),
        ({"season": "quarterly"}, "season"),
        ({"prior_strength": -1}, "prior_strength"),
        ({"season_strength": float("nan")}, "season_strength"),
        ({"min_deals": -1}, "min_deals"),
        ({"lookback": 0}, "lookback"),
        ({"new_business": "yes"}, "new_business"),
        ({"band_origins": -1}, "band_origins"),
        ({"prior_weight": -0.5}, "prior_weight"),
        ({"learned": object()}, "learned"),
        ({"tz": "UTC"}, "tz"),
        ({"currency": "eur"}, "currency"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        ProjectionForecast(**kwargs)
    assert err.value.argument == argument


def test_learner_wraps_a_projection_forecast_only() -> None:
    with pytest.raises(ArgumentError):
        ProjectionLearner(object())  # type: ignore[arg-type]
    learner = ProjectionForecast().learner()
    assert "ProjectionLearner" in repr(learner)
    assert learner.compute(tiny(), as_of=AS_OF).as_of == datetime(2024, 4, 1, tzinfo=UTC)
