"""The projection forecast: what past pipelines like today's went on to win.

At past instants at the same point of the period grid as ``as_of`` (the origins: one, two,
three... periods earlier), the forecaster takes the deals that were open, puts each in a
*cell* (its stage and how long it had been in it, optionally a segment) and measures what
became of them: won within the origin's period, within the next one..., lost, or still open.
Every deal open at an origin is an outcome, including the ones still open today: "still open
after two periods" is what happens to zombie deals, and leaving them out would make the rates
measure the fast deals only. Today's open deals get their cell's rates; wins of deals that
did not exist at the origins (created later) are the *new business*, projected per lag from
the same origins. Gong and Clari call this a pipeline projection.

Learned with care for thin evidence:

- **Recency.** Origins count with a weight halving every ``half_life`` periods, so the
  rates follow a business that changes.
- **Seasonality.** With ``season=3`` (monthly periods: the position in the quarter) origins
  at the same position as ``as_of`` form a seasonal cell, shrunk towards the plain one.
- **Shrinkage.** A cell's rate is ``(won + k · parent) / (deals + k)``: ``k =
  prior_strength`` pseudo-deals at the rate of the coarser cell (segment x stage x age ->
  stage x age -> stage -> all stages); amounts likewise, with pseudo-deals of the cell's mean
  amount. A cell with fewer than ``min_deals`` deals behind it is flagged ``insufficient``.
- **Honest bands.** P10/P50/P90 come from the method's own errors at past origins (each
  recomputed with only what was known then) combined with the randomness of the deals
  (see :mod:`pipelinekit.forecasts._intervals`).

Example:
    >>> from pipelinekit import demo
    >>> h = demo.demo_history(opportunities=300, seed=3)
    >>> f = ProjectionForecast(horizon=2).compute(h, as_of="2024-10-01T00:00:00Z")
    >>> [r.bucket for r in f.rows]
    ['2024-10', '2024-11']
    >>> row = f.row("2024-10")
    >>> row.p10 <= row.p50 <= row.p90, row.total == row.won + row.expected + row.new
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, localcontext
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._intervals import ratio_quantiles
from pipelinekit.forecasts._learned import check_count, check_number
from pipelinekit.forecasts._placement import Placement, cents
from pipelinekit.forecasts._snapshots import (
    Cell,
    CellOf,
    CellSums,
    Origin,
    OriginSums,
    grid_origins,
    origin_sums,
)
from pipelinekit.forecasts.result import DealForecast, Forecast, ForecastRow, std_of
from pipelinekit.history import History, Pipeline
from pipelinekit.money import FxRates, ReportingCurrency
from pipelinekit.periods import Period, PeriodKind
from pipelinekit.results import Result, require_same

__all__ = [
    "CellEvidence",
    "ConversionRate",
    "NewBusinessEstimate",
    "OriginEvidence",
    "PastError",
    "PeriodWins",
    "ProjectionEvidence",
    "ProjectionForecast",
    "ProjectionForecastResult",
    "ProjectionLearner",
]

Segment = Literal["owner", "product", "source", "account"]
Level = Literal["segment", "stage x age", "stage", "all stages", "none"]
_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_LEVELS: tuple[Level, ...] = ("all stages", "stage", "stage x age", "segment")
QUANTILES = (0.1, 0.5, 0.9)
"""The levels of ``p10``, ``p50`` and ``p90``."""
DEFAULT_AGE_BANDS = (30.0, 90.0, 180.0, 365.0)
"""Upper bounds (days in the stage) of the default age bands: <30, 30-90, 90-180, 180-365,
365+."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- evidence (mergeable sums)


class CellEvidence(BaseModel):
    """Deals open at one origin in one cell, and what became of them.

    ``won``, ``won_amount`` and ``lost`` hold one entry per lag whose period had ended by
    ``as_of`` (lag 0 is the origin's own period); deals counted in none of them were still
    open at the end of the last one.
    """

    model_config = _FROZEN

    origin: int
    stage: str
    band: int
    segment: str | None = None
    deals: int
    unpriced: int = 0
    amount: Decimal
    amount_sq: Decimal
    won: tuple[int, ...] = ()
    won_amount: tuple[Decimal, ...] = ()
    lost: tuple[int, ...] = ()


class OriginEvidence(BaseModel):
    """One origin: its instant, revenue already won in its period by then, new business."""

    model_config = _FROZEN

    origin: int
    at: datetime
    known: Decimal = _ZERO
    new: tuple[int, ...] = ()
    new_amount: tuple[Decimal, ...] = ()


class PeriodWins(BaseModel):
    """Deals won in the period ``index`` periods before ``as_of``'s (and their revenue).

    What an origin before a history's first event sees as new business: a partition that
    starts later than an origin of another still adds its wins to that origin on merging.
    """

    model_config = _FROZEN

    index: int
    won: int
    amount: Decimal


