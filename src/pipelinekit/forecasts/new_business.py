"""New business: what deals that are not open yet at ``as_of`` will win within the horizon.

Part of what a period brings comes from deals created after the forecast is made. It is
learned from **origins** on the period grid: for each earlier period ``P``, the instant
``o_P`` at the same offset from ``P``'s start as ``as_of`` from the start of its own period
(clamped to ``P``'s last microsecond when ``P`` is shorter). A forecast made ten days into a
month learns from what happened after the tenth of earlier months, so moving ``as_of`` by a
day moves the evidence by a day, not by a period.

The revenue of lag ``j`` at origin ``o_P`` is what was won in period ``P + j`` by deals
created after ``o_P``. Those sums, per origin period and lag, are the evidence
(:class:`NewBusinessEvidence`): sums over deals, so the evidence of partitions of
opportunities merges into exactly the evidence of the whole. An origin is **usable** for
lag ``j`` when it lies inside the history (on or after its first event: before it, every
deal would look new) and period ``P + j`` ended before ``as_of``'s period began (its outcome
is known in full). The estimate of lag ``j`` (:class:`NewBusinessLag`) is the mean over the
``periods`` most recent usable origins; a lag without a usable origin has **no evidence**:
its ``origins`` is 0 and ``insufficient`` says so, rather than a silent 0.

Example:
    >>> from pipelinekit import demo
    >>> from pipelinekit.periods import months
    >>> h = demo.crm_history(months=12, deals_per_month=40, seed=3)
    >>> e = learn_new_business(h, as_of="2022-10-11T00:00:00Z", kind=months(), lags=2)
    >>> [(x.lag, x.bucket, x.origins, x.insufficient)
    ...  for x in estimate_new_business(e, months().following(e.as_of.date(), 2))]
    [(0, '2022-10', 6, False), (1, '2022-11', 6, False)]
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._placement import cents
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, total
from pipelinekit.periods import Period, PeriodKind
from pipelinekit.results import require_same

__all__ = [
    "NewBusinessEvidence",
    "NewBusinessLag",
    "NewBusinessWon",
    "estimate_new_business",
    "learn_new_business",
    "origin_of",
]

_ZERO = Decimal(0)
_MICROSECOND = timedelta(microseconds=1)


class NewBusinessWon(BaseModel):
    """Won in period ``origin + lag`` by deals created after the origin of period ``origin``.

    Attributes:
        origin: the first day of the origin's period.
        lag: how many periods after it the wins fell.
        amount: their revenue (reporting currency). deals: how many.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: date
    lag: int
    amount: Decimal
    deals: int


class NewBusinessEvidence(BaseModel):
    """What deals created after each past origin went on to win, per lag: a sum, so it merges.

    Attributes:
        as_of: the cut-off (it fixes the origins' offset in their periods).
        period, tz: the period grid (its spec and the zone of its calendar).
        lags: the lags recorded (0 .. lags − 1).
        currency: the reporting currency of the amounts (``None``: no amount seen).
        history_start: the first event of the history (origins before it are not usable).
        won: the sums, in (origin, lag) order; pairs without a win are left out.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: datetime
    period: str
    tz: str
    lags: int
    currency: str | None = None
    history_start: datetime | None = None
    won: tuple[NewBusinessWon, ...] = ()

    def merge(self, other: NewBusinessEvidence) -> NewBusinessEvidence:
        """The evidence of both sets of opportunities (same ``as_of``, grid and lags).

        Raises:
            ArgumentError: other settings, or amounts in two currencies.
        """
        if not isinstance(other, NewBusinessEvidence):
            raise ArgumentError(
                "other", f"expected NewBusinessEvidence, got {type(other).__name__}"
            )
        require_same("new-business evidence", self, other, ("as_of", "period", "tz", "lags"))
        currency = self.currency if self.currency is not None else other.currency
        if None not in (self.currency, other.currency) and self.currency != other.currency:
            raise ArgumentError(
                "other",
                f"cannot merge new-business evidence in {self.currency!r} and {other.currency!r}",
            )
        starts = [s for s in (self.history_start, other.history_start) if s is not None]
        sums: dict[tuple[date, int], tuple[Decimal, int]] = {}
        for w in (*self.won, *other.won):
            amount, deals = sums.get((w.origin, w.lag), (_ZERO, 0))
            sums[(w.origin, w.lag)] = (EXACT.add(amount, w.amount), deals + w.deals)
        return self.model_copy(
            update={
                "currency": currency,
                "history_start": min(starts) if starts else None,
                "won": _rows(sums),
            }
        )


class NewBusinessLag(BaseModel):
    """The new-business estimate of one horizon period.

    Attributes:
        lag, bucket: the period (lag 0: the one of ``as_of``) and its label.
        mean: the mean of ``values`` (cents); 0 without evidence.
        values: what deals created after each usable origin won at this lag, oldest origin
            first: the spread of new business from one period to the next.
        origins: how many origins the mean rests on (``len(values)``).
        insufficient: no usable origin: the 0 is a lack of evidence, not a measurement.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag: int
    bucket: str
    mean: Decimal
    values: tuple[Decimal, ...] = ()
    origins: int
    insufficient: bool


