"""The distribution of outcomes: how much revenue a period may bring, and how likely a target is.

Each open deal is won (its whole amount ``a``) with probability ``p`` or brings nothing, and
deals are **independent** of each other. A bucket's revenue is its already-won revenue plus
the sum of those Bernoulli-weighted amounts, so

- its mean is ``won + Σ a p`` and its variance ``Σ a² p (1 − p)``, both exact (Decimal);
- its quantiles are **exact** when the bucket holds at most ``exact_limit`` open deals: the
  discrete distribution is built by convolving one deal at a time over the sums of amounts
  (at most ``2**n`` outcomes, fewer when sums coincide);
- for more deals they are an approximation, a **normal mixture**: the ten deals with the
  largest variance (and the won revenue) keep their exact discrete law, the remaining deals
  are summed as one normal variable (central limit theorem, exact mean and variance), and
  quantiles solve ``Σ_y P(Y = y) Φ((x − y − μ) / σ) = q`` to the cent. Measured in
  tests/test_forecast_distribution.py against the exact law: on a 60-deal pipeline
  (amounts 1 000-99 000, probabilities 0.1-0.9) its P10/P50/P90 are off by +0.40 %,
  −0.47 %, +0.32 % of a standard deviation (a plain normal curve: +1.12 %, −1.17 %,
  +0.54 %). With one 200 000 "whale" among forty small deals (all p = 0.1) the sum is
  bimodal: the mixture's P10/P50 are off by +0.14 %/+0.70 % of sigma and
  P(X ≥ 100 000) is 0.1013 against an exact 0.1018, while the normal curve is off by
  −19 %/+31 % and gives 0.233; the P90 sits exactly on the whale's 10 % knife edge and
  no smooth approximation gets it (mixture −60 %, normal −104 %). Each
  row's ``law`` says which was used (``exact``, ``mixture``, or ``normal`` with
  ``exact_limit=0``).

Quantiles are statistical percentiles: P10 is the revenue the outcome stays at
or below with probability 0.10 (the smallest ``x`` with ``P(X ≤ x) ≥ 0.10``), P90 at or
below with probability 0.90. The oil-and-gas convention is the reverse (P90 there is the
amount exceeded with probability 0.90).

**When.** With a probability source that says when (a learned forecaster such as
:class:`~pipelinekit.forecasts.markov.MarkovForecast`, whose ``DealForecast.periods`` give
each deal's chance of being won in each horizon period), a deal is not tied to the period
of its typed close date: it brings its amount to period ``h`` with chance ``p_h`` and to
``later`` with the rest, and a bucket's law is the sum over every deal with a chance there
(a deal is won in at most one period; each bucket's law only needs its marginal chances).
The source's new business joins each period's law as one of its past values, each equally
likely. **Past errors** (``period_error``) multiply the open and new revenue by a factor
drawn from the method's own past ``actual / forecast`` ratios
(:mod:`pipelinekit.forecasts.period_error`), so the band carries what chance alone does not.

:class:`MonteCarloForecast` simulates the same model with numpy (the ``sim`` extra) and can
add a common shock per period: correlated deals, which widen the spread.

Example:
    >>> from pipelinekit import demo
    >>> from pipelinekit.forecasts.distribution import OutcomeDistribution
    >>> f = OutcomeDistribution(horizon=3).compute(
    ...     demo.demo_history(opportunities=60, seed=42), as_of="2024-09-30T00:00:00+00:00")
    >>> r = f.row("2024-10")
    >>> r.p10, r.p50, r.p90
    (Decimal('9700'), Decimal('50400'), Decimal('79300'))
    >>> round(f.probability_of_reaching(50_000, "2024-10"), 4)
    0.5175
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from pipelinekit._time import Instant, instant
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._learned import check_count
from pipelinekit.forecasts._placement import (
    GroupBy,
    Placement,
    ProbabilitySource,
    check_probabilities,
    deal_forecasts,
    place,
    probability_function,
    skeleton_rows,
)
from pipelinekit.forecasts._spread import (
    chances,
    says_when,
    source_forecast,
    spread_deals,
    spread_rows,
    with_new_business,
)
from pipelinekit.forecasts.new_business import NewBusinessLag
from pipelinekit.forecasts.period_error import (
    PastForecast,
    PeriodError,
    check_period_error,
    given_period_error,
    learn_period_error,
)
from pipelinekit.forecasts.result import LATER, DealForecast, Forecast, ForecastRow, std_of
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, total
from pipelinekit.periods import Period, PeriodKind

if TYPE_CHECKING:  # pragma: no cover
    import numpy

__all__ = [
    "SUPPORT",
    "DistributionForecast",
    "MonteCarloForecast",
    "OutcomeDistribution",
    "SimulatedForecast",
    "TrialFactors",
    "TrialTotals",
]

Timing = Literal["close date", "deal periods"]
"""Where a deal's revenue may land: its close date's bucket, or every horizon period by the
per-period chances of its probability source (``DealForecast.periods``)."""

Law = Literal["exact", "mixture", "normal", "past errors"]
"""How a row's quantiles were found: ``exact``; ``mixture`` (largest deals exact, the rest
normal); ``normal`` (``exact_limit=0``: every deal by the normal approximation);
``past errors`` (one of those, times the period's error factor: see
:mod:`pipelinekit.forecasts.period_error`)."""

MAX_EXACT_LIMIT = 24
"""The largest ``exact_limit`` accepted: 2**24 outcomes is already tens of seconds."""

_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_QUANTILES = (0.1, 0.5, 0.9)
_TOLERANCE = 1e-12  # float rounding of cumulative probabilities in the exact law


def _bucket_of(period: str | Period) -> str:
    if isinstance(period, Period):
        return period.label
    if isinstance(period, str):
        return period
    raise ArgumentError(
        "period", f"expected a bucket label like '2024-10' or a Period, got {period!r}"
    )


def _decimal(value: Decimal | int | str | float, argument: str) -> Decimal:
    if isinstance(value, bool):
        raise ArgumentError(argument, f"expected an amount, got {value!r}")
    try:
        out = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (ArithmeticError, ValueError, TypeError):
        raise ArgumentError(argument, f"expected an amount, got {value!r}") from None
    if not out.is_finite():
        raise ArgumentError(argument, f"expected a finite amount, got {value!r}")
    return out


# -- the law of one bucket -----------------------------------------------------------------


@dataclass(frozen=True)
class _Exact:
    """The exact discrete law: sorted outcomes and their cumulative probabilities."""

    values: tuple[Decimal, ...]
    probs: tuple[float, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(
        cls, won: Decimal, deals: Iterable[tuple[Decimal, float]], new: tuple[Decimal, ...] = ()
    ) -> _Exact:
        law: dict[Decimal, float] = {}
        for value in new or (_ZERO,):  # new business: each past value equally likely
            start = EXACT.add(won, value)
            law[start] = law.get(start, 0.0) + 1.0 / max(1, len(new))
        for amount, p in deals:
            if p == 0 or amount == 0:
                continue
            nxt: dict[Decimal, float] = {}
            for value, prob in law.items():
                if p < 1:
                    nxt[value] = nxt.get(value, 0.0) + prob * (1 - p)
                hit = EXACT.add(value, amount)
                nxt[hit] = nxt.get(hit, 0.0) + prob * p
            law = nxt
        values = tuple(sorted(law))
        probs = tuple(law[v] for v in values)
        cumulative: list[float] = []
        running = 0.0
        for prob in probs:
            running += prob
            cumulative.append(running)
        return cls(values, probs, tuple(cumulative))

    def quantile(self, q: float) -> Decimal:
        i = bisect.bisect_left(self.cumulative, q - _TOLERANCE)
        return self.values[min(i, len(self.values) - 1)]

    def at_least(self, target: Decimal) -> float:
        i = bisect.bisect_left(self.values, target)
        return min(1.0, math.fsum(self.probs[i:]))


@dataclass(frozen=True)
class _Mixture:
    """The largest deals exactly, the rest by the normal approximation (central limit).

    The revenue is ``Y + R``: ``Y`` (won revenue plus the ``whales`` deals with the
    largest variance ``a² p (1 − p)``) has its exact discrete law; ``R`` (every other deal)
    is taken as normal with its exact mean and variance. Then
    ``P(X <= x) = Σ_y P(Y = y) Φ((x − y − μ_R) / σ_R)``; quantiles are found by bisection to
    the cent. Keeping the big deals exact is what makes it robust: one whale deal makes the
    sum bimodal, which no normal or Cornish-Fisher curve can follow.
    """

    big: _Exact
    mean: float
    std: float
    low: Decimal
    high: Decimal
    law: Law

    @classmethod
    def of(
        cls,
        won: Decimal,
        deals: list[tuple[Decimal, float]],
        whales: int,
        new: tuple[Decimal, ...] = (),
    ) -> _Mixture:
        ranked = sorted(deals, key=lambda d: -(d[0] * d[0] * Decimal(repr(d[1] * (1 - d[1])))))
        rest = ranked[whales:]
        mean = math.fsum(float(a) * p for a, p in rest)
        std = math.sqrt(math.fsum(float(a) ** 2 * p * (1 - p) for a, p in rest))
        low = EXACT.add(won, min(new, default=_ZERO))
        high = total((won, max(new, default=_ZERO), *(a for a, _ in deals)))
        law: Law = "mixture" if whales else "normal"
        return cls(_Exact.of(won, ranked[:whales], new), mean, std, low, high, law)

    def _cdf(self, x: float) -> float:
        if self.std == 0:
            i = bisect.bisect_right(self.big.values, Decimal(repr(x - self.mean)))
            return self.big.cumulative[i - 1] if i else 0.0
        scale = self.std * math.sqrt(2)
        return math.fsum(
            p * 0.5 * math.erfc((float(y) + self.mean - x) / scale)
            for y, p in zip(self.big.values, self.big.probs, strict=True)
        )

    def quantile(self, q: float) -> Decimal:
        lo, hi = float(self.low), float(self.high)
        while hi - lo > 0.005:
            mid = (lo + hi) / 2
            if not lo < mid < hi:  # near 1e15 floats are farther apart than a cent
                break
            if self._cdf(mid) >= q:
                hi = mid
            else:
                lo = mid
        value = Decimal(repr(hi)).quantize(_CENT, rounding=ROUND_HALF_EVEN)
        return min(max(value, self.low), self.high)

    def at_least(self, target: Decimal) -> float:
        if target <= self.low:
            return 1.0
        if target > self.high:
            return 0.0
        return min(1.0, max(0.0, 1 - self._cdf(float(target))))


WHALES = 10
"""How many of a large bucket's deals (largest variance first) the approximation keeps exact."""

