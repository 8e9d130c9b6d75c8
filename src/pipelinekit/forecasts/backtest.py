"""Backtesting: how good would each forecaster have been, had it been used in the past?

:func:`backtest` runs every forecaster at a series of past ``as_of`` instants, each seeing
only ``history.until(as_of)``, and compares the forecast of the following period(s) with
what was actually won in them. The full history is used only here, as the answer key.

- **Totals** (per forecaster and ``as_of``): the forecast is the sum of ``won + expected +
  new`` over the target periods (the ``horizon_periods`` periods starting with the one that
  contains ``as_of``); the actual is the revenue whose win date falls in them. Errors are
  ``forecast − actual``: MAE (mean absolute error), WAPE (Σ|error| / Σ actual: the share
  of the actual revenue missed either way) and bias (mean signed error: > 0 means the
  forecaster promised too much).
- **Deal probabilities** (from each forecast's ``deals``): each open deal's predicted win
  probability is scored against whether it was **eventually** won in the full history.
  Deals still open at the end of the history are censored: their outcome is unknown, so
  they are left out (and counted). A deal open at several ``as_of`` instants is scored at
  each. Brier score (mean squared error of the probability), log loss (probabilities
  clipped to [1e-6, 1 − 1e-6]) and a calibration table: per probability bin, the mean
  predicted probability against the observed win rate, with counts.

Money (forecast, actual, MAE, bias) is Decimal; WAPE, Brier, log loss and rates are floats.

Example:
    >>> from pipelinekit import demo
    >>> from pipelinekit.forecasts.backtest import backtest
    >>> from pipelinekit.forecasts.weighted import WeightedForecast
    >>> h = demo.demo_history(opportunities=60, seed=42)
    >>> bt = backtest({"weighted": WeightedForecast(horizon=1)}, h,
    ...               as_of_dates=("2024-07-01T00:00:00Z", "2024-09-01T00:00:00Z", "month"))
    >>> [r["as_of"].date().isoformat() for r in bt.to_records()]
    ['2024-07-01', '2024-08-01', '2024-09-01']
    >>> bt.summary()[0]["points"]
    3
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.calculators import Calculator
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._learned import check_count
from pipelinekit.forecasts._placement import cents
from pipelinekit.forecasts.result import Forecast
from pipelinekit.history import History, Pipeline
from pipelinekit.money import FxRates, ReportingCurrency
from pipelinekit.periods import Period, PeriodKind, period_kind
from pipelinekit.results import Result

__all__ = [
    "BacktestPoint",
    "BacktestResult",
    "CalibrationBin",
    "ForecasterAccuracy",
    "backtest",
]

CLIP = 1e-6
"""Probabilities are clipped to [CLIP, 1 − CLIP] for the log loss."""
_ZERO = Decimal(0)


class BacktestPoint(BaseModel):
    """One forecaster at one ``as_of``: its forecast of the target periods and the truth."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forecaster: str
    as_of: datetime
    periods: tuple[str, ...]
    forecast: Decimal
    actual: Decimal
    error: Decimal
    deals_scored: int = 0
    deals_censored: int = 0
    brier: float | None = None


class ForecasterAccuracy(BaseModel):
    """One forecaster's accuracy over every ``as_of`` of the backtest.

    Attributes:
        points: how many ``as_of`` instants were scored.
        mae: mean |forecast − actual| (cents). wape: Σ|error| / Σ actual (``None`` when
            nothing was won). bias: mean (forecast − actual) (cents).
        deals_scored: deal forecasts whose outcome is known; deals_censored: left out
            because the deal is still open at the end of the history.
        brier, log_loss: over the scored deal forecasts (``None`` without any).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    forecaster: str
    points: int
    mae: Decimal
    wape: float | None
    bias: Decimal
    deals_scored: int
    deals_censored: int
    brier: float | None
    log_loss: float | None


class CalibrationBin(BaseModel):
    """Predicted vs observed win rate of the deal forecasts in ``[low, high)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forecaster: str
    low: float
    high: float
    deals: int
    mean_predicted: float | None
    observed: float | None


class BacktestResult(Result):
    """Several forecasters compared side by side on the same past ``as_of`` instants.

    ``to_records()`` gives one row per forecaster × ``as_of``; :meth:`summary` one row per
    forecaster; :meth:`calibration_records` the calibration tables.
    """

    period: str
    horizon_periods: int
    currency: str | None
    as_of_dates: tuple[datetime, ...]
    points: tuple[BacktestPoint, ...]
    accuracy: tuple[ForecasterAccuracy, ...]
    calibration: tuple[CalibrationBin, ...]

    def _html_title(self) -> str:
        return f"backtest: {len(self.accuracy)} forecasters x {len(self.as_of_dates)} as_of"

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per forecaster × ``as_of``."""
        return [{**p.model_dump(), "periods": " ".join(p.periods)} for p in self.points]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per forecaster: points, MAE, WAPE, bias, Brier, log loss, counts."""
        return [a.model_dump() for a in self.accuracy]

    def calibration_records(self) -> list[dict[str, Any]]:
        """One dict per forecaster × probability bin."""
        return [b.model_dump() for b in self.calibration]

    def accuracy_of(self, forecaster: str) -> ForecasterAccuracy:
        """The summary of one forecaster.

        Raises:
            ArgumentError: no forecaster of that name.
        """
        for a in self.accuracy:
            if a.forecaster == forecaster:
                return a
        raise ArgumentError(
            "forecaster",
            f"no forecaster {forecaster!r}; have {[a.forecaster for a in self.accuracy]}",
        )


