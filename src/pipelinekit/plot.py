"""Pictures of reports and forecasts, drawn with matplotlib (the ``plot`` extra).

Each function takes a result (or a pipeline snapshot), draws it on a new
:class:`matplotlib.figure.Figure` (or on the ``ax`` you pass) and returns the figure. Nothing
is shown and no file is written: display the figure in a notebook, or call
``fig.savefig(...)`` yourself. Only matplotlib's object-oriented API is used, so no pyplot
state is created or changed, and the same input always draws the same picture.

Install the extra with ``pip install 'pipelinekit[plot]'``; matplotlib is imported only when a
function here is called.

- :func:`funnel`: the pipeline report (``PipelineByStage``) as an inverted pyramid: open
  value per stage in funnel order, the weighted value overlaid.
- :func:`forecast_fan`: won and expected revenue per period, with the P10-P90 band and P50
  where the forecast has them.
- :func:`movement_waterfall`: a target period's pipeline at the start, each kind of movement,
  and at the end.
- :func:`time_in_stage`: box plots of the days spent in each stage.
- :func:`calibration`: a backtest's predicted against observed win rates, per forecaster.

Example:
    >>> from pipelinekit import demo, plot
    >>> pipe = demo.demo_history(opportunities=30, seed=3).as_of("2024-09-30T00:00:00Z")
    >>> fig = plot.funnel(pipe)
    >>> len(fig.axes[0].containers)  # the value bars and the weighted bars
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.backtest import BacktestResult
from pipelinekit.forecasts.result import Forecast, ForecastRow
from pipelinekit.history import Pipeline
from pipelinekit.money import FxRates, ReportingCurrency
from pipelinekit.reports.movement import KINDS, MovementResult
from pipelinekit.reports.pipeline_by_stage import PipelineByStageResult, StageCell
from pipelinekit.reports.velocity import VelocityResult

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["calibration", "forecast_fan", "funnel", "movement_waterfall", "time_in_stage"]

FIGSIZE = (7.0, 4.0)
"""The size in inches of the figures this module creates (when no ``ax`` is given)."""

_VALUE = "#9ecae1"
_WEIGHTED = "#2171b5"
_TOTAL = "#6b6b6b"
_UP = "#41ab5d"
_DOWN = "#d6604d"
_BAND = "#fdae6b"
_P50 = "#d94801"


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pipelinekit.plot needs matplotlib: pip install 'pipelinekit[plot]'"
        ) from exc
    return matplotlib


def _axes(ax: Axes | None) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` and its figure, or a new figure."""
    _matplotlib()
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise ArgumentError("ax", f"expected matplotlib Axes or None, got {type(ax).__name__}")
    # axes in a SubFigure: climb to the Figure that holds it (SubFigures nest)
    figure: Any = ax.get_figure()
    for _ in range(32):
        if figure is None or isinstance(figure, Figure):
            break
        figure = figure.get_figure()
    if not isinstance(figure, Figure):
        raise ArgumentError("ax", "the axes do not belong to a Figure")
    return figure, ax


def _money(value: float) -> str:
    """A short amount label: ``1.25M``, ``340k``, ``4.3k``, ``950``."""
    size = abs(value)
    if size >= 1_000_000:
        return f"{value / 1_000_000:,.2f}M"
    if size >= 10_000:
        return f"{value / 1_000:,.0f}k"
    if size >= 1_000:
        return f"{value / 1_000:,.1f}k"
    return f"{value:,.0f}"


def _currency(code: str | None) -> str:
    return f" ({code})" if code else ""


# -- funnel ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StageBar:
    label: str
    deals: int
    value: Decimal
    weighted: Decimal | None