class ProjectionEvidence(Result):
    """What :class:`ProjectionForecast` learns, kept as sums: it merges over partitions.

    Counts and amounts of disjoint sets of opportunities add, so learning per partition and
    merging gives exactly the evidence of the whole (``docs/scaling.md``).

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=80, seed=5)
        >>> ids, when = h.opportunity_ids, "2024-09-01T00:00:00Z"
        >>> learn = ProjectionForecast().learn
        >>> a = learn(h.for_opportunities(ids[:30]), as_of=when)
        >>> b = learn(h.for_opportunities(ids[30:]), as_of=when)
        >>> a.merge(b) == learn(h, as_of=when)
        True
    """

    scheme: str
    as_of: datetime
    period: str
    tz: str
    horizon: int
    segment_by: Segment | None = None
    age_bands: tuple[float, ...]
    currency: str | None = None
    start: datetime | None = None
    origins: tuple[OriginEvidence, ...] = ()
    cells: tuple[CellEvidence, ...] = ()
    period_wins: tuple[PeriodWins, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        """One row per (origin, cell)."""
        return [c.model_dump() for c in self.cells]

    def merge(self, other: ProjectionEvidence) -> ProjectionEvidence:
        """The evidence of both sets of opportunities (disjoint; same settings and ``as_of``).

        Raises:
            ArgumentError: ``other`` is not projection evidence, or differs in scheme,
                ``as_of``, settings or currency.
        """
        if not isinstance(other, ProjectionEvidence):
            raise ArgumentError("other", f"expected ProjectionEvidence, got {type(other).__name__}")
        names = ("scheme", "as_of", "period", "tz", "horizon", "segment_by", "age_bands")
        require_same("evidence", self, other, names)
        currency = self.currency
        if self.currency != other.currency:
            if self.currency is None and not _has_money(self):
                currency = other.currency
            elif not (other.currency is None and not _has_money(other)):
                raise ArgumentError(
                    "other",
                    f"cannot merge evidence with different currency: {self.currency!r} vs "
                    f"{other.currency!r}",
                )
        mine = {o.origin: o for o in self.origins}
        theirs = {o.origin: o for o in other.origins}
        origins: dict[int, OriginEvidence] = {}
        for index in sorted(mine.keys() | theirs.keys()):
            a = mine.get(index) or _before_start(self, theirs[index])
            b = theirs.get(index) or _before_start(other, mine[index])
            origins[index] = _add_origins(a, b)
        wins: dict[int, PeriodWins] = {}
        for w in (*self.period_wins, *other.period_wins):
            seen_w = wins.get(w.index)
            wins[w.index] = (
                w
                if seen_w is None
                else PeriodWins(
                    index=w.index, won=w.won + seen_w.won, amount=w.amount + seen_w.amount
                )
            )
        starts = [t for t in (self.start, other.start) if t is not None]
        cells: dict[tuple[int, str, int, str | None], CellEvidence] = {}
        for c in (*self.cells, *other.cells):
            key = (c.origin, c.stage, c.band, c.segment)
            seen_cell = cells.get(key)
            cells[key] = c if seen_cell is None else _add_cells(seen_cell, c)
        return self.model_copy(
            update={
                "currency": currency,
                "start": min(starts) if starts else None,
                "period_wins": tuple(wins[k] for k in sorted(wins)),
                "origins": tuple(origins[k] for k in sorted(origins)),
                "cells": tuple(cells[k] for k in sorted(cells, key=_cell_order)),
            }
        )


def _before_start(e: ProjectionEvidence, like: OriginEvidence) -> OriginEvidence:
    """The row ``e`` would have at an origin before its first event: nothing open,
    nothing known, and every win of the lag's period is new business."""
    if e.start is not None and e.start <= like.at:
        raise ArgumentError(
            "other", f"evidence without origin {like.origin} although its history covers it"
        )
    wins = {w.index: w for w in e.period_wins}
    lags = range(len(like.new))
    found = [wins.get(like.origin - k) for k in lags]
    return like.model_copy(
        update={
            "known": _ZERO,
            "new": tuple(0 if w is None else w.won for w in found),
            "new_amount": tuple(_ZERO if w is None else w.amount for w in found),
        }
    )


def _has_money(e: ProjectionEvidence) -> bool:
    return any(c.amount for c in e.cells) or any(o.known or any(o.new_amount) for o in e.origins)


def _add(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
    return tuple(x + (shorter[i] if i < len(shorter) else 0) for i, x in enumerate(longer))


def _add_origins(a: OriginEvidence, b: OriginEvidence) -> OriginEvidence:
    return a.model_copy(
        update={
            "known": a.known + b.known,
            "new": _add(a.new, b.new),
            "new_amount": _add(a.new_amount, b.new_amount),
        }
    )


def _add_cells(a: CellEvidence, b: CellEvidence) -> CellEvidence:
    return a.model_copy(
        update={
            "deals": a.deals + b.deals,
            "unpriced": a.unpriced + b.unpriced,
            "amount": a.amount + b.amount,
            "amount_sq": a.amount_sq + b.amount_sq,
            "won": _add(a.won, b.won),
            "won_amount": _add(a.won_amount, b.won_amount),
            "lost": _add(a.lost, b.lost),
        }
    )


def _cell_order(key: tuple[int, str, int, str | None]) -> tuple[int, str, int, bool, str]:
    origin, stage, band, segment = key
    return (origin, stage, band, segment is not None, segment or "")


# ---------------------------------------------------------------- what the result shows


class ConversionRate(BaseModel):
    """The learned rate of one cell of today's open deals for one lag.

    Attributes:
        stage, band, segment: the cell (``band`` is the age-in-stage band's label).
        lag: periods after ``as_of``'s own (0: the current period); ``bucket`` its label.
        deals: deals behind the cell (at the finest level with evidence), over the origins
            used; ``won``: how many of them were won in the lag's period.
        rate: the chance a deal of the cell is won in the period (count-based, shrunk).
        amount_rate: the share of a deal's amount won in the period (amount-based, shrunk):
            what the forecast multiplies the amount by.
        level: the finest level with evidence (``"segment"``, ``"stage x age"``,
            ``"stage"``, ``"all stages"``; ``"none"``: nothing to learn from).
        insufficient: fewer than ``min_deals`` deals behind the cell: the rate leans on
            the coarser levels.
    """

    model_config = _FROZEN

    stage: str
    band: str
    segment: str | None = None
    lag: int
    bucket: str
    deals: int
    won: int
    rate: float
    amount_rate: float
    level: Level
    insufficient: bool


class NewBusinessEstimate(BaseModel):
    """Expected revenue in one period from deals not open at ``as_of``.

    Attributes:
        lag, bucket: the period (0: the current one).
        mean: the recency-weighted (and seasonal, shrunk) mean over the origins used.
        variance: the weighted variance of those origins' values (``None`` below two).
        origins: how many past origins it rests on; 0 means no evidence, and then ``mean``
            is 0 with ``insufficient`` set, never a silent zero.
    """

    model_config = _FROZEN

    lag: int
    bucket: str
    mean: Decimal
    variance: Decimal | None = None
    origins: int
    insufficient: bool


class PastError(BaseModel):
    """The method's own forecast at a past origin against what happened (same lag).

    ``forecast`` and ``actual`` exclude what was already won at the origin; ``ratio`` is
    ``actual / forecast`` (``None`` when the forecast was 0). ``weight`` is the origin's
    recency weight in the bands.
    """

    model_config = _FROZEN

    origin: datetime
    lag: int
    forecast: Decimal
    actual: Decimal
    ratio: float | None
    weight: float


class ProjectionForecastResult(Forecast):
    """A :class:`~pipelinekit.forecasts.result.Forecast` with what the projection learned.

    Attributes:
        rates: the learned rates of today's cells, per lag.
        new_business: per lag, the expected revenue from deals not open at ``as_of``.
        errors: the method's past errors per lag (what the bands are made of).
        insufficient: something was learned from too little (see ``notes``).
        notes: honest caveats: lags or cells without evidence, unpriced deals...
        unpriced: open deals without an amount (counted in no money figure).
    """

    rates: tuple[ConversionRate, ...] = ()
    new_business: tuple[NewBusinessEstimate, ...] = ()
    errors: tuple[PastError, ...] = ()
    insufficient: bool = False
    notes: tuple[str, ...] = ()
    unpriced: tuple[str, ...] = ()
    prior_weight: float = 1.0

    def rates_records(self) -> list[dict[str, Any]]:
        """The learned rates as rows of plain values."""
        return [r.model_dump() for r in self.rates]

    def errors_records(self) -> list[dict[str, Any]]:
        """The past errors as rows of plain values."""
        return [e.model_dump() for e in self.errors]

    def merge(self, other: Forecast) -> ProjectionForecastResult:
        """Add a forecast of other opportunities made with the **same learned evidence**.

        Forecast each partition with ``learned=`` the merged evidence of all of them; the
        forecasts then share their rates, new business and past errors, and merge: won and
        expected add, ``new`` (which belongs to the whole) is kept once, the deals'
        variances add and the bands are recomputed from the sum, so the merge equals the
        forecast of the whole.

        Raises:
            ArgumentError: ``other`` is not a projection forecast with equal learned
                tables, or differs in method, ``as_of`` or currency.
        """
        if not isinstance(other, ProjectionForecastResult) or (
            other.new_business,
            other.errors,
            other.prior_weight,
        ) != (self.new_business, self.errors, self.prior_weight):
            raise ArgumentError(
                "other",
                "projection forecasts only merge when they learned the same evidence; "
                "forecast each partition with learned= the merged ProjectionEvidence",
            )
        merged = super().merge(other)
        new = {(r.bucket, r.group): r.new for r in (*other.rows, *self.rows)}
        rows = tuple(
            _with_bands(
                r.model_copy(update={"new": new[r.bucket, r.group]}),
                self.new_business,
                self.errors,
                self.prior_weight,
            )
            for r in merged.rows
        )
        rates = {(r.stage, r.band, r.segment, r.lag): r for r in (*self.rates, *other.rates)}
        return self.model_copy(
            update={
                "rows": rows,
                "deals": merged.deals,
                "currency": merged.currency,
                "rates": tuple(rates[k] for k in sorted(rates, key=_rate_order)),
                "unpriced": tuple(sorted((*self.unpriced, *other.unpriced))),
                "insufficient": self.insufficient or other.insufficient,
                "notes": tuple(dict.fromkeys((*self.notes, *other.notes))),
            }
        )


def _rate_order(key: tuple[str, str, str | None, int]) -> tuple[str, str, bool, str, int]:
    stage, band, segment, lag = key
    return (stage, band, segment is not None, segment or "", lag)


# ---------------------------------------------------------------- learning


@dataclass
class _Acc:
    """Recency-weighted sums of one level key (and of its seasonal origins)."""

    n: float = 0.0  # deals
    c: float = 0.0  # won deals
    np: float = 0.0  # priced deals
    a: float = 0.0  # amount open
    w: float = 0.0  # amount won
    raw_n: int = 0
    raw_c: int = 0
    sn: float = 0.0
    sc: float = 0.0
    snp: float = 0.0
    sa: float = 0.0
    sw: float = 0.0

    def add(self, cell: CellEvidence, lag: int, weight: float, seasonal: bool) -> None:
        won = cell.won[lag]
        priced = cell.deals - cell.unpriced
        amount = float(cell.amount)
        won_amount = float(cell.won_amount[lag])
        self.n += weight * cell.deals
        self.c += weight * won
        self.np += weight * priced
        self.a += weight * amount
        self.w += weight * won_amount
        self.raw_n += cell.deals
        self.raw_c += won
        if seasonal:
            self.sn += weight * cell.deals
            self.sc += weight * won
            self.snp += weight * priced
            self.sa += weight * amount
            self.sw += weight * won_amount


@dataclass(frozen=True)
class _Rate:
    count: float
    amount: float
    level: Level
    deals: int
    won: int


_NO_RATE = _Rate(0.0, 0.0, "none", 0, 0)


@dataclass
class _Fit:
    """The rates of one lag at one origin (0: ``as_of``)."""

    levels: dict[tuple[Any, ...], _Acc] = field(default_factory=dict)
    cache: dict[Cell, _Rate] = field(default_factory=dict)
    origins: int = 0


def _keys(cell: Cell, segmented: bool) -> tuple[tuple[Any, ...], ...]:
    stage, band, segment = cell
    keys: tuple[tuple[Any, ...], ...] = (("all",), ("stage", stage), ("band", stage, band))
    if segmented:
        keys += (("segment", segment, stage, band),)
    return keys


@dataclass(frozen=True)
class _Settings:
    half_life: float | None
    season: int | None
    prior_strength: float
    season_strength: float
    lookback: int | None
    segmented: bool


class _Tables:
    """The evidence indexed for fitting: cells and origins by origin index."""

    def __init__(self, evidence: ProjectionEvidence) -> None:
        self.origins: dict[int, OriginEvidence] = {o.origin: o for o in evidence.origins}
        self.cells: dict[int, list[CellEvidence]] = {}
        for c in evidence.cells:
            self.cells.setdefault(c.origin, []).append(c)

    def usable(self, at: int, lag: int, s: _Settings) -> list[tuple[int, float, bool]]:
        """(origin, weight, seasonal) of the origins a fit at ``at`` for ``lag`` may use."""
        out = []
        first = at + lag + 1
        for j in sorted(self.origins):
            if j < first or (s.lookback is not None and j - at > s.lookback):
                continue
            distance = j - first
            weight = 1.0 if s.half_life is None else 0.5 ** (distance / s.half_life)
            seasonal = s.season is not None and (j - at) % s.season == 0
            out.append((j, weight, seasonal))
        return out

    def fit(self, at: int, lag: int, s: _Settings) -> _Fit:
        fit = _Fit()
        usable = self.usable(at, lag, s)
        fit.origins = len(usable)
        for j, weight, seasonal in usable:
            for cell in self.cells.get(j, ()):
                key_cell = (cell.stage, cell.band, cell.segment)
                for key in _keys(key_cell, s.segmented):
                    fit.levels.setdefault(key, _Acc()).add(cell, lag, weight, seasonal)
        return fit

    def new_business(self, at: int, lag: int, s: _Settings) -> tuple[float, float | None, int]:
        """(mean, variance or None, origins) of new business for ``lag`` at ``at``."""
        usable = self.usable(at, lag, s)
        if not usable:
            return 0.0, None, 0
        values = [
            (float(self.origins[j].new_amount[lag]), w, seasonal) for j, w, seasonal in usable
        ]
        total_w = math.fsum(w for _, w, _ in values)
        mean = math.fsum(v * w for v, w, _ in values) / total_w
        variance: float | None = None
        if len(values) >= 2:
            variance = math.fsum(w * (v - mean) ** 2 for v, w, _ in values) / total_w
            variance *= len(values) / (len(values) - 1)
        season = [(v, w) for v, w, seasonal in values if seasonal]
        if season:
            sw = math.fsum(w for _, w in season)
            sv = math.fsum(v * w for v, w in season)
            k = s.season_strength
            mean = (sv + k * mean) / (sw + k)
        return mean, variance, len(usable)


def _rate(fit: _Fit, cell: Cell, s: _Settings, min_deals: int) -> tuple[_Rate, bool]:
    """The shrunk rate of ``cell`` and whether its evidence is insufficient."""
    found = fit.cache.get(cell)
    if found is not None:
        return found, found.deals < min_deals
    count: float | None = None
    amount: float | None = None
    level: Level = "none"
    deals = won = 0
    finest: _Acc | None = None
    for key, name in zip(_keys(cell, s.segmented), _LEVELS, strict=False):
        acc = fit.levels.get(key)
        if acc is None or acc.raw_n == 0:
            continue
        finest = acc
        level, deals, won = name, acc.raw_n, acc.raw_c
        k = s.prior_strength
        count = acc.c / acc.n if count is None else (acc.c + k * count) / (acc.n + k)
        if acc.np > 0:
            mean = acc.a / acc.np
            if amount is None:
                amount = acc.w / acc.a if acc.a > 0 else 0.0
            elif acc.a > 0:
                amount = (acc.w + k * mean * amount) / (acc.a + k * mean)
    if finest is not None and count is not None and finest.sn > 0:
        k = s.season_strength
        count = (finest.sc + k * count) / (finest.sn + k)
        if finest.snp > 0 and finest.sa > 0 and amount is not None:
            mean = finest.sa / finest.snp
            amount = (finest.sw + k * mean * amount) / (finest.sa + k * mean)
    if count is None:
        fit.cache[cell] = _NO_RATE
        return _NO_RATE, True
    rate = _Rate(count, amount if amount is not None else count, level, deals, won)
    fit.cache[cell] = rate
    return rate, deals < min_deals


# ---------------------------------------------------------------- the forecaster


class ProjectionForecast:
    """Forecast what today's pipeline will win, from what past pipelines went on to win.

    The projection of a period is ``won`` (already won in it) + ``expected`` (each open
    deal's amount times its cell's learned rate for the period) + ``new`` (deals not open
    yet, from past origins). See the module docstring for the method and
    ``docs/forecasting/projection.md`` for how it was measured.

    Args:
        period, horizon: the period kind and how many periods (from the one of ``as_of``).
        tz: the zone whose calendar decides periods.
        segment_by: ``None``, ``"owner"``, ``"product"``, ``"source"`` or ``"account"``:
            learn per segment too, shrunk towards the stage x age cell.
        age_bands: upper bounds, in days in the stage, of the age bands (sorted, > 0).
        half_life: the recency weighting of the origins, in periods (``None``: all equal).
        season: the length of the seasonal cycle in periods (``3`` for months in a
            quarter, ``4`` for quarters in a year), ``None`` for no seasonality, or
            ``"auto"``: the natural cycle of the period kind (months: 3, quarters: 4) is
            used only when it did better at past origins (see the result's notes).
        prior_strength: pseudo-deals of shrinkage towards the coarser cell (``>= 0``).
        season_strength: pseudo-deals (and, for new business, pseudo-origins) of the
            seasonal cell's shrinkage towards the plain one.
        min_deals: fewer deals behind a cell flag it as insufficient history.
        lookback: learn only from the ``lookback`` most recent origins (``None``: all).
        new_business: include the ``new`` column.
        band_origins: how many past origins the bands' errors come from.
        prior_weight: how many past errors the deals' own randomness is worth in the bands.
        currency, rates: the reporting currency and :class:`~pipelinekit.money.FxRates`.
        learned: :class:`ProjectionEvidence` to forecast with instead of learning from the
            history given to :meth:`compute` (partitioned computation).

    Attributes (after :meth:`compute`):
        rates_: the learned rates (same as the result's ``rates``).

    Example:
        >>> ProjectionForecast(horizon=0)
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'horizon': expected a whole number ...
    """

    rates_: tuple[ConversionRate, ...]

    def __init__(
        self,
        *,
        period: str | PeriodKind = "month",
        horizon: int = 3,
        tz: tzinfo = UTC,
        segment_by: Segment | None = None,
        age_bands: Sequence[float] = DEFAULT_AGE_BANDS,
        half_life: float | None = 6.0,
        season: int | Literal["auto"] | None = "auto",
        prior_strength: float = 2.0,
        season_strength: float = 20.0,
        min_deals: int = 30,
        lookback: int | None = None,
        new_business: bool = True,
        band_origins: int = 12,
        prior_weight: float = 1.0,
        currency: str | None = None,
        rates: FxRates | None = None,
        learned: ProjectionEvidence | None = None,
    ) -> None:
        self._placement = Placement.validate(
            period=period,
            horizon=horizon,
            group_by=None,
            currency=currency,
            rates=rates,
            tz=tz,
            categories=None,
        )
        if segment_by is not None and segment_by not in get_args(Segment):
            raise ArgumentError(
                "segment_by",
                f"expected None or one of {list(get_args(Segment))}, got {segment_by!r}",
            )
        bands = _check_bands(age_bands)
        if half_life is not None:
            check_number("half_life", half_life, low=1e-9, what="None or a number of periods > 0")
        if season is not None and season != "auto":
            check_count("season", season, low=2)
        check_number("prior_strength", prior_strength, low=0.0, what="a finite number >= 0")
        check_number("season_strength", season_strength, low=0.0, what="a finite number >= 0")
        check_count("min_deals", min_deals, low=0)
        if lookback is not None:
            check_count("lookback", lookback, low=1)
        if not isinstance(new_business, bool):
            raise ArgumentError("new_business", f"expected True or False, got {new_business!r}")
        check_count("band_origins", band_origins, low=0)
        check_number("prior_weight", prior_weight, low=0.0, what="a finite number >= 0")
        if learned is not None and not isinstance(learned, ProjectionEvidence):
            raise ArgumentError(
                "learned", f"expected ProjectionEvidence or None, got {type(learned).__name__}"
            )
        self.period = period
        self.horizon = horizon
        self.tz = tz
        self.segment_by = segment_by
        self.age_bands = bands
        self.half_life = None if half_life is None else float(half_life)
        self.season = season
        self.prior_strength = float(prior_strength)
        self.season_strength = float(season_strength)
        self.min_deals = min_deals
        self.lookback = lookback
        self.new_business = new_business
        self.band_origins = band_origins
        self.prior_weight = float(prior_weight)
        self.currency = currency
        self.rates = rates
        self.learned = learned

    def __repr__(self) -> str:
        learned = "" if self.learned is None else ", learned=<ProjectionEvidence>"
        return (
            f"ProjectionForecast(period={self._placement.kind.spec!r}, horizon={self.horizon!r}, "
            f"segment_by={self.segment_by!r}, season={self.season!r}{learned})"
        )

    @property
    def _settings(self) -> _Settings:
        return _Settings(
            half_life=self.half_life,
            season=None if self.season == "auto" else self.season,
            prior_strength=self.prior_strength,
            season_strength=self.season_strength,
            lookback=self.lookback,
            segmented=self.segment_by is not None,
        )

    def _origin_limit(self) -> int | None:
        if self.lookback is None:
            return None
        return self.lookback + self.horizon + self.band_origins

    def learn(self, history: History, *, as_of: Instant) -> ProjectionEvidence:
        """What this forecaster learns from ``history.until(as_of)``, as mergeable sums."""
        when = instant(as_of, argument="as_of")
        with bulk_work():
            seen = history.until(when)
            return self._evidence(seen, seen.as_of(when), when)

    def learner(self) -> ProjectionLearner:
        """A calculator computing :meth:`learn`, to learn over partitions."""
        return ProjectionLearner(self)

    def _evidence(self, seen: History, final: Pipeline, when: datetime) -> ProjectionEvidence:
        p = self._placement
        to_rep = ReportingCurrency(p.currency, p.rates)
        cell_of = CellOf(self.age_bands, self.segment_by)
        origins: list[OriginEvidence] = []
        cells: list[CellEvidence] = []
        for origin in grid_origins(p.kind, when, p.tz, seen.start, self._origin_limit()):
            lags = min(self.horizon, origin.index)
            sums = origin_sums(
                origin,
                seen.as_of(origin.at),
                final,
                lags=lags,
                cell_of=cell_of,
                to_reporting=to_rep,
                tz=p.tz,
            )
            origins.append(_origin_row(origin, sums, lags))
            cells.extend(_cell_rows(origin.index, sums, lags))
        return ProjectionEvidence(
            start=seen.start,
            period_wins=_period_wins(final, p, when, to_rep),
            scheme=seen.scheme.name,
            as_of=when,
            period=p.kind.spec,
            tz=str(p.tz),
            horizon=self.horizon,
            segment_by=self.segment_by,
            age_bands=self.age_bands,
            currency=to_rep.currency,
            origins=tuple(sorted(origins, key=lambda o: o.origin)),
            cells=tuple(sorted(cells, key=lambda c: _cell_order(_cell_key(c)))),
        )

    def _check_learned(
        self, evidence: ProjectionEvidence, scheme: str, when: datetime
    ) -> ProjectionEvidence:
        p = self._placement
        expected = {
            "scheme": scheme,
            "as_of": when,
            "period": p.kind.spec,
            "tz": str(p.tz),
            "horizon": self.horizon,
            "segment_by": self.segment_by,
            "age_bands": self.age_bands,
        }
        for name, value in expected.items():
            if getattr(evidence, name) != value:
                raise ArgumentError(
                    "learned",
                    f"the evidence was learned with {name}={getattr(evidence, name)!r}, "
                    f"this forecast needs {value!r}",
                )
        return evidence

    def compute(self, history: History, *, as_of: Instant) -> ProjectionForecastResult:
        """Learn from ``history.until(as_of)`` (or use ``learned``) and forecast the horizon.

        Raises:
            ArgumentError: ``learned`` evidence made with other settings or ``as_of``.
            CurrencyError: amounts in several currencies without ``currency``/``rates``.
        """
        when = instant(as_of, argument="as_of")
        with bulk_work():
            seen = history.until(when)
            final = seen.as_of(when)
            if self.learned is None:
                evidence = self._evidence(seen, final, when)
            else:
                evidence = self._check_learned(self.learned, seen.scheme.name, when)
            return self._forecast(evidence, final, when)

    def _forecast(
        self, evidence: ProjectionEvidence, final: Pipeline, when: datetime
    ) -> ProjectionForecastResult:
        p = self._placement
        periods = p.periods(when)
        tables = _Tables(evidence)
        to_rep = ReportingCurrency(p.currency, p.rates)
        if evidence.currency is not None:
            to_rep(_ZERO, evidence.currency)  # the evidence's currency comes first
        cell_of = CellOf(self.age_bands, self.segment_by)
        today = when.astimezone(p.tz).date()
        notes: list[str] = []
        s, raw, choice = self._choose(tables)
        if choice is not None:
            notes.append(choice)
        fits = [tables.fit(0, k, s) for k in range(self.horizon)]
        for k, fit in enumerate(fits):
            if fit.origins == 0:
                notes.append(
                    f"no past origin shows what happened {k} period(s) after it: "
                    f"{periods[k].label} gets no expected revenue from open deals "
                    "(insufficient history)"
                )
        rates: dict[tuple[str, str, str | None, int], ConversionRate] = {}
        deals: list[DealForecast] = []
        expected = [_ZERO] * self.horizon
        variance = [_ZERO] * self.horizon
        counts = [0] * self.horizon
        unpriced: list[str] = []
        thin = False
        for oid in sorted(final):
            opp = final[oid]
            if not opp.is_open:
                continue
            cell = cell_of(opp, when)
            amount = None if opp.amount is None else to_rep(opp.amount, opp.currency, today)
            probs: list[float] = []
            values: list[Decimal] = []
            for k, fit in enumerate(fits):
                rate, insufficient = _rate(fit, cell, s, self.min_deals)
                thin = thin or insufficient
                key = (cell[0], _band_label(cell[1], self.age_bands), cell[2], k)
                if key not in rates:
                    rates[key] = ConversionRate(
                        stage=cell[0],
                        band=key[1],
                        segment=cell[2],
                        lag=k,
                        bucket=periods[k].label,
                        deals=rate.deals,
                        won=rate.won,
                        rate=rate.count,
                        amount_rate=rate.amount,
                        level=rate.level,
                        insufficient=insufficient,
                    )
                probs.append(rate.count)
                value = _ZERO if amount is None else cents(amount * _dec(rate.amount))
                values.append(value)
                if amount is not None:
                    expected[k] += value
                    q = _dec(min(max(rate.count, 0.0), 1.0))
                    variance[k] += _bernoulli_variance(amount, q)
                    if value:
                        counts[k] += 1
            if amount is None:
                unpriced.append(oid)
                continue
            total_p = min(math.fsum(probs), 1.0)
            main = max(range(self.horizon), key=lambda k: (probs[k], -k))
            deals.append(
                DealForecast(
                    opportunity_id=oid,
                    stage=opp.stage,
                    amount=amount,
                    win_probability=total_p,
                    expected=sum(values, _ZERO),
                    bucket=periods[main].label,
                    periods=tuple(min(max(q, 0.0), 1.0) for q in probs),
                )
            )
        if thin:
            notes.append(
                f"some cells rest on fewer than {self.min_deals} deals: their rates lean on "
                "coarser cells (see rates, insufficient=True)"
            )
        if unpriced:
            notes.append(f"{len(unpriced)} open deal(s) without an amount count in no figure")
        new_rows = self._new_business(tables, periods, s, notes)
        errors = self._errors(tables, raw, self.horizon, s)
        won = _won_in(final, periods[0], p, to_rep)
        rows = []
        for k, period in enumerate(periods):
            row = ForecastRow(
                bucket=period.label,
                start=period.start,
                end=period.end,
                won=won if k == 0 else _ZERO,
                expected=expected[k],
                new=new_rows[k].mean,
                variance=variance[k],
                deals=counts[k],
            )
            rows.append(_with_bands(row, tuple(new_rows), tuple(errors), self.prior_weight))
        table = tuple(rates[k] for k in sorted(rates, key=_rate_order))
        self.rates_ = table
        return ProjectionForecastResult(
            method="projection",
            as_of=when,
            currency=to_rep.currency,
            rows=tuple(rows),
            deals=tuple(deals),
            rates=table,
            new_business=tuple(new_rows),
            errors=tuple(errors),
            insufficient=bool(notes),
            notes=tuple(notes),
            unpriced=tuple(unpriced),
            prior_weight=self.prior_weight,
        )

    def _choose(
        self, tables: _Tables
    ) -> tuple[_Settings, dict[tuple[int, int], tuple[float, float]], str | None]:
        """The settings to forecast with, their past errors, and a note on the choice.

        With ``season="auto"`` the plain and the seasonal projection are both run at the
        past origins (each with only what was known then) and the seasonal one is kept only
        if its recency-weighted absolute error there is lower.
        """
        base = self._settings
        cycle = _CYCLES.get(self._placement.kind.unit) if self.season == "auto" else None
        if self.season != "auto" or cycle is None:
            return base, self._raw_errors(tables, self.horizon, base), None
        plain = replace(base, season=None)
        seasonal = replace(base, season=cycle)
        raw_plain = self._raw_errors(tables, self.horizon, plain)
        raw_seasonal = self._raw_errors(tables, self.horizon, seasonal)
        common = sorted(set(raw_plain) & set(raw_seasonal))
        if not common:
            return plain, raw_plain, None
        score_plain = _weighted_error(raw_plain, common, base.half_life)
        score_seasonal = _weighted_error(raw_seasonal, common, base.half_life)
        if score_seasonal < score_plain:
            chosen, raw, name = seasonal, raw_seasonal, f"seasonal (cycle of {cycle} periods)"
        else:
            chosen, raw, name = plain, raw_plain, "plain"
        note = (
            f"season='auto' chose the {name} projection: its past errors were "
            f"{min(score_plain, score_seasonal):,.0f} against "
            f"{max(score_plain, score_seasonal):,.0f} (recency-weighted mean absolute error "
            f"over {len(common)} past forecasts)"
        )
        return chosen, raw, note

    def _new_business(
        self,
        tables: _Tables,
        periods: Sequence[Period],
        s: _Settings,
        notes: list[str],
    ) -> list[NewBusinessEstimate]:
        out = []
        for k, period in enumerate(periods):
            if not self.new_business:
                out.append(
                    NewBusinessEstimate(
                        lag=k, bucket=period.label, mean=_ZERO, origins=0, insufficient=False
                    )
                )
                continue
            mean, var, n = tables.new_business(0, k, s)
            if n == 0:
                notes.append(
                    f"no past origin shows the new business of the period {k} after it: "
                    f"{period.label} expects none (insufficient history)"
                )
            out.append(
                NewBusinessEstimate(
                    lag=k,
                    bucket=period.label,
                    mean=cents(_dec(mean)),
                    variance=None if var is None else cents(_dec(var)),
                    origins=n,
                    insufficient=n == 0,
                )
            )
        return out

    def _raw_errors(
        self, tables: _Tables, horizon: int, s: _Settings
    ) -> dict[tuple[int, int], tuple[float, float]]:
        """(forecast, actual) of the method at past origins, per (origin, lag).

        Both exclude what was already won at the origin. Only origins whose lag's period
        ended by ``as_of`` and whose fit had evidence are included.
        """
        out: dict[tuple[int, int], tuple[float, float]] = {}
        reach = 2 * self.band_origins
        for k in range(horizon):
            for o in sorted(tables.origins):
                if o < k + 1 or o > reach + k:
                    continue
                fit = tables.fit(o, k, s)
                if fit.origins == 0:
                    continue
                forecast = 0.0
                actual = 0.0
                for cell in tables.cells.get(o, ()):
                    rate, _ = _rate(fit, (cell.stage, cell.band, cell.segment), s, self.min_deals)
                    forecast += float(cell.amount) * rate.amount
                    actual += float(cell.won_amount[k])
                if self.new_business:
                    forecast += tables.new_business(o, k, s)[0]
                actual += float(tables.origins[o].new_amount[k])
                out[o, k] = (forecast, actual)
        return out

    def _errors(
        self,
        tables: _Tables,
        raw: dict[tuple[int, int], tuple[float, float]],
        horizon: int,
        s: _Settings,
    ) -> list[PastError]:
        """The method's forecast at recent past origins against the actual."""
        out: list[PastError] = []
        for k in range(horizon):
            for o in range(k + 1, k + 1 + self.band_origins):
                found = raw.get((o, k))
                if found is None:
                    continue
                forecast = found[0]
                actual = found[1]
                distance = o - k - 1
                weight = 1.0 if s.half_life is None else 0.5 ** (distance / s.half_life)
                out.append(
                    PastError(
                        origin=tables.origins[o].at,
                        lag=k,
                        forecast=cents(_dec(forecast)),
                        actual=cents(_dec(actual)),
                        ratio=actual / forecast if forecast > 0 else None,
                        weight=weight,
                    )
                )
        return out


class ProjectionLearner:
    """A calculator whose result is the :class:`ProjectionEvidence` of a forecaster.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=40, seed=1)
        >>> e = ProjectionForecast().learner().compute(h, as_of="2024-06-30T00:00:00Z")
        >>> len(e.origins) > 0
        True
    """

    def __init__(self, forecaster: ProjectionForecast) -> None:
        if not isinstance(forecaster, ProjectionForecast):
            raise ArgumentError(
                "forecaster", f"expected a ProjectionForecast, got {type(forecaster).__name__}"
            )
        self.forecaster = forecaster

    def __repr__(self) -> str:
        return f"ProjectionLearner({self.forecaster!r})"

    def compute(self, history: History, *, as_of: Instant) -> ProjectionEvidence:
        """The forecaster's evidence from ``history.until(as_of)``."""
        return self.forecaster.learn(history, as_of=as_of)


# ---------------------------------------------------------------- small helpers


_CYCLES = {"month": 3, "quarter": 4}
"""The seasonal cycle ``season="auto"`` tries: months in a quarter, quarters in a year."""


def _weighted_error(
    raw: dict[tuple[int, int], tuple[float, float]],
    keys: Sequence[tuple[int, int]],
    half_life: float | None,
) -> float:
    """Recency-weighted mean absolute error of past forecasts (origin, lag) -> (f, a)."""
    total = weights = 0.0
    for o, k in keys:
        forecast, actual = raw[o, k]
        weight = 1.0 if half_life is None else 0.5 ** ((o - k - 1) / half_life)
        total += weight * abs(forecast - actual)
        weights += weight
    return total / weights


def _check_bands(bands: object) -> tuple[float, ...]:
    if isinstance(bands, str) or not isinstance(bands, Iterable):
        raise ArgumentError("age_bands", f"expected increasing day counts, got {bands!r}")
    out: list[float] = []
    for b in bands:
        value = check_number("age_bands", b, low=1e-9, what="day counts > 0")
        if out and value <= out[-1]:
            raise ArgumentError("age_bands", f"expected increasing day counts, got {bands!r}")
        out.append(value)
    return tuple(out)


def _band_label(band: int, bands: Sequence[float]) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    if not bands:
        return "any age"
    if band == 0:
        return f"<{fmt(bands[0])}d"
    if band >= len(bands):
        return f"{fmt(bands[-1])}d+"
    return f"{fmt(bands[band - 1])}-{fmt(bands[band])}d"


def _bernoulli_variance(amount: Decimal, p: Decimal) -> Decimal:
    """``amount² p (1 − p)`` in cents, computed exactly whatever the digits (so that
    variances add up the same in any order of partitions)."""
    with localcontext(prec=120):
        return (amount * amount * p * (1 - p)).quantize(_CENT)


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


def _cell_key(c: CellEvidence) -> tuple[int, str, int, str | None]:
    return (c.origin, c.stage, c.band, c.segment)


def _origin_row(origin: Origin, sums: OriginSums, lags: int) -> OriginEvidence:
    return OriginEvidence(
        origin=origin.index,
        at=origin.at,
        known=sums.known,
        new=tuple(sums.new.get(k, 0) for k in range(lags)),
        new_amount=tuple(sums.new_amount.get(k, _ZERO) for k in range(lags)),
    )


def _cell_rows(index: int, sums: OriginSums, lags: int) -> list[CellEvidence]:
    return [_cell_row(index, cell, c, lags) for cell, c in sums.cells.items()]


def _cell_row(index: int, cell: Cell, c: CellSums, lags: int) -> CellEvidence:
    stage, band, segment = cell
    return CellEvidence(
        origin=index,
        stage=stage,
        band=band,
        segment=segment,
        deals=c.deals,
        unpriced=c.unpriced,
        amount=c.amount,
        amount_sq=c.amount_sq,
        won=tuple(c.won.get(k, 0) for k in range(lags)),
        won_amount=tuple(c.won_amount.get(k, _ZERO) for k in range(lags)),
        lost=tuple(c.lost.get(k, 0) for k in range(lags)),
    )


def _period_wins(
    final: Pipeline, p: Placement, when: datetime, to_rep: ReportingCurrency
) -> tuple[PeriodWins, ...]:
    """Wins per past period (1: the one before ``as_of``'s), for :func:`_before_start`."""
    current = p.kind.period_of_instant(when, p.tz)
    found: dict[object, tuple[int, Decimal]] = {}
    for oid in sorted(final):
        opp = final[oid]
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(p.tz).date()
        if won_on >= current.start:
            continue
        start = p.kind.period_of(won_on).start
        n, amount = found.get(start, (0, _ZERO))
        found[start] = (n + 1, amount + to_rep(opp.amount, opp.currency, won_on))
    out = []
    period = current
    index = 0
    remaining = len(found)
    while remaining:
        period = period.previous()
        index += 1
        if period.start in found:
            n, amount = found[period.start]
            out.append(PeriodWins(index=index, won=n, amount=amount))
            remaining -= 1
    return tuple(out)


def _won_in(final: Pipeline, period: Period, p: Placement, to_rep: ReportingCurrency) -> Decimal:
    total = _ZERO
    for oid in sorted(final):
        opp = final[oid]
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(p.tz).date()
        if period.start <= won_on < period.end:
            total += to_rep(opp.amount, opp.currency, won_on)
    return total


def _with_bands(
    row: ForecastRow,
    new_business: Sequence[NewBusinessEstimate],
    errors: Sequence[PastError],
    prior_weight: float,
) -> ForecastRow:
    """The row with ``std`` and P10/P50/P90 from its variance and the past errors."""
    lag = next((n.lag for n in new_business if n.bucket == row.bucket), None)
    if lag is None:
        return row
    nb = new_business[lag]
    deal_var = row.variance if row.variance is not None else _ZERO
    var = deal_var + (nb.variance if nb.variance is not None else _ZERO)
    mean = float(row.expected + row.new)
    spread = math.sqrt(float(var)) / mean if mean > 0 else 0.0
    ratios = [(e.ratio, e.weight) for e in errors if e.lag == lag and e.ratio is not None]
    qs = ratio_quantiles(ratios, spread=spread, prior_weight=prior_weight, probabilities=QUANTILES)
    p10, p50, p90 = (row.won + cents(_dec(mean * q)) for q in qs)
    return row.model_copy(
        update={"std": std_of(var), "p10": p10, "p50": p50, "p90": p90, "variance": deal_var}
    )