def backtest(
    forecasters: Mapping[str, Calculator[Forecast]],
    history: History,
    *,
    as_of_dates: Sequence[Instant] | tuple[Instant, Instant, str | PeriodKind],
    horizon_periods: int = 1,
    period: str | PeriodKind = "month",
    tz: tzinfo = UTC,
    currency: str | None = None,
    rates: FxRates | None = None,
    bins: int = 10,
) -> BacktestResult:
    """Run each forecaster at each past ``as_of`` and score it against what happened.

    Args:
        forecasters: name -> calculator returning a
            :class:`~pipelinekit.forecasts.result.Forecast` whose rows include the target
            periods (same ``period`` kind, a horizon of at least ``horizon_periods``).
        history: the full history (the answer key).
        as_of_dates: the instants, or ``(start, end, period)``: the start of every period
            of that kind from ``start`` to ``end`` (both included).
        horizon_periods: how many periods, from the one containing ``as_of``, are scored.
        period: the period kind of the target periods.
        tz: the zone whose calendar decides periods and win dates.
        currency, rates: the reporting currency of the actual revenue.
        bins: the number of equal-width probability bins of the calibration table.

    Raises:
        ArgumentError: a bad argument (named), or a forecast without a target period's row
            (naming ``forecasters``).

    Example:
        >>> from pipelinekit import demo
        >>> backtest({}, demo.demo_history(opportunities=5), as_of_dates=["2024-03-01T00:00Z"])
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'forecasters': expected a non-empty ...
    """
    if not isinstance(forecasters, Mapping) or not forecasters:
        raise ArgumentError(
            "forecasters", "expected a non-empty mapping of name -> forecaster (a Calculator)"
        )
    for name, calc in forecasters.items():
        if not isinstance(name, str) or not callable(getattr(calc, "compute", None)):
            raise ArgumentError(
                "forecasters", f"{name!r}: expected a str name and an object with compute()"
            )
    if not isinstance(history, History):
        raise ArgumentError("history", f"expected a History, got {type(history).__name__}")
    kind = _kind(period)
    horizon_periods = check_count("horizon_periods", horizon_periods, low=1)
    bins = check_count("bins", bins, low=1)
    if not isinstance(tz, tzinfo):
        raise ArgumentError("tz", f"expected a tzinfo such as UTC, got {type(tz).__name__}")
    ReportingCurrency(currency, rates)  # validates both
    dates = _as_of_dates(as_of_dates, tz)
    final = history.as_of(history.end) if history.end is not None else None

    points: list[BacktestPoint] = []
    scored: dict[str, list[tuple[float, int]]] = {name: [] for name in forecasters}
    censored: dict[str, int] = dict.fromkeys(forecasters, 0)
    answers: dict[datetime, tuple[tuple[Period, ...], Decimal]] = {}
    for when in dates:
        targets = kind.following(kind.period_of_instant(when, tz).start, horizon_periods)
        answers[when] = (targets, _actual(history, targets, tz, currency, rates))
    for name, calc in forecasters.items():
        for when in dates:
            targets, actual = answers[when]
            forecast = calc.compute(history.until(when), as_of=when)
            if not isinstance(forecast, Forecast):
                raise ArgumentError(
                    "forecasters", f"{name!r} returned {type(forecast).__name__}, not a Forecast"
                )
            predicted = _forecast_total(name, forecast, targets)
            outcomes, open_left = _outcomes(forecast, final)
            scored[name].extend(outcomes)
            censored[name] += open_left
            points.append(
                BacktestPoint(
                    forecaster=name,
                    as_of=when,
                    periods=tuple(p.label for p in targets),
                    forecast=predicted,
                    actual=actual,
                    error=predicted - actual,
                    deals_scored=len(outcomes),
                    deals_censored=open_left,
                    brier=_brier(outcomes),
                )
            )
    accuracy = tuple(
        _accuracy(name, [p for p in points if p.forecaster == name], scored[name], censored[name])
        for name in forecasters
    )
    calibration = tuple(b for name in forecasters for b in _calibration(name, scored[name], bins))
    return BacktestResult(
        period=kind.spec,
        horizon_periods=horizon_periods,
        currency=currency,
        as_of_dates=tuple(dates),
        points=tuple(points),
        accuracy=accuracy,
        calibration=calibration,
    )


