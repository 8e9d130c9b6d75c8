"""pipelinekit.plot: each picture draws the right number of bars/points with the right values.

The figures are read back (bar widths and heights, line data, band vertices, tick labels)
and compared with hand-computed figures and with the rows of the result they were drawn
from. Figures are built with matplotlib's object-oriented API, which needs no backend.
"""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from _small_histories import AS_OF, SCHEME, at, five, moved, opened
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from pipelinekit import (
    ArgumentError,
    CurrencyError,
    FxRates,
    History,
    StageScheme,
    demo,
    plot,
    schemes,
)
from pipelinekit.forecasts.distribution import OutcomeDistribution
from pipelinekit.forecasts.result import Forecast, ForecastRow
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.movement import PipelineMovement
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.velocity import Velocity


def bars(ax: Axes, label: str) -> BarContainer:
    found = [c for c in ax.containers if c.get_label() == label]
    assert len(found) == 1, [c.get_label() for c in ax.containers]
    container = found[0]
    assert isinstance(container, BarContainer)
    return container


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def ticklabels(ax: Axes, axis: str) -> list[str]:
    labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in labels]


# -- funnel ---------------------------------------------------------------------------------

# At day 20: lead holds a (1000), b (3000) and f (no amount); offer holds c (2000, its
# probability set to 75 %); contract is empty; e (500) is won and so not in the pipeline.
FUNNEL = [
    opened("a", 0, amount="1000"),
    opened("b", 1, amount="3000"),
    opened("c", 2, amount="2000"),
    moved("c", 3, "offer"),
    {"type": "probability_set", "opportunity_id": "c", "at": at(4), "probability": "75"},
    opened("e", 5, amount="500"),
    moved("e", 6, "won"),
    opened("f", 7),
]


def funnel_pipeline() -> Any:
    return History.from_records(FUNNEL, scheme=SCHEME).as_of(at(20))


def test_funnel_draws_a_centred_bar_per_open_stage_with_its_value() -> None:
    fig = plot.funnel(funnel_pipeline())
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    value = bars(ax, "value")
    # lead 1000 + 3000 (+ f without amount), offer 2000, contract nothing
    assert [p.get_width() for p in value] == [4000, 2000, 0]
    assert [p.get_x() for p in value] == [-2000, -1000, 0]  # centred on zero
    assert ticklabels(ax, "y") == ["Lead", "Offer", "Contract"]
    # funnel order from the top: the first stage has the highest bar on screen
    centres = [p.get_y() + p.get_height() / 2 for p in value]
    assert centres == [0, 1, 2]
    assert ax.get_ylim() == (2.5, -0.5)


def test_funnel_overlays_the_weighted_value_narrower_inside_the_value_bar() -> None:
    ax = plot.funnel(funnel_pipeline()).axes[0]
    value, weighted = bars(ax, "value"), bars(ax, "weighted")
    # lead: 1000 x 10 % + 3000 x 10 %; offer: 2000 x 75 % (override, not the 50 % weight)
    assert [p.get_width() for p in weighted] == [400, 1500, 0]
    assert [p.get_x() for p in weighted] == [-200, -750, 0]
    assert all(w.get_height() < v.get_height() for w, v in zip(weighted, value, strict=True))
    assert texts(ax) == [
        "3 deals  4.0k  (w 400)",
        "1 deal  2.0k  (w 1.5k)",
        "0 deals  0  (w 0)",
    ]


def test_funnel_without_weighted_draws_values_only() -> None:
    ax = plot.funnel(funnel_pipeline(), weighted=False).axes[0]
    assert [c.get_label() for c in ax.containers] == ["value"]
    assert texts(ax)[0] == "3 deals  4.0k"


def test_funnel_of_a_scheme_without_weights_asks_for_weighted_false() -> None:
    scheme = StageScheme.model_validate(
        {
            "name": "no-weights",
            "stages": [
                {"key": "lead", "label": "Lead"},
                {"key": "won", "label": "Won", "outcome": "won"},
                {"key": "lost", "label": "Lost", "outcome": "lost"},
            ],
        }
    )
    pipe = History.from_records([opened("a", 0, amount="10")], scheme=scheme).as_of(at(1))
    with pytest.raises(ArgumentError) as err:
        plot.funnel(pipe)
    assert err.value.argument == "weighted"
    assert [p.get_width() for p in bars(plot.funnel(pipe, weighted=False).axes[0], "value")] == [10]


