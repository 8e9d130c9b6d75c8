"""The result every forecaster returns: per period (and group), won + expected, with spread.

A :class:`Forecast` has one :class:`ForecastRow` per bucket and group. A bucket is a period
(``"2024-03"``) or one of two labelled buckets that keep deals from being dropped or
silently placed: ``"overdue"`` (the expected close date is already past at ``as_of``) and
``"no close date"``. Per-deal figures are in :attr:`Forecast.deals`.

Money is ``Decimal``; probabilities are floats in [0, 1] (statistics, not money).

Example:
    >>> from datetime import UTC, date, datetime
    >>> from decimal import Decimal
    >>> row = ForecastRow(bucket="2024-03", start=date(2024, 3, 1), end=date(2024, 4, 1),
    ...                   won=Decimal("100"), expected=Decimal("50"))
    >>> row.total
    Decimal('150')
    >>> f = Forecast(method="weighted", as_of=datetime(2024, 3, 10, tzinfo=UTC),
    ...              currency="EUR", rows=(row,))
    >>> f.merge(f).rows[0].total
    Decimal('300')
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit.errors import ArgumentError
from pipelinekit.money import EXACT, total
from pipelinekit.results import Result, html_table, require_same, text_table

__all__ = [
    "LATER",
    "NO_CLOSE_DATE",
    "OVERDUE",
    "DealForecast",
    "DealForecasts",
    "Forecast",
    "ForecastRow",
]

OVERDUE = "overdue"
"""Bucket of open deals whose expected close date is before ``as_of``."""
NO_CLOSE_DATE = "no close date"
"""Bucket of open deals without an expected close date."""
LATER = "later"
"""Bucket of open deals expected to close after the forecast's last period (its row's
``start`` is the first day after the horizon, its ``end`` is ``None``)."""

_ZERO = Decimal(0)


class ForecastRow(BaseModel):
    """Won and expected revenue of one bucket (period) and group.

    Attributes:
        bucket: the period label, or :data:`LATER` / :data:`OVERDUE` / :data:`NO_CLOSE_DATE`.
        start, end: the period's dates, half-open (``None`` for the labelled buckets,
            except :data:`LATER`, whose ``start`` is the first day after the horizon).
        group: the group value (owner, product...) when the forecast is grouped.
        won: revenue already won inside the period by ``as_of``.
        expected: expected revenue still to come from deals open at ``as_of``.
        new: expected revenue from deals not yet created (methods that model it).
        std: standard deviation of the period's revenue, when the method gives one.
        variance: the exact variance behind ``std`` when the method has one (independent
            deals); merges add variances exactly and derive ``std`` from the sum.
        p10, p50, p90: statistical percentiles of the period's revenue (P10: the revenue
            stays at or below it with probability 0.10), when the method gives them.
        deals: how many open deals contribute to ``expected``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    start: date | None = None
    end: date | None = None
    group: str | None = None
    won: Decimal = _ZERO
    expected: Decimal = _ZERO
    new: Decimal = _ZERO
    std: Decimal | None = None
    variance: Decimal | None = None
    p10: Decimal | None = None
    p50: Decimal | None = None
    p90: Decimal | None = None
    deals: int = 0

    @property
    def total(self) -> Decimal:
        """won + expected + new: the projection for the bucket."""
        return total((self.won, self.expected, self.new))