def _pipeline_bars(
    pipeline: Pipeline, *, weighted: bool, currency: str | None, rates: FxRates | None
) -> tuple[list[_StageBar], str | None]:
    to_rep = ReportingCurrency(currency, rates)
    on = pipeline.as_of.date()
    deals = dict.fromkeys(pipeline.scheme.keys, 0)
    value = dict.fromkeys(pipeline.scheme.keys, Decimal(0))
    weight = dict.fromkeys(pipeline.scheme.keys, Decimal(0))
    for opp in pipeline.values():
        if not opp.is_open:
            continue
        deals[opp.stage] += 1
        if opp.amount is None:
            continue
        value[opp.stage] += to_rep(opp.amount, opp.currency, on=on)
        if not weighted:
            continue
        share = opp.weighted_amount
        if share is None:
            raise ArgumentError(
                "weighted",
                f"opportunity {opp.id!r} at stage {opp.stage!r} has no probability (no stage "
                "weight, no override); pass weighted=False to draw the values only",
            )
        weight[opp.stage] += to_rep(share, opp.currency, on=on)
    bars = [
        _StageBar(s.label, deals[s.key], value[s.key], weight[s.key] if weighted else None)
        for s in pipeline.scheme.open_stages
    ]
    return bars, to_rep.currency


def _report_bars(report: PipelineByStageResult, *, weighted: bool) -> list[_StageBar]:
    if weighted and not report.weighted_available:
        raise ArgumentError(
            "weighted",
            f"the report's scheme {report.scheme!r} has no weights; pass weighted=False to "
            "draw the values only",
        )
    label = dict(zip(report.stages, report.labels, strict=True))
    totals: dict[str, StageCell] = {}
    for cell in report.cells:
        if cell.section == "open":
            seen = totals.get(cell.stage)
            totals[cell.stage] = cell if seen is None else seen.plus(cell)
    bars = []
    for key in report.stages:
        if key not in totals:
            continue
        total = totals[key]
        if weighted and total.weighted is None:
            raise ArgumentError(
                "weighted",
                f"the report has no weighted figure for stage {key!r} (it has no weight); "
                "pass weighted=False to draw the values only",
            )
        bars.append(
            _StageBar(label[key], total.count, total.amount, total.weighted if weighted else None)
        )
    return bars


def funnel(
    source: PipelineByStageResult | Pipeline,
    *,
    weighted: bool = True,
    ax: Axes | None = None,
    currency: str | None = None,
    rates: FxRates | None = None,
) -> Figure:
    """The Polish pipeline article's pipeline report as an inverted pyramid: open value per stage.

    One horizontal bar per open stage, centred, in funnel order from the top; its width is
    the open value in the stage. With ``weighted`` a narrower, darker bar inside it shows
    the weighted value (amount x probability). The right-hand column gives each stage's
    deal count, value and weighted value. Deals without an amount count as deals with no
    value.

    Args:
        source: the result of
            :class:`~pipelinekit.reports.pipeline_by_stage.PipelineByStage` (its open
            stages; a grouped result is drawn summed over its groups; closed sections are
            left out), or a :class:`~pipelinekit.history.Pipeline` snapshot
            (``history.as_of(t)``), whose open opportunities are aggregated per stage in
            the scheme's order.
        weighted: overlay the weighted value.
        ax: draw on these axes instead of a new figure.
        currency, rates: for a Pipeline only: the reporting currency and
            :class:`~pipelinekit.money.FxRates` when deals are in several currencies
            (converted at the snapshot's date). A report is already in one currency.

    Returns:
        The figure drawn on. Its axes hold one bar container labelled ``"value"`` and,
        with ``weighted``, one labelled ``"weighted"``, each with a bar per open stage.

    Raises:
        ArgumentError: ``source`` is neither, ``weighted`` is not a bool, ``ax`` is not
            matplotlib axes, ``currency``/``rates`` given with a report, or (naming
            ``weighted``) a weighted figure is unknown (a scheme or stage without weights).
        CurrencyError: deals in several currencies without ``currency`` and ``rates``.

    Example:
        >>> from pipelinekit import demo, plot
        >>> from pipelinekit.reports.pipeline_by_stage import PipelineByStage
        >>> history = demo.demo_history(opportunities=30, seed=3)
        >>> report = PipelineByStage().compute(history, as_of="2024-09-30T00:00:00Z")
        >>> bars = plot.funnel(report).axes[0].containers[0]
        >>> len(bars) == len(history.scheme.open_stages)
        True
        >>> pipe = history.as_of("2024-09-30T00:00:00Z")  # a snapshot draws the same bars
        >>> [b.get_width() for b in plot.funnel(pipe).axes[0].containers[0]] == [
        ...     b.get_width() for b in bars]
        True
    """
    if not isinstance(weighted, bool):
        raise ArgumentError("weighted", f"expected True or False, got {weighted!r}")
    if isinstance(source, PipelineByStageResult):
        for name, value in (("currency", currency), ("rates", rates)):
            if value is not None:
                raise ArgumentError(
                    name,
                    f"only for a Pipeline; the report is already in {source.currency!r} "
                    "(pass currency and rates to PipelineByStage)",
                )
        bars = _report_bars(source, weighted=weighted)
        code = source.currency
        when = source.as_of
    elif isinstance(source, Pipeline):
        bars, code = _pipeline_bars(source, weighted=weighted, currency=currency, rates=rates)
        when = source.as_of
    else:
        raise ArgumentError(
            "source",
            "expected a PipelineByStage result or a Pipeline (history.as_of(t)), got "
            f"{type(source).__name__}",
        )
    fig, axes = _axes(ax)
    _draw_funnel(axes, bars, f"Open pipeline by stage, {when:%Y-%m-%d}{_currency(code)}")
    return fig


