"""backtest: a tiny history scored by hand, no look-ahead, determinism and bad arguments."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipelinekit import History, StageScheme, demo
from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.backtest import backtest
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.markov import MarkovForecast
from pipelinekit.forecasts.result import DealForecast, Forecast, ForecastRow
from pipelinekit.forecasts.weighted import WeightedForecast

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


def _event(kind: str, oid: str, day: str, stage: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "opportunity_id": oid,
        "at": f"{day}T12:00:00+00:00",
        "stage": stage,
        **extra,
    }


def tiny_history(last_day: str = "2024-03-31") -> History:
    """x won 2024-02-10 (100); y lost 2024-02-15; z stays open; w opens on ``last_day``
    (the history's last event: March is complete in it)."""
    return History.from_records(
        [
            _event("opened", "x", "2024-01-10", "a", amount="100", currency="EUR"),
            _event("opened", "y", "2024-01-11", "a", amount="300", currency="EUR"),
            _event("opened", "z", "2024-01-12", "a", amount="50", currency="EUR"),
            _event("stage_changed", "x", "2024-02-10", "won"),
            _event("stage_changed", "y", "2024-02-15", "lost"),
            _event("opened", "w", last_day, "a", amount="10", currency="EUR"),
        ],
        scheme=SCHEME,
    )


class Fixed:
    """A stand-in forecaster with hand-picked numbers, recording what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[datetime, datetime | None]] = []

    def compute(self, history: History, *, as_of: Instant) -> Forecast:
        when = instant(as_of, argument="as_of")
        self.seen.append((when, history.end))
        if when.month == 2:
            rows = (ForecastRow(bucket="2024-02", start=date(2024, 2, 1), expected=Decimal(150)),)
            deals = tuple(
                DealForecast(
                    opportunity_id=oid,
                    stage="a",
                    amount=Decimal(1),
                    win_probability=p,
                    expected=Decimal(0),
                    bucket="2024-02",
                )
                for oid, p in (("x", 0.8), ("y", 0.4), ("z", 0.5))
            )
        else:
            rows = (ForecastRow(bucket="2024-03", start=date(2024, 3, 1), new=Decimal(50)),)
            deals = ()
        return Forecast(method="fixed", as_of=when, rows=rows, deals=deals)


def test_tiny_backtest_by_hand() -> None:
    fixed = Fixed()
    bt = backtest(
        {"fixed": fixed},
        tiny_history(),
        as_of_dates=["2024-03-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"],
    )
    rows = bt.to_records()
    # February: forecast 150, won 100 (x) -> +50; March: forecast 50, won 0 -> +50
    assert [(r["periods"], r["forecast"], r["actual"], r["error"]) for r in rows] == [
        ("2024-02", Decimal(150), Decimal(100), Decimal(50)),
        ("2024-03", Decimal(50), Decimal(0), Decimal(50)),
    ]
    (acc,) = bt.accuracy
    assert acc.mae == Decimal("50.00")
    assert acc.bias == Decimal("50.00")
    assert acc.wape == 1.0  # (50 + 50) / (100 + 0)
    # "won within February": x (0.8) was, y (0.4, lost) and z (0.5, still open) were not;
    # a deal still open is an outcome, not left out
    assert acc.deals_scored == 3
    assert acc.brier == pytest.approx(((0.8 - 1) ** 2 + 0.4**2 + 0.5**2) / 3)
    assert acc.log_loss == pytest.approx(-(math.log(0.8) + math.log(0.6) + math.log(0.5)) / 3)
    assert acc.ece == pytest.approx((0.2 + 0.4 + 0.5) / 3)
    bins = {round(b.low, 1): b for b in bt.calibration if b.deals}
    assert set(bins) == {0.4, 0.5, 0.8}
    assert (bins[0.8].mean_predicted, bins[0.8].observed) == (0.8, 1.0)
    assert (bins[0.4].mean_predicted, bins[0.4].observed) == (0.4, 0.0)
    assert (bins[0.5].mean_predicted, bins[0.5].observed) == (0.5, 0.0)
    assert (acc.bands, acc.coverage, acc.pinball) == (0, None, None)
    assert len(bt.calibration) == 10
    assert bt.summary()[0]["points"] == 2
    # each run saw nothing after its as_of
    assert all(end is None or end <= when for when, end in fixed.seen)


def test_range_form_gives_the_start_of_every_period() -> None:
    bt = backtest(
        {"fixed": Fixed()},
        tiny_history(),
        as_of_dates=("2024-02-01T00:00:00+00:00", "2024-03-15T00:00:00+00:00", "month"),
    )
    assert bt.as_of_dates == (
        datetime(2024, 2, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
    )


def test_log_loss_clips_certain_wrong_predictions() -> None:
    class Sure(Fixed):
        def compute(self, history: History, *, as_of: Instant) -> Forecast:
            f = super().compute(history, as_of=as_of)
            deals = tuple(d.model_copy(update={"win_probability": 0.0}) for d in f.deals)
            return f.model_copy(update={"deals": deals})

    bt = backtest({"sure": Sure()}, tiny_history(), as_of_dates=["2024-02-01T00:00:00Z"])
    # x was won at probability 0 -> clipped to 1e-6; y and z not won at 0 -> log(1 - 1e-6)
    expected = -(math.log(1e-6) + 2 * math.log(1 - 1e-6)) / 3
    assert bt.accuracy[0].log_loss == pytest.approx(expected)


def test_backtest_compares_real_forecasters_deterministically() -> None:
    h = demo.demo_history(opportunities=60, seed=42)
    forecasters = {
        "weighted": WeightedForecast(horizon=2),
        "historical": HistoricalForecast(horizon=2),
        "markov": MarkovForecast(horizon=2),
    }
    kwargs: dict[str, Any] = {
        "as_of_dates": ("2024-06-01T00:00:00Z", "2024-09-01T00:00:00Z", "month"),
        "horizon_periods": 2,
    }
    bt = backtest(forecasters, h, **kwargs)
    assert bt == backtest(forecasters, h, **kwargs)
    assert [a.forecaster for a in bt.accuracy] == ["weighted", "historical", "markov"]
    assert len(bt.to_records()) == 3 * 4
    assert all(r["periods"].count(" ") == 1 for r in bt.to_records())
    assert "<table>" in bt._repr_html_()


def test_a_forecast_without_the_target_period_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as err:
        backtest(
            {"weighted": WeightedForecast(horizon=1)},
            tiny_history(),
            as_of_dates=["2024-02-01T00:00:00Z"],
            horizon_periods=2,
        )
    assert err.value.argument == "forecasters"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"forecasters": {}}, "forecasters"),
        ({"forecasters": {"x": object()}}, "forecasters"),
        ({"history": []}, "history"),
        ({"as_of_dates": []}, "as_of_dates"),
        ({"as_of_dates": "2024-02-01T00:00:00Z"}, "as_of_dates"),
        ({"as_of_dates": ["2024-02-01"]}, "as_of_dates"),
        ({"as_of_dates": ("2024-03-01T00:00Z", "2024-02-01T00:00Z", "month")}, "as_of_dates"),
        ({"as_of_dates": ("2024-02-02T00:00Z", "2024-02-03T00:00Z", "month")}, "as_of_dates"),
        ({"period": "fortnight"}, "period"),
        ({"horizon_periods": 0}, "horizon_periods"),
        ({"bins": 0}, "bins"),
        ({"tz": "UTC"}, "tz"),
        ({"currency": "eur"}, "currency"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    call: dict[str, Any] = {
        "forecasters": {"fixed": Fixed()},
        "history": tiny_history(),
        "as_of_dates": ["2024-02-01T00:00:00Z"],
    }
    call.update(kwargs)
    with pytest.raises(ArgumentError) as err:
        backtest(call.pop("forecasters"), call.pop("history"), **call)
    assert err.value.argument == argument


def test_accuracy_of_unknown_forecaster_names_it() -> None:
    bt = backtest({"fixed": Fixed()}, tiny_history(), as_of_dates=["2024-02-01T00:00:00Z"])
    assert bt.accuracy_of("fixed").points == 1
    with pytest.raises(ArgumentError) as err:
        bt.accuracy_of("nope")
    assert err.value.argument == "forecaster"


def test_a_point_whose_targets_the_history_does_not_cover_is_left_out() -> None:
    # the history ends on 15 March: March is not complete, February is
    bt = backtest(
        {"fixed": Fixed()},
        tiny_history(last_day="2024-03-15"),
        as_of_dates=["2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"],
    )
    assert [p.complete for p in bt.points] == [True, False]
    (acc,) = bt.accuracy
    assert (acc.points, acc.incomplete) == (1, 1)
    assert (acc.mae, acc.bias) == (Decimal("50.00"), Decimal("50.00"))  # February only
    assert acc.deals_scored == 3


class Placed:
    """Rows with overdue / no close date / later buckets, per-deal periods and bands."""

    def compute(self, history: History, *, as_of: Instant) -> Forecast:
        when = instant(as_of, argument="as_of")
        rows = (
            ForecastRow(
                bucket="2024-02",
                start=date(2024, 2, 1),
                end=date(2024, 3, 1),
                expected=Decimal(40),
                p10=Decimal(20),
                p50=Decimal(40),
                p90=Decimal(90),
            ),
            ForecastRow(bucket="later", start=date(2024, 3, 1), expected=Decimal(1000)),
            ForecastRow(bucket="overdue", expected=Decimal(30)),
            ForecastRow(bucket="no close date", expected=Decimal(20)),
        )

        def deal(oid: str, p: float, bucket: str, periods: tuple[float, ...]) -> DealForecast:
            return DealForecast(
                opportunity_id=oid,
                stage="a",
                amount=Decimal(1),
                win_probability=p,
                expected=Decimal(0),
                bucket=bucket,
                periods=periods,
            )

        deals = (
            deal("x", 0.9, "later", (0.3,)),  # says when: 0.3 within February
            deal("y", 0.6, "overdue", ()),  # due now: its probability counts in February
            deal("z", 0.7, "later", ()),  # placed after the targets: 0 within them
        )
        return Forecast(method="placed", as_of=when, rows=rows, deals=deals)


def test_overdue_and_undated_buckets_are_scored_in_the_current_period() -> None:
    bt = backtest({"placed": Placed()}, tiny_history(), as_of_dates=["2024-02-01T00:00:00Z"])
    (point,) = bt.points
    assert point.forecast == Decimal(40 + 30 + 20)  # later is not in the targets
    assert point.period_forecasts == (Decimal(90),)
    assert point.error == Decimal(90 - 100)


def test_deal_chances_within_the_targets_use_their_periods() -> None:
    bt = backtest({"placed": Placed()}, tiny_history(), as_of_dates=["2024-02-01T00:00:00Z"])
    (acc,) = bt.accuracy
    # x: 0.3, won in February; y: 0.6 (due now), lost; z: 0 (later), still open
    assert acc.brier == pytest.approx(((0.3 - 1) ** 2 + 0.6**2 + 0.0**2) / 3)


def test_bands_are_scored_by_coverage_and_pinball_loss() -> None:
    bt = backtest({"placed": Placed()}, tiny_history(), as_of_dates=["2024-02-01T00:00:00Z"])
    (acc,) = bt.accuracy
    # actual 100 is above P90 = 90: not covered; pinball of (20, 40, 90) at 100:
    # 0.1 * 80 + 0.5 * 60 + 0.9 * 10 = 47, mean 47 / 3
    assert (acc.bands, acc.coverage, acc.below) == (1, 0.0, 0.0)
    assert acc.pinball == (Decimal(47) / 3).quantize(Decimal("0.01"))


def test_ranking_puts_the_lowest_wape_first() -> None:
    bt = backtest(
        {"fixed": Fixed(), "placed": Placed()},
        tiny_history(),
        as_of_dates=["2024-02-01T00:00:00Z"],
    )
    # fixed: |150 - 100| / 100 = 0.5; placed: |90 - 100| / 100 = 0.1
    assert [(r["rank"], r["forecaster"]) for r in bt.ranking()] == [(1, "placed"), (2, "fixed")]
