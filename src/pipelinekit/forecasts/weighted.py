"""The weighted forecast: open amount x probability, placed in its close period.

Each open deal counts ``amount x probability / 100`` (its probability override, else its
stage's weight) in the period of its expected close date. Won revenue is placed in the
period it was won in. Nothing is dropped or silently moved: deals whose expected close date
is already past at ``as_of`` go to the ``overdue`` bucket, deals without one to
``no close date``, and deals expected after the last period of the horizon to ``later``.

The forecast also has a natural spread: if each deal is an independent Bernoulli trial won
with its probability, the revenue of a bucket has variance ``Σ a² p (1 − p)``; each row's
``std`` is its square root (rounded to cents). Independence is an assumption: deals that
rise and fall together (one economy, one product launch) spread wider; see
:class:`~pipelinekit.forecasts.distribution.MonteCarloForecast` for a common shock.

Example:
    >>> from pipelinekit import demo
    >>> from pipelinekit.forecasts.weighted import WeightedForecast
    >>> history = demo.demo_history(opportunities=60, seed=42)
    >>> f = WeightedForecast(period="month", horizon=3).compute(
    ...     history, as_of="2024-09-30T00:00:00+00:00")
    >>> [r.bucket for r in f.rows]
    ['2024-09', '2024-10', '2024-11', 'later', 'overdue']
    >>> f.row("2024-10").expected
    Decimal('45890.0')
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from decimal import Decimal

from pipelinekit._time import Instant, instant
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.forecasts._placement import (
    GroupBy,
    Placement,
    deal_forecasts,
    place,
    skeleton_rows,
    variance,
    weight_probability,
    weighted_table,
)
from pipelinekit.forecasts.result import DealForecast, Forecast, std_of
from pipelinekit.history import History
from pipelinekit.money import FxRates
from pipelinekit.periods import PeriodKind

__all__ = ["WeightedForecast"]

_ZERO = Decimal(0)


class WeightedForecast:
    """Forecast revenue per period as the sum of open deals' weighted amounts plus won revenue.

    Args:
        period: the period kind (``"month"``, ``"quarter"``, ``"week"``,
            ``"fiscal_year:4"``... or a :class:`~pipelinekit.periods.PeriodKind`).
        horizon: how many periods to forecast, starting with the one containing ``as_of``.
        group_by: ``None``, ``"owner"``, ``"product"``, ``"source"``, ``"account"`` or
            ``"category"`` (needs ``categories``). A deal without the field has group
            ``None``.
        currency, rates: the reporting currency and :class:`~pipelinekit.money.FxRates`;
            open amounts convert at ``as_of``'s date, won amounts at the date they were won.
        tz: the zone whose calendar dates decide periods, "overdue" and when a deal was won.
        categories: stage key -> forecast category (``"pipeline"``, ``"best_case"``,
            ``"commit"``). Open stages not named are ``"pipeline"``; won revenue is
            ``"closed"``. Each deal's category is in :attr:`Forecast.deals`.

    Raises:
        ArgumentError: a bad argument, named in ``.argument``.

    Example:
        >>> WeightedForecast(horizon=0)
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'horizon': expected a whole number ... got 0
    """

    def __init__(
        self,
        *,
        period: str | PeriodKind = "month",
        horizon: int = 3,
        group_by: GroupBy | None = None,
        currency: str | None = None,
        rates: FxRates | None = None,
        tz: tzinfo = UTC,
        categories: Mapping[str, str] | None = None,
    ) -> None:
        self.period = period
        self.horizon = horizon
        self.group_by = group_by
        self.currency = currency
        self.rates = rates
        self.tz = tz
        self.categories = categories
        self._placement = Placement.validate(
            period=period,
            horizon=horizon,
            group_by=group_by,
            currency=currency,
            rates=rates,
            tz=tz,
            categories=categories,
        )

    def compute(self, history: History, *, as_of: Instant) -> Forecast:
        """The weighted forecast as of ``as_of`` (seeing only ``history.until(as_of)``).

        Raises:
            ArgumentError: (``scheme``) an open deal has neither a stage weight nor a
                probability override, so weighted figures are unavailable;
                (``categories``) a category names a stage that is not open in the scheme.
            CurrencyError: amounts in several currencies without ``currency``/``rates``.

        Example:
            >>> from pipelinekit import demo
            >>> f = WeightedForecast(group_by="owner").compute(
            ...     demo.demo_history(opportunities=60, seed=42),
            ...     as_of="2024-09-30T00:00:00+00:00")
            >>> f.row("2024-10", group="ann").expected
            Decimal('20690.0')
        """
        with bulk_work():  # no GC passes over the transient snapshot: docs/performance.md
            return self._compute(history, as_of)

    def _compute(self, history: History, as_of: Instant) -> Forecast:
        when = instant(as_of, argument="as_of")
        pipeline = history.until(when).as_of(when)
        table = weighted_table(self._placement, pipeline, when)  # the columnar engine's
        if table is not None:
            deals, rows, variances, currency = (
                table.deals,
                table.rows,
                table.variances,
                table.currency,
            )
        else:
            layout = place(self._placement, pipeline, when, light=True)
            deals = deal_forecasts(layout, weight_probability)
            rows = skeleton_rows(layout, deals, grouped=self._placement.group_by is not None)
            by_row: dict[tuple[str, str | None], list[DealForecast]] = {}
            for d in deals:
                by_row.setdefault((d.bucket, d.group), []).append(d)
            variances = {key: variance(by_row.get(key, ())) for key in rows}
            currency = layout.currency
        final = []
        for key, row in rows.items():
            var = variances.get(key, _ZERO)
            final.append(row.model_copy(update={"std": std_of(var), "variance": var}))
        return Forecast(
            method="weighted",
            as_of=when,
            currency=currency,
            rows=tuple(final),
            deals=deals,
        )