def test_funnel_converts_other_currencies_or_refuses() -> None:
    records = [opened("a", 0, amount="1000"), opened("b", 0, amount="100", currency="USD")]
    pipe = History.from_records(records, scheme=SCHEME).as_of(at(1))
    with pytest.raises(CurrencyError):
        plot.funnel(pipe)
    rates = FxRates.static("EUR", {"USD": "0.9"})
    ax = plot.funnel(pipe, currency="EUR", rates=rates).axes[0]
    assert bars(ax, "value")[0].get_width() == 1090
    assert bars(ax, "weighted")[0].get_width() == 109
    assert "(EUR)" in ax.get_title(loc="left")


def test_funnel_draws_on_given_axes_and_returns_their_figure() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.funnel(funnel_pipeline(), ax=ax) is fig
    assert len(ax.containers) == 2


def test_funnel_of_the_pipeline_by_stage_report_draws_its_open_rows() -> None:
    history = History.from_records(FUNNEL, scheme=SCHEME)
    report = PipelineByStage().compute(history, as_of=at(20))
    ax = plot.funnel(report).axes[0]
    assert [p.get_width() for p in bars(ax, "value")] == [4000, 2000, 0]  # won e left out
    assert [p.get_width() for p in bars(ax, "weighted")] == [400, 1500, 0]
    open_rows = [r for r in report.rows if r.level == "stage" and r.section == "open"]
    assert [p.get_width() for p in bars(ax, "value")] == [float(r.amount) for r in open_rows]
    assert [p.get_width() for p in bars(ax, "weighted")] == [
        float(r.weighted) for r in open_rows if r.weighted is not None
    ]
    assert ticklabels(ax, "y") == [r.label for r in open_rows]
    assert texts(ax) == texts(plot.funnel(funnel_pipeline()).axes[0])


def test_funnel_of_a_grouped_report_sums_its_groups() -> None:
    history = demo.demo_history(opportunities=40, seed=7)
    as_of = "2024-09-30T00:00:00Z"
    whole = bars(plot.funnel(PipelineByStage().compute(history, as_of=as_of)).axes[0], "value")
    report = PipelineByStage(group_by="owner").compute(history, as_of=as_of)
    assert len(report.groups) > 1
    grouped = bars(plot.funnel(report).axes[0], "value")
    assert [p.get_width() for p in grouped] == [p.get_width() for p in whole]
    snapshot = bars(plot.funnel(history.as_of(as_of)).axes[0], "value")
    assert [p.get_width() for p in grouped] == [p.get_width() for p in snapshot]


def test_funnel_of_a_report_on_some_stages_draws_those() -> None:
    history = History.from_records(FUNNEL, scheme=SCHEME)
    report = PipelineByStage(stages=("offer",)).compute(history, as_of=at(20))
    ax = plot.funnel(report).axes[0]
    assert [p.get_width() for p in bars(ax, "value")] == [2000]
    assert ticklabels(ax, "y") == ["Offer"]


def test_funnel_of_a_report_without_weights_asks_for_weighted_false() -> None:
    history = demo.demo_history(scheme=schemes.get("polish-sales-cycle"), opportunities=20, seed=1)
    report = PipelineByStage().compute(history, as_of="2024-09-30T00:00:00Z")
    with pytest.raises(ArgumentError) as err:
        plot.funnel(report)
    assert err.value.argument == "weighted"
    ax = plot.funnel(report, weighted=False).axes[0]
    assert len(bars(ax, "value")) == len(history.scheme.open_stages)


@pytest.mark.parametrize("argument", ["currency", "rates"])
def test_funnel_of_a_report_refuses_a_currency_of_its_own(argument: str) -> None:
    report = PipelineByStage().compute(History.from_records(FUNNEL, scheme=SCHEME), as_of=at(20))
    value = "EUR" if argument == "currency" else FxRates.static("EUR", {"USD": "0.9"})
    with pytest.raises(ArgumentError) as err:
        plot.funnel(report, **{argument: value})
    assert err.value.argument == argument


