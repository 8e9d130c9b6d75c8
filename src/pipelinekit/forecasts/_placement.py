"""Where a deal's revenue lands: the horizon, the buckets and the groups (private helpers).

The weighted forecast, the outcome distribution and the Monte Carlo forecast all place deals
the same way, so the rule lives here once:

- an open deal goes to the period of its expected close date, or to ``overdue`` (the date
  is before ``as_of``'s local date), ``no close date`` (it has none) or ``later`` (after the
  horizon); nothing is dropped;
- a won deal goes to the period its ``closed_at`` falls in (local date in ``tz``) when that
  period is in the horizon (only the current period can hold won deals at ``as_of``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Literal, cast, get_args

from pipelinekit._rows import trusted
from pipelinekit.calculators import Calculator
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.result import (
    LATER,
    NO_CLOSE_DATE,
    OVERDUE,
    DealForecast,
    Forecast,
    ForecastRow,
)
from pipelinekit.history import Pipeline
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, total
from pipelinekit.opportunity import Opportunity
from pipelinekit.periods import Period, PeriodKind, period_kind
from pipelinekit.pipeline import Deal
from pipelinekit.stages import Outcome

GroupBy = Literal["owner", "product", "source", "account", "category"]
Category = Literal["pipeline", "best_case", "commit"]
CATEGORIES: tuple[str, ...] = get_args(Category)
CLOSED_CATEGORY = "closed"
"""The category group of won revenue when a forecast is grouped by category."""
DEFAULT_CATEGORY = "pipeline"
"""The category of an open stage the ``categories`` mapping does not name."""

_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")

ProbabilitySource = (
    Literal["weights"] | Callable[[Opportunity], float] | Forecast | Calculator[Forecast]
)
"""Where the distribution forecasters take each deal's chance from: the stage weights, a
function of the deal, a forecast's deals, or a forecaster run at the same ``as_of``."""


@dataclass(frozen=True)
class Placement:
    """The shared, validated configuration of where revenue lands."""

    kind: PeriodKind
    horizon: int
    group_by: GroupBy | None
    currency: str | None
    rates: FxRates | None
    tz: tzinfo
    categories: tuple[tuple[str, str], ...] | None

    @classmethod
    def validate(
        cls,
        *,
        period: str | PeriodKind,
        horizon: int,
        group_by: str | None,
        currency: str | None,
        rates: FxRates | None,
        tz: tzinfo,
        categories: Mapping[str, str] | None,
    ) -> Placement:
        """Check every argument, naming the bad one in an ``ArgumentError``."""
        if isinstance(period, str):
            try:
                kind = period_kind(period)
            except ValueError as exc:  # ArgumentError is a ValueError
                reason = exc.reason if isinstance(exc, ArgumentError) else str(exc)
                raise ArgumentError("period", reason) from None
        elif isinstance(period, PeriodKind):
            kind = period
        else:
            raise ArgumentError(
                "period",
                f"expected a period spec like 'month' or 'quarter' or a PeriodKind, "
                f"got {type(period).__name__}",
            )
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ArgumentError(
                "horizon", f"expected a whole number of periods >= 1, got {horizon!r}"
            )
        if group_by is not None and group_by not in get_args(GroupBy):
            raise ArgumentError(
                "group_by", f"expected None or one of {list(get_args(GroupBy))}, got {group_by!r}"
            )
        ReportingCurrency(currency, rates)  # validates both, naming the bad argument
        if not isinstance(tz, tzinfo):
            raise ArgumentError("tz", f"expected a tzinfo such as UTC, got {type(tz).__name__}")
        cats: tuple[tuple[str, str], ...] | None = None
        if categories is not None:
            if not isinstance(categories, Mapping):
                raise ArgumentError(
                    "categories", f"expected a mapping stage key -> category, got {categories!r}"
                )
            for key, value in categories.items():
                if value not in CATEGORIES:
                    raise ArgumentError(
                        "categories",
                        f"stage {key!r} maps to {value!r}; categories are {list(CATEGORIES)}",
                    )
            cats = tuple(sorted(categories.items()))
        if group_by == "category" and cats is None:
            raise ArgumentError(
                "group_by",
                "grouping by 'category' needs categories={stage key: 'pipeline' | "
                "'best_case' | 'commit'}",
            )
        return cls(
            kind=kind,
            horizon=horizon,
            group_by=group_by,  # type: ignore[arg-type]
            currency=currency,
            rates=rates,
            tz=tz,
            categories=cats,
        )

    def periods(self, as_of: datetime) -> tuple[Period, ...]:
        """The ``horizon`` periods starting with the one that contains ``as_of``.

        Raises:
            ArgumentError: they would reach past 9999-12-31 (naming ``horizon``).
        """
        first = self.kind.period_of_instant(as_of, tz=self.tz)
        try:
            return self.kind.following(first.start, self.horizon)
        except ArgumentError as exc:
            raise ArgumentError("horizon", exc.reason) from None

    def check_scheme(self, pipeline: Pipeline) -> None:
        """Stage keys in ``categories`` must be open stages of the scheme."""
        if self.categories is None:
            return
        scheme = pipeline.scheme
        for key, _ in self.categories:
            if not scheme.has_stage(key) or not scheme.stage(key).is_open:
                raise ArgumentError(
                    "categories",
                    f"{key!r} is not an open stage of scheme {scheme.name!r}; open stages "
                    f"are {[s.key for s in scheme.open_stages]}",
                )

    def category(self, opp: Deal) -> str | None:
        """The deal's forecast category (``None`` without a ``categories`` mapping)."""
        if self.categories is None:
            return None
        if opp.is_won:
            return CLOSED_CATEGORY
        return self.open_category(opp.stage)

    def open_category(self, stage: str) -> str | None:
        """The forecast category of an open deal at ``stage``."""
        if self.categories is None:
            return None
        return dict(self.categories).get(stage, DEFAULT_CATEGORY)

    def group(self, opp: Deal) -> str | None:
        """The deal's group value (``None`` when ungrouped or the field is empty)."""
        if self.group_by is None:
            return None
        if self.group_by == "category":
            return self.category(opp)
        value: str | None = getattr(opp, self.group_by)
        return value