def _draw_funnel(ax: Axes, bars: Sequence[_StageBar], title: str) -> None:
    y = list(range(len(bars)))
    values = [float(b.value) for b in bars]
    widest = max(values, default=0.0) or 1.0
    ax.barh(
        y,
        values,
        left=[-v / 2 for v in values],
        height=0.8,
        color=_VALUE,
        label="value",
    )
    if bars and bars[0].weighted is not None:
        shares = [float(b.weighted or 0) for b in bars]
        ax.barh(
            y,
            shares,
            left=[-w / 2 for w in shares],
            height=0.45,
            color=_WEIGHTED,
            label="weighted",
        )
    for i, bar in enumerate(bars):
        text = f"{bar.deals} deal{'s' if bar.deals != 1 else ''}  {_money(float(bar.value))}"
        if bar.weighted is not None:
            text += f"  (w {_money(float(bar.weighted))})"
        ax.annotate(
            text,
            xy=(1.0, i),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(y, [b.label for b in bars])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlim(-widest / 2 * 1.04, widest / 2 * 1.04)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10, loc="left")
    if bars and bars[0].weighted is not None:
        ax.legend(loc="lower left", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=8, frameon=False)


# -- forecast fan ---------------------------------------------------------------------------


def _period_rows(forecast: Forecast, group: str | None) -> list[ForecastRow]:
    rows = [r for r in forecast.rows if r.group == group and r.start and r.end]
    if not rows:
        groups = sorted({r.group for r in forecast.rows if r.group is not None})
        if groups:
            raise ArgumentError(
                "group", f"no period rows for group {group!r}; the groups are {groups}"
            )
        raise ArgumentError("forecast", "the forecast has no period rows to draw")
    return rows