SUPPORT = 512
"""How many equally likely points the law of a bucket is reduced to, at most, before the
period error factor multiplies it."""
_NORMAL_POINTS = 32


@dataclass(frozen=True)
class _Factored:
    """``won + R·Y``: the law of ``won + Y`` with its open and new revenue ``Y`` multiplied
    by the period's error factor ``R`` (discrete: the past ratios and 1, with their weights;
    independent of ``Y``).

    ``Y`` is the exact law's outcomes when they are at most :data:`SUPPORT`, else reduced to
    :data:`SUPPORT` points of equal probability (their conditional means; the normal part of
    a mixture first becomes 32 equally likely points). The law of ``won + R·Y`` is then
    exact for that ``Y``: every factor times every point.
    """

    won: Decimal
    values: tuple[float, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(
        cls, base: _Exact | _Mixture, won: Decimal, factors: tuple[tuple[float, float], ...]
    ) -> _Factored:
        support = _support(base, won)
        total = math.fsum(w for _, w in factors)
        law: dict[float, float] = {}
        for r, w in factors:
            for y, p in support:
                x = r * y
                law[x] = law.get(x, 0.0) + p * w / total
        values = tuple(sorted(law))
        cumulative: list[float] = []
        running = 0.0
        for v in values:
            running += law[v]
            cumulative.append(running)
        return cls(won, values, tuple(cumulative))

    def quantile(self, q: float) -> Decimal:
        i = bisect.bisect_left(self.cumulative, q - _TOLERANCE)
        x = self.values[min(i, len(self.values) - 1)]
        return (self.won + Decimal(repr(x))).quantize(_CENT, rounding=ROUND_HALF_EVEN)

    def at_least(self, target: Decimal) -> float:
        i = bisect.bisect_left(self.values, float(target - self.won))
        below = self.cumulative[i - 1] if i else 0.0
        return min(1.0, max(0.0, 1 - below))


def _support(base: _Exact | _Mixture, won: Decimal) -> list[tuple[float, float]]:
    """The outcomes of ``base`` less ``won``, as at most :data:`SUPPORT` (value, chance)."""
    if isinstance(base, _Exact):
        pairs = [(float(v - won), p) for v, p in zip(base.values, base.probs, strict=True)]
    else:
        spread = [0.0]
        if base.std > 0:
            normal = NormalDist()
            spread = [
                base.std * normal.inv_cdf((i + 0.5) / _NORMAL_POINTS) for i in range(_NORMAL_POINTS)
            ]
        share = 1 / len(spread)
        pairs = sorted(
            (float(v - won) + base.mean + z, p * share)
            for v, p in zip(base.big.values, base.big.probs, strict=True)
            for z in spread
        )
    if len(pairs) <= SUPPORT:
        return pairs
    out: list[tuple[float, float]] = []
    mass = weighted = 0.0
    for y, p in pairs:
        mass += p
        weighted += y * p
        if mass >= 1 / SUPPORT:
            out.append((weighted / mass, mass))
            mass = weighted = 0.0
    if mass > 0:
        out.append((weighted / mass, mass))
    return out


def _law_of(
    won: Decimal,
    pairs: list[tuple[Decimal, float]],
    exact_limit: int,
    new: tuple[Decimal, ...] = (),
) -> _Exact | _Mixture:
    """The law of ``won`` + the deals' Bernoulli amounts + new business (uniform over
    its past values; a fixed amount when there is one value)."""
    if len(pairs) <= exact_limit:
        return _Exact.of(won, pairs, new)
    return _Mixture.of(won, pairs, min(WHALES, exact_limit), new)


def _law_name(law: _Exact | _Mixture | _Factored) -> Law:
    if isinstance(law, _Factored):
        return "past errors"
    return "exact" if isinstance(law, _Exact) else law.law


# -- the analytic result -------------------------------------------------------------------


class DistributionForecast(Forecast):
    """A :class:`Forecast` whose rows carry the law of each bucket's revenue.

    ``std`` is exact (rounded to cents), ``p10``/``p50``/``p90`` exact or approximated as
    each row's law says (see :meth:`to_records`, column ``law``). Quantiles and
    :meth:`probability_of_reaching` include already-won revenue.

    Attributes:
        exact_limit: the most open deals in a bucket for which the law is exact.
        timing: ``"close date"`` (each deal in the bucket of its expected close date) or
            ``"deal periods"`` (each deal in every horizon period with the chance its
            probability source gives it there, the rest of its probability in ``later``).
        new_business: the probability source's new-business table (with ``"deal
            periods"``): the past values each period's new business is drawn from.
        period_error: per horizon period, the scale of its error factor (empty: none).
        past_forecasts: the past forecasts a learned period error comes from.
        notes: caveats (new business without evidence or without spread, ...).
    """

    exact_limit: int
    timing: Timing = "close date"
    new_business: tuple[NewBusinessLag, ...] = ()
    period_error: tuple[PeriodError, ...] = ()
    past_forecasts: tuple[PastForecast, ...] = ()
    notes: tuple[str, ...] = ()
    _laws: dict[tuple[str, str | None], _Exact | _Mixture | _Factored] = PrivateAttr(
        default_factory=dict
    )

    def _law(self, bucket: str, group: str | None) -> _Exact | _Mixture | _Factored:
        key = (bucket, group)
        law = self._laws.get(key)
        if law is None:
            pairs = _pairs(self).get(key, [])
            law = self._laws[key] = _row_law(self, self.row(bucket, group), pairs)
        return law

    def to_records(self) -> list[dict[str, Any]]:
        """The rows of :class:`Forecast`, plus ``law``: how the quantiles were found."""
        records = super().to_records()
        for record, row in zip(records, self.rows, strict=True):
            record["law"] = _law_name(self._law(row.bucket, row.group))
        return records

    def quantile(self, q: float, period: str | Period, group: str | None = None) -> Decimal:
        """The revenue of ``period`` (won included) stays at or below this with probability q.

        Raises:
            ArgumentError: ``q`` outside (0, 1), or no such bucket.
        """
        if not isinstance(q, float | int) or not 0 < q < 1:
            raise ArgumentError("q", f"expected a probability strictly between 0 and 1, got {q!r}")
        return self._law(_bucket_of(period), group).quantile(float(q))

    def probability_of_reaching(
        self, target: Decimal | int | str | float, period: str | Period, group: str | None = None
    ) -> float:
        """P(revenue of ``period`` >= ``target``), already-won revenue included.

        Example:
            >>> from pipelinekit import demo
            >>> f = OutcomeDistribution().compute(
            ...     demo.demo_history(opportunities=60, seed=42),
            ...     as_of="2024-09-30T00:00:00+00:00")
            >>> f.probability_of_reaching(0, "2024-11")
            1.0
        """
        goal = _decimal(target, "target")
        return self._law(_bucket_of(period), group).at_least(goal)

    def merge(self, other: Forecast) -> DistributionForecast:
        """The distribution over both sets of opportunities (independent deals).

        The laws are rebuilt from the merged deals, so merging the forecasts of a split of
        opportunities gives exactly the forecast of the whole.

        Raises:
            ArgumentError: ``other`` is not a DistributionForecast with the same settings.
        """
        if not isinstance(other, DistributionForecast) or (
            other.exact_limit,
            other.timing,
            other.new_business,
            other.period_error,
            other.past_forecasts,
        ) != (
            self.exact_limit,
            self.timing,
            self.new_business,
            self.period_error,
            self.past_forecasts,
        ):
            raise ArgumentError(
                "other",
                "can only merge a DistributionForecast with the same exact_limit, timing, "
                "new business and period error (forecast the partitions with a learned "
                "forecaster given the merged evidence, and a given period_error)",
            )
        merged = super().merge(other)
        new = {(r.bucket, r.group): r.new for r in (*other.rows, *self.rows)}
        rows = tuple(r.model_copy(update={"new": new[r.bucket, r.group]}) for r in merged.rows)
        return _with_laws(merged.model_copy(update={"rows": rows}))


def _labels(forecast: Forecast) -> list[str]:
    """The forecast's horizon periods, in order."""
    out: list[str] = []
    for r in forecast.rows:
        if r.end is not None and r.bucket not in out:
            out.append(r.bucket)
    return out


Pairs = dict[tuple[str, str | None], list[tuple[Decimal, float]]]


def _pairs(forecast: DistributionForecast) -> Pairs:
    """Per (bucket, group): (amount, chance of landing there) of every deal with a chance."""
    out: Pairs = {}
    if forecast.timing == "close date":
        for d in forecast.deals:
            out.setdefault((d.bucket, d.group), []).append((d.amount, d.win_probability))
        return out
    labels = _labels(forecast)
    buckets = (*labels, LATER)
    for d in forecast.deals:
        for bucket, c in zip(buckets, chances(d, len(labels)), strict=True):
            if c > 0:
                out.setdefault((bucket, d.group), []).append((d.amount, float(c)))
    return out


def _new_values(forecast: DistributionForecast, row: ForecastRow) -> tuple[Decimal, ...]:
    return _new_values_of(forecast.new_business, row)


def _new_values_of(table: tuple[NewBusinessLag, ...], row: ForecastRow) -> tuple[Decimal, ...]:
    """The values the row's new business is drawn from (none: no new business)."""
    for x in table:
        if x.bucket == row.bucket and x.values and row.group is None:
            return x.values
    return (row.new,) if row.new else ()


def _new_variance(values: tuple[Decimal, ...]) -> Decimal:
    """The variance of new business drawn uniformly from ``values``."""
    if len(values) < 2:
        return _ZERO
    mean = total(values) / len(values)
    return total(EXACT.power(EXACT.subtract(v, mean), 2) for v in values) / len(values)


def _factors(errors: tuple[PeriodError, ...], bucket: str) -> tuple[tuple[float, float], ...]:
    """The error factors of a bucket (none for labelled buckets, without period error or
    without a past forecast)."""
    for e in errors:
        if e.bucket == bucket and e.ratios:
            return e.factors()
    return ()


def _row_law(
    forecast: DistributionForecast, row: ForecastRow, pairs: list[tuple[Decimal, float]]
) -> _Exact | _Mixture | _Factored:
    law = _law_of(row.won, pairs, forecast.exact_limit, _new_values(forecast, row))
    factors = _factors(forecast.period_error, row.bucket)
    return _Factored.of(law, row.won, factors) if factors else law


def _with_laws(forecast: Forecast) -> DistributionForecast:
    """A fresh DistributionForecast whose rows carry std and quantiles of their laws."""
    assert isinstance(forecast, DistributionForecast)  # merge and compute only pass these
    rows = []
    laws: dict[tuple[str, str | None], _Exact | _Mixture | _Factored] = {}
    by_row = _pairs(forecast)
    for row in forecast.rows:
        pairs = by_row.get((row.bucket, row.group), [])
        new = _new_values(forecast, row)
        law = laws[(row.bucket, row.group)] = _row_law(forecast, row, pairs)
        p10, p50, p90 = (law.quantile(q) for q in _QUANTILES)
        spread = _pair_variance(pairs) + _new_variance(new)
        factors = _factors(forecast.period_error, row.bucket)
        if factors:  # Var(R·Y) = E[R²] (Var Y + E[Y]²) − E[R]² E[Y]²
            weight = math.fsum(w for _, w in factors)
            r1 = Decimal(repr(math.fsum(r * w for r, w in factors) / weight))
            r2 = Decimal(repr(math.fsum(r * r * w for r, w in factors) / weight))
            mean = total(EXACT.multiply(a, Decimal(repr(p))) for a, p in pairs)
            if new:
                mean = EXACT.add(mean, total(new) / len(new))
            square = EXACT.multiply(mean, mean)
            spread = max(_ZERO, r2 * (spread + square) - r1 * r1 * square)
        rows.append(
            row.model_copy(update={"std": std_of(spread), "p10": p10, "p50": p50, "p90": p90})
        )
    # a new instance, not model_copy: model_copy would share the law cache of the original
    fresh = DistributionForecast.model_validate({**dict(forecast), "rows": tuple(rows)})
    fresh._laws.update(laws)
    return fresh


def _pair_variance(pairs: list[tuple[Decimal, float]]) -> Decimal:
    """Σ a² p (1 − p), exactly in the decimals of the chances."""
    terms = []
    for a, p in pairs:
        q = Decimal(repr(p))
        terms.append(EXACT.multiply(EXACT.multiply(a, a), EXACT.multiply(q, EXACT.subtract(1, q))))
    return total(terms)


@dataclass(frozen=True)
class _Laid:
    """Deals and rows laid out at ``when`` (before the laws)."""

    when: datetime
    currency: str | None
    deals: tuple[DealForecast, ...]
    rows: dict[tuple[str, str | None], ForecastRow]
    timing: Timing
    new_business: tuple[NewBusinessLag, ...]
    notes: tuple[str, ...]
    period_error: tuple[PeriodError, ...] = ()
    past_forecasts: tuple[PastForecast, ...] = ()


class _Configured:
    """Shared configuration of the two distribution forecasters."""

    def _configure(
        self,
        *,
        period: str | PeriodKind,
        horizon: int,
        group_by: GroupBy | None,
        probabilities: ProbabilitySource,
        currency: str | None,
        rates: FxRates | None,
        tz: tzinfo,
        categories: Mapping[str, str] | None,
        period_error: Literal["learned"] | Sequence[PeriodError] | None = None,
        error_periods: int = 6,
    ) -> None:
        self.period_error = check_period_error(period_error)
        self.error_periods = check_count("error_periods", error_periods, low=1)
        self.period = period
        self.horizon = horizon
        self.group_by = group_by
        self.probabilities = check_probabilities(probabilities)
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

    def _lay_out(self, history: History, as_of: Instant) -> _Laid:
        when = instant(as_of, argument="as_of")
        pipeline = history.until(when).as_of(when)
        layout = place(self._placement, pipeline, when)
        grouped = self._placement.group_by is not None
        source = source_forecast(self.probabilities, history, when)
        if isinstance(source, Forecast) and says_when(source, layout):
            deals = spread_deals(layout, source)
            rows = spread_rows(layout, deals, grouped)
            notes: list[str] = []
            labels = [p.label for p in layout.periods]
            table = with_new_business(rows, source, labels, grouped, notes)
            currency = layout.currency
            if currency is None and any(r.new for r in rows.values()):
                currency = source.currency
            laid = _Laid(when, currency, deals, rows, "deal periods", table, tuple(notes))
        else:
            deals = deal_forecasts(layout, probability_function(source))
            rows = skeleton_rows(layout, deals, grouped=grouped)
            laid = _Laid(when, layout.currency, deals, rows, "close date", (), ())
        return self._with_errors(laid, history, layout.periods)

    def _with_errors(self, laid: _Laid, history: History, periods: tuple[Period, ...]) -> _Laid:
        """The period error given, or learned from this forecaster's past forecasts."""
        if self.period_error is None:
            return laid
        if self.period_error != "learned":
            table = cast(tuple[PeriodError, ...], self.period_error)
            return dataclasses.replace(laid, period_error=given_period_error(table, periods))
        plain = OutcomeDistribution(
            period=self._placement.kind,
            horizon=self.horizon,
            group_by=self.group_by,
            probabilities=self.probabilities,
            currency=self.currency,
            rates=self.rates,
            tz=self.tz,
            categories=self.categories,
        )
        notes = list(laid.notes)
        errors, past = learn_period_error(
            lambda h, at: plain.compute(h, as_of=at),
            history,
            laid.when,
            periods,
            tz=self._placement.tz,
            currency=self.currency,
            rates=self.rates,
            origins=self.error_periods,
            notes=notes,
        )
        return dataclasses.replace(
            laid, period_error=errors, past_forecasts=past, notes=tuple(notes)
        )


class OutcomeDistribution(_Configured):
    """The exact (or approximated) distribution of each period's revenue, independent deals.

    With ``"weights"`` or a function, deals are placed exactly as in
    :class:`~pipelinekit.forecasts.weighted.WeightedForecast` (period of the expected close
    date; ``later``, ``overdue``, ``no close date`` buckets; won revenue in the period it
    was won). With a forecast (or forecaster) whose deals say when
    (``DealForecast.periods``), each deal may land in every horizon period with the chance it
    gives there (``timing="deal periods"``), and its new business comes along.

    Args:
        period, horizon, group_by, currency, rates, tz, categories: as for
            :class:`~pipelinekit.forecasts.weighted.WeightedForecast`.
        probabilities: each open deal's win probability: ``"weights"`` (override, else
            stage weight, / 100), a function ``Opportunity -> float`` in [0, 1], a
            :class:`Forecast` whose ``deals`` carry ``win_probability`` (e.g. a learned
            forecaster's calibrated scores), or a forecaster (e.g.
            ``MarkovForecast(horizon=3)``), run at the same ``as_of``. A forecast whose
            deals carry ``periods`` also gives each deal's timing, and its ``new`` column
            (with the spread of a :class:`~pipelinekit.forecasts.new_business.NewBusinessLag`
            table) the new business; its periods must start with this forecast's.
        exact_limit: a bucket with at most this many open deals gets the exact law;
            0 to 24. The work grows as the number of distinct outcomes, up to 2**n:
            20 deals with all-distinct sums (335 326 outcomes) took 1.2 s here.
        period_error: the method's own past errors in the bands
            (:mod:`pipelinekit.forecasts.period_error`): ``None`` (chance alone),
            ``"learned"`` (from this forecaster's forecasts at ``error_periods`` earlier
            origins: the forecast costs that many more), or the ``period_error`` table of an
            earlier forecast (to forecast partitions with the whole's errors).
        error_periods: how many past forecasts of each lag ``"learned"`` uses (>= 1).

    Raises:
        ArgumentError: a bad argument, named in ``.argument``.

    Example:
        >>> OutcomeDistribution(exact_limit=40)
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'exact_limit': expected 0 to 24 deals, got 40
    """

    def __init__(
        self,
        *,
        period: str | PeriodKind = "month",
        horizon: int = 3,
        group_by: GroupBy | None = None,
        probabilities: ProbabilitySource = "weights",
        exact_limit: int = 20,
        currency: str | None = None,
        rates: FxRates | None = None,
        tz: tzinfo = UTC,
        categories: Mapping[str, str] | None = None,
        period_error: Literal["learned"] | Sequence[PeriodError] | None = None,
        error_periods: int = 6,
    ) -> None:
        self._configure(
            period=period,
            horizon=horizon,
            group_by=group_by,
            probabilities=probabilities,
            currency=currency,
            rates=rates,
            tz=tz,
            categories=categories,
            period_error=period_error,
            error_periods=error_periods,
        )
        if (
            isinstance(exact_limit, bool)
            or not isinstance(exact_limit, int)
            or not 0 <= exact_limit <= MAX_EXACT_LIMIT
        ):
            raise ArgumentError(
                "exact_limit", f"expected 0 to {MAX_EXACT_LIMIT} deals, got {exact_limit!r}"
            )
        self.exact_limit = exact_limit

    def compute(self, history: History, *, as_of: Instant) -> DistributionForecast:
        """The distribution of revenue per bucket as of ``as_of`` (no look-ahead).

        Raises:
            ArgumentError: (``scheme``) ``"weights"`` but a deal has no weight and no
                override; (``probabilities``) a probability outside [0, 1] or missing.
            CurrencyError: amounts in several currencies without ``currency``/``rates``.
        """
        with bulk_work():  # no GC passes over the transient snapshot: docs/performance.md
            return self._compute(history, as_of)

    def _compute(self, history: History, as_of: Instant) -> DistributionForecast:
        laid = self._lay_out(history, as_of)
        forecast = DistributionForecast(
            method="distribution",
            as_of=laid.when,
            currency=laid.currency,
            rows=tuple(laid.rows.values()),
            deals=laid.deals,
            exact_limit=self.exact_limit,
            timing=laid.timing,
            new_business=laid.new_business,
            period_error=laid.period_error,
            past_forecasts=laid.past_forecasts,
            notes=laid.notes,
        )
        return _with_laws(forecast)


# -- Monte Carlo ---------------------------------------------------------------------------


class TrialTotals(BaseModel):
    """Per-trial simulated open revenue of one bucket and group, in whole cents."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    group: str | None = None
    cents: tuple[int, ...] = Field(repr=False)


class TrialFactors(BaseModel):
    """Per-trial error factors of one period (see :mod:`pipelinekit.forecasts.period_error`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    factors: tuple[float, ...] = Field(repr=False)


class SimulatedForecast(Forecast):
    """A :class:`Forecast` from a Monte Carlo simulation; it keeps per-trial totals.

    ``expected`` is the simulated mean of open revenue (cents), ``std`` the standard
    deviation over trials, ``p10``/``p50``/``p90`` empirical quantiles of won + simulated
    revenue (the smallest simulated value with at least that share of trials at or below
    it).

    Attributes:
        trials, seed, shock: the simulation's settings.
        totals: per bucket and group, the simulated open revenue of every trial (cents);
            kept so that forecasts of a split of opportunities merge exactly.
        new_totals: per period, the simulated new business of every trial (cents): one of
            the past values of the source's new-business table, drawn per trial from a
            stream keyed by ``seed`` and the period (the same in every partition).
        factors: per period with a period error, the error factor of every trial (drawn
            from a stream keyed by ``seed`` and the period); a trial's revenue is its won
            revenue plus the factor times its open and new revenue.
        timing, new_business, period_error, past_forecasts, notes: as for
            :class:`DistributionForecast`.
    """

    trials: int
    seed: int
    shock: float
    totals: tuple[TrialTotals, ...] = Field(default=(), repr=False)
    new_totals: tuple[TrialTotals, ...] = Field(default=(), repr=False)
    factors: tuple[TrialFactors, ...] = Field(default=(), repr=False)
    timing: Timing = "close date"
    new_business: tuple[NewBusinessLag, ...] = ()
    period_error: tuple[PeriodError, ...] = ()
    past_forecasts: tuple[PastForecast, ...] = ()
    notes: tuple[str, ...] = ()

    def _cents(self, bucket: str, group: str | None) -> tuple[int, ...]:
        """Per trial: open revenue plus new business of the bucket, times the trial's
        error factor (cents)."""
        found: tuple[int, ...] | None = None
        for t in self.totals:
            if t.bucket == bucket and t.group == group:
                found = t.cents
        if found is None:
            self.row(bucket, group)  # raises for an unknown bucket
            found = (0,) * self.trials
        for t in self.new_totals:
            if t.bucket == bucket and t.group == group:
                found = tuple(a + b for a, b in zip(found, t.cents, strict=True))
        for f in self.factors:
            if f.bucket == bucket:
                found = tuple(round(c * r) for c, r in zip(found, f.factors, strict=True))
        return found

    def _open(self, bucket: str, group: str | None) -> tuple[int, ...]:
        for t in self.totals:
            if t.bucket == bucket and t.group == group:
                return t.cents
        return (0,) * self.trials

    def probability_of_reaching(
        self, target: Decimal | int | str | float, period: str | Period, group: str | None = None
    ) -> float:
        """The share of trials whose revenue of ``period`` (won and new business included)
        is >= ``target``."""
        goal = _decimal(target, "target")
        bucket = _bucket_of(period)
        won = self.row(bucket, group).won
        need = (goal - won) * 100
        hits = sum(1 for c in self._cents(bucket, group) if c >= need)
        return hits / self.trials

    def merge(self, other: Forecast) -> SimulatedForecast:
        """Add the per-trial totals of a simulation of other opportunities.

        Deals draw from streams keyed by ``seed`` and their opportunity id, and the shock
        of a period from a stream keyed by ``seed`` and the bucket, so the trials of two
        partitions line up: merged, they equal the simulation of the whole, exactly.

        New business belongs to the probability source's shared evidence and is kept once.

        Raises:
            ArgumentError: ``other`` is not a SimulatedForecast with the same trials,
                seed, shock, timing and new business.
        """
        if not isinstance(other, SimulatedForecast) or (
            other.trials,
            other.seed,
            other.shock,
            other.timing,
            other.new_business,
            other.new_totals,
            other.period_error,
            other.past_forecasts,
        ) != (
            self.trials,
            self.seed,
            self.shock,
            self.timing,
            self.new_business,
            self.new_totals,
            self.period_error,
            self.past_forecasts,
        ):
            raise ArgumentError(
                "other",
                "can only merge a SimulatedForecast with the same trials, seed, shock, "
                "timing, new business and period error",
            )
        merged = super().merge(other)
        new = {(r.bucket, r.group): r.new for r in (*other.rows, *self.rows)}
        merged = merged.model_copy(
            update={
                "rows": tuple(
                    r.model_copy(update={"new": new[r.bucket, r.group]}) for r in merged.rows
                )
            }
        )
        sums: dict[tuple[str, str | None], tuple[int, ...]] = {}
        for t in (*self.totals, *other.totals):
            key = (t.bucket, t.group)
            seen = sums.get(key)
            sums[key] = (
                t.cents
                if seen is None
                else tuple(a + b for a, b in zip(seen, t.cents, strict=True))
            )
        assert isinstance(merged, SimulatedForecast)
        # the merged rows' order, so a merge of a split equals the whole forecast
        order = {(r.bucket, r.group): i for i, r in enumerate(merged.rows)}
        totals = tuple(
            TrialTotals(bucket=b, group=g, cents=c)
            for (b, g), c in sorted(sums.items(), key=lambda kv: order.get(kv[0], len(order)))
        )
        return _summarise(merged.model_copy(update={"totals": totals}))


def _summarise(forecast: SimulatedForecast) -> SimulatedForecast:
    """Fill expected, std and quantiles of every row from the per-trial totals."""
    rows = []
    n = forecast.trials
    for row in forecast.rows:
        opened = Decimal(sum(forecast._open(row.bucket, row.group))) / Decimal(n)
        cents = sorted(forecast._cents(row.bucket, row.group))
        mean = Decimal(sum(cents)) / Decimal(n)
        var = sum((Decimal(c) - mean) ** 2 for c in cents) / Decimal(n)
        quantiles = [
            Decimal(cents[max(0, math.ceil(round(q * n, 9)) - 1)]) / 100 for q in _QUANTILES
        ]
        rows.append(
            row.model_copy(
                update={
                    "expected": (opened / 100).quantize(_CENT),
                    "std": (var.sqrt() / 100).quantize(_CENT),
                    "p10": EXACT.add(row.won, quantiles[0]),
                    "p50": EXACT.add(row.won, quantiles[1]),
                    "p90": EXACT.add(row.won, quantiles[2]),
                }
            )
        )
    return forecast.model_copy(update={"rows": tuple(rows)})


def _words(text: str) -> list[int]:
    digest = hashlib.sha256(text.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


class MonteCarloForecast(_Configured):
    """Simulate each period's revenue (numpy; ``pip install 'pipelinekit[sim]'``).

    In every trial each open deal is won with its probability (with a source that says
    when, in one of the horizon periods or ``later``, by its chances there; the new business
    of a period is one of its past values, drawn per trial; past errors multiply a trial's
    open and new revenue by one of their factors); with ``shock > 0`` all deals
    of a bucket share one draw ``Z ~ N(0, 1)`` per trial and are won with
    ``p' = clip(p (1 + shock Z), 0, 1)``: a good or bad month for everyone, so deals are
    correlated and the spread widens (clipping makes the mean drift slightly from
    ``Σ a p`` when ``p (1 + shock Z)`` leaves [0, 1]).

    Same seed, same numbers: deal ``i`` draws its uniforms from
    ``default_rng(SeedSequence([seed, 0, *sha256(opportunity id)]))`` and bucket ``b`` its
    shocks from ``SeedSequence([seed, 1, *sha256(b)])``. Because the streams are keyed by
    opportunity and bucket rather than by position, the trials of any partition of the
    opportunities line up, and :meth:`SimulatedForecast.merge` of the partitions equals the
    whole exactly. (Amounts are simulated in whole cents of the reporting currency.)

    Args:
        trials: number of simulated scenarios (>= 1).
        seed: a non-negative integer seed.
        shock: the common per-bucket shock's scale (>= 0; 0 = independent deals).
        period, horizon, group_by, probabilities, currency, rates, tz, categories,
            period_error, error_periods: as for :class:`OutcomeDistribution` (the learned
            past errors come from :class:`OutcomeDistribution`'s forecasts, without shock).

    Raises:
        ArgumentError: a bad argument, named in ``.argument``.

    Example:
        >>> from pipelinekit import demo
        >>> mc = MonteCarloForecast(trials=2000, seed=7)
        >>> f = mc.compute(demo.demo_history(opportunities=60, seed=42),
        ...                as_of="2024-09-30T00:00:00+00:00")
        >>> f.row("2024-10").expected
        Decimal('44891.80')
        >>> f == mc.compute(demo.demo_history(opportunities=60, seed=42),
        ...                 as_of="2024-09-30T00:00:00+00:00")
        True
    """

    def __init__(
        self,
        *,
        trials: int = 10_000,
        seed: int,
        shock: float = 0.0,
        period: str | PeriodKind = "month",
        horizon: int = 3,
        group_by: GroupBy | None = None,
        probabilities: ProbabilitySource = "weights",
        currency: str | None = None,
        rates: FxRates | None = None,
        tz: tzinfo = UTC,
        categories: Mapping[str, str] | None = None,
        period_error: Literal["learned"] | Sequence[PeriodError] | None = None,
        error_periods: int = 6,
    ) -> None:
        self._configure(
            period=period,
            horizon=horizon,
            group_by=group_by,
            probabilities=probabilities,
            currency=currency,
            rates=rates,
            tz=tz,
            categories=categories,
            period_error=period_error,
            error_periods=error_periods,
        )
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ArgumentError("trials", f"expected a whole number of trials >= 1, got {trials!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ArgumentError("seed", f"expected a non-negative integer seed, got {seed!r}")
        if (
            isinstance(shock, bool)
            or not isinstance(shock, float | int)
            or not math.isfinite(shock)
            or shock < 0
        ):
            raise ArgumentError("shock", f"expected a finite number >= 0, got {shock!r}")
        self.trials = trials
        self.seed = seed
        self.shock = float(shock)

    def compute(self, history: History, *, as_of: Instant) -> SimulatedForecast:
        """Simulate revenue per bucket as of ``as_of`` (no look-ahead, deterministic).

        Raises:
            ImportError: numpy is not installed (the ``sim`` extra).
            ArgumentError, CurrencyError: as for :meth:`OutcomeDistribution.compute`.
        """
        try:
            import numpy  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "MonteCarloForecast needs numpy: pip install 'pipelinekit[sim]'"
            ) from exc
        with bulk_work():  # no GC passes over the transient snapshot: docs/performance.md
            return self._compute(history, as_of)

    def _compute(self, history: History, as_of: Instant) -> SimulatedForecast:
        import numpy as np  # found by compute

        laid = self._lay_out(history, as_of)
        trials = self.trials
        shocks: dict[str, numpy.ndarray] = {}

        def shock(bucket: str) -> numpy.ndarray:
            if bucket not in shocks:
                rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1, *_words(bucket)]))
                shocks[bucket] = rng.standard_normal(trials)
            return shocks[bucket]

        sums: dict[tuple[str, str | None], numpy.ndarray] = {}
        labels = [key[0] for key in laid.rows if laid.rows[key].end is not None]
        labels = list(dict.fromkeys(labels))
        for d in laid.deals:
            rng = np.random.default_rng(
                np.random.SeedSequence([self.seed, 0, *_words(d.opportunity_id)])
            )
            u = rng.random(trials)
            amount = int((d.amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            if laid.timing == "close date":
                places = [(d.bucket, d.win_probability)]
            else:
                spread = chances(d, len(labels))
                places = [(b, float(c)) for b, c in zip((*labels, LATER), spread, strict=True)]
            low: float | numpy.ndarray | None = None  # the deal's buckets split [0, win)
            for bucket, p in places:
                if p <= 0:
                    continue
                q: float | numpy.ndarray = p
                if self.shock:
                    q = np.clip(p * (1 + self.shock * shock(bucket)), 0.0, 1.0)
                if low is None:  # the first bucket: [0, q)
                    high, hit = q, u < q
                else:
                    high = np.minimum(low + q, 1.0)
                    hit = (u >= low) & (u < high)
                key = (bucket, d.group)
                if key not in sums:
                    sums[key] = np.zeros(trials, dtype=np.int64)
                sums[key] += np.where(hit, amount, 0).astype(np.int64)
                low = high
        totals = tuple(
            TrialTotals(bucket=b, group=g, cents=tuple(int(c) for c in sums[(b, g)]))
            for (b, g) in laid.rows
            if (b, g) in sums
        )
        new_totals = []
        for row in laid.rows.values():
            values = _new_values_of(laid.new_business, row)
            if not values:
                continue
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2, *_words(row.bucket)]))
            picks = rng.integers(0, len(values), trials)
            cents = [int((v * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) for v in values]
            new_totals.append(
                TrialTotals(
                    bucket=row.bucket, group=row.group, cents=tuple(cents[i] for i in picks)
                )
            )
        factors = []
        for e in laid.period_error:
            if e.ratios:
                rng = np.random.default_rng(
                    np.random.SeedSequence([self.seed, 3, *_words(e.bucket)])
                )
                values, weights = zip(*e.factors(), strict=True)
                share = np.array(weights) / math.fsum(weights)
                picks = rng.choice(len(values), size=trials, p=share)
                factors.append(
                    TrialFactors(bucket=e.bucket, factors=tuple(float(values[i]) for i in picks))
                )
        forecast = SimulatedForecast(
            method="monte-carlo",
            as_of=laid.when,
            currency=laid.currency,
            rows=tuple(laid.rows.values()),
            deals=laid.deals,
            trials=trials,
            seed=self.seed,
            shock=self.shock,
            totals=totals,
            new_totals=tuple(new_totals),
            factors=tuple(factors),
            timing=laid.timing,
            new_business=laid.new_business,
            period_error=laid.period_error,
            past_forecasts=laid.past_forecasts,
            notes=laid.notes,
        )
        return _summarise(forecast)
