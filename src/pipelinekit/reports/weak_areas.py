"""Weak areas: stages holding too few or too many deals for the way the funnel flows.

The pipeline report shows *weak areas*, says the Polish pipeline article: e.g. too few
contracts at the contract stage and too many at the offer stage, so effort should move to
closing offers.
:class:`WeakAreas` makes that judgement from the history itself, with Little's law:

    expected count in a stage = arrival rate into the stage x average time in it

- the **arrival rate** (per day) is the number of entries into the stage during the span
  (re-entries count) divided by the span's length in days;
- the **average time in the stage** (days) is the mean of the completed stays that ended
  during the span;
- the **span** is the ``window`` cut at ``as_of``; without a window it runs from the first
  opening in the history to ``as_of``.

Each open stage's actual count at ``as_of`` is compared with the expectation: a ratio
actual / expected below ``1 - tolerance`` is a **deficit**, above ``1 + tolerance`` an
**excess** (an actual count with an expectation of 0 is an excess too). Flagged stages are
sorted by severity: the size of the gap in deals, largest first. The expected value is the
expected count times the average amount of the deals that entered the stage during the span
(their amount at ``as_of``), rounded to cents; the actual value is the amount open in the
stage at ``as_of``.

Assumptions: the funnel is in a steady state over the span (arrivals and times in stage
neither grow nor shrink), and arrivals are measured over the span, so conversion rates and
durations are those of the span. Rates, times, counts expected and ratios are floats;
money is ``Decimal``.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.weak_areas import WeakAreas
    >>> recs = []
    >>> for i in range(10):   # a deal every 2 days; each spends 4 days in prospecting
    ...     oid = f"o{i}"
    ...     recs.append({"type": "opened", "opportunity_id": oid, "stage": "prospecting",
    ...                  "at": f"2024-01-{1 + 2 * i:02d}T00:00:00Z"})
    ...     recs.append({"type": "stage_changed", "opportunity_id": oid, "stage": "closed-lost",
    ...                  "at": f"2024-01-{5 + 2 * i:02d}T00:00:00Z"})
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = WeakAreas().compute(h, as_of="2024-01-21T00:00:00Z")
    >>> row = r.stage("prospecting")   # 10 arrivals / 20 days x 4 days = 2 expected
    >>> row.expected_count, row.actual_count, row.ratio, row.status
    (2.0, 1, 0.5, 'deficit')
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency
from pipelinekit.reports._windows import Window, currency_args, days, merged_currency, window_arg
from pipelinekit.results import Result

__all__ = ["StageBalance", "Status", "WeakAreas", "WeakAreasResult"]

Status = Literal["deficit", "excess", "ok", "no data"]
_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_DAY_US = 86_400_000_000


class StageBalance(BaseModel):
    """One open stage: actual against steady-state expectation.

    Attributes:
        stage, label: the stage.
        arrivals: entries into the stage during the span.
        stays, stay_microseconds: completed stays that ended during the span and their
            total length (exact).
        arrival_rate_per_day: arrivals ÷ span length in days (``None`` for an empty span).
        mean_days: average time in the stage (``None`` without completed stays).
        expected_count: arrival rate x mean days (``None`` when either is unknown).
        actual_count: open deals in the stage at ``as_of``.
        difference: actual - expected (deals); ``ratio``: actual ÷ expected (``None`` when
            the expectation is 0 or unknown).
        arrival_amount, arrivals_with_amount: the amounts of the arriving deals (at
            ``as_of``) and how many have one; ``expected_value`` = expected count x their
            average, rounded to cents.
        actual_value: the open amount in the stage at ``as_of``.
        status: ``"deficit"``, ``"excess"``, ``"ok"`` or ``"no data"``.
        severity: the size of the gap in deals (``abs(difference)``), 0 when not flagged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    label: str
    arrivals: int
    stays: int
    stay_microseconds: int
    arrival_rate_per_day: float | None
    mean_days: float | None
    expected_count: float | None
    actual_count: int
    difference: float | None
    ratio: float | None
    arrival_amount: Decimal
    arrivals_with_amount: int
    expected_value: Decimal | None
    actual_value: Decimal
    status: Status
    severity: float