def forecast_fan(forecast: Forecast, *, group: str | None = None, ax: Axes | None = None) -> Figure:
    """Won and expected revenue per period, with the P10-P90 band and P50 when present.

    Per period (the labelled ``later``, ``overdue`` and ``no close date`` buckets are left
    out) a bar of revenue already won, with the expected revenue still to come stacked on
    it (together the row's ``total``). When the rows carry percentiles (e.g.
    :class:`~pipelinekit.forecasts.distribution.OutcomeDistribution`), a shaded band
    joins the P10s and P90s and a line with markers the P50s.

    Args:
        forecast: a :class:`~pipelinekit.forecasts.result.Forecast`.
        group: with a grouped forecast, the group to draw (its rows only).
        ax: draw on these axes instead of a new figure.

    Returns:
        The figure. Its axes hold bar containers labelled ``"won"`` and ``"expected"``
        (a bar per period), and with percentiles a band labelled ``"P10-P90"`` and a line
        labelled ``"P50"``.

    Raises:
        ArgumentError: ``forecast`` is not a Forecast or has no period rows (for
            ``group``), or ``ax`` is not matplotlib axes.

    Example:
        >>> from pipelinekit import demo, plot
        >>> from pipelinekit.forecasts.distribution import OutcomeDistribution
        >>> f = OutcomeDistribution(horizon=3).compute(
        ...     demo.demo_history(opportunities=60, seed=42), as_of="2024-09-30T00:00:00Z")
        >>> ax = plot.forecast_fan(f).axes[0]
        >>> [line.get_label() for line in ax.lines]
        ['P50']
    """
    if not isinstance(forecast, Forecast):
        raise ArgumentError("forecast", f"expected a Forecast, got {type(forecast).__name__}")
    rows = _period_rows(forecast, group)
    fig, axes = _axes(ax)
    x = list(range(len(rows)))
    won = [float(r.won) for r in rows]
    to_come = [float(r.expected + r.new) for r in rows]
    axes.bar(x, won, width=0.4, color=_WEIGHTED, label="won", zorder=3)
    axes.bar(x, to_come, width=0.4, bottom=won, color=_VALUE, label="expected", zorder=3)
    if all(r.p10 is not None and r.p90 is not None for r in rows):
        axes.fill_between(
            x,
            [float(r.p10 or 0) for r in rows],
            [float(r.p90 or 0) for r in rows],
            color=_BAND,
            alpha=0.5,
            linewidth=0,
            label="P10-P90",
            zorder=1,
        )
    if all(r.p50 is not None for r in rows):
        axes.plot(
            x,
            [float(r.p50 or 0) for r in rows],
            color=_P50,
            marker="o",
            markersize=4,
            label="P50",
            zorder=4,
        )
    axes.set_xticks(x, [r.bucket for r in rows])
    axes.yaxis.set_major_formatter(lambda value, _pos: _money(value))
    who = f", {group}" if group is not None else ""
    axes.set_title(
        f"{forecast.method.capitalize()} forecast as of {forecast.as_of:%Y-%m-%d}{who}"
        f"{_currency(forecast.currency)}",
        fontsize=10,
    )
    axes.set_ylabel("revenue")
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.legend(loc="upper right", fontsize=8, frameon=False)
    return fig


# -- movement waterfall ---------------------------------------------------------------------


