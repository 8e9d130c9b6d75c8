"""Velocity: how long deals spend in each stage, how long sales take, and money per day.

:class:`Velocity` measures

- **time in stage** (days): median, mean and 90th percentile of the stays in each stage,
  with their count. A *stay* is one visit of a stage; re-entries are separate stays. By
  default only *completed* stays count (those that ended by ``as_of``); with
  ``include_open_stays=True`` the still-running stays of open deals count too, cut at
  ``as_of`` (they are censored, so they pull the figures down: off by default).
- per opportunity and stage, **HubSpot's four stage properties**: date entered (first
  entry), date exited (last exit), latest time in (the most recent stay, running ones up to
  ``as_of``) and cumulative time in (the sum over re-entries).
- **sales cycle length** (opened -> closed, days) of won and of lost deals.
- **pipeline velocity** = open opportunities x win rate x average won amount / average won
  cycle length, in money per day.

The ``window`` ``[start, end)`` selects what *ended* in it: completed stays that were left in
it and deals closed in it (running stays count when ``start <= as_of <= end``). Open
opportunities are counted at ``as_of``; the per-opportunity properties cover every
opportunity known at ``as_of`` whatever the window.

Numbers: durations in days as floats; the median is the usual one (mean of the two middle
values for an even count); the 90th percentile is the statistical percentile (docs/concepts.md), the
smallest observed value that at least 90 % of the values are at or below (nearest rank, no
interpolation); the win rate is a float; money (average won amount, pipeline velocity) is
``Decimal`` in one currency. Medians and percentiles are not additive, so the result keeps
the raw durations (sorted tuples of floats per stage) and ``merge`` recomputes everything
from them: a merge over a split of opportunities equals the whole exactly.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.velocity import Velocity
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
    ...    "stage": "prospecting", "amount": "3000", "currency": "EUR"},
    ...   {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-04T00:00:00Z",
    ...    "stage": "qualification"},
    ...   {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-11T00:00:00Z",
    ...    "stage": "closed-won"},
    ...   {"type": "opened", "opportunity_id": "b", "at": "2024-01-02T00:00:00Z",
    ...    "stage": "prospecting", "amount": "500", "currency": "EUR"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> v = Velocity().compute(h, as_of="2024-02-01T00:00:00Z")
    >>> v.stage("prospecting").median_days, v.won_cycle_mean_days, v.win_rate
    (3.0, 10.0, 1.0)
    >>> v.pipeline_velocity   # 1 open deal x 100 % x 3000 EUR / 10 days
    Decimal('300')
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency
from pipelinekit.reports._windows import (
    Window,
    currency_args,
    days,
    in_window,
    merged_currency,
    window_arg,
)
from pipelinekit.results import Result

__all__ = [
    "StageProperties",
    "StageTime",
    "Velocity",
    "VelocityResult",
    "percentile",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_DAY_US = Decimal(86_400_000_000)


def percentile(sorted_values: tuple[float, ...], q: float) -> float | None:
    """The smallest value that a share ``q`` of ``sorted_values`` is at or below.

    The nearest-rank statistical percentile (P90: at or below with probability 0.90);
    ``None`` for no values.

    Example:
        >>> percentile((1.0, 2.0, 3.0, 4.0, 10.0), 0.9), percentile((), 0.9)
        (10.0, None)
        >>> percentile(tuple(float(i) for i in range(1, 11)), 0.9)
        9.0
    """
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values) - 1e-12))
    return sorted_values[rank - 1]


def _mean(values: tuple[float, ...]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _median(values: tuple[float, ...]) -> float | None:
    return float(statistics.median(values)) if values else None


class StageTime(BaseModel):
    """Time spent in one stage.

    Attributes:
        stage, label: the stage.
        stays: how many stays are measured (completed, plus running ones if included).
        running: how many of them are still running (cut at ``as_of``).
        median_days, mean_days, p90_days: statistics of the durations (``None`` if no stay).
        durations: every measured duration in days, sorted (kept so merges are exact).
    """

    model_config = _FROZEN

    stage: str
    label: str
    stays: int
    running: int
    median_days: float | None
    mean_days: float | None
    p90_days: float | None
    durations: tuple[float, ...]

    @classmethod
    def of(cls, stage: str, label: str, durations: Iterable[float], running: int) -> StageTime:
        """Build the row from raw durations (the statistics are derived here)."""
        values = tuple(sorted(durations))
        return cls(
            stage=stage,
            label=label,
            stays=len(values),
            running=running,
            median_days=_median(values),
            mean_days=_mean(values),
            p90_days=percentile(values, 0.9),
            durations=values,
        )


class StageProperties(BaseModel):
    """HubSpot's four stage properties of one opportunity in one stage it visited.

    Attributes:
        opportunity_id, stage: which opportunity and stage.
        entries: how many times the stage was entered.
        date_entered: the first time it was entered.
        date_exited: the last time it was left (``None`` if never left).
        latest_days: the duration of the most recent stay (a running one up to ``as_of``).
        cumulative_days: the sum of all its stays' durations (running up to ``as_of``).
    """

    model_config = _FROZEN

    opportunity_id: str
    stage: str
    entries: int
    date_entered: datetime
    date_exited: datetime | None
    latest_days: float
    cumulative_days: float


class VelocityResult(Result):
    """Stage times, per-opportunity stage properties, sales cycles and pipeline velocity.

    Attributes:
        as_of, window, include_open_stays: how it was computed.
        currency: the currency of the money figures (``None`` if no won amount was seen).
        stages: a :class:`StageTime` per stage of the scheme, in funnel order.
        properties: :class:`StageProperties` per opportunity and visited stage, ordered by
            opportunity id and funnel order.
        open: opportunities open at ``as_of``.
        won, lost: deals won / lost in the window.
        won_cycles, lost_cycles: their sales cycle lengths in days, sorted.
        won_cycle_microseconds: the exact total of the won cycle lengths.
        won_amount: the total amount of the won deals that have one; ``won_with_amount``
            how many they are.
        win_rate: won / (won + lost), a float (``None`` with no closed deal).
        average_won_amount: won_amount / won_with_amount (``Decimal``, or ``None``).
        won_cycle_median_days, won_cycle_mean_days, lost_cycle_median_days,
        lost_cycle_mean_days: sales cycle statistics (``None`` without deals).
        pipeline_velocity: open x win rate x average won amount / average won cycle
            length in days: money per day, ``Decimal``; ``None`` when undefined, with the
            reason in ``velocity_note``.
    """

    as_of: datetime
    window: Window | None
    include_open_stays: bool
    currency: str | None
    stages: tuple[StageTime, ...]
    properties: tuple[StageProperties, ...]
    open: int
    won: int
    lost: int
    won_cycles: tuple[float, ...]
    lost_cycles: tuple[float, ...]
    won_cycle_microseconds: int
    won_amount: Decimal
    won_with_amount: int
    win_rate: float | None
    average_won_amount: Decimal | None
    won_cycle_median_days: float | None
    won_cycle_mean_days: float | None
    lost_cycle_median_days: float | None
    lost_cycle_mean_days: float | None
    pipeline_velocity: Decimal | None
    velocity_note: str | None

    def stage(self, key: str) -> StageTime:
        """The time-in-stage row of ``key``.

        Raises:
            ArgumentError: no such stage.
        """
        for row in self.stages:
            if row.stage == key:
                return row
        raise ArgumentError(
            "stage", f"unknown stage key {key!r}; stages are {[r.stage for r in self.stages]}"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per stage: the time-in-stage statistics (raw durations left out)."""
        return [row.model_dump(exclude={"durations"}) for row in self.stages]

    def property_records(self) -> list[dict[str, Any]]:
        """One dict per opportunity and visited stage: HubSpot's four stage properties."""
        return [p.model_dump() for p in self.properties]

    def summary_records(self) -> list[dict[str, Any]]:
        """One dict: counts, win rate, sales cycles and pipeline velocity."""
        return [
            {
                "open": self.open,
                "won": self.won,
                "lost": self.lost,
                "win_rate": self.win_rate,
                "average_won_amount": self.average_won_amount,
                "won_cycle_median_days": self.won_cycle_median_days,
                "won_cycle_mean_days": self.won_cycle_mean_days,
                "lost_cycle_median_days": self.lost_cycle_median_days,
                "lost_cycle_mean_days": self.lost_cycle_mean_days,
                "pipeline_velocity": self.pipeline_velocity,
                "currency": self.currency,
                "velocity_note": self.velocity_note,
            }
        ]

    def _html_title(self) -> str:
        return f"Time in stage as of {self.as_of.isoformat()}"

    def merge(self, other: VelocityResult) -> VelocityResult:
        """The result over both sets of opportunities, recomputed from the raw figures.

        Raises:
            ArgumentError: different as_of, window, include_open_stays or stages.
            CurrencyError: the results are in different currencies.
        """
        if not isinstance(other, VelocityResult):
            raise ArgumentError("other", f"expected a VelocityResult, got {other!r}")
        for name in ("as_of", "window", "include_open_stays"):
            if getattr(self, name) != getattr(other, name):
                raise ArgumentError(
                    "other",
                    f"cannot merge results with different {name}: "
                    f"{getattr(self, name)!r} != {getattr(other, name)!r}",
                )
        if [s.stage for s in self.stages] != [s.stage for s in other.stages]:
            raise ArgumentError("other", "cannot merge results over different stages")
        order = {s.stage: i for i, s in enumerate(self.stages)}
        return _build(
            as_of=self.as_of,
            window=self.window,
            include_open_stays=self.include_open_stays,
            currency=merged_currency(self.currency, other.currency),
            stages=tuple(
                StageTime.of(a.stage, a.label, a.durations + b.durations, a.running + b.running)
                for a, b in zip(self.stages, other.stages, strict=True)
            ),
            properties=_ordered(self.properties + other.properties, order),
            open_count=self.open + other.open,
            won=self.won + other.won,
            lost=self.lost + other.lost,
            won_cycles=self.won_cycles + other.won_cycles,
            lost_cycles=self.lost_cycles + other.lost_cycles,
            won_cycle_us=self.won_cycle_microseconds + other.won_cycle_microseconds,
            won_amount=EXACT.add(self.won_amount, other.won_amount),
            won_with_amount=self.won_with_amount + other.won_with_amount,
        )