@dataclass(frozen=True)
class Placed:
    """An open or won deal with its amount in the reporting currency and its place."""

    opportunity: Deal
    amount: Decimal
    bucket: str
    group: str | None
    category: str | None


@dataclass(frozen=True)
class Layout:
    """Everything placed: the horizon, open deals and won deals."""

    periods: tuple[Period, ...]
    open: tuple[Placed, ...]
    won: tuple[Placed, ...]
    currency: str | None


def place(
    placement: Placement, pipeline: Pipeline, as_of: datetime, *, light: bool = False
) -> Layout:
    """Place the open deals and the won-in-horizon deals of ``pipeline``.

    Open deals without an amount have nothing to forecast and are left out. With
    ``light``, the placed deals are the pipeline's :meth:`~pipelinekit.pipeline.Pipeline.deals`
    (lighter views from the columnar engine) rather than its ``Opportunity`` objects: for
    callers that read only their snapshot fields and hand them to no user code.
    """
    placement.check_scheme(pipeline)
    periods = placement.periods(as_of)
    today = as_of.astimezone(placement.tz).date()
    horizon_end = periods[-1].end
    to_rep = ReportingCurrency(placement.currency, placement.rates)
    opens: list[Placed] = []
    wons: list[Placed] = []
    deals: Iterable[Deal] = pipeline.deals() if light else pipeline.values()
    for opp in sorted(deals, key=_by_id):
        if opp.amount is None:
            continue
        if opp.is_open:
            close = opp.expected_close
            bucket = _bucket(close, today, periods, horizon_end)
            amount = to_rep(opp.amount, opp.currency, today)
        elif opp.is_won and opp.closed_at is not None:
            won_on = opp.closed_at.astimezone(placement.tz).date()
            found = _period_of(won_on, periods)
            if found is None:
                continue
            bucket = found.label
            amount = to_rep(opp.amount, opp.currency, won_on)
        else:
            continue
        placed = Placed(
            opportunity=opp,
            amount=amount,
            bucket=bucket,
            group=placement.group(opp),
            category=placement.category(opp),
        )
        (opens if opp.is_open else wons).append(placed)
    return Layout(periods=periods, open=tuple(opens), won=tuple(wons), currency=to_rep.currency)


def _by_id(deal: Deal) -> str:
    return deal.id


def _period_of(d: date, periods: tuple[Period, ...]) -> Period | None:
    for p in periods:
        if p.start <= d < p.end:
            return p
    return None


def _bucket(close: date | None, today: date, periods: tuple[Period, ...], end: date) -> str:
    if close is None:
        return NO_CLOSE_DATE
    if close < today:
        return OVERDUE
    if close >= end:
        return LATER
    found = _period_of(close, periods)
    return found.label if found is not None else LATER