class DealForecast(BaseModel):
    """One open deal's contribution: its probability and where it was placed.

    ``category`` is the deal's forecast category (``"pipeline"``, ``"best_case"``,
    ``"commit"``) when the forecaster maps stages to categories, else ``None``.
    ``periods`` is the chance that the deal is won in each period of the horizon, in the
    order of the forecast's period rows (empty when the method does not say when); a
    backtest scores "won within the first h periods" with the sum of the first ``h``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    opportunity_id: str
    stage: str
    amount: Decimal
    win_probability: float
    expected: Decimal
    bucket: str
    group: str | None = None
    category: str | None = None
    periods: tuple[float, ...] = ()


class Forecast(Result):
    """A forecast of won revenue per bucket (and group), with per-deal detail.

    Attributes:
        method: the forecaster's name (``"weighted"``, ``"historical"``...).
        as_of: the instant the forecast was made at; it saw nothing later.
        currency: the reporting currency (``None`` when amounts carry none).
        rows: one row per bucket and group, periods in time order, then ``later``,
            ``overdue`` and ``no close date``.
        deals: per open deal: win probability and expected amount.
    """

    method: str
    as_of: datetime
    currency: str | None = None
    rows: tuple[ForecastRow, ...] = ()
    deals: tuple[DealForecast, ...] = ()

    def _html_title(self) -> str:
        return f"{self.method} forecast as of {self.as_of.isoformat(sep=' ')}"

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row: bucket, start, end, group, won, expected, new, total, spread."""
        return [
            {
                "bucket": r.bucket,
                "start": r.start,
                "end": r.end,
                "group": r.group,
                "won": r.won,
                "expected": r.expected,
                "new": r.new,
                "total": r.total,
                "std": r.std,
                "p10": r.p10,
                "p50": r.p50,
                "p90": r.p90,
                "deals": r.deals,
            }
            for r in self.rows
        ]

    def by_deal(self) -> DealForecasts:
        """The per-deal rows (:attr:`deals`) as a result of their own: ``to_records()``,
        ``to_pandas()``, ``to_polars()``, a text or HTML table.

        Example:
            >>> from pipelinekit import demo
            >>> from pipelinekit.forecasts import WeightedForecast
            >>> h = demo.demo_history(opportunities=30, seed=3)
            >>> deals = WeightedForecast().compute(h, as_of="2024-09-01T00:00:00Z").by_deal()
            >>> sorted(deals.to_records()[0])
            ['amount', 'bucket', 'category', 'expected', 'group', 'opportunity_id', 'periods',
             'stage', 'win_probability']
        """
        return DealForecasts(
            method=self.method, as_of=self.as_of, currency=self.currency, deals=self.deals
        )

    def most_likely(self, n: int = 10) -> DealForecasts:
        """The ``n`` open deals most likely to close: highest win probability first, then
        the larger expected amount, then by id.

        Raises:
            ArgumentError: ``n`` is not a positive integer.

        Example:
            >>> from pipelinekit import demo
            >>> from pipelinekit.forecasts import WeightedForecast
            >>> h = demo.demo_history(opportunities=30, seed=3)
            >>> top = WeightedForecast().compute(h, as_of="2024-09-01T00:00:00Z").most_likely(3)
            >>> p = [d.win_probability for d in top.deals]
            >>> len(p), p == sorted(p, reverse=True)
            (3, True)
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ArgumentError("n", f"expected a positive number of deals, got {n!r}")
        ranked = sorted(
            self.deals, key=lambda d: (-d.win_probability, -d.expected, d.opportunity_id)
        )
        return self.by_deal().model_copy(update={"deals": tuple(ranked[:n])})

    def row(self, bucket: str, group: str | None = None) -> ForecastRow:
        """The row of ``bucket`` (and ``group``).

        Raises:
            ArgumentError: no such row.
        """
        for r in self.rows:
            if r.bucket == bucket and r.group == group:
                return r
        known = sorted({r.bucket for r in self.rows})
        raise ArgumentError("bucket", f"no row for {bucket!r} (group {group!r}); have {known}")

    def total(self, bucket: str) -> Decimal:
        """won + expected + new of ``bucket`` over all groups (0 if the bucket is absent)."""
        return total(r.total for r in self.rows if r.bucket == bucket)

    def merge(self, other: Forecast) -> Forecast:
        """Combine with a forecast of other opportunities (same method, as_of, currency).

        Sums add; variances add exactly (independent deals) and ``std`` is derived from
        the sum, so merging is associative; rows with only a ``std`` combine as the root
        of summed squares. Quantiles are not additive, so merged rows carry none. A
        forecast that carries no money at all (no currency seen, every amount zero, e.g. a
        partition without deals in the horizon) merges with a forecast in any currency.

        Raises:
            ArgumentError: the forecasts differ in method, ``as_of`` or currency.
        """
        currency = self.currency
        if self.currency != other.currency:
            if self.currency is None and not _has_money(self):
                currency = other.currency
            elif not (other.currency is None and not _has_money(other)):
                raise ArgumentError(
                    "other",
                    f"cannot merge forecasts with different currency: "
                    f"{self.currency!r} vs {other.currency!r}",
                )
        require_same("forecasts", self, other, ("method", "as_of"))
        merged: dict[tuple[str, str | None], ForecastRow] = {}
        for r in (*self.rows, *other.rows):
            key = (r.bucket, r.group)
            seen = merged.get(key)
            if seen is None:
                merged[key] = r.model_copy(update={"p10": None, "p50": None, "p90": None})
                continue
            std: Decimal | None = None
            var: Decimal | None = None
            if seen.variance is not None and r.variance is not None:
                var = EXACT.add(seen.variance, r.variance)
                std = std_of(var)
            elif seen.std is not None and r.std is not None:
                std = Decimal(math.sqrt(float(seen.std**2 + r.std**2)))
            merged[key] = seen.model_copy(
                update={
                    "won": EXACT.add(seen.won, r.won),
                    "expected": EXACT.add(seen.expected, r.expected),
                    "new": EXACT.add(seen.new, r.new),
                    "deals": seen.deals + r.deals,
                    "std": std,
                    "variance": var,
                }
            )
        rows = sorted(merged.values(), key=_row_order)
        deals = tuple(sorted((*self.deals, *other.deals), key=lambda d: d.opportunity_id))
        return self.model_copy(update={"rows": tuple(rows), "deals": deals, "currency": currency})


class DealForecasts(Result):
    """Per-deal rows of a forecast (:meth:`Forecast.by_deal`, :meth:`Forecast.most_likely`):
    each open deal's stage, amount, win probability, expected amount and bucket.

    Attributes:
        method: the forecaster's name.
        as_of: the instant the forecast was made at.
        currency: the reporting currency (``None`` when amounts carry none).
        deals: the deals, in the forecast's order or ranked.
    """

    method: str
    as_of: datetime
    currency: str | None = None
    deals: tuple[DealForecast, ...] = ()

    def _html_title(self) -> str:
        return f"{self.method} forecast by deal as of {self.as_of.isoformat(sep=' ')}"

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per deal: id, stage, amount, win probability, expected, bucket, group,
        category, and ``periods`` (the chance of a win in each period, a tuple)."""
        return [d.model_dump() for d in self.deals]

    def _shown(self) -> list[dict[str, Any]]:
        """The rows as tables show them: without the per-period tuple."""
        return [{k: v for k, v in r.items() if k != "periods"} for r in self.to_records()]

    def _repr_html_(self) -> str:
        return html_table(self._shown(), title=self._html_title())

    def __str__(self) -> str:
        return text_table(self._shown(), title=self._html_title())


def _has_money(forecast: Forecast) -> bool:
    return bool(forecast.deals) or any(r.won or r.expected or r.new for r in forecast.rows)


_LABELLED_RANK = {LATER: 1, OVERDUE: 2, NO_CLOSE_DATE: 3}


_CENT = Decimal("0.01")


def std_of(variance: Decimal) -> Decimal:
    """The square root of a variance, rounded to cents (exact input, deterministic output).

    Example:
        >>> std_of(Decimal("2500"))
        Decimal('50.00')
    """
    return variance.sqrt().quantize(_CENT) if variance > 0 else _ZERO.quantize(_CENT)


def _row_order(row: ForecastRow) -> tuple[int, date, str, str]:
    rank = 0 if row.end is not None else _LABELLED_RANK.get(row.bucket, 4)
    return (rank, row.start or date.min, row.bucket, row.group or "")
