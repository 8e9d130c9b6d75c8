"""Backtesting: how good would each forecaster have been, had it been used in the past?

:func:`backtest` runs every forecaster at a series of past ``as_of`` instants, each seeing
only ``history.until(as_of)``, and compares the forecast of the following period(s) with
what was actually won in them. The full history is used only here, as the answer key.

- **Totals** (per forecaster and ``as_of``): the forecast is the sum of ``won + expected +
  new`` over the target periods (the ``horizon_periods`` periods starting with the one that
  contains ``as_of``) **plus** the ``overdue`` and ``no close date`` buckets: a deal whose
  close date has passed, or that has none, is due now, so it is a forecast of the current
  period too (nothing a forecaster says goes unscored). The actual is the revenue whose win
  date falls in the targets. Errors are ``forecast − actual``: MAE (mean absolute error),
  WAPE (Σ|error| / Σ actual: the share of the actual revenue missed either way) and bias
  (mean signed error: > 0 means the forecaster promised too much).
- **Bands**: where a forecast gives P10/P90 for a target period, whether the period's actual
  fell inside (``coverage``: about 80 % for honest bands) and the pinball (quantile) loss
  of its P10, P50 and P90.
- **Deal probabilities at the horizon**: each deal open at ``as_of`` is scored on "won
  within the target periods", from the chance the forecaster gives it for those periods
  (:attr:`~pipelinekit.forecasts.result.DealForecast.periods`; a forecaster that does not
  say when counts a deal's probability in the period it placed the deal). A deal still open
  at the end of the targets is an outcome (not won in time), never left out: dropping the
  deals that never close would flatter every forecaster that ignores them. Brier score, log
  loss (probabilities clipped to [1e-6, 1 − 1e-6]), expected calibration error (ECE) and a
  calibration table.

**Complete periods.** A point counts only when its target periods are complete in the
history: the history must have an event on or after the last day of the last target period
(local date in ``tz``). Otherwise the actual is not known in full: the point is listed with
``complete=False`` and left out of every metric (``incomplete`` counts them). The period of
``as_of`` is always the first target, even when ``as_of`` is its last day: a forecast made on
30 June is a forecast of June, one made on 1 July a forecast of July.

Money (forecast, actual, MAE, bias, pinball) is Decimal; rates and scores are floats.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.calculators import Calculator
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._learned import check_count
from pipelinekit.forecasts._placement import cents
from pipelinekit.forecasts.result import NO_CLOSE_DATE, OVERDUE, Forecast
from pipelinekit.history import History, Pipeline
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, total
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
    """One forecaster at one ``as_of``: its forecast of the target periods and the truth.

    Attributes:
        periods: the target periods' labels.
        forecast, actual, error: totals over the targets (the forecast includes the
            ``overdue`` and ``no close date`` buckets).
        complete: the history covers the targets in full (otherwise the point is left out
            of every metric).
        period_forecasts, period_actuals: per target period (overdue and no close date in
            the first).
        p10, p50, p90: per target period, the forecast's percentiles (``None`` where it
            gives none).
        deals_scored: open deals scored at the horizon; brier: their Brier score.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    forecaster: str
    as_of: datetime
    periods: tuple[str, ...]
    forecast: Decimal
    actual: Decimal
    error: Decimal
    complete: bool = True
    period_forecasts: tuple[Decimal, ...] = ()
    period_actuals: tuple[Decimal, ...] = ()
    p10: tuple[Decimal | None, ...] = ()
    p50: tuple[Decimal | None, ...] = ()
    p90: tuple[Decimal | None, ...] = ()
    deals_scored: int = 0
    brier: float | None = None