def weight_probability(opp: Deal) -> Decimal:
    """The deal's probability (override, else stage weight) as a fraction in [0, 1].

    Raises:
        ArgumentError: (naming ``scheme``) the stage has no weight and no override is set.
    """
    probability = opp.probability
    if probability is None:
        raise ArgumentError(
            "scheme",
            f"opportunity {opp.id!r} at stage {opp.stage!r} has no probability: the scheme's "
            "stage has no weight and no override is set, so weighted figures are "
            "unavailable; give the stages weights, set probability overrides, or pass "
            "probabilities explicitly",
        )
    return EXACT.divide(probability, _HUNDRED)


def check_probabilities(probabilities: object) -> ProbabilitySource:
    """Validate the ``probabilities`` argument of the distribution forecasters."""
    if probabilities == "weights" or isinstance(probabilities, Forecast):
        return probabilities
    if is_forecaster(probabilities):
        return cast(Calculator[Forecast], probabilities)
    if callable(probabilities) and not isinstance(probabilities, str):
        return probabilities
    raise ArgumentError(
        "probabilities",
        "expected 'weights', a function Opportunity -> float in [0, 1], a Forecast whose "
        f"deals carry win probabilities, or a forecaster; got {probabilities!r}",
    )


def is_forecaster(source: object) -> bool:
    """A calculator (an object with ``compute``) rather than a forecast, string or function."""
    return not isinstance(source, str | Forecast) and callable(getattr(source, "compute", None))


def probability_function(source: ProbabilitySource) -> Callable[[Opportunity], Decimal]:
    """A function giving each open deal's win probability as an exact fraction in [0, 1].

    A float from a function or a Forecast becomes ``Decimal(repr(p))`` (its shortest
    decimal form), so 0.3 counts as exactly 0.3.

    The function raises ``ArgumentError`` naming ``probabilities`` for a value outside
    [0, 1] or a deal the given forecast does not know, and naming ``scheme`` for a deal
    with neither a stage weight nor an override under ``"weights"``.
    """
    if isinstance(source, str):
        return weight_probability
    if is_forecaster(source):
        raise ArgumentError(  # pragma: no cover - callers run the forecaster first
            "probabilities", "run the forecaster at as_of and pass its Forecast"
        )
    raw: Callable[[Opportunity], object]
    if isinstance(source, Forecast):
        table = {d.opportunity_id: d.win_probability for d in source.deals}

        def lookup(opp: Opportunity) -> object:
            if opp.id not in table:
                raise ArgumentError(
                    "probabilities",
                    f"the given forecast has no win probability for open opportunity {opp.id!r}",
                )
            return table[opp.id]

        raw = lookup
    else:
        raw = cast(Callable[[Opportunity], object], source)

    def checked(opp: Opportunity) -> Decimal:
        p = raw(opp)
        if not isinstance(p, float | int) or isinstance(p, bool) or not math.isfinite(p):
            raise ArgumentError(
                "probabilities", f"probability of {opp.id!r} is {p!r}, not a number in [0, 1]"
            )
        if not 0 <= p <= 1:
            raise ArgumentError(
                "probabilities", f"probability of {opp.id!r} is {p!r}, outside [0, 1]"
            )
        return Decimal(repr(float(p)))

    return checked


def deal_forecasts(
    layout: Layout, probability: Callable[[Opportunity], Decimal] | Callable[[Deal], Decimal]
) -> tuple[DealForecast, ...]:
    """One :class:`DealForecast` per placed open deal, ordered by opportunity id.

    A deal's ``periods`` holds its probability in the period of its expected close date;
    an overdue deal or one without a close date is due now, so it counts in the first
    period (``later``: in none).

    Built without validating again (``trusted``): every value comes from a validated
    opportunity or is computed here with the field's type (a third of the weighted
    forecast's time at 80k open deals went into validating them).
    """
    make = _DealMaker(layout.periods)
    return tuple(
        make(d.opportunity.id, d.opportunity.stage, d.amount, p, d.bucket, d.group, d.category)
        for d in layout.open
        # (a function of Opportunity gets the Opportunity objects: layouts that hold
        # lighter deals are only made with weight_probability, a function of any Deal)
        for p in (probability(cast(Opportunity, d.opportunity)),)
    )