class Velocity:
    """Time in stage, sales cycle lengths and pipeline velocity (see the module docs).

    Args:
        window: ``(start, end)``: measure stays left and deals closed in ``[start, end)``;
            ``None`` measures everything up to ``as_of``.
        include_open_stays: also count the still-running stays of open deals, cut at
            ``as_of`` (default ``False``: only completed stays).
        currency: the reporting currency; ``None`` requires a single currency.
        rates: :class:`~pipelinekit.money.FxRates` to convert other currencies (dated
            rates apply on the close date).

    Raises:
        ArgumentError: a bad window, currency or rates (named in the error).

    Example:
        >>> from pipelinekit import demo
        >>> from pipelinekit.reports.velocity import Velocity
        >>> v = Velocity().compute(demo.demo_history(opportunities=30, seed=3),
        ...                        as_of="2024-09-30T00:00:00Z")
        >>> v.currency, v.pipeline_velocity is not None
        ('EUR', True)
    """

    def __init__(
        self,
        *,
        window: tuple[Instant, Instant] | None = None,
        include_open_stays: bool = False,
        currency: str | None = None,
        rates: FxRates | None = None,
    ) -> None:
        self.window = window_arg(window)
        if not isinstance(include_open_stays, bool):
            raise ArgumentError(
                "include_open_stays", f"expected True or False, got {include_open_stays!r}"
            )
        self.include_open_stays = include_open_stays
        currency_args(currency, rates)
        self.currency = currency
        self.rates = rates

    def __repr__(self) -> str:
        return (
            f"Velocity(window={self.window!r}, include_open_stays={self.include_open_stays!r}, "
            f"currency={self.currency!r})"
        )

    def compute(self, history: History, *, as_of: Instant) -> VelocityResult:
        """Stage times, stage properties, cycles and velocity as of ``as_of``.

        Raises:
            CurrencyError: won amounts in several currencies without ``currency``/``rates``.
        """
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        pipeline = history.as_of(when)
        to_rep = ReportingCurrency(self.currency, self.rates)
        window = self.window
        running_counts = window is None or window[0] <= when <= window[1]
        durations: dict[str, list[float]] = {key: [] for key in scheme.keys}
        running: dict[str, int] = dict.fromkeys(scheme.keys, 0)
        properties: list[StageProperties] = []
        won = lost = won_with_amount = won_cycle_us = open_count = 0
        won_cycles: list[float] = []
        lost_cycles: list[float] = []
        won_amount = Decimal(0)
        for opp in pipeline.values():
            open_count += opp.is_open
            for visit in opp.path:
                if visit.exited_at is not None:
                    if in_window(visit.exited_at, window):
                        durations[visit.stage].append(days(visit.exited_at - visit.entered_at))
                elif opp.is_open and self.include_open_stays and running_counts:
                    durations[visit.stage].append(days(when - visit.entered_at))
                    running[visit.stage] += 1
            properties.extend(_properties(opp.id, opp.path, when))
            if opp.is_open or opp.closed_at is None or not in_window(opp.closed_at, window):
                continue
            cycle = opp.closed_at - opp.opened_at
            if opp.is_won:
                won += 1
                won_cycles.append(days(cycle))
                won_cycle_us += cycle // timedelta(microseconds=1)
                if opp.amount is not None:
                    amount = to_rep(opp.amount, opp.currency, on=opp.closed_at.date())
                    won_amount = EXACT.add(won_amount, amount)
                    won_with_amount += 1
            else:
                lost += 1
                lost_cycles.append(days(cycle))
        order = {key: i for i, key in enumerate(scheme.keys)}
        return _build(
            as_of=when,
            window=window,
            include_open_stays=self.include_open_stays,
            currency=to_rep.currency,
            stages=tuple(
                StageTime.of(s.key, s.label, durations[s.key], running[s.key])
                for s in scheme.stages
            ),
            properties=_ordered(tuple(properties), order),
            open_count=open_count,
            won=won,
            lost=lost,
            won_cycles=tuple(won_cycles),
            lost_cycles=tuple(lost_cycles),
            won_cycle_us=won_cycle_us,
            won_amount=won_amount,
            won_with_amount=won_with_amount,
        )