def test_funnel_on_axes_of_a_subfigure_returns_the_whole_figure() -> None:
    fig = Figure()
    left, _right = fig.subfigures(1, 2)
    ax = left.add_subplot()
    assert plot.funnel(funnel_pipeline(), ax=ax) is fig
    assert [p.get_width() for p in bars(ax, "value")] == [4000, 2000, 0]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"source": five()}, "source"),
        ({"source": [1, 2]}, "source"),
        ({"weighted": "yes"}, "weighted"),
        ({"ax": "axes"}, "ax"),
        ({"currency": "euro"}, "currency"),
    ],
)
def test_funnel_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    call: dict[str, Any] = {"source": funnel_pipeline(), **kwargs}
    source = call.pop("source")
    with pytest.raises(ArgumentError) as err:
        plot.funnel(source, **call)
    assert err.value.argument == argument


# -- forecast fan ---------------------------------------------------------------------------

# as_of 2024-01-31: w won 1000 in January; x (offer, 50 %, 2000) and y (lead, 10 %, 4000)
# expected in February; z (contract, 80 %, 500) in March; v (lead, 10 %, 300) is overdue.
FAN = [
    {**opened("w", 0, amount="1000"), "expected_close": "2024-01-20"},
    moved("w", 10, "won"),
    {**opened("x", 1, "offer", amount="2000"), "expected_close": "2024-02-15"},
    {**opened("y", 2, amount="4000"), "expected_close": "2024-02-20"},
    {**opened("z", 3, "contract", amount="500"), "expected_close": "2024-03-10"},
    {**opened("v", 4, amount="300"), "expected_close": "2024-01-05"},
]
FAN_AS_OF = "2024-01-31T00:00:00+00:00"


def fan_history() -> History:
    return History.from_records(FAN, scheme=SCHEME)


def band_vertices(ax: Axes) -> set[tuple[float, float]]:
    (band,) = [c for c in ax.collections if c.get_label() == "P10-P90"]
    return {(float(x), float(y)) for x, y in band.get_paths()[0].vertices}


def test_fan_of_a_distribution_draws_won_expected_band_and_p50_per_period() -> None:
    forecast = OutcomeDistribution(horizon=3).compute(fan_history(), as_of=FAN_AS_OF)
    periods = [r for r in forecast.rows if r.start is not None and r.end is not None]
    assert [r.bucket for r in periods] == ["2024-01", "2024-02", "2024-03"]
    ax = plot.forecast_fan(forecast).axes[0]
    assert ticklabels(ax, "x") == ["2024-01", "2024-02", "2024-03"]  # overdue/later left out
    won, expected = bars(ax, "won"), bars(ax, "expected")
    # by hand: January won 1000; February 2000 x 0.5 + 4000 x 0.1; March 500 x 0.8
    assert [p.get_height() for p in won] == [1000, 0, 0]
    assert [p.get_height() for p in expected] == [0, 1400, 400]
    assert [p.get_y() for p in expected] == [1000, 0, 0]  # stacked on the won bar
    assert [p.get_height() for p in won] == [float(r.won) for r in periods]
    assert [w.get_height() + e.get_height() for w, e in zip(won, expected, strict=True)] == [
        float(r.total) for r in periods
    ]
    vertices = band_vertices(ax)
    for i, r in enumerate(periods):
        assert r.p10 is not None and r.p90 is not None
        assert (i, float(r.p10)) in vertices
        assert (i, float(r.p90)) in vertices
    # February's exact law: 0 (0.45), 2000 (0.45), 4000 (0.05), 6000 (0.05), so
    # P(X <= 0) = 0.45 >= 0.10 and P(X <= 2000) = 0.90 >= 0.90
    assert (periods[1].p10, periods[1].p50, periods[1].p90) == (0, 2000, 2000)
    (p50,) = [line for line in ax.lines if line.get_label() == "P50"]
    assert list(p50.get_xdata()) == [0, 1, 2]
    assert list(p50.get_ydata()) == [float(r.p50) for r in periods if r.p50 is not None]
    assert list(p50.get_ydata()) == [1000, 2000, 500]


def test_fan_of_a_weighted_forecast_has_no_band_and_no_p50() -> None:
    forecast = WeightedForecast(horizon=3).compute(fan_history(), as_of=FAN_AS_OF)
    ax = plot.forecast_fan(forecast).axes[0]
    assert [c.get_label() for c in ax.containers] == ["won", "expected"]
    assert [p.get_height() for p in bars(ax, "expected")] == [0, 1400, 400]
    assert ax.collections == [] or all(c.get_label() != "P10-P90" for c in ax.collections)
    assert [line.get_label() for line in ax.lines] == []