class _DealMaker:
    """Builds :class:`DealForecast` rows for a horizon (see :func:`deal_forecasts`)."""

    def __init__(self, periods: tuple[Period, ...]) -> None:
        self.position = {p.label: i for i, p in enumerate(periods)}
        self.position[OVERDUE] = self.position[NO_CLOSE_DATE] = 0  # due now: this period
        self.zeros = (0.0,) * len(periods)

    def __call__(
        self,
        opportunity_id: str,
        stage: str,
        amount: Decimal,
        p: Decimal,
        bucket: str,
        group: str | None,
        category: str | None,
    ) -> DealForecast:
        chance = float(p)
        return trusted(
            DealForecast,
            {
                "opportunity_id": opportunity_id,
                "stage": stage,
                "amount": amount,
                "win_probability": chance,
                "expected": EXACT.multiply(amount, p),
                "bucket": bucket,
                "group": group,
                "category": category,
                "periods": _one_hot(self.zeros, self.position.get(bucket), chance),
            },
            _DEAL_FIELDS,
        )


def _one_hot(zeros: tuple[float, ...], index: int | None, p: float) -> tuple[float, ...]:
    """``p`` at ``index`` (a deal placed in that period), zeros elsewhere."""
    if index is None:
        return zeros
    return (*zeros[:index], p, *zeros[index + 1 :])


_DEAL_FIELDS = set(DealForecast.model_fields)


def skeleton_rows(
    layout: Layout, deals: Iterable[DealForecast], grouped: bool
) -> dict[tuple[str, str | None], ForecastRow]:
    """Rows with won, expected and deal counts, keyed by (bucket, group), in row order.

    Every horizon period gets a row for every group seen (ungrouped: the one ``None``
    group), so merging forecasts of a split gives the same rows as the whole; the labelled
    buckets (later, overdue, no close date) get a row only when a deal lands there.
    """
    won: dict[tuple[str, str | None], Decimal] = {}
    for w in layout.won:
        won[(w.bucket, w.group)] = EXACT.add(won.get((w.bucket, w.group), _ZERO), w.amount)
    expected: dict[tuple[str, str | None], Decimal] = {}
    count: dict[tuple[str, str | None], int] = {}
    for d in deals:
        key = (d.bucket, d.group)
        expected[key] = EXACT.add(expected.get(key, _ZERO), d.expected)
        count[key] = count.get(key, 0) + 1
    return rows_of(layout.periods, won, expected, count, grouped)


RowKey = tuple[str, str | None]
"""A forecast row's (bucket, group)."""


def rows_of(
    periods: tuple[Period, ...],
    won: dict[RowKey, Decimal],
    expected: dict[RowKey, Decimal],
    count: dict[RowKey, int],
    grouped: bool,
) -> dict[RowKey, ForecastRow]:
    """The rows of :func:`skeleton_rows` from the sums per (bucket, group): won amounts,
    expected amounts and deal counts (a key for every bucket and group a deal was
    placed in)."""
    groups: list[str | None]
    if grouped:
        seen = {g for _, g in count} | {g for _, g in won}
        groups = sorted(seen, key=lambda g: (g is not None, g or ""))
    else:
        groups = [None]
    rows: dict[RowKey, ForecastRow] = {}
    for period in periods:
        for g in groups:
            rows[(period.label, g)] = ForecastRow(
                bucket=period.label, start=period.start, end=period.end, group=g
            )
    later_start = periods[-1].end
    for bucket in (LATER, OVERDUE, NO_CLOSE_DATE):
        for g in groups:
            if (bucket, g) in count:
                rows[(bucket, g)] = ForecastRow(
                    bucket=bucket, start=later_start if bucket == LATER else None, group=g
                )
    for key, row in rows.items():
        rows[key] = row.model_copy(
            update={
                "won": won.get(key, _ZERO),
                "expected": expected.get(key, _ZERO),
                "deals": count.get(key, 0),
            }
        )
    return rows