def _properties(oid: str, path: Iterable[Any], when: datetime) -> list[StageProperties]:
    firsts: dict[str, datetime] = {}
    exits: dict[str, datetime] = {}
    latest: dict[str, float] = {}
    total: dict[str, timedelta] = {}
    entries: dict[str, int] = {}
    for visit in path:
        end = visit.exited_at if visit.exited_at is not None else when
        stay = end - visit.entered_at
        firsts.setdefault(visit.stage, visit.entered_at)
        if visit.exited_at is not None:
            exits[visit.stage] = visit.exited_at
        latest[visit.stage] = days(stay)
        total[visit.stage] = total.get(visit.stage, timedelta(0)) + stay
        entries[visit.stage] = entries.get(visit.stage, 0) + 1
    return [
        StageProperties(
            opportunity_id=oid,
            stage=stage,
            entries=entries[stage],
            date_entered=first,
            date_exited=exits.get(stage),
            latest_days=latest[stage],
            cumulative_days=days(total[stage]),
        )
        for stage, first in firsts.items()
    ]


def _ordered(
    properties: tuple[StageProperties, ...], order: dict[str, int]
) -> tuple[StageProperties, ...]:
    return tuple(sorted(properties, key=lambda p: (p.opportunity_id, order[p.stage])))


def _build(
    *,
    as_of: datetime,
    window: Window | None,
    include_open_stays: bool,
    currency: str | None,
    stages: tuple[StageTime, ...],
    properties: tuple[StageProperties, ...],
    open_count: int,
    won: int,
    lost: int,
    won_cycles: tuple[float, ...],
    lost_cycles: tuple[float, ...],
    won_cycle_us: int,
    won_amount: Decimal,
    won_with_amount: int,
) -> VelocityResult:
    won_sorted = tuple(sorted(won_cycles))
    lost_sorted = tuple(sorted(lost_cycles))
    average = won_amount / won_with_amount if won_with_amount else None
    velocity: Decimal | None = None
    note: str | None = None
    if won + lost == 0:
        note = "no deal was closed in the window: the win rate is undefined"
    elif won == 0:
        note = "no deal was won in the window: average won amount and cycle are undefined"
    elif average is None:
        note = "no won deal has an amount: the average won amount is undefined"
    elif won_cycle_us == 0:
        note = "the won deals' average cycle length is 0 days"
    else:
        cycle_days = Decimal(won_cycle_us) / _DAY_US
        velocity = Decimal(open_count) * won * average * won / ((won + lost) * cycle_days)
    return VelocityResult(
        as_of=as_of,
        window=window,
        include_open_stays=include_open_stays,
        currency=currency,
        stages=stages,
        properties=properties,
        open=open_count,
        won=won,
        lost=lost,
        won_cycles=won_sorted,
        lost_cycles=lost_sorted,
        won_cycle_microseconds=won_cycle_us,
        won_amount=won_amount,
        won_with_amount=won_with_amount,
        win_rate=won / (won + lost) if won + lost else None,
        average_won_amount=average,
        won_cycle_median_days=_median(won_sorted),
        won_cycle_mean_days=_mean(won_sorted),
        lost_cycle_median_days=_median(lost_sorted),
        lost_cycle_mean_days=_mean(lost_sorted),
        pipeline_velocity=velocity,
        velocity_note=note,
    )