class WeakAreasResult(Result):
    """Per open stage, actual against expected counts and values, with the flags.

    Attributes:
        as_of, window, tolerance: how it was computed.
        span_start, span_end: the span arrivals and stays were measured over (``None``
            start for an empty history); ``span_days`` its length.
        currency: the currency of the values.
        stages: a :class:`StageBalance` per open stage, in funnel order.

    ``flagged`` lists the deficits and excesses, most severe first.
    """

    as_of: datetime
    window: Window | None
    tolerance: float
    span_start: datetime | None
    span_end: datetime
    span_days: float
    currency: str | None
    stages: tuple[StageBalance, ...]

    @property
    def flagged(self) -> tuple[StageBalance, ...]:
        """The stages in deficit or excess, largest gap (in deals) first."""
        order = {row.stage: i for i, row in enumerate(self.stages)}
        flagged = [r for r in self.stages if r.status in ("deficit", "excess")]
        return tuple(sorted(flagged, key=lambda r: (-r.severity, order[r.stage])))

    def stage(self, key: str) -> StageBalance:
        """The row of open stage ``key``.

        Raises:
            ArgumentError: no such open stage.
        """
        for row in self.stages:
            if row.stage == key:
                return row
        raise ArgumentError(
            "stage", f"unknown open stage {key!r}; rows are {[r.stage for r in self.stages]}"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per open stage in funnel order (raw sums left out)."""
        hidden = {"stay_microseconds", "arrival_amount", "arrivals_with_amount"}
        return [row.model_dump(exclude=hidden) for row in self.stages]

    def _html_title(self) -> str:
        flags = ", ".join(f"{r.stage} {r.status}" for r in self.flagged) or "none"
        return f"Weak areas as of {self.as_of.isoformat()}: {flags}"

    def merge(self, other: WeakAreasResult) -> WeakAreasResult:
        """The comparison over both sets of opportunities (sums add, figures recomputed).

        Without a window, the span starts at the earlier of the two first openings.

        Raises:
            ArgumentError: different as_of, window, tolerance or stages.
            CurrencyError: the results are in different currencies.
        """
        if not isinstance(other, WeakAreasResult):
            raise ArgumentError("other", f"expected a WeakAreasResult, got {other!r}")
        for name in ("as_of", "window", "tolerance", "span_end"):
            if getattr(self, name) != getattr(other, name):
                raise ArgumentError(
                    "other",
                    f"cannot merge results with different {name}: "
                    f"{getattr(self, name)!r} != {getattr(other, name)!r}",
                )
        if [r.stage for r in self.stages] != [r.stage for r in other.stages]:
            raise ArgumentError("other", "cannot merge results over different stages")
        starts = [s for s in (self.span_start, other.span_start) if s is not None]
        return _build(
            as_of=self.as_of,
            window=self.window,
            tolerance=self.tolerance,
            span_start=min(starts) if starts else None,
            span_end=self.span_end,
            currency=merged_currency(self.currency, other.currency),
            sums=[
                _Sums(
                    stage=a.stage,
                    label=a.label,
                    arrivals=a.arrivals + b.arrivals,
                    stays=a.stays + b.stays,
                    stay_us=a.stay_microseconds + b.stay_microseconds,
                    actual=a.actual_count + b.actual_count,
                    actual_value=EXACT.add(a.actual_value, b.actual_value),
                    arrival_amount=EXACT.add(a.arrival_amount, b.arrival_amount),
                    with_amount=a.arrivals_with_amount + b.arrivals_with_amount,
                )
                for a, b in zip(self.stages, other.stages, strict=True)
            ],
        )


class WeakAreas:
    """Flag stages with too few or too many deals against Little's law (see module docs).

    Args:
        window: ``(start, end)``: measure arrivals and stays in ``[start, end)`` (cut at
            ``as_of``); ``None``: from the first opening to ``as_of``.
        tolerance: how far actual may stray from expected before it is flagged, as a share
            of the expectation (0.25: flag below 75 % or above 125 %); finite, >= 0.
        currency: the reporting currency of the values; ``None`` requires one currency.
        rates: :class:`~pipelinekit.money.FxRates` for other currencies (on ``as_of``).

    Raises:
        ArgumentError: a bad window, tolerance, currency or rates.

    Example:
        >>> from pipelinekit import demo
        >>> from pipelinekit.reports.weak_areas import WeakAreas
        >>> r = WeakAreas(tolerance=0.5).compute(demo.demo_history(opportunities=30, seed=3),
        ...                                      as_of="2024-09-30T00:00:00Z")
        >>> all(row.status in ("deficit", "excess") for row in r.flagged)
        True
    """

    def __init__(
        self,
        *,
        window: tuple[Instant, Instant] | None = None,
        tolerance: float = 0.25,
        currency: str | None = None,
        rates: FxRates | None = None,
    ) -> None:
        self.window = window_arg(window)
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, int | float)
            or not math.isfinite(tolerance)
            or tolerance < 0
        ):
            raise ArgumentError(
                "tolerance", f"expected a finite number >= 0 (e.g. 0.25), got {tolerance!r}"
            )
        self.tolerance = float(tolerance)
        currency_args(currency, rates)
        self.currency = currency
        self.rates = rates

    def __repr__(self) -> str:
        return (
            f"WeakAreas(window={self.window!r}, tolerance={self.tolerance!r}, "
            f"currency={self.currency!r})"
        )

    def compute(self, history: History, *, as_of: Instant) -> WeakAreasResult:
        """Compare each open stage with its steady-state expectation as of ``as_of``.

        Raises:
            CurrencyError: amounts in several currencies without ``currency``/``rates``.
        """
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        pipeline = history.as_of(when)
        to_rep = ReportingCurrency(self.currency, self.rates)
        if self.window is not None:
            start: datetime | None = self.window[0]
            end = min(self.window[1], when)
            closed_end = self.window[1] > when
        else:
            start = min((o.opened_at for o in pipeline.values()), default=None)
            end, closed_end = when, True

        def in_span(t: datetime) -> bool:
            return start is not None and start <= t and (t <= end if closed_end else t < end)

        sums = {s.key: _Sums(stage=s.key, label=s.label) for s in scheme.stages if s.is_open}
        for opp in pipeline.values():
            amount = (
                None if opp.amount is None else to_rep(opp.amount, opp.currency, on=when.date())
            )
            if opp.is_open and opp.stage in sums:
                row = sums[opp.stage]
                row.actual += 1
                if amount is not None:
                    row.actual_value = EXACT.add(row.actual_value, amount)
            for visit in opp.path:
                row_or_none = sums.get(visit.stage)
                if row_or_none is None:
                    continue
                if in_span(visit.entered_at):
                    row_or_none.arrivals += 1
                    if amount is not None:
                        row_or_none.arrival_amount = EXACT.add(row_or_none.arrival_amount, amount)
                        row_or_none.with_amount += 1
                if visit.exited_at is not None and in_span(visit.exited_at):
                    row_or_none.stays += 1
                    row_or_none.stay_us += (visit.exited_at - visit.entered_at) // timedelta(
                        microseconds=1
                    )
        return _build(
            as_of=when,
            window=self.window,
            tolerance=self.tolerance,
            span_start=start,
            span_end=end,
            currency=to_rep.currency,
            sums=list(sums.values()),
        )


class _Sums:
    """The additive raw figures of one stage (mutable while counting)."""

    __slots__ = (
        "actual",
        "actual_value",
        "arrival_amount",
        "arrivals",
        "label",
        "stage",
        "stay_us",
        "stays",
        "with_amount",
    )

    def __init__(
        self,
        *,
        stage: str,
        label: str,
        arrivals: int = 0,
        stays: int = 0,
        stay_us: int = 0,
        actual: int = 0,
        actual_value: Decimal = _ZERO,
        arrival_amount: Decimal = _ZERO,
        with_amount: int = 0,
    ) -> None:
        self.stage = stage
        self.label = label
        self.arrivals = arrivals
        self.stays = stays
        self.stay_us = stay_us
        self.actual = actual
        self.actual_value = actual_value
        self.arrival_amount = arrival_amount
        self.with_amount = with_amount


def _build(
    *,
    as_of: datetime,
    window: Window | None,
    tolerance: float,
    span_start: datetime | None,
    span_end: datetime,
    currency: str | None,
    sums: list[_Sums],
) -> WeakAreasResult:
    span = days(span_end - span_start) if span_start is not None else 0.0
    rows = []
    for s in sums:
        rate = s.arrivals / span if span > 0 else None
        mean = s.stay_us / s.stays / _DAY_US if s.stays else None
        expected = rate * mean if rate is not None and mean is not None else None
        status: Status = "no data"
        difference = ratio = None
        expected_value = None
        if expected is not None:
            difference = s.actual - expected
            ratio = s.actual / expected if expected > 0 else None
            if ratio is None:
                status = "excess" if s.actual > 0 else "ok"
            elif ratio < 1 - tolerance:
                status = "deficit"
            elif ratio > 1 + tolerance:
                status = "excess"
            else:
                status = "ok"
            if s.with_amount:
                average = s.arrival_amount / s.with_amount
                expected_value = (Decimal(expected) * average).quantize(_CENT)
        flagged = status in ("deficit", "excess")
        rows.append(
            StageBalance(
                stage=s.stage,
                label=s.label,
                arrivals=s.arrivals,
                stays=s.stays,
                stay_microseconds=s.stay_us,
                arrival_rate_per_day=rate,
                mean_days=mean,
                expected_count=expected,
                actual_count=s.actual,
                difference=difference,
                ratio=ratio,
                arrival_amount=s.arrival_amount,
                arrivals_with_amount=s.with_amount,
                expected_value=expected_value,
                actual_value=s.actual_value,
                status=status,
                severity=abs(difference) if flagged and difference is not None else 0.0,
            )
        )
    return WeakAreasResult(
        as_of=as_of,
        window=window,
        tolerance=tolerance,
        span_start=span_start,
        span_end=span_end,
        span_days=span,
        currency=currency,
        stages=tuple(rows),
    )