def movement_waterfall(movement: MovementResult, *, ax: Axes | None = None) -> Figure:
    """The bridge of a target period's pipeline: start, each kind of movement, end.

    A grey bar for the start and one for the end; between them a floating bar per kind of
    movement whose net amount is not zero (green up, red down), in the bridge order of
    :data:`~pipelinekit.reports.movement.KINDS`, each starting where the previous ended.
    Transfers between owners or categories net to zero and so are not drawn; the figures of
    every step are in ``movement.to_records()``.

    Args:
        movement: a :class:`~pipelinekit.reports.movement.MovementResult`.
        ax: draw on these axes instead of a new figure.

    Returns:
        The figure. Its axes hold one bar container labelled ``"bridge"``: start, the
        non-zero movements, end; each bar's ``y`` is where it starts and its height the
        signed amount.

    Raises:
        ArgumentError: ``movement`` is not a MovementResult, or ``ax`` is not matplotlib
            axes.

    Example:
        >>> from pipelinekit import demo, plot
        >>> from pipelinekit.reports.movement import PipelineMovement
        >>> r = PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-07-01")
        ...     ).compute(demo.demo_history(opportunities=30, seed=3), as_of="2024-09-30T00:00:00Z")
        >>> bars = plot.movement_waterfall(r).axes[0].containers[0]
        >>> float(bars[-1].get_height()) == float(r.ending)
        True
    """
    if not isinstance(movement, MovementResult):
        raise ArgumentError("movement", f"expected a MovementResult, got {type(movement).__name__}")
    steps: list[tuple[str, float, float, str]] = [("start", 0.0, float(movement.starting), _TOTAL)]
    net = dict.fromkeys(KINDS, Decimal(0))
    for row in movement.movements:
        net[row.kind] += row.amount
    level = movement.starting
    for kind, amount in net.items():
        if amount == 0:
            continue
        steps.append(
            (kind.replace("_", " "), float(level), float(amount), _UP if amount > 0 else _DOWN)
        )
        level += amount
    steps.append(("end", 0.0, float(movement.ending), _TOTAL))
    fig, axes = _axes(ax)
    x = list(range(len(steps)))
    axes.bar(
        x,
        [s[2] for s in steps],
        bottom=[s[1] for s in steps],
        width=0.65,
        color=[s[3] for s in steps],
        label="bridge",
    )
    for i in range(len(steps) - 1):
        top = steps[i][1] + steps[i][2]
        axes.plot([i + 0.33, i + 1 - 0.33], [top, top], color=_TOTAL, linewidth=0.7)
    for i, (_name, bottom, height, _colour) in enumerate(steps):
        sign = "+" if 0 < i < len(steps) - 1 and height > 0 else ""
        axes.annotate(
            sign + _money(height),
            xy=(i, bottom + max(height, 0.0)),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axes.set_xticks(x, [s[0] for s in steps], rotation=30, ha="right", rotation_mode="anchor")
    axes.yaxis.set_major_formatter(lambda value, _pos: _money(value))
    axes.set_ylim(0, max(s[1] + max(s[2], 0.0) for s in steps) * 1.12 or 1.0)
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.set_title(
        f"{movement.period.label} pipeline, {movement.start:%Y-%m-%d} to "
        f"{movement.as_of:%Y-%m-%d}{_currency(movement.currency)}",
        fontsize=10,
    )
    return fig


# -- time in stage --------------------------------------------------------------------------


def time_in_stage(velocity: VelocityResult, *, ax: Axes | None = None) -> Figure:
    """Box plots of the days deals spent in each stage, in funnel order from the top.

    One horizontal box per stage with at least one measured stay (stages without any are
    left out): the box spans the quartiles, the line inside is the median (the same as the
    row's ``median_days``), the whiskers reach the furthest stay within 1.5 times the
    interquartile range and the points beyond are drawn one by one; a diamond marks the
    mean. The tick labels give the number of stays.

    Args:
        velocity: a :class:`~pipelinekit.reports.velocity.VelocityResult`, whose stages
            keep their raw durations.
        ax: draw on these axes instead of a new figure.

    Returns:
        The figure, with one box per stage that has stays, top to bottom; the boxes,
        median lines and mean markers carry the gids ``"box"``, ``"median"`` and
        ``"mean"``.

    Raises:
        ArgumentError: ``velocity`` is not a VelocityResult or has no stay at all, or
            ``ax`` is not matplotlib axes.

    Example:
        >>> from pipelinekit import demo, plot
        >>> from pipelinekit.reports.velocity import Velocity
        >>> v = Velocity().compute(demo.demo_history(opportunities=30, seed=3),
        ...                        as_of="2024-09-30T00:00:00Z")
        >>> ax = plot.time_in_stage(v).axes[0]
        >>> len(ax.get_yticks()) == sum(1 for s in v.stages if s.stays)
        True
    """
    if not isinstance(velocity, VelocityResult):
        raise ArgumentError("velocity", f"expected a VelocityResult, got {type(velocity).__name__}")
    stages = [s for s in velocity.stages if s.durations]
    if not stages:
        raise ArgumentError("velocity", "no stage has a measured stay to draw")
    matplotlib = _matplotlib()
    fig, axes = _axes(ax)
    positions = list(range(1, len(stages) + 1))
    options: dict[str, Any] = {"orientation": "horizontal"}
    if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) < (3, 10):
        options = {"vert": False}  # pragma: no cover - older matplotlib
    parts = axes.boxplot(
        [list(s.durations) for s in stages],
        positions=positions,
        widths=0.6,
        showmeans=True,
        patch_artist=True,
        boxprops={"facecolor": _VALUE, "edgecolor": _WEIGHTED},
        medianprops={"color": _P50, "linewidth": 1.5},
        meanprops={
            "marker": "D",
            "markersize": 4,
            "markerfacecolor": _WEIGHTED,
            "markeredgecolor": _WEIGHTED,
        },
        flierprops={"marker": "o", "markersize": 3, "alpha": 0.6},
        **options,
    )
    for name, gid in (("boxes", "box"), ("medians", "median"), ("means", "mean")):
        for artist in parts[name]:
            artist.set_gid(gid)
    axes.set_yticks(positions, [f"{s.label} ({s.stays})" for s in stages])
    axes.set_ylim(len(stages) + 0.5, 0.5)
    axes.set_xlabel("days in stage")
    axes.set_xlim(left=0)
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    running = " (running stays included)" if velocity.include_open_stays else ""
    axes.set_title(f"Time in stage as of {velocity.as_of:%Y-%m-%d}{running}", fontsize=10)
    return fig