def test_fan_draws_one_group_of_a_grouped_forecast() -> None:
    rows = (
        ForecastRow(bucket="2024-02", start=date(2024, 2, 1), end=date(2024, 3, 1), group="ann",
                    expected=Decimal("10")),
        ForecastRow(bucket="2024-02", start=date(2024, 2, 1), end=date(2024, 3, 1), group="bob",
                    expected=Decimal("20")),
        ForecastRow(bucket="overdue", group="bob", expected=Decimal("5")),
    )  # fmt: skip
    forecast = Forecast(method="weighted", as_of=FAN_AS_OF, currency="EUR", rows=rows)
    ax = plot.forecast_fan(forecast, group="bob").axes[0]
    assert [p.get_height() for p in bars(ax, "expected")] == [20]
    assert "bob" in ax.get_title()
    with pytest.raises(ArgumentError) as err:
        plot.forecast_fan(forecast)
    assert err.value.argument == "group"


def test_fan_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ArgumentError) as err:
        plot.forecast_fan(five())  # type: ignore[arg-type]
    assert err.value.argument == "forecast"
    empty = Forecast(method="weighted", as_of=FAN_AS_OF, rows=(ForecastRow(bucket="overdue"),))
    with pytest.raises(ArgumentError) as err:
        plot.forecast_fan(empty)
    assert err.value.argument == "forecast"
    forecast = WeightedForecast(horizon=3).compute(fan_history(), as_of=FAN_AS_OF)
    with pytest.raises(ArgumentError) as err:
        plot.forecast_fan(forecast, ax=42)  # type: ignore[arg-type]
    assert err.value.argument == "ax"


# -- movement waterfall ---------------------------------------------------------------------

# Target 2024-Q3, from 2024-07-01 to 2024-09-30: p (100) is pushed to Q4, n (40) is new,
# o (60) stays in Q3 but changes owner (a transfer that nets to zero and is not drawn).
MOVES = [
    {**opened("p", 152, amount="100"), "expected_close": "2024-08-15"},
    {"type": "close_date_changed", "opportunity_id": "p", "at": at(191),
     "expected_close": "2024-10-15"},
    {**opened("n", 183, amount="40"), "expected_close": "2024-09-01"},
    {**opened("o", 152, amount="60"), "expected_close": "2024-09-10", "owner": "ann"},
    {"type": "owner_changed", "opportunity_id": "o", "at": at(213), "owner": "bob"},
]  # fmt: skip


def movement() -> Any:
    return PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-07-01")).compute(
        History.from_records(MOVES, scheme=SCHEME), as_of="2024-09-30T00:00:00Z"
    )


def test_waterfall_draws_start_each_nonzero_movement_and_end() -> None:
    result = movement()
    steps = {r["step"]: r for r in result.to_records()}
    assert steps["moved_owner"]["deals"] == 1 and steps["moved_owner"]["amount"] == 0
    ax = plot.movement_waterfall(result).axes[0]
    bridge = bars(ax, "bridge")
    assert ticklabels(ax, "x") == ["start", "new", "pushed out", "end"]
    # start 160 = p 100 + o 60; + new 40; - pushed out 100; end 100 = n 40 + o 60
    assert [p.get_height() for p in bridge] == [160, 40, -100, 100]
    assert [p.get_y() for p in bridge] == [0, 160, 200, 0]
    assert [p.get_height() for p in bridge] == [
        float(steps[k]["amount"]) for k in ("start", "new", "pushed_out", "end")
    ]
    assert texts(ax) == ["160", "+40", "-100", "100"]


def test_waterfall_rejects_other_results() -> None:
    with pytest.raises(ArgumentError) as err:
        plot.movement_waterfall(Velocity().compute(five(), as_of=AS_OF))  # type: ignore[arg-type]
    assert err.value.argument == "movement"


# -- time in stage --------------------------------------------------------------------------


def gid(ax: Axes, name: str) -> list[Any]:
    return [a for a in (*ax.lines, *ax.patches) if a.get_gid() == name]


