"""The period error: how far a forecaster's past forecasts of a period were from the truth.

Deal-level randomness (each deal won or not, independently) is not all the uncertainty of a
period's revenue: a good or a bad month moves every deal together, and the method itself is
off (its timing, its rates, its new business). The distribution forecasters can carry the
method's own **past errors** in their bands: the period's open and new revenue ``Y`` (whose
law comes from the deals) is multiplied by a factor ``R`` drawn from

- the ratios ``actual / forecast`` of the same forecaster's past forecasts of that lag, each
  worth one, and
- ``1`` (no error: chance alone), worth :data:`PRIOR_WEIGHT` of them,

so the band of a period is the law of ``won + R·Y``: one time in ten below P10 if the past
errors are a fair sample of the next. The past forecasts are made at the origins of earlier
periods (the same offset into each as ``as_of`` into its own), by the same forecaster
without past errors, on the history known then; the actual is what was won in the period
after the origin, the forecast its expected + new revenue. An origin is usable for lag ``j``
when it lies inside the history and period ``P + j`` ended before ``as_of``'s period began;
the most recent ``error_periods`` usable origins count. An origin where the forecaster
cannot forecast (a typed error, e.g. a stage no deal has left yet and without a weight) is
skipped and noted; a lag without any past forecast has no evidence (``insufficient``) and
its band is chance alone.

The mean forecast (``expected``, ``new``, ``total``) is the method's own; the band is not
centred on it when the method was biased in the past (the ratios' mean is not 1), which is
the point.

Example:
    >>> from pipelinekit import demo
    >>> from pipelinekit.forecasts.distribution import OutcomeDistribution
    >>> f = OutcomeDistribution(horizon=1, period_error="learned").compute(
    ...     demo.crm_history(months=18, deals_per_month=60, seed=2),
    ...     as_of="2023-05-01T00:00:00Z")
    >>> e = f.period_error[0]
    >>> e.bucket, e.origins, [round(r, 2) for r in e.ratios]
    ('2023-05', 6, [0.09, 0.73, 0.18, 0.25, 0.56, 0.27])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.new_business import origin_of
from pipelinekit.forecasts.result import Forecast
from pipelinekit.history import History, Pipeline
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, total
from pipelinekit.periods import Period

__all__ = [
    "PRIOR_WEIGHT",
    "PastForecast",
    "PeriodError",
    "check_period_error",
    "given_period_error",
    "learn_period_error",
]


class PastForecast(BaseModel):
    """One past forecast of one period, and what happened.

    Attributes:
        origin: when it was made; lag, bucket: the period it forecast.
        forecast: its expected + new revenue of the period (already won excluded).
        actual: what was won in the period after ``origin``.
        ratio: ``actual / forecast`` (``None`` when the forecast was 0).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: datetime
    lag: int
    bucket: str
    forecast: Decimal
    actual: Decimal
    ratio: float | None


PRIOR_WEIGHT = 1.0
"""How many past errors the "no error, chance alone" component of the factor is worth."""