class ForecasterAccuracy(BaseModel):
    """One forecaster's accuracy over every complete ``as_of`` of the backtest.

    Attributes:
        points: how many ``as_of`` instants were scored (``incomplete``: left out).
        mae: mean |forecast − actual| (cents). wape: Σ|error| / Σ actual (``None`` when
            nothing was won). bias: mean (forecast − actual) (cents).
        bands: target periods with a P10 and a P90; coverage: the share of them whose
            actual fell within [P10, P90] (``None`` without bands); below: the share below
            P10. pinball: the mean pinball loss of P10, P50 and P90 (cents).
        deals_scored: deal forecasts scored on "won within the targets".
        brier, log_loss, ece: over the scored deal forecasts (``None`` without any); ece is
            the expected calibration error of the calibration table (Σ share × |mean
            predicted − observed|).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    forecaster: str
    points: int
    incomplete: int = 0
    mae: Decimal
    wape: float | None
    bias: Decimal
    bands: int = 0
    coverage: float | None = None
    below: float | None = None
    pinball: Decimal | None = None
    deals_scored: int
    brier: float | None
    log_loss: float | None
    ece: float | None = None


class CalibrationBin(BaseModel):
    """Predicted vs observed rate of "won within the targets" of the deal forecasts in
    ``[low, high)``."""

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
    forecaster; :meth:`ranking` the same, best WAPE first; :meth:`calibration_records` the
    calibration tables.
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
        """One dict per forecaster × ``as_of`` (the per-period tuples left out)."""
        per_period = ("period_forecasts", "period_actuals", "p10", "p50", "p90")
        return [
            {**p.model_dump(exclude=set(per_period)), "periods": " ".join(p.periods)}
            for p in self.points
        ]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per forecaster: points, MAE, WAPE, bias, bands, deal scores."""
        return [a.model_dump() for a in self.accuracy]

    def ranking(self) -> list[dict[str, Any]]:
        """:meth:`summary` ranked: lowest WAPE first (``None`` last), with a ``rank``.

        Example:
            >>> from pipelinekit import demo
            >>> from pipelinekit.forecasts.weighted import WeightedForecast
            >>> bt = backtest({"w": WeightedForecast(horizon=1)},
            ...               demo.demo_history(opportunities=40, seed=1),
            ...               as_of_dates=["2024-06-01T00:00:00Z"])
            >>> bt.ranking()[0]["rank"], bt.ranking()[0]["forecaster"]
            (1, 'w')
        """
        ordered = sorted(
            self.summary(), key=lambda r: (r["wape"] is None, r["wape"] or 0.0, r["forecaster"])
        )
        return [{"rank": i + 1, **r} for i, r in enumerate(ordered)]

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
    last_day = history.end.astimezone(tz).date() if history.end is not None else None

    points: list[BacktestPoint] = []
    scored: dict[str, list[tuple[float, int]]] = {name: [] for name in forecasters}
    answers: dict[datetime, _Answer] = {}
    for when in dates:
        targets = kind.following(kind.period_of_instant(when, tz).start, horizon_periods)
        actuals = tuple(_actual(history, (p,), tz, currency, rates) for p in targets)
        complete = last_day is not None and last_day >= targets[-1].end - timedelta(days=1)
        answers[when] = _Answer(targets, actuals, complete)
    for name, calc in forecasters.items():
        for when in dates:
            answer = answers[when]
            forecast = calc.compute(history.until(when), as_of=when)
            if not isinstance(forecast, Forecast):
                raise ArgumentError(
                    "forecasters", f"{name!r} returned {type(forecast).__name__}, not a Forecast"
                )
            per_period = _forecast_totals(name, forecast, answer.targets)
            outcomes = (
                _outcomes(forecast, final, when, answer.targets, tz) if answer.complete else []
            )
            if answer.complete:
                scored[name].extend(outcomes)
            predicted = total(per_period)
            actual = total(answer.actuals)
            bands = [_band(forecast, p.label) for p in answer.targets]
            points.append(
                BacktestPoint(
                    forecaster=name,
                    as_of=when,
                    periods=tuple(p.label for p in answer.targets),
                    forecast=predicted,
                    actual=actual,
                    error=EXACT.subtract(predicted, actual),
                    complete=answer.complete,
                    period_forecasts=tuple(per_period),
                    period_actuals=answer.actuals,
                    p10=tuple(b[0] for b in bands),
                    p50=tuple(b[1] for b in bands),
                    p90=tuple(b[2] for b in bands),
                    deals_scored=len(outcomes),
                    brier=_brier(outcomes),
                )
            )
    accuracy = tuple(
        _accuracy(name, [p for p in points if p.forecaster == name], scored[name], bins)
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


@dataclass(frozen=True)
class _Answer:
    targets: tuple[Period, ...]
    actuals: tuple[Decimal, ...]
    complete: bool


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
    won: list[Decimal] = []
    for oid in sorted(pipeline):
        opp = pipeline[oid]
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(tz).date()
        if first <= won_on < last:
            won.append(to_rep(opp.amount, opp.currency, won_on))
    return total(won)


def _forecast_totals(name: str, forecast: Forecast, targets: tuple[Period, ...]) -> list[Decimal]:
    """The forecast of each target period; the first also takes ``overdue`` and ``no close
    date`` (deals due now)."""
    buckets = {r.bucket for r in forecast.rows}
    missing = [p.label for p in targets if p.label not in buckets]
    if missing:
        raise ArgumentError(
            "forecasters",
            f"{name!r} has no forecast row for {missing}: give it the backtest's period kind "
            "and a horizon of at least horizon_periods",
        )
    totals = [forecast.total(p.label) for p in targets]
    totals[0] = total((totals[0], forecast.total(OVERDUE), forecast.total(NO_CLOSE_DATE)))
    return totals


def _band(forecast: Forecast, bucket: str) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """P10, P50, P90 of a bucket (over its groups only when the forecast is ungrouped)."""
    rows = [r for r in forecast.rows if r.bucket == bucket]
    if len(rows) != 1:
        return (None, None, None)
    return (rows[0].p10, rows[0].p50, rows[0].p90)


def _outcomes(
    forecast: Forecast,
    final: Pipeline | None,
    when: datetime,
    targets: tuple[Period, ...],
    tz: tzinfo,
) -> list[tuple[float, int]]:
    """(chance of being won within the targets, whether it was) per deal forecast."""
    labels = [p.label for p in targets]
    due_now = {OVERDUE, NO_CLOSE_DATE, *labels}
    first, last = targets[0].start, targets[-1].end
    out: list[tuple[float, int]] = []
    for deal in forecast.deals:
        if deal.periods:
            p = math.fsum(deal.periods[: len(labels)])
        else:
            p = deal.win_probability if deal.bucket in due_now else 0.0
        opp = final.get(deal.opportunity_id) if final is not None else None
        won = (
            opp is not None
            and opp.is_won
            and opp.closed_at is not None
            and opp.closed_at > when
            and first <= opp.closed_at.astimezone(tz).date() < last
        )
        out.append((min(max(p, 0.0), 1.0), int(won)))
    return out


def _brier(outcomes: list[tuple[float, int]]) -> float | None:
    if not outcomes:
        return None
    return math.fsum((p - y) ** 2 for p, y in outcomes) / len(outcomes)


def _log_loss(outcomes: list[tuple[float, int]]) -> float | None:
    if not outcomes:
        return None
    terms = []
    for p, y in outcomes:
        q = min(max(p, CLIP), 1 - CLIP)
        terms.append(math.log(q) if y else math.log(1 - q))
    return -math.fsum(terms) / len(outcomes)


_LEVELS = (Decimal("0.1"), Decimal("0.5"), Decimal("0.9"))


def _pinball(actual: Decimal, quantiles: tuple[Decimal, Decimal, Decimal]) -> Decimal:
    """The mean pinball loss of P10, P50, P90 against ``actual``."""
    loss = _ZERO
    for level, q in zip(_LEVELS, quantiles, strict=True):
        diff = actual - q
        loss += level * diff if diff >= 0 else (level - 1) * diff
    return loss / 3


def _accuracy(
    name: str, points: list[BacktestPoint], outcomes: list[tuple[float, int]], bins: int
) -> ForecasterAccuracy:
    complete = [p for p in points if p.complete]
    n = len(complete)
    absolute = total(abs(p.error) for p in complete)
    signed = total(p.error for p in complete)
    actual = total(p.actual for p in complete)
    inside = below = banded = 0
    pinball = _ZERO
    for p in complete:
        for a, lo, mid, hi in zip(p.period_actuals, p.p10, p.p50, p.p90, strict=True):
            if lo is None or hi is None or mid is None:
                continue
            banded += 1
            inside += lo <= a <= hi
            below += a < lo
            pinball = EXACT.add(pinball, _pinball(a, (lo, mid, hi)))
    return ForecasterAccuracy(
        forecaster=name,
        points=n,
        incomplete=len(points) - n,
        mae=cents(absolute / n) if n else _ZERO,
        wape=float(absolute / actual) if actual > 0 else None,
        bias=cents(signed / n) if n else _ZERO,
        bands=banded,
        coverage=inside / banded if banded else None,
        below=below / banded if banded else None,
        pinball=cents(pinball / banded) if banded else None,
        deals_scored=len(outcomes),
        brier=_brier(outcomes),
        log_loss=_log_loss(outcomes),
        ece=_ece(outcomes, bins),
    )


def _binned(outcomes: list[tuple[float, int]], bins: int) -> list[list[tuple[float, int]]]:
    grouped: list[list[tuple[float, int]]] = [[] for _ in range(bins)]
    for p, y in outcomes:
        grouped[min(int(p * bins), bins - 1)].append((p, y))
    return grouped


def _ece(outcomes: list[tuple[float, int]], bins: int) -> float | None:
    if not outcomes:
        return None
    gaps = [
        len(members)
        * abs(
            math.fsum(p for p, _ in members) / len(members)
            - sum(y for _, y in members) / len(members)
        )
        for members in _binned(outcomes, bins)
        if members
    ]
    return math.fsum(gaps) / len(outcomes)


def _calibration(name: str, outcomes: list[tuple[float, int]], bins: int) -> list[CalibrationBin]:
    return [
        CalibrationBin(
            forecaster=name,
            low=k / bins,
            high=(k + 1) / bins,
            deals=len(members),
            mean_predicted=math.fsum(p for p, _ in members) / len(members) if members else None,
            observed=sum(y for _, y in members) / len(members) if members else None,
        )
        for k, members in enumerate(_binned(outcomes, bins))
    ]