def test_time_in_stage_draws_a_box_per_stage_with_stays_at_its_median_and_mean() -> None:
    # the five deals of _small_histories: completed stays in days
    #   lead: d1 2, d2 2, d3 2, d4 1, d5 1; offer: d1 3, d3 2 (d5 still there); contract: 5, 4
    result = Velocity().compute(five(), as_of=AS_OF)
    ax = plot.time_in_stage(result).axes[0]
    assert len(gid(ax, "box")) == 3  # won and lost have no stay
    assert ticklabels(ax, "y") == ["Lead (5)", "Offer (2)", "Contract (2)"]
    medians = [float(line.get_xdata()[0]) for line in gid(ax, "median")]
    assert medians == [2.0, 2.5, 4.5]
    assert medians == [s.median_days for s in result.stages if s.stays]
    means = [float(line.get_xdata()[0]) for line in gid(ax, "mean")]
    assert means == pytest.approx([1.6, 2.5, 4.5])
    assert [line.get_ydata()[0] for line in gid(ax, "mean")] == [1, 2, 3]


def test_time_in_stage_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ArgumentError) as err:
        plot.time_in_stage(funnel_pipeline())
    assert err.value.argument == "velocity"
    nothing = Velocity().compute(five(), as_of=at(0.5))  # no stay has ended yet
    with pytest.raises(ArgumentError) as err:
        plot.time_in_stage(nothing)
    assert err.value.argument == "velocity"


# -- all pictures ---------------------------------------------------------------------------


def all_figures() -> list[Figure]:
    history = demo.demo_history(opportunities=40, seed=7)
    as_of = "2024-09-30T00:00:00Z"
    return [
        plot.funnel(history.as_of(as_of)),
        plot.forecast_fan(OutcomeDistribution(horizon=4).compute(history, as_of=as_of)),
        plot.movement_waterfall(
            PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-10-01"))
            .compute(history, as_of=as_of)
        ),
        plot.time_in_stage(Velocity().compute(history, as_of=as_of)),
    ]  # fmt: skip


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50, metadata={"Software": None})
    return buffer.getvalue()


def test_the_same_input_draws_the_same_png() -> None:
    assert [png(f) for f in all_figures()] == [png(f) for f in all_figures()]


def test_matplotlib_is_imported_lazily_and_pyplot_never() -> None:
    code = (
        "import sys, pipelinekit.plot\n"
        "assert 'matplotlib' not in sys.modules\n"
        "from pipelinekit import demo, plot\n"
        "plot.funnel(demo.demo_history(opportunities=10, seed=1).as_of('2024-12-31T00:00:00Z'))\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- calibration --------------------------------------------------------------------------


def _small_backtest() -> object:
    from pipelinekit.forecasts import HistoricalForecast, WeightedForecast, backtest

    history = demo.demo_history(opportunities=120, seed=5, days=540)
    return backtest(
        {"weighted": WeightedForecast(), "historical": HistoricalForecast()},
        history,
        as_of_dates=("2024-07-01T00:00:00Z", "2025-04-01T00:00:00Z", "quarter"),
    )


def test_calibration_draws_one_point_per_nonempty_bin_at_predicted_and_observed() -> None:
    from pipelinekit.forecasts import BacktestResult

    bt = _small_backtest()
    assert isinstance(bt, BacktestResult)
    ax = plot.calibration(bt).axes[0]
    lines = {line.get_label(): line for line in ax.lines if line.get_gid() == "calibration"}
    assert set(lines) == {"weighted", "historical"}
    for name, line in lines.items():
        bins = [
            b for b in bt.calibration if b.forecaster == name and b.deals and b.observed is not None
        ]
        assert list(line.get_xdata()) == pytest.approx([b.mean_predicted for b in bins])
        assert list(line.get_ydata()) == pytest.approx([b.observed for b in bins])
    (diagonal,) = [line for line in ax.lines if line.get_gid() == "diagonal"]
    assert list(diagonal.get_xdata()) == [0, 1]
    assert list(diagonal.get_ydata()) == [0, 1]


def test_calibration_rejects_what_is_not_a_backtest() -> None:
    with pytest.raises(ArgumentError) as info:
        plot.calibration("nope")  # type: ignore[arg-type]
    assert info.value.argument == "backtest"