class PeriodError(BaseModel):
    """The error factor of one horizon period.

    Attributes:
        lag, bucket: the period (lag 0: the one of ``as_of``).
        ratios: the past ``actual / forecast`` ratios the factor is drawn from (each worth
            one; the factor is 1 with weight :data:`PRIOR_WEIGHT`), most recent first.
        origins: how many past forecasts of the lag were usable (``len(ratios)``).
        insufficient: no usable past forecast: the band is chance alone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag: int
    bucket: str
    ratios: tuple[float, ...] = ()
    origins: int = 0
    insufficient: bool = False

    def factors(self) -> tuple[tuple[float, float], ...]:
        """(factor, weight) pairs: 1 with :data:`PRIOR_WEIGHT`, each ratio with 1."""
        return ((1.0, PRIOR_WEIGHT), *((r, 1.0) for r in self.ratios))


def check_period_error(value: object) -> str | tuple[PeriodError, ...] | None:
    """Validate ``period_error``: ``None``, ``"learned"`` or a table of :class:`PeriodError`.

    Raises:
        ArgumentError: (``period_error``) anything else.
    """
    if value is None or value == "learned":
        return value
    if isinstance(value, tuple | list) and value and all(isinstance(e, PeriodError) for e in value):
        return tuple(value)
    raise ArgumentError(
        "period_error",
        "expected None, 'learned' or the period_error table of an earlier forecast (a "
        f"sequence of PeriodError); got {value!r}",
    )


def given_period_error(
    table: tuple[PeriodError, ...], periods: Sequence[Period]
) -> tuple[PeriodError, ...]:
    """A given table, checked against the horizon's periods.

    Raises:
        ArgumentError: (``period_error``) it does not cover every horizon period.
    """
    buckets = [e.bucket for e in table]
    missing = [p.label for p in periods if p.label not in buckets]
    if missing:
        raise ArgumentError(
            "period_error", f"the given table has no period error for {missing}; it has {buckets}"
        )
    return tuple(e for p in periods for e in table if e.bucket == p.label)


def learn_period_error(
    forecast: Callable[[History, datetime], Forecast],
    history: History,
    when: datetime,
    periods: Sequence[Period],
    *,
    tz: tzinfo,
    currency: str | None,
    rates: FxRates | None,
    origins: int,
    notes: list[str],
) -> tuple[tuple[PeriodError, ...], tuple[PastForecast, ...]]:
    """Learn each horizon period's scale from the forecaster's past forecasts.

    ``forecast(history, at)`` is the forecaster without period error, forecasting the
    same number of periods from ``at``.
    """
    seen = history.until(when)
    start = seen.start
    kind = periods[0].kind
    current = periods[0]
    lags = len(periods)
    final = seen.as_of(when)
    to_rep = ReportingCurrency(currency, rates)
    past: list[PastForecast] = []
    used = [0] * lags
    origin = current.previous()
    skipped: list[str] = []
    while start is not None and min(used) < origins:
        at = origin_of(origin, when, kind, tz)
        if at < start:
            break
        try:
            made = forecast(seen, at)
        except ArgumentError as exc:
            skipped.append(f"{at.isoformat()} ({exc.reason})")
            origin = origin.previous()
            continue
        period = origin
        for lag in range(lags):
            if period.start >= current.start or used[lag] >= origins:
                period = period.next()
                continue
            rows = [r for r in made.rows if r.bucket == period.label]
            predicted = total(EXACT.add(r.expected, r.new) for r in rows)
            known = total(r.won for r in rows)
            actual = EXACT.subtract(_won_in(final, period, tz, to_rep), known)
            ok = predicted > 0
            past.append(
                PastForecast(
                    origin=at,
                    lag=lag,
                    bucket=period.label,
                    forecast=predicted,
                    actual=actual,
                    ratio=float(actual / predicted) if ok else None,
                )
            )
            used[lag] += 1
            period = period.next()
        origin = origin.previous()
    if skipped:
        notes.append(
            "the forecaster could not forecast at some past origins, left out of the period "
            f"error: {'; '.join(skipped[:3])}" + (" ..." if len(skipped) > 3 else "")
        )
    out: list[PeriodError] = []
    short: list[str] = []
    for lag, period in enumerate(periods):
        ratios = tuple(p.ratio for p in past if p.lag == lag and p.ratio is not None)
        out.append(
            PeriodError(
                lag=lag,
                bucket=period.label,
                ratios=ratios,
                origins=len(ratios),
                insufficient=not ratios,
            )
        )
        if not ratios:
            short.append(period.label)
    if short:
        notes.append(
            f"no past forecast to learn the period error of {short} from (insufficient "
            "history): their bands carry the deals' own randomness only"
        )
    return tuple(out), tuple(past)


def _won_in(pipeline: Pipeline, period: Period, tz: tzinfo, to_rep: ReportingCurrency) -> Decimal:
    """Revenue won (in the reporting currency) with a win date inside ``period``."""
    amounts = []
    for opp in pipeline.values():
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(tz).date()
        if period.start <= won_on < period.end:
            amounts.append(to_rep(opp.amount, opp.currency, won_on))
    return total(amounts)
