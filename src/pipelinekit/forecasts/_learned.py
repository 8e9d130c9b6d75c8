"""Helpers shared by the forecasters that learn when deals close (private).

The historical and Markov forecasters do not trust the typed-in close date: they place a
deal's expected value at a learned time after ``as_of``. These helpers turn "so many days
after ``as_of``" into a bucket of the horizon, and
build the forecast rows (won + expected + new) from the per-deal allocations.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._placement import Placed
from pipelinekit.forecasts.result import LATER, NO_CLOSE_DATE, OVERDUE, ForecastRow
from pipelinekit.money import EXACT
from pipelinekit.periods import Period

_ZERO = Decimal(0)
_DAY_SECONDS = 86_400.0
Z95 = 1.959963984540054
"""The two-sided 95 % quantile of the standard normal distribution."""


@dataclass(frozen=True)
class Horizon:
    """The horizon's periods and how many days after ``as_of`` each one ends."""

    periods: tuple[Period, ...]
    ends: tuple[float, ...]

    @classmethod
    def of(cls, periods: tuple[Period, ...], as_of: datetime, tz: tzinfo) -> Horizon:
        """Measure every period's end (local midnight in ``tz``) in days after ``as_of``."""
        ends = tuple(days_between(as_of, p.end_instant(tz)) for p in periods)
        return cls(periods=periods, ends=ends)

    @property
    def labels(self) -> tuple[str, ...]:
        """The period labels, in order."""
        return tuple(p.label for p in self.periods)

    def bucket_after(self, days: float) -> str:
        """The label of the period holding the instant ``days`` after ``as_of`` (or later)."""
        k = bisect_right(self.ends, days)
        return self.periods[k].label if k < len(self.periods) else LATER


def days_between(start: datetime, end: datetime) -> float:
    """``end - start`` in days (a float)."""
    return (end - start).total_seconds() / _DAY_SECONDS


def wilson(won: int, deals: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of the share ``won / deals`` (``None`` for no deals).

    Example:
        >>> lo, hi = wilson(3, 4)
        >>> round(lo, 4), round(hi, 4)
        (0.3006, 0.9544)
    """
    if deals <= 0:
        return None
    n = float(deals)
    p = won / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def forecast_rows(
    horizon: Horizon,
    won: Iterable[Placed],
    allocations: Iterable[Mapping[str, Decimal]],
    new: Mapping[str, Decimal] | None = None,
) -> tuple[ForecastRow, ...]:
    """Ungrouped rows: every horizon period, then ``later``/``overdue``/``no close date``
    when some deal's value lands there. ``deals`` counts the deals with a share in a row.
    """
    won_by: dict[str, Decimal] = {}
    for w in won:
        won_by[w.bucket] = EXACT.add(won_by.get(w.bucket, _ZERO), w.amount)
    expected: dict[str, Decimal] = {}
    count: dict[str, int] = {}
    for allocation in allocations:
        for bucket, value in allocation.items():
            expected[bucket] = EXACT.add(expected.get(bucket, _ZERO), value)
            count[bucket] = count.get(bucket, 0) + 1
    new = new or {}
    rows = [
        ForecastRow(
            bucket=p.label,
            start=p.start,
            end=p.end,
            won=won_by.get(p.label, _ZERO),
            expected=expected.get(p.label, _ZERO),
            new=new.get(p.label, _ZERO),
            deals=count.get(p.label, 0),
        )
        for p in horizon.periods
    ]
    for bucket in (LATER, OVERDUE, NO_CLOSE_DATE):
        if bucket in count:
            rows.append(
                ForecastRow(
                    bucket=bucket,
                    start=horizon.periods[-1].end if bucket == LATER else None,
                    expected=expected[bucket],
                    deals=count[bucket],
                )
            )
    return tuple(rows)


def check_number(argument: str, value: object, *, low: float, what: str) -> float:
    """A finite real number ``>= low`` (not a bool), else ``ArgumentError(argument)``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | Decimal)
        or not math.isfinite(float(value))
        or float(value) < low
    ):
        raise ArgumentError(argument, f"expected {what}, got {value!r}")
    return float(value)


def check_count(argument: str, value: object, *, low: int) -> int:
    """A whole number ``>= low`` (not a bool), else ``ArgumentError(argument)``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ArgumentError(argument, f"expected a whole number >= {low}, got {value!r}")
    return value