# -- calibration ----------------------------------------------------------------------------

_SERIES = ("#2171b5", "#d94801", "#41ab5d", "#756bb1", "#636363", "#e7298a")


def calibration(backtest: BacktestResult, *, ax: Axes | None = None) -> Figure:
    """The calibration diagram of a backtest: predicted against observed win rate.

    For each forecaster, one point per probability bin that holds deals: x is the mean
    predicted win probability of the deals in the bin, y the share of them actually won,
    the marker's area grows with the number of deals. A well-calibrated forecaster's points
    lie on the dashed diagonal; points below it mean the forecaster was too optimistic.

    Args:
        backtest: a :class:`~pipelinekit.forecasts.backtest.BacktestResult`.
        ax: draw on these axes instead of a new figure.

    Returns:
        The figure; each forecaster's points are one line (markers joined) labelled with
        its name and carrying the gid ``"calibration"``; the diagonal has gid
        ``"diagonal"``.

    Raises:
        ArgumentError: ``backtest`` is not a BacktestResult or has no scored deal, or
            ``ax`` is not matplotlib axes.

    Example:
        >>> from pipelinekit import demo, plot
        >>> from pipelinekit.forecasts import HistoricalForecast, WeightedForecast, backtest
        >>> h = demo.demo_history(opportunities=120, seed=5, days=540)
        >>> bt = backtest({"weighted": WeightedForecast(), "historical": HistoricalForecast()},
        ...               h, as_of_dates=("2024-07-01T00:00:00Z", "2025-04-01T00:00:00Z",
        ...                               "quarter"))
        >>> ax = plot.calibration(bt).axes[0]
        >>> sorted(line.get_label() for line in ax.lines if line.get_gid() == "calibration")
        ['historical', 'weighted']
    """
    if not isinstance(backtest, BacktestResult):
        raise ArgumentError("backtest", f"expected a BacktestResult, got {type(backtest).__name__}")
    bins = [b for b in backtest.calibration if b.deals and b.mean_predicted is not None]
    if not bins:
        raise ArgumentError("backtest", "no calibration bin holds a scored deal")
    fig, axes = _axes(ax)
    diagonal = axes.plot([0, 1], [0, 1], linestyle="--", color=_TOTAL, linewidth=1)[0]
    diagonal.set_gid("diagonal")
    names = list(dict.fromkeys(b.forecaster for b in backtest.calibration))
    largest = max(b.deals for b in bins)
    for i, name in enumerate(names):
        mine = [b for b in bins if b.forecaster == name and b.observed is not None]
        if not mine:
            continue
        color = _SERIES[i % len(_SERIES)]
        xs = [float(b.mean_predicted or 0.0) for b in mine]
        ys = [float(b.observed or 0.0) for b in mine]
        line = axes.plot(xs, ys, color=color, linewidth=1, label=name)[0]
        line.set_gid("calibration")
        sizes = [20 + 180 * b.deals / largest for b in mine]
        axes.scatter(xs, ys, s=sizes, color=color, alpha=0.7, zorder=3)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    axes.set_xlabel("predicted win probability")
    axes.set_ylabel("observed win rate")
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.legend(frameon=False, fontsize=8, loc="upper left")
    points = len(backtest.as_of_dates)
    axes.set_title(f"Calibration over {points} backtest points", fontsize=10)
    return fig
