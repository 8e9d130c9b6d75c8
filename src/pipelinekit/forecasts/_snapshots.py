"""Past snapshots on the period grid and what became of their deals (private helpers).

The projection forecaster learns from the pipeline as it stood at past instants "at the same
point of the period grid" as ``as_of``: if ``as_of`` is 10 days into a month, the origins are
10 days into each earlier month. At each origin it takes the deals open then, puts each in a
cell (stage, age-in-stage band, optional segment) and records what became of them by
``as_of``: won inside each of the following periods, lost, or still open. Wins of deals that
were not open at the origin (created later, or reopened) are the origin's *new business*.

Only outcomes whose period has ended by ``as_of`` are recorded: everything here is known at
``as_of``, so the evidence carries no look-ahead.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from pipelinekit.history import Pipeline
from pipelinekit.money import ReportingCurrency
from pipelinekit.opportunity import Opportunity
from pipelinekit.periods import Period, PeriodKind

_ZERO = Decimal(0)
_DAY = timedelta(days=1)
Cell = tuple[str, int, str | None]
"""(stage, age band index, segment value or ``None``)."""


@dataclass(frozen=True)
class Origin:
    """A past instant on the grid: ``index`` periods before ``as_of``'s period."""

    index: int
    at: datetime
    period: Period


def grid_origins(
    kind: PeriodKind, as_of: datetime, tz: tzinfo, start: datetime | None, limit: int | None
) -> tuple[Origin, ...]:
    """The origins 1, 2, ... periods before ``as_of``, newest first, none before ``start``
    (none at all when ``start`` is ``None``: an empty history), at most ``limit``.

    Each origin sits at the same offset from its period's start as ``as_of`` from its own
    (clamped to the period's last microsecond when a period is shorter).

    Example:
        >>> from datetime import UTC, datetime
        >>> from pipelinekit.periods import months
        >>> when = datetime(2024, 3, 31, 12, tzinfo=UTC)
        >>> [o.at.isoformat() for o in grid_origins(months(), when, UTC,
        ...     datetime(2024, 1, 1, tzinfo=UTC), None)]
        ['2024-02-29T23:59:59.999999+00:00', '2024-01-31T12:00:00+00:00']
    """
    if start is None:
        return ()
    current = kind.period_of_instant(as_of, tz)
    offset = as_of - current.start_instant(tz)
    out: list[Origin] = []
    period = current
    index = 0
    while limit is None or index < limit:
        period = period.previous()
        index += 1
        begin = period.start_instant(tz)
        at = min(begin + offset, period.end_instant(tz) - timedelta(microseconds=1))
        if at < start:
            break
        out.append(Origin(index=index, at=at, period=period))
    return tuple(out)


def band_of(days: float, bands: Sequence[float]) -> int:
    """The index of the age band holding ``days`` (bands are the upper bounds, sorted).

    Example:
        >>> [band_of(d, (30.0, 90.0)) for d in (0, 29.9, 30, 400)]
        [0, 0, 1, 2]
    """
    return bisect_right(bands, days)


@dataclass
class CellSums:
    """Open deals of one cell at one origin, and what became of them per lag."""

    deals: int = 0
    amount: Decimal = _ZERO
    amount_sq: Decimal = _ZERO
    unpriced: int = 0
    won: dict[int, int] = field(default_factory=dict)
    won_amount: dict[int, Decimal] = field(default_factory=dict)
    lost: dict[int, int] = field(default_factory=dict)


@dataclass
class OriginSums:
    """Everything learned at one origin."""

    cells: dict[Cell, CellSums] = field(default_factory=dict)
    known: Decimal = _ZERO
    new: dict[int, int] = field(default_factory=dict)
    new_amount: dict[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CellOf:
    """Puts an open deal at an instant into its cell."""

    bands: tuple[float, ...]
    segment_by: str | None

    def __call__(self, opp: Opportunity, at: datetime) -> Cell:
        age = (at - opp.stage_entered_at) / _DAY
        segment = getattr(opp, self.segment_by) if self.segment_by is not None else None
        return (opp.stage, band_of(age, self.bands), segment)


def origin_sums(
    origin: Origin,
    snapshot: Pipeline,
    final: Pipeline,
    *,
    lags: int,
    cell_of: CellOf,
    to_reporting: ReportingCurrency,
    tz: tzinfo,
) -> OriginSums:
    """The sums of one origin: its open deals by cell, their outcomes, new business.

    ``snapshot`` is the pipeline at the origin, ``final`` the pipeline at ``as_of``.
    Outcomes are recorded for the ``lags`` periods from the origin's own that ended before
    ``as_of`` (``lags`` must not count one that did not).
    """
    sums = OriginSums()
    period_start = origin.period.start
    ends = _lag_ends(origin.period, lags)
    open_ids: set[str] = set()
    for oid, opp in snapshot.items():
        if not opp.is_open:
            continue
        open_ids.add(oid)
        cell = sums.cells.setdefault(cell_of(opp, origin.at), CellSums())
        cell.deals += 1
        if opp.amount is None:
            cell.unpriced += 1
        else:
            amount = to_reporting(opp.amount, opp.currency, origin.at.astimezone(tz).date())
            cell.amount += amount
            cell.amount_sq += amount * amount
        now = final.get(oid)
        if now is None or now.closed_at is None or now.is_open:
            continue
        lag = _lag(now.closed_at.astimezone(tz).date(), ends)
        if lag is None:
            continue
        if now.is_won:
            cell.won[lag] = cell.won.get(lag, 0) + 1
            if now.amount is not None:
                won_on = now.closed_at.astimezone(tz).date()
                value = to_reporting(now.amount, now.currency, won_on)
                cell.won_amount[lag] = cell.won_amount.get(lag, _ZERO) + value
        else:
            cell.lost[lag] = cell.lost.get(lag, 0) + 1
    for oid, now in final.items():
        if not now.is_won or now.closed_at is None or now.amount is None:
            continue
        won_on = now.closed_at.astimezone(tz).date()
        if now.closed_at <= origin.at:
            if won_on >= period_start:
                sums.known += to_reporting(now.amount, now.currency, won_on)
            continue
        if oid in open_ids:
            continue
        lag = _lag(won_on, ends)
        if lag is None:
            continue
        sums.new[lag] = sums.new.get(lag, 0) + 1
        value = to_reporting(now.amount, now.currency, won_on)
        sums.new_amount[lag] = sums.new_amount.get(lag, _ZERO) + value
    return sums


def _lag_ends(period: Period, lags: int) -> list[date]:
    ends: list[date] = []
    p = period
    for _ in range(lags):
        ends.append(p.end)
        p = p.next()
    return ends


def _lag(day: date, ends: list[date]) -> int | None:
    k = bisect_right(ends, day)
    return k if k < len(ends) else None