def variance(deals: Iterable[DealForecast]) -> Decimal:
    """Σ a² p (1 − p): the variance of independent Bernoulli-weighted deals, exactly."""
    terms = []
    for d in deals:
        spread = _spread(d.win_probability)
        terms.append(EXACT.multiply(EXACT.multiply(d.amount, d.amount), spread))
    return total(terms)


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to cents (half even)."""
    return value.quantize(_CENT)


@dataclass(frozen=True)
class TableForecast:
    """The weighted forecast's parts, from a snapshot's columns (:func:`weighted_table`)."""

    deals: tuple[DealForecast, ...]
    rows: dict[RowKey, ForecastRow]
    variances: dict[RowKey, Decimal]
    currency: str | None


def weighted_table(
    placement: Placement, pipeline: Pipeline, as_of: datetime
) -> TableForecast | None:
    """The weighted forecast's deals, rows and variances from the snapshot's columns, in
    one pass over the open deals; ``None`` when the pipeline has no columns or they
    would not give exactly what :func:`place`, :func:`deal_forecasts`, :func:`skeleton_rows`
    and :func:`variance` give: when an amount needs converting (or could not be, which
    the deal-by-deal path then reports) or an open deal has no probability (likewise).

    The rules are theirs: the same buckets (:func:`_bucket`, once per close date), the
    same won periods (won deals from two days before the horizon are checked one by one,
    which covers every zone's offset), the same sums in the same order.
    """
    table = pipeline.table()
    if table is None:
        return None
    placement.check_scheme(pipeline)
    periods = placement.periods(as_of)
    today = as_of.astimezone(placement.tz).date()
    field = placement.group_by if placement.group_by != "category" else None
    grouping = [field] if field is not None else []
    ids, stages, amounts, currencies, chances, closes, *groups = table.select(
        ["id", "stage", "amount", "currency", "probability", "expected_close", *grouping],
        outcome=None,
    )
    opened = groups[0] if groups else [None] * len(ids)
    since = datetime.combine(periods[0].start, time.min, tzinfo=UTC) - timedelta(days=2)
    won_ids, won_amounts, won_currencies, won_at, *won_groups = table.select(
        ["id", "amount", "currency", "closed_at", *grouping], outcome=Outcome.WON, closed_from=since
    )
    won: dict[RowKey, Decimal] = {}
    seen = set(currencies)
    for i, closed_at in enumerate(won_at):
        found = _period_of(closed_at.astimezone(placement.tz).date(), periods)
        if found is not None:
            group = CLOSED_CATEGORY if placement.group_by == "category" else None
            if won_groups:
                group = won_groups[0][i]
            key = (found.label, group if placement.group_by is not None else None)
            won[key] = EXACT.add(won.get(key, _ZERO), won_amounts[i])
            seen.add(won_currencies[i])
    if len(seen) > 1 or (placement.currency is not None and seen and seen != {placement.currency}):
        return None  # amounts to convert, or a mix to refuse: deal by deal
    if None in chances:
        return None  # an open deal without a probability: the deal-by-deal error
    del won_ids
    make = _DealMaker(periods)
    horizon_end = periods[-1].end
    buckets: dict[date | None, str] = {}
    categories: dict[str, str | None] = {}
    spreads: dict[float, Decimal] = {}
    expected: dict[RowKey, Decimal] = {}
    count: dict[RowKey, int] = {}
    variances: dict[RowKey, Decimal] = {}
    deals: list[DealForecast] = []
    by_category = placement.group_by == "category"
    for oid, stage, amount, chance, close, group in zip(
        ids, stages, amounts, chances, closes, opened, strict=True
    ):
        bucket = buckets.get(close)
        if bucket is None:
            bucket = buckets[close] = _bucket(close, today, periods, horizon_end)
        category = categories.get(stage, _UNSEEN)
        if category is _UNSEEN:
            category = categories[stage] = placement.open_category(stage)
        if by_category:
            group = category
        deal = make(oid, stage, amount, EXACT.divide(chance, _HUNDRED), bucket, group, category)
        deals.append(deal)
        key = (bucket, group)
        expected[key] = EXACT.add(expected.get(key, _ZERO), deal.expected)
        count[key] = count.get(key, 0) + 1
        spread = spreads.get(deal.win_probability)
        if spread is None:
            spread = spreads[deal.win_probability] = _spread(deal.win_probability)
        term = EXACT.multiply(EXACT.multiply(amount, amount), spread)
        variances[key] = EXACT.add(variances.get(key, _ZERO), term)
    rows = rows_of(periods, won, expected, count, placement.group_by is not None)
    currency = placement.currency
    if currency is None and seen:
        currency = next(iter(seen))
    return TableForecast(tuple(deals), rows, variances, currency)


_UNSEEN = "\0unseen"


def _spread(win_probability: float) -> Decimal:
    """``p (1 - p)`` of a deal's win probability, as :func:`variance` computes it."""
    p = Decimal(repr(win_probability))
    return EXACT.multiply(p, EXACT.subtract(1, p))