def _kind(period: object) -> PeriodKind:
    if isinstance(period, PeriodKind):
        return period
    if not isinstance(period, str):
        raise ArgumentError("period", f"expected a period spec like 'month', got {period!r}")
    try:
        return period_kind(period)
    except ValueError as exc:
        reason = exc.reason if isinstance(exc, ArgumentError) else str(exc)
        raise ArgumentError("period", reason) from None


def _as_of_dates(value: object, tz: tzinfo) -> list[datetime]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ArgumentError(
            "as_of_dates",
            f"expected a non-empty list of instants or (start, end, period), got {value!r}",
        )
    if len(value) == 3 and _is_period(value[2]):
        start = instant(value[0], argument="as_of_dates")
        end = instant(value[1], argument="as_of_dates")
        if end < start:
            raise ArgumentError("as_of_dates", f"end {end.isoformat()} is before start")
        kind = _kind(value[2])
        first = start.astimezone(tz).date()
        last = end.astimezone(tz).date() + timedelta(days=1)
        found = [
            p.start_instant(tz)
            for p in kind.between(first, last)
            if start <= p.start_instant(tz) <= end
        ]
        if not found:
            raise ArgumentError("as_of_dates", "no period starts between start and end")
        return found
    return sorted({instant(v, argument="as_of_dates") for v in value})


def _is_period(value: object) -> bool:
    if isinstance(value, PeriodKind):
        return True
    if not isinstance(value, str):
        return False
    try:
        instant(value, argument="as_of_dates")
    except ArgumentError:
        return True
    return False


def _actual(
    history: History,
    targets: tuple[Period, ...],
    tz: tzinfo,
    currency: str | None,
    rates: FxRates | None,
) -> Decimal:
    """Revenue won (state at the end of the targets) with a win date inside them."""
    first, last = targets[0].start, targets[-1].end
    pipeline = history.as_of(targets[-1].end_instant(tz))
    to_rep = ReportingCurrency(currency, rates)
    total = _ZERO
    for oid in sorted(pipeline):
        opp = pipeline[oid]
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(tz).date()
        if first <= won_on < last:
            total += to_rep(opp.amount, opp.currency, won_on)
    return total


def _forecast_total(name: str, forecast: Forecast, targets: tuple[Period, ...]) -> Decimal:
    buckets = {r.bucket for r in forecast.rows}
    missing = [p.label for p in targets if p.label not in buckets]
    if missing:
        raise ArgumentError(
            "forecasters",
            f"{name!r} has no forecast row for {missing}: give it the backtest's period kind "
            "and a horizon of at least horizon_periods",
        )
    return sum((forecast.total(p.label) for p in targets), _ZERO)


def _outcomes(forecast: Forecast, final: Pipeline | None) -> tuple[list[tuple[float, int]], int]:
    out: list[tuple[float, int]] = []
    open_left = 0
    for deal in forecast.deals:
        opp = final.get(deal.opportunity_id) if final is not None else None
        if opp is None or opp.is_open:
            open_left += 1
            continue
        out.append((deal.win_probability, int(opp.is_won)))
    return out, open_left


def _brier(outcomes: list[tuple[float, int]]) -> float | None:
    if not outcomes:
        return None
    return math.fsum((p - y) ** 2 for p, y in outcomes) / len(outcomes)


def _log_loss(outcomes: list[tuple[float, int]]) -> float | None:
    if not outcomes:
        return None
    total = 0.0
    terms = []
    for p, y in outcomes:
        q = min(max(p, CLIP), 1 - CLIP)
        terms.append(math.log(q) if y else math.log(1 - q))
    total = math.fsum(terms)
    return -total / len(outcomes)


def _accuracy(
    name: str, points: list[BacktestPoint], outcomes: list[tuple[float, int]], censored: int
) -> ForecasterAccuracy:
    n = len(points)
    absolute = sum((abs(p.error) for p in points), _ZERO)
    signed = sum((p.error for p in points), _ZERO)
    actual = sum((p.actual for p in points), _ZERO)
    return ForecasterAccuracy(
        forecaster=name,
        points=n,
        mae=cents(absolute / n),
        wape=float(absolute / actual) if actual > 0 else None,
        bias=cents(signed / n),
        deals_scored=len(outcomes),
        deals_censored=censored,
        brier=_brier(outcomes),
        log_loss=_log_loss(outcomes),
    )


def _calibration(name: str, outcomes: list[tuple[float, int]], bins: int) -> list[CalibrationBin]:
    grouped: list[list[tuple[float, int]]] = [[] for _ in range(bins)]
    for p, y in outcomes:
        grouped[min(int(p * bins), bins - 1)].append((p, y))
    return [
        CalibrationBin(
            forecaster=name,
            low=k / bins,
            high=(k + 1) / bins,
            deals=len(members),
            mean_predicted=math.fsum(p for p, _ in members) / len(members) if members else None,
            observed=sum(y for _, y in members) / len(members) if members else None,
        )
        for k, members in enumerate(grouped)
    ]