def origin_of(period: Period, as_of: datetime, kind: PeriodKind, tz: tzinfo) -> datetime:
    """The instant in ``period`` at ``as_of``'s offset from the start of its own period.

    Clamped to the period's last microsecond when ``period`` is shorter.

    Example:
        >>> from pipelinekit.periods import months
        >>> feb = months().period_of(date(2024, 2, 1))
        >>> origin_of(feb, datetime(2024, 3, 31, 12, tzinfo=UTC), months(), UTC).isoformat()
        '2024-02-29T23:59:59.999999+00:00'
    """
    offset = as_of - kind.period_of_instant(as_of, tz).start_instant(tz)
    return min(period.start_instant(tz) + offset, period.end_instant(tz) - _MICROSECOND)


def learn_new_business(
    history: History,
    *,
    as_of: Instant,
    kind: PeriodKind,
    lags: int,
    tz: tzinfo = UTC,
    currency: str | None = None,
    rates: FxRates | None = None,
) -> NewBusinessEvidence:
    """Sum what deals won before ``as_of``'s period, per origin and lag (no look-ahead).

    Each deal won in a complete period ``W`` (before the period of ``as_of``) counts for
    every lag ``j < lags`` whose origin (of period ``W − j``) it was created after.

    Raises:
        CurrencyError: amounts in several currencies without ``currency``/``rates``.
    """
    when = instant(as_of, argument="as_of")
    seen = history.until(when)
    pipeline = seen.as_of(when)
    current = kind.period_of_instant(when, tz)
    to_rep = ReportingCurrency(currency, rates)
    origins: dict[date, datetime] = {}
    sums: dict[tuple[date, int], tuple[Decimal, int]] = {}
    for oid in sorted(pipeline):
        opp = pipeline[oid]
        if not opp.is_won or opp.closed_at is None or opp.amount is None:
            continue
        won_on = opp.closed_at.astimezone(tz).date()
        period = kind.period_of(won_on)
        if period.start >= current.start:
            continue
        amount: Decimal | None = None
        for lag in range(lags):
            at = origins.get(period.start)
            if at is None:
                at = origins[period.start] = origin_of(period, when, kind, tz)
            if opp.opened_at > at:  # created after the origin: new business there
                if amount is None:
                    amount = to_rep(opp.amount, opp.currency, won_on)
                key = (period.start, lag)
                summed, deals = sums.get(key, (_ZERO, 0))
                sums[key] = (EXACT.add(summed, amount), deals + 1)
            period = period.previous()
    return NewBusinessEvidence(
        as_of=when,
        period=kind.spec,
        tz=str(tz),
        lags=lags,
        currency=to_rep.currency,
        history_start=seen.start,
        won=_rows(sums),
    )


def _rows(sums: dict[tuple[date, int], tuple[Decimal, int]]) -> tuple[NewBusinessWon, ...]:
    return tuple(
        NewBusinessWon(origin=o, lag=j, amount=a, deals=n)
        for (o, j), (a, n) in sorted(sums.items())
    )


def estimate_new_business(
    evidence: NewBusinessEvidence,
    periods: tuple[Period, ...],
    *,
    tz: tzinfo = UTC,
    periods_used: int = 6,
) -> tuple[NewBusinessLag, ...]:
    """The estimate of each horizon period (``periods[0]`` holds ``as_of``), lag by lag.

    Lag ``j`` averages the ``periods_used`` most recent usable origins: periods ``P`` with
    ``P + j`` before ``periods[0]`` whose origin lies on or after the history's start.

    Raises:
        ArgumentError: (``learned``) the evidence has fewer lags than ``periods``.
    """
    if len(periods) > evidence.lags:
        raise ArgumentError(
            "learned",
            f"the new-business evidence has {evidence.lags} lags; this forecast needs "
            f"{len(periods)}",
        )
    kind = periods[0].kind
    sums = {(w.origin, w.lag): w.amount for w in evidence.won}
    start = evidence.history_start
    out: list[NewBusinessLag] = []
    for lag, period in enumerate(periods):
        values: list[Decimal] = []
        origin = periods[0]
        for _ in range(lag + 1):
            origin = origin.previous()
        while start is not None and len(values) < periods_used:
            if origin_of(origin, evidence.as_of, kind, tz) < start:
                break
            values.append(sums.get((origin.start, lag), _ZERO))
            origin = origin.previous()
        values.reverse()
        mean = cents(total(values) / len(values)) if values else cents(_ZERO)
        out.append(
            NewBusinessLag(
                lag=lag,
                bucket=period.label,
                mean=mean,
                values=tuple(values),
                origins=len(values),
                insufficient=not values,
            )
        )
    return tuple(out)


def no_evidence_note(lags: tuple[NewBusinessLag, ...]) -> str | None:
    """The caveat for lags without evidence (``None`` when every lag has some)."""
    missing = [x.bucket for x in lags if x.insufficient]
    if not missing:
        return None
    return (
        f"no evidence for new business in {missing}: no complete past period at that lag "
        "lies inside the history, so those periods carry no new business (insufficient "
        "history, not a measured 0)"
    )
