"""The historical forecast: win rates and times to win learned from every deal's history.

Instead of trusting the stage weights and the typed-in close dates, the forecaster learns,
for every open stage ``s``, what became of the deals that were in it, **open ones
included**:

- **the cumulative incidence of winning** from entering ``s``: for each deal that was in
  ``s``, the days from its last entry to its close (won or lost), or to ``as_of`` while still
  open. A deal still open is *censored*: it stays in the risk set for as long as it was
  observed, neither dropped nor counted as lost (the Aalen-Johansen estimator, with winning
  and losing as competing outcomes, :mod:`pipelinekit.forecasts._survival`). A rate learned
  from closed deals only measures the fast deals and gives every deal left open for a year
  (a zombie) a healthy deal's chance; the incidence does not. The stage's ``rate`` is the
  chance a deal entering ``s`` is won, smoothed towards the stage weight by ``stage_prior``
  pseudo-deals; ``never_closed`` estimates the zombies' share;
- **each open deal's chance given its age**: a deal that has been in ``s`` for ``a`` days is
  compared with the deals whose stay in ``s`` lasted longer than ``a`` (the ones still there
  included): the cumulative incidence of winning among them gives its chance, eventually and
  within each period, and its expected value is spread over the horizon by it (what is left
  after the horizon goes to ``later``). Conditioning on *still in the stage*, not *still
  open*, matters: long after entering a stage the deals still open are mostly ones that moved
  on, with better chances than one that has not moved. An age at which fewer than five deals
  still stayed is taken at the greatest age at which five did;
- **per segment** (product, owner, source) optionally: the segment's closed deals' share won
  among those that *reached* ``s`` (the shared definition, ``pipelinekit.reached_stages``),
  shrunk towards the stage's by ``prior_strength`` pseudo-deals, scales the stage's chance;
- **new business**: revenue from deals not yet created, from how much past periods won
  from deals created inside the window (see :class:`HistoricalForecast`).

The closed-deal view stays in the table for comparison: ``deals`` and ``won`` count the
closed deals that reached the stage, ``observed`` is their share won (with a Wilson 95 %
interval). Rates are floats; money is Decimal.

Example:
    >>> from pipelinekit import demo
    >>> from pipelinekit.forecasts.historical import HistoricalForecast
    >>> history = demo.demo_history(opportunities=60, seed=42)
    >>> f = HistoricalForecast(horizon=3).compute(history, as_of="2024-09-30T00:00:00+00:00")
    >>> [r.bucket for r in f.rows]
    ['2024-09', '2024-10', '2024-11', 'later']
    >>> r = f.stage_rates[0]
    >>> r.stage, r.deals, r.won, r.observed, round(r.rate, 3), r.in_stage
    ('prospecting', 30, 12, 0.4, 0.396, 44)
    >>> f.row("2024-10").expected
    Decimal('87046.83')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict

from pipelinekit._rows import trusted
from pipelinekit._time import Instant, instant
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.forecasts._learned import (
    Horizon,
    check_count,
    check_number,
    days_between,
    forecast_rows,
    wilson,
)
from pipelinekit.forecasts._placement import Layout, Placement, cents, place
from pipelinekit.forecasts._survival import LOST, OPEN, WON, ByStay, Incidence
from pipelinekit.forecasts.result import LATER, NO_CLOSE_DATE, OVERDUE, DealForecast, Forecast
from pipelinekit.history import History, Pipeline
from pipelinekit.money import EXACT, FxRates, ReportingCurrency
from pipelinekit.money import total as money_total
from pipelinekit.opportunity import Opportunity
from pipelinekit.periods import Period, PeriodKind
from pipelinekit.results import Result, require_same
from pipelinekit.stages import StageScheme

__all__ = [
    "CreatedWon",
    "HistoricalEvidence",
    "HistoricalForecast",
    "HistoricalForecastResult",
    "HistoricalLearner",
    "NewBusinessRate",
    "ReachedCount",
    "StageRate",
    "StageTiming",
]

Segment = Literal["product", "owner", "source"]
RateSource = Literal["history", "shrunk", "weight"]
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_DEAL_FIELDS = set(DealForecast.model_fields) - {"category"}  # the fields set per deal


class StageRate(BaseModel):
    """The learned win rate of one open stage (and segment).

    Attributes:
        segment: the segment value (``None``: the stage's row over every deal).
        stage: the open stage key.
        deals: closed deals (won or lost) that reached the stage (the closed-deal view).
        won: how many of them were won.
        observed: ``won / deals`` (``None`` without deals): what a rate learned from closed
            deals only says.
        rate: overall rows: the chance a deal entering the stage is won, from the
            cumulative incidence over every deal that was in it (open ones in the risk set),
            smoothed towards the stage weight; the weight / 100 when no deal that was in the
            stage has closed. Segment rows: the segment's ``observed`` shrunk towards the
            stage's (``prior_strength`` pseudo-deals), which scales the stage's chance.
        low, high: the Wilson 95 % interval of ``observed`` (``None`` without deals).
        source: ``"history"``, ``"shrunk"`` (segment rows) or ``"weight"`` (no evidence).
        wins_timed: won deals that were in the stage, so their time to win is known
            (overall rows only; segments share the overall timing).
        median_days: the median days from entering the stage to winning (overall rows).
        in_stage: deals that were in the stage, open ones included (overall rows): the
            population of the cumulative incidence behind ``rate``.
        never_closed: the estimated share of deals entering the stage that are still open
            at the oldest age at which five of them were still open (overall rows): the
            zombies.
        insufficient: fewer than ``min_deals`` deals behind the row: its rate leans on the
            prior (the stage weight, or the overall stage rate for a segment).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str | None = None
    stage: str
    deals: int
    won: int
    observed: float | None
    rate: float
    low: float | None
    high: float | None
    source: RateSource
    wins_timed: int = 0
    median_days: float | None = None
    in_stage: int = 0
    never_closed: float | None = None
    insufficient: bool = False


class NewBusinessRate(BaseModel):
    """Mean revenue won in a period from deals created ``lag`` periods before it.

    ``lag == 0``: created and won inside the same period. ``periods`` is how many past
    complete periods the mean is over (0: no usable history, the mean is 0).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag: int
    mean: Decimal
    periods: int


class ReachedCount(BaseModel):
    """Closed deals that reached an open stage, and how many of them were won.

    ``segment`` is ``None`` for the count over every closed deal, else the segment value.

    Example:
        >>> from pipelinekit import demo
        >>> e = HistoricalForecast().learn(demo.demo_history(opportunities=60, seed=42),
        ...                                as_of="2024-09-30T00:00:00Z")
        >>> e.reached[0]
        ReachedCount(segment=None, stage='prospecting', deals=30, won=12)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str | None = None
    stage: str
    deals: int
    won: int


class StageTiming(BaseModel):
    """How long closed deals' last stay in one open stage lasted, in days.

    Attributes:
        stage: the open stage key.
        wins: per won deal that was in the stage: ``(stay, days to win)``, the length of
            its last stay there and the days from that last entry to the win (sorted).
        losses: per lost deal that was in the stage: the length of its last stay (sorted).
        outcomes: per deal that was in the stage, **open ones included**: how long its
            last stay there lasted (up to ``as_of`` if it is still there), the days from
            that entry to its close, or to ``as_of`` while still open, and how it ended (1
            won, 2 lost, 0 still open), sorted: what the cumulative incidence of winning is
            estimated from.

    Example:
        >>> t = StageTiming(stage="qualification", wins=((5.0, 12.5),), losses=(3.0,))
        >>> t.wins[0]  # stayed 5 days, won 12.5 days after entering
        (5.0, 12.5)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    wins: tuple[tuple[float, float], ...] = ()
    losses: tuple[float, ...] = ()
    outcomes: tuple[tuple[float, float, int], ...] = ()


class CreatedWon(BaseModel):
    """Revenue won in the period starting ``won_in`` from deals created in the period
    starting ``created_in`` (in the evidence's reporting currency).

    Example:
        >>> from datetime import date
        >>> c = CreatedWon(won_in=date(2024, 3, 1), created_in=date(2024, 1, 1), amount="900")
        >>> c.amount, (c.won_in.month - c.created_in.month)  # won two months after creation
        (Decimal('900'), 2)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    won_in: date
    created_in: date
    amount: Decimal


class HistoricalEvidence(Result):
    """What :class:`HistoricalForecast` learns, kept as sums: it merges over partitions.

    Computed by :meth:`HistoricalForecast.learn` (or the calculator
    :meth:`HistoricalForecast.learner`) from the opportunities of a history, and used by a
    forecaster built with ``learned=``. Counts add, lists of stays concatenate, won
    revenue per (won period, created period) adds and the history's start is the earliest,
    so the evidence of disjoint sets of opportunities merges into exactly the evidence of
    all of them: learn per partition, merge, then forecast each partition with the merged
    evidence and merge the forecasts (``docs/scaling.md``).

    Attributes:
        scheme: the stage scheme's name.
        as_of: the cut-off; nothing later was seen.
        period, tz, segment_by, lookback: the settings of the forecaster that learned it
            (the period kind's spec, the zone's name).
        currency: the currency of ``created_won`` amounts (``None``: none seen).
        closed, won: closed deals learned from (within ``lookback``), and the won ones.
        reached: per open stage (overall, then per segment value): deals that reached it.
        timings: per open stage: the stays of won and lost deals.
        history_start: the first event of the history (the start of new-business learning).
        created_won: won revenue per (won period, created period), for every period
            before the one of ``as_of``.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=60, seed=42)
        >>> ids, when = h.opportunity_ids, "2024-09-30T00:00:00Z"
        >>> learn = HistoricalForecast().learn
        >>> a = learn(h.for_opportunities(ids[:25]), as_of=when)
        >>> b = learn(h.for_opportunities(ids[25:]), as_of=when)
        >>> a.merge(b) == learn(h, as_of=when)
        True
        >>> a.merge(b).reached[0]
        ReachedCount(segment=None, stage='prospecting', deals=30, won=12)
    """

    scheme: str
    as_of: datetime
    period: str
    tz: str
    segment_by: Segment | None = None
    lookback: timedelta | None = None
    currency: str | None = None
    closed: int = 0
    won: int = 0
    reached: tuple[ReachedCount, ...] = ()
    timings: tuple[StageTiming, ...] = ()
    history_start: datetime | None = None
    created_won: tuple[CreatedWon, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        """The reached counts, one row per (segment, open stage)."""
        return [r.model_dump() for r in self.reached]

    def merge(self, other: HistoricalEvidence) -> HistoricalEvidence:
        """The evidence of both sets of opportunities (disjoint; same settings and ``as_of``).

        Raises:
            ArgumentError: ``other`` is not evidence, or differs in scheme, ``as_of``,
                settings or (both having amounts) currency.
        """
        if not isinstance(other, HistoricalEvidence):
            raise ArgumentError("other", f"expected HistoricalEvidence, got {type(other).__name__}")
        names = ("scheme", "as_of", "period", "tz", "segment_by", "lookback")
        require_same("evidence", self, other, names)
        currency = _merged_currency(self, other)
        reached: dict[tuple[str | None, str], tuple[int, int]] = {}
        for r in (*self.reached, *other.reached):
            n, w = reached.get((r.segment, r.stage), (0, 0))
            reached[(r.segment, r.stage)] = (n + r.deals, w + r.won)
        wins: dict[str, list[tuple[float, float]]] = {}
        losses: dict[str, list[float]] = {}
        ends: dict[str, list[tuple[float, float, int]]] = {}
        for t in (*self.timings, *other.timings):
            wins.setdefault(t.stage, []).extend(t.wins)
            losses.setdefault(t.stage, []).extend(t.losses)
            ends.setdefault(t.stage, []).extend(t.outcomes)
        created: dict[tuple[date, date], Decimal] = {}
        for c in (*self.created_won, *other.created_won):
            key = (c.won_in, c.created_in)
            created[key] = EXACT.add(created.get(key, _ZERO), c.amount)
        starts = [s for s in (self.history_start, other.history_start) if s is not None]
        stage_order = {t.stage: i for i, t in enumerate(self.timings)}
        return self.model_copy(
            update={
                "currency": currency,
                "closed": self.closed + other.closed,
                "won": self.won + other.won,
                "reached": _reached_rows(reached, stage_order),
                "timings": tuple(
                    StageTiming(
                        stage=s,
                        wins=tuple(sorted(wins[s])),
                        losses=tuple(sorted(losses[s])),
                        outcomes=tuple(sorted(ends[s])),
                    )
                    for s in sorted(wins, key=lambda s: stage_order.get(s, len(stage_order)))
                ),
                "history_start": min(starts) if starts else None,
                "created_won": _created_rows(created),
            }
        )


def _merged_currency(a: HistoricalEvidence, b: HistoricalEvidence) -> str | None:
    """The common currency; evidence without amounts takes the other's."""
    if a.currency == b.currency:
        return a.currency
    if not b.created_won:
        return a.currency if a.currency is not None else b.currency
    if not a.created_won:
        return b.currency
    raise ArgumentError(
        "other", f"cannot merge evidence with different currency: {a.currency!r} vs {b.currency!r}"
    )


def _reached_rows(
    counts: dict[tuple[str | None, str], tuple[int, int]], stage_order: dict[str, int]
) -> tuple[ReachedCount, ...]:
    """Overall rows in funnel order, then each segment's rows (segments sorted)."""
    keys = sorted(
        counts,
        key=lambda k: (k[0] is not None, k[0] or "", stage_order.get(k[1], len(stage_order))),
    )
    return tuple(
        ReachedCount(
            segment=seg, stage=stage, deals=counts[seg, stage][0], won=counts[seg, stage][1]
        )
        for seg, stage in keys
    )


def _created_rows(created: dict[tuple[date, date], Decimal]) -> tuple[CreatedWon, ...]:
    return tuple(
        CreatedWon(won_in=w, created_in=c, amount=created[w, c]) for w, c in sorted(created)
    )


class HistoricalLearner:
    """A calculator whose result is the :class:`HistoricalEvidence` of a forecaster.

    ``HistoricalForecast(...).learner()`` makes one; it computes per partition like any
    mergeable calculator (``pipelinekit.distributed``), so the evidence of a large history
    can be learned on many workers.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=20, seed=1)
        >>> learner = HistoricalForecast(horizon=2).learner()
        >>> learner.compute(h, as_of="2024-06-30T00:00:00Z").closed > 0
        True
    """

    def __init__(self, forecaster: HistoricalForecast) -> None:
        if not isinstance(forecaster, HistoricalForecast):
            raise ArgumentError(
                "forecaster", f"expected a HistoricalForecast, got {type(forecaster).__name__}"
            )
        self.forecaster = forecaster

    def __repr__(self) -> str:
        return f"HistoricalLearner({self.forecaster!r})"

    def compute(self, history: History, *, as_of: Instant) -> HistoricalEvidence:
        """The forecaster's evidence from ``history.until(as_of)``."""
        return self.forecaster.learn(history, as_of=as_of)


class HistoricalForecastResult(Forecast):
    """A :class:`~pipelinekit.forecasts.result.Forecast` with what the forecaster learned.

    Attributes:
        stage_rates: the learned table (overall rows first, then per segment).
        new_business: the new-business means per lag behind the ``new`` column.
        segment_by: the segment field, or ``None``.
        fallback: why stage weights were used instead of history (``None``: they were not).
        notes: other honest caveats (stages without evidence, missing timing...).
    """

    stage_rates: tuple[StageRate, ...] = ()
    new_business: tuple[NewBusinessRate, ...] = ()
    segment_by: Segment | None = None
    fallback: str | None = None
    notes: tuple[str, ...] = ()

    def stage_rates_records(self) -> list[dict[str, Any]]:
        """The learned table as rows of plain values."""
        return [r.model_dump() for r in self.stage_rates]

    def merge(self, other: Forecast) -> HistoricalForecastResult:
        """Add a forecast of other opportunities made with the **same learned tables**.

        A historical forecast learns from every opportunity, so forecasts of partitions
        that each learned their own rates do not add up to the whole; merging them is
        refused. Forecasts that share the tables (one :class:`HistoricalEvidence` passed as
        ``learned`` to forecast each partition) add like any forecast, except ``new``: the
        revenue from deals not yet created belongs to the shared evidence, not to a
        partition, so it is the same in both and is kept once, not added.

        Raises:
            ArgumentError: ``other`` is not a historical forecast with equal tables, or
                differs in method, ``as_of`` or currency.
        """
        if not isinstance(other, HistoricalForecastResult) or (
            other.stage_rates,
            other.new_business,
            other.segment_by,
            other.fallback,
        ) != (self.stage_rates, self.new_business, self.segment_by, self.fallback):
            raise ArgumentError(
                "other",
                "historical forecasts only merge when they learned the same tables; a "
                "forecast learned from a partition of opportunities is not a part of the whole",
            )
        merged = super().merge(other)
        new = {(r.bucket, r.group): r.new for r in (*other.rows, *self.rows)}
        rows = tuple(r.model_copy(update={"new": new[r.bucket, r.group]}) for r in merged.rows)
        return self.model_copy(
            update={"rows": rows, "deals": merged.deals, "currency": merged.currency}
        )


class _Funnel:
    """:func:`~pipelinekit.opportunity.reached_stages` for many deals at once: the scheme's
    lookups are built once per computation (not once per deal: the scheme's
    ``open_stages`` is a property that rebuilds a tuple), and a deal's reach is one index."""

    __slots__ = ("index", "lost", "open_index", "opens", "won")

    def __init__(self, scheme: StageScheme) -> None:
        self.index = {s.key: i for i, s in enumerate(scheme.stages)}
        self.opens = tuple(s.key for s in scheme.open_stages)
        self.open_index = tuple(self.index[k] for k in self.opens)
        self.won = frozenset(s.key for s in scheme.won_stages)
        self.lost = frozenset(s.key for s in scheme.lost_stages)

    def reach(self, opp: Opportunity) -> int:
        """The funnel index up to which ``opp`` reached every open stage: ``len(stages)``
        for a deal that was ever won, else its furthest non-lost stage (``-1``: none)."""
        if opp.stage in self.won:
            return len(self.index)
        furthest = -1
        for visit in opp.path:
            if visit.stage in self.won:
                return len(self.index)
            if visit.stage not in self.lost:
                furthest = max(furthest, self.index[visit.stage])
        return furthest

    def counts(self, deals: Iterable[tuple[Opportunity, int]]) -> dict[str, tuple[int, int]]:
        """Per open stage: (closed deals that reached it, how many of them were won)."""
        every: Counter[int] = Counter()
        wins: Counter[int] = Counter()
        for opp, reach in deals:
            every[reach] += 1
            if opp.is_won:
                wins[reach] += 1
        return {
            key: (
                sum(c for r, c in every.items() if r >= i),
                sum(c for r, c in wins.items() if r >= i),
            )
            for key, i in zip(self.opens, self.open_index, strict=True)
        }


class HistoricalForecast:
    """Forecast from the cumulative incidence of winning learned before ``as_of``.

    The projection of a period is ``won`` (already won in it) + ``expected`` (each open
    deal's amount times its chance of being won in the period, given the time it has
    already spent in its stage; see the module docstring) + ``new``
    (deals not created yet).

    **New business.** For each lag ``j`` (0 .. horizon − 1) the forecaster averages, over
    the last ``new_business_periods`` complete periods ``P``, the revenue won in ``P`` from
    deals created in the period ``j`` periods before ``P`` (only periods whose creation
    window lies fully inside the history count). A horizon period ``k`` periods after the
    current one then expects ``Σ_{j<k} mean_j`` (deals created in later whole periods) +
    ``f · mean_k``, where ``f`` is the share of the current period still to come at
    ``as_of`` (deals created in its remainder). The scaling by ``f`` is linear, an
    approximation: deals created late in a period have less time left to close in it, so
    for the current period it tends to over- rather than under-state.

    Args:
        period, horizon: the period kind and how many periods (from the one of ``as_of``).
        segment_by: ``None``, ``"product"``, ``"owner"`` or ``"source"``: learn rates per
            segment, shrunk towards the overall stage rate. An open deal with no value in
            the field uses the overall rate.
        prior_strength: ``k`` of the shrinkage (``>= 0``; 0 means no shrinkage).
        lookback: learn only from deals closed in the ``lookback`` before ``as_of``
            (``None``: all history).
        new_business: include the ``new`` column.
        new_business_periods: how many past complete periods the new-business means use.
        stage_prior: pseudo-deals of additive smoothing of each stage's rate towards its
            prior, the stage weight (the overall win rate for a stage without weight).
        min_deals: fewer deals behind a rate flag it ``insufficient`` (and a note says so).
        currency, rates: the reporting currency and :class:`~pipelinekit.money.FxRates`.
        tz: the zone whose calendar dates decide periods.
        learned: :class:`HistoricalEvidence` to forecast with instead of learning from the
            history given to :meth:`compute` (which then supplies only the deals to place):
            typically the evidence of every partition, merged, so that forecasts of the
            partitions add up to the forecast of the whole. It must have been learned at
            the same ``as_of``, on the same scheme, with the same ``period``, ``tz``,
            ``segment_by`` and ``lookback``.

    Attributes (after :meth:`compute`):
        stage_rates_: the learned table (same as the result's ``stage_rates``).
        new_business_: the new-business means (same as the result's ``new_business``).

    Example:
        >>> HistoricalForecast(segment_by="region")
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'segment_by': expected None or one of ...
    """

    stage_rates_: tuple[StageRate, ...]
    new_business_: tuple[NewBusinessRate, ...]

    def __init__(
        self,
        *,
        period: str | PeriodKind = "month",
        horizon: int = 3,
        segment_by: Segment | None = None,
        prior_strength: float = 10.0,
        lookback: timedelta | None = None,
        new_business: bool = True,
        new_business_periods: int = 6,
        stage_prior: float = 2.0,
        min_deals: int = 20,
        currency: str | None = None,
        rates: FxRates | None = None,
        tz: tzinfo = UTC,
        learned: HistoricalEvidence | None = None,
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
        if learned is not None and not isinstance(learned, HistoricalEvidence):
            raise ArgumentError(
                "learned", f"expected HistoricalEvidence or None, got {type(learned).__name__}"
            )
        if segment_by is not None and segment_by not in get_args(Segment):
            raise ArgumentError(
                "segment_by",
                f"expected None or one of {list(get_args(Segment))}, got {segment_by!r}",
            )
        check_number("prior_strength", prior_strength, low=0.0, what="a finite number >= 0")
        if lookback is not None and (
            not isinstance(lookback, timedelta) or lookback <= timedelta(0)
        ):
            raise ArgumentError(
                "lookback", f"expected None or a positive timedelta, got {lookback!r}"
            )
        if not isinstance(new_business, bool):
            raise ArgumentError("new_business", f"expected True or False, got {new_business!r}")
        check_count("new_business_periods", new_business_periods, low=1)
        check_number("stage_prior", stage_prior, low=0.0, what="a finite number >= 0")
        check_count("min_deals", min_deals, low=0)
        self.stage_prior = float(stage_prior)
        self.min_deals = min_deals
        self.period = period
        self.horizon = horizon
        self.segment_by = segment_by
        self.prior_strength = float(prior_strength)
        self.lookback = lookback
        self.new_business = new_business
        self.new_business_periods = new_business_periods
        self.currency = currency
        self.rates = rates
        self.tz = tz
        self.learned = learned

    def __repr__(self) -> str:
        learned = "" if self.learned is None else ", learned=<HistoricalEvidence>"
        return (
            f"HistoricalForecast(period={self._placement.kind.spec!r}, horizon={self.horizon!r}, "
            f"segment_by={self.segment_by!r}{learned})"
        )

    def learn(self, history: History, *, as_of: Instant) -> HistoricalEvidence:
        """What this forecaster learns from ``history.until(as_of)``, as mergeable sums.

        Example:
            >>> from pipelinekit import demo
            >>> h = demo.demo_history(opportunities=60, seed=42)
            >>> when = "2024-09-30T00:00:00Z"
            >>> e = HistoricalForecast().learn(h, as_of=when)
            >>> e.closed, e.won
            (30, 12)
            >>> with_e = HistoricalForecast(learned=e).compute(h, as_of=when)
            >>> with_e == HistoricalForecast().compute(h, as_of=when)
            True
        """
        when = instant(as_of, argument="as_of")
        with bulk_work():
            seen = history.until(when)
            return self._evidence(seen.start, seen.as_of(when), when)

    def learner(self) -> HistoricalLearner:
        """A calculator computing :meth:`learn`, to learn over partitions
        (:func:`~pipelinekit.calculators.compute_partitioned`, ``pipelinekit.distributed``).
        """
        return HistoricalLearner(self)

    def compute(self, history: History, *, as_of: Instant) -> HistoricalForecastResult:
        """Learn from ``history.until(as_of)`` (or use ``learned``) and forecast the horizon.

        Raises:
            ArgumentError: (``scheme``) stage weights are needed (no evidence for a stage)
                but the stage has none; (``learned``) the evidence was learned at another
                ``as_of``, on another scheme or with other settings.
            CurrencyError: amounts in several currencies without ``currency``/``rates``.

        Example:
            >>> from pipelinekit import demo
            >>> f = HistoricalForecast(segment_by="product").compute(
            ...     demo.demo_history(opportunities=60, seed=42),
            ...     as_of="2024-09-30T00:00:00+00:00")
            >>> f.fallback is None, 0 <= min(d.win_probability for d in f.deals) <= 1
            (True, True)
        """
        with bulk_work():  # no GC passes over the transient snapshot: docs/performance.md
            return self._compute(history, as_of)

    def _compute(self, history: History, as_of: Instant) -> HistoricalForecastResult:
        when = instant(as_of, argument="as_of")
        seen = history.until(when)
        pipeline = seen.as_of(when)
        scheme = pipeline.scheme
        layout = place(self._placement, pipeline, when)
        horizon = Horizon.of(layout.periods, when, self._placement.tz)
        if self.learned is None:
            evidence = self._evidence(seen.start, pipeline, when)
        else:
            evidence = self._check_learned(self.learned, scheme, when)
        notes: list[str] = []
        fallback: str | None = None
        if not evidence.closed:
            fallback = (
                "no opportunity closed before as_of"
                + ("" if self.lookback is None else " within the lookback")
                + ": win probabilities are the stage weights (or overrides) and open deals "
                "are placed by their expected close dates"
            )
        table, timing, priors = _learn(
            evidence, scheme, self.prior_strength, self.stage_prior, self.min_deals, notes
        )
        allocations, deals = self._place_open(
            layout, horizon, table, timing, priors, fallback, when
        )
        won_by_period = layout.won
        new_rates: tuple[NewBusinessRate, ...] = ()
        new: dict[str, Decimal] = {}
        currency = layout.currency
        if self.new_business:
            if evidence.created_won:
                if currency is None:
                    currency = evidence.currency
                elif evidence.currency != currency:
                    raise CurrencyError(
                        f"amounts are in {currency} and {evidence.currency}; pass a reporting "
                        "currency and FxRates to add them"
                    )
            new_rates, new = _new_business(
                evidence, when, layout, self._placement, self.new_business_periods, notes
            )
        self.stage_rates_ = table
        self.new_business_ = new_rates
        return HistoricalForecastResult(
            method="historical",
            as_of=when,
            currency=currency,
            rows=forecast_rows(horizon, won_by_period, allocations, new),
            deals=deals,
            stage_rates=table,
            new_business=new_rates,
            segment_by=self.segment_by,
            fallback=fallback,
            notes=tuple(notes),
        )

    def _evidence(
        self, history_start: datetime | None, pipeline: Pipeline, when: datetime
    ) -> HistoricalEvidence:
        """Gather the sums :func:`_learn` and :func:`_new_business` learn from."""
        scheme = pipeline.scheme
        since = None if self.lookback is None else when - self.lookback
        closed = [
            o
            for o in pipeline.values()
            if not o.is_open and o.closed_at is not None and (since is None or o.closed_at >= since)
        ]
        funnel = _Funnel(scheme)
        reached = [(o, funnel.reach(o)) for o in closed]
        counts = funnel.counts(reached)
        rows = [ReachedCount(stage=k, deals=counts[k][0], won=counts[k][1]) for k in funnel.opens]
        if self.segment_by is not None:
            members: dict[str, list[tuple[Opportunity, int]]] = {}
            for o, r in reached:
                if (v := getattr(o, self.segment_by)) is not None:
                    members.setdefault(v, []).append((o, r))
            for value in sorted(members):
                segment_counts = funnel.counts(members[value])
                rows += [
                    ReachedCount(
                        segment=value, stage=k, deals=segment_counts[k][0], won=segment_counts[k][1]
                    )
                    for k in funnel.opens
                ]
        open_keys = frozenset(funnel.opens)
        wins: dict[str, list[tuple[float, float]]] = {k: [] for k in funnel.opens}
        losses: dict[str, list[float]] = {k: [] for k in funnel.opens}
        ends = _outcomes(pipeline, closed, open_keys, when)
        for o in closed:
            if o.closed_at is None:  # pragma: no cover - closed deals have closed_at
                continue
            last: dict[str, tuple[datetime, datetime]] = {}
            for v in o.path:
                if v.entered_at < o.closed_at and v.stage in open_keys:
                    last[v.stage] = (v.entered_at, v.exited_at or o.closed_at)
            for stage, (entered, left) in last.items():
                stay = days_between(entered, left)
                if o.is_won:
                    wins[stage].append((stay, days_between(entered, o.closed_at)))
                else:
                    losses[stage].append(stay)
        currency, created = _created_won(pipeline, when, self._placement)
        return HistoricalEvidence(
            scheme=scheme.name,
            as_of=when,
            period=self._placement.kind.spec,
            tz=str(self._placement.tz),
            segment_by=self.segment_by,
            lookback=self.lookback,
            currency=currency,
            closed=len(closed),
            won=sum(1 for o in closed if o.is_won),
            reached=tuple(rows),
            timings=tuple(
                StageTiming(
                    stage=k,
                    wins=tuple(sorted(wins[k])),
                    losses=tuple(sorted(losses[k])),
                    outcomes=tuple(sorted(ends[k])),
                )
                for k in funnel.opens
            ),
            history_start=history_start,
            created_won=created,
        )

    def _check_learned(
        self, learned: HistoricalEvidence, scheme: StageScheme, when: datetime
    ) -> HistoricalEvidence:
        expected = {
            "scheme": scheme.name,
            "as_of": when,
            "period": self._placement.kind.spec,
            "tz": str(self._placement.tz),
            "segment_by": self.segment_by,
            "lookback": self.lookback,
        }
        for name, value in expected.items():
            if getattr(learned, name) != value:
                raise ArgumentError(
                    "learned",
                    f"the evidence was learned with {name}={getattr(learned, name)!r}, "
                    f"this forecast has {name}={value!r}",
                )
        if {t.stage for t in learned.timings} != {s.key for s in scheme.open_stages}:
            raise ArgumentError(
                "learned", f"the evidence's stages are not the open stages of {scheme.name!r}"
            )
        return learned

    def _place_open(
        self,
        layout: Layout,
        horizon: Horizon,
        table: tuple[StageRate, ...],
        timing: dict[str, StageTiming],
        priors: dict[str, float],
        fallback: str | None,
        when: datetime,
    ) -> tuple[list[dict[str, Decimal]], tuple[DealForecast, ...]]:
        rates = {(r.segment, r.stage): r.rate for r in table}
        rows = {(r.segment, r.stage): r for r in table}
        curves = {k: ByStay(t.outcomes) for k, t in timing.items()}
        order = _bucket_order(horizon)
        starts = (0.0, *horizon.ends[:-1])
        allocations: list[dict[str, Decimal]] = []
        deals: list[DealForecast] = []
        for placed in layout.open:
            opp = cast(Opportunity, placed.opportunity)  # placed without light=True
            segment = None if self.segment_by is None else getattr(opp, self.segment_by)
            curve = curves.get(opp.stage)
            if fallback is not None or curve is None or not timing[opp.stage].wins:
                # no learned timing: the table's rate, placed by the typed-in close date
                probability = _probability(opp, segment, rates, fallback is not None)
                value = cents(placed.amount * probability)
                allocation = {placed.bucket: value}
            else:
                age = curve.supported_age(days_between(opp.stage_entered_at, when), _MIN_AT_RISK)
                alike = curve.at(age)  # the deals that stayed in the stage at least as long
                eventual = alike.won_after(age)
                chances = [
                    alike.won_within(age, a, b) for a, b in zip(starts, horizon.ends, strict=True)
                ]
                smoothed = _smooth(eventual, alike.deals, priors[opp.stage], self.stage_prior)
                factor = _segment_factor(rows, segment, opp.stage)
                total_p = min(1.0, smoothed * factor)
                scale = total_p / eventual if eventual > 0 else 0.0
                probability = _round_probability(Decimal(repr(total_p)))
                value = cents(placed.amount * probability)
                allocation = {}
                given = _ZERO
                for label, chance in zip(horizon.labels, chances, strict=True):
                    part = cents(placed.amount * Decimal(repr(min(1.0, chance * scale))))
                    part = min(part, value - given)
                    if part:
                        allocation[label] = part
                        given += part
                if value - given or not allocation:
                    allocation[LATER] = value - given
            allocations.append({k: v for k, v in allocation.items() if v or len(allocation) == 1})
            deals.append(  # typed values: built without validating again
                trusted(
                    DealForecast,
                    {
                        "opportunity_id": opp.id,
                        "stage": opp.stage,
                        "amount": placed.amount,
                        "win_probability": float(probability),
                        "expected": value,
                        "bucket": _main_bucket(allocation, order),
                        "group": segment,
                        "category": None,
                        "periods": _period_shares(allocation, horizon, placed.amount),
                    },
                    _DEAL_FIELDS,
                )
            )
        return allocations, tuple(deals)


_MIN_AT_RISK = 5
"""A deal that has been in its stage longer than all but this many deals stayed there is
treated as the age at which that many still stayed: the evidence says nothing about older
deals."""


def _outcomes(
    pipeline: Pipeline, closed: Sequence[Opportunity], open_keys: frozenset[str], when: datetime
) -> dict[str, list[tuple[float, float, int]]]:
    """Per open stage: (last stay, days from the last entry to the close or to ``when``,
    outcome) of every deal that was in it: the closed deals learned from and every deal
    still open."""
    out: dict[str, list[tuple[float, float, int]]] = {k: [] for k in open_keys}
    learned = {o.id for o in closed}
    for o in pipeline.values():
        if o.is_open:
            end, code = when, OPEN
        elif o.id in learned and o.closed_at is not None:
            end, code = o.closed_at, (WON if o.is_won else LOST)
        else:
            continue
        last: dict[str, tuple[datetime, datetime]] = {}
        for v in o.path:
            if v.stage in open_keys and v.entered_at <= end:
                left = end if v.exited_at is None or v.exited_at > end else v.exited_at
                last[v.stage] = (v.entered_at, left)
        for stage, (entered, left) in last.items():
            out[stage].append((days_between(entered, left), days_between(entered, end), code))
    return out


def _smooth(rate: float, deals: int, prior: float, strength: float) -> float:
    """``(rate · deals + strength · prior) / (deals + strength)``: additive smoothing."""
    if deals + strength <= 0:
        return rate
    return (rate * deals + strength * prior) / (deals + strength)


def _segment_factor(
    table: dict[tuple[str | None, str], StageRate], segment: str | None, stage: str
) -> float:
    """How a segment's shrunk closed-deal rate compares with its stage's closed-deal rate
    (1 without a segment row)."""
    row = table.get((segment, stage)) if segment is not None else None
    overall = table.get((None, stage))
    if row is None or overall is None:
        return 1.0
    base = overall.observed if overall.observed is not None else overall.rate
    return row.rate / base if base > 0 else 1.0


def _period_shares(
    allocation: dict[str, Decimal], horizon: Horizon, amount: Decimal
) -> tuple[float, ...]:
    """The chance of being won in each horizon period: the allocation over the amount
    (an overdue share or one without a close date is due now: the first period)."""
    if not amount:
        return (0.0,) * len(horizon.labels)
    due = allocation.get(OVERDUE, _ZERO) + allocation.get(NO_CLOSE_DATE, _ZERO)
    return tuple(
        float((allocation.get(label, _ZERO) + (due if k == 0 else _ZERO)) / amount)
        for k, label in enumerate(horizon.labels)
    )


def _round_probability(p: Decimal) -> Decimal:
    """A probability as the Decimal of its float (so ``win_probability`` matches exactly)."""
    return Decimal(repr(float(p)))


def _bucket_order(horizon: Horizon) -> dict[str, int]:
    """Each bucket's position in time order (the horizon, then the labelled buckets)."""
    return {b: i for i, b in enumerate((*horizon.labels, "later", "overdue", "no close date"))}


def _main_bucket(allocation: dict[str, Decimal], order: dict[str, int]) -> str:
    """The bucket holding the median of the deal's spread (in time order)."""
    if len(allocation) == 1:
        return next(iter(allocation))
    items = sorted(allocation.items(), key=lambda kv: order[kv[0]])
    total = sum((v for _, v in items), _ZERO)
    running = _ZERO
    for bucket, value in items:
        running += value
        if running * 2 >= total:
            return bucket
    return items[-1][0]


def _probability(
    opp: Opportunity,
    segment: str | None,
    rates: dict[tuple[str | None, str], float],
    use_weights: bool,
) -> Decimal:
    if use_weights:
        if opp.probability is None:
            raise ArgumentError(
                "scheme",
                f"no closed history to learn from and opportunity {opp.id!r} at stage "
                f"{opp.stage!r} has no stage weight or override to fall back on",
            )
        return opp.probability / _HUNDRED
    rate = rates.get((segment, opp.stage), rates.get((None, opp.stage)))
    if rate is None:  # pragma: no cover - every open stage has an overall row
        raise ArgumentError("scheme", f"no rate for stage {opp.stage!r}")
    return Decimal(repr(rate))


def _learn(
    evidence: HistoricalEvidence,
    scheme: StageScheme,
    k: float,
    stage_prior: float,
    min_deals: int,
    notes: list[str],
) -> tuple[tuple[StageRate, ...], dict[str, StageTiming], dict[str, float]]:
    """The stage-rate table, the evidence's stays per open stage, and each stage's prior.

    An overall row's ``rate`` is the cumulative incidence of winning from entering the
    stage (open deals in the risk set), smoothed towards the prior (the stage weight, else
    the overall win rate) by ``stage_prior`` pseudo-deals; a segment row's is its closed
    deals' rate shrunk towards the stage's by ``k`` pseudo-deals.
    """
    opens = list(scheme.open_stages)
    counts = {(r.segment, r.stage): (r.deals, r.won) for r in evidence.reached}
    timing = {t.stage: t for t in evidence.timings}
    overall_rate = evidence.won / evidence.closed if evidence.closed else 0.0
    closed_rates: dict[str, float] = {}
    priors: dict[str, float] = {}
    rows: list[StageRate] = []
    weightless: list[str] = []
    thin: list[str] = []
    for s in opens:
        n, w = counts.get((None, s.key), (0, 0))
        times = sorted(d for _, d in timing[s.key].wins)
        prior = float(s.weight / _HUNDRED) if s.weight is not None else overall_rate
        priors[s.key] = prior
        curve = Incidence.of((t, code) for _, t, code in timing[s.key].outcomes)
        closed_rates[s.key] = w / n if n else prior
        if curve.times:
            rate = _smooth(curve.won_after(0.0), curve.deals, prior, stage_prior)
            source: RateSource = "history"
        else:
            rate = prior
            source = "weight"
            weightless.append(s.key)
        insufficient = curve.deals < min_deals
        if insufficient:
            thin.append(s.key)
        rows.append(
            _rate_row(None, s.key, n, w, rate, source, times).model_copy(
                update={
                    "in_stage": curve.deals,
                    "never_closed": (
                        curve.open_at(curve.oldest_supported(_MIN_AT_RISK)) if curve.times else None
                    ),
                    "insufficient": insufficient,
                }
            )
        )
    if evidence.closed and weightless:
        notes.append(
            f"no deal that was in {weightless} has closed: their rate is the stage weight (or "
            "the overall win rate for a stage without weight)"
        )
    if evidence.closed and thin:
        notes.append(
            f"fewer than {min_deals} deals were in {thin}: insufficient history, their rates "
            f"lean on the prior (the stage weight) by {stage_prior:g} pseudo-deals"
        )
    untimed = [s.key for s in opens if not timing[s.key].wins]
    if evidence.closed and untimed:
        notes.append(
            f"no won deal was in {untimed}: deals there are placed by their expected close date"
        )
    segments = sorted({r.segment for r in evidence.reached if r.segment is not None})
    for value in segments:
        for s in opens:
            n, w = counts.get((value, s.key), (0, 0))
            base = closed_rates[s.key]
            rate = (w + k * base) / (n + k) if n + k > 0 else base
            row = _rate_row(value, s.key, n, w, rate, "shrunk")
            rows.append(row.model_copy(update={"insufficient": n < min_deals}))
    return tuple(rows), timing, priors


def _rate_row(
    segment: str | None,
    stage: str,
    n: int,
    w: int,
    rate: float,
    source: RateSource,
    times: list[float] | None = None,
) -> StageRate:
    """A learned-table row: ``w`` won of ``n`` closed deals, the rate used, the Wilson
    interval, and (overall rows) the sorted days from entering the stage to winning."""
    interval = wilson(w, n)
    return StageRate(
        segment=segment,
        stage=stage,
        deals=n,
        won=w,
        observed=w / n if n else None,
        rate=rate,
        low=None if interval is None else interval[0],
        high=None if interval is None else interval[1],
        source=source,
        wins_timed=0 if times is None else len(times),
        median_days=None if times is None else _median(times),
    )


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    mid = len(values) // 2
    if len(values) % 2:
        return values[mid]
    return (values[mid - 1] + values[mid]) / 2


def _created_won(
    pipeline: Pipeline, when: datetime, placement: Placement
) -> tuple[str | None, tuple[CreatedWon, ...]]:
    """Won revenue per (won period, created period), for wins before the period of ``when``."""
    tz = placement.tz
    kind = placement.kind
    current = kind.period_of_instant(when, tz).start
    to_rep = ReportingCurrency(placement.currency, placement.rates)
    won: dict[tuple[date, date], Decimal] = {}
    for opp in pipeline.values():
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(tz).date()
        won_in = kind.period_of(won_on).start
        if won_in >= current:
            continue
        key = (won_in, kind.period_of(opp.opened_at.astimezone(tz).date()).start)
        won[key] = EXACT.add(won.get(key, _ZERO), to_rep(opp.amount, opp.currency, won_on))
    return to_rep.currency, _created_rows(won)


def _new_business(
    evidence: HistoricalEvidence,
    when: datetime,
    layout: Layout,
    placement: Placement,
    how_many: int,
    notes: list[str],
) -> tuple[tuple[NewBusinessRate, ...], dict[str, Decimal]]:
    """The new-business means per lag, from the evidence, spread over the horizon."""
    tz = placement.tz
    kind = placement.kind
    current = layout.periods[0]
    lags = len(layout.periods)
    if evidence.history_start is None:
        empty = tuple(NewBusinessRate(lag=j, mean=_ZERO, periods=0) for j in range(lags))
        return empty, {}
    first_day = evidence.history_start.astimezone(tz).date()
    past = _complete_periods(kind.period_of(first_day), current)
    index = {p.start: i for i, p in enumerate(past)}
    won: dict[tuple[int, int], Decimal] = {}
    for c in evidence.created_won:
        won_in = index.get(c.won_in)
        made_in = index.get(c.created_in)
        if won_in is None or made_in is None:
            continue
        key = (won_in, won_in - made_in)
        won[key] = EXACT.add(won.get(key, _ZERO), c.amount)
    means: list[NewBusinessRate] = []
    for lag in range(lags):
        # P is usable when the period lag before it starts on/after the history's first day
        usable = [i for i in range(len(past)) if i - lag >= 0 and past[i - lag].start >= first_day]
        usable = usable[-how_many:]
        total = money_total(won.get((i, lag), _ZERO) for i in usable)
        mean = cents(total / len(usable)) if usable else _ZERO
        means.append(NewBusinessRate(lag=lag, mean=mean, periods=len(usable)))
    if not means[0].periods:
        notes.append("no complete period lies inside the history yet: new business is counted as 0")
    start_us = _microseconds(current.start_instant(tz), current.end_instant(tz))
    left_us = _microseconds(when, current.end_instant(tz))
    left = Decimal(left_us) / Decimal(start_us) if start_us else _ZERO
    new: dict[str, Decimal] = {}
    for k, p in enumerate(layout.periods):
        whole = sum((means[j].mean for j in range(k)), _ZERO)
        new[p.label] = cents(whole + left * means[k].mean)
    return tuple(means), new


def _complete_periods(first: Period, current: Period) -> list[Period]:
    out: list[Period] = []
    p = first
    while p.start < current.start:
        out.append(p)
        p = p.next()
    return out


def _microseconds(start: datetime, end: datetime) -> int:
    return max(0, (end - start) // timedelta(microseconds=1))
