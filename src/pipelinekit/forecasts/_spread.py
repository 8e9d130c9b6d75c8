"""Deals spread over the horizon by another forecast's per-period chances (private helpers).

The distribution forecasters take each deal's chance of being won from a probability
source. When that source is a forecast whose deals say *when* (``DealForecast.periods``:
the chance of being won in each period of its horizon), a deal's revenue may land in any
horizon period with those chances, and in ``later`` with the rest of its win probability,
instead of in the one period of its typed close date. The source's ``new`` column and
new-business table come along.

Chances are exact decimals: ``Decimal(repr(p))`` of each float, ``later`` the win
probability less the periods' chances (never below 0), so the rows' expected revenue adds
up to the deals' exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import cast

from pipelinekit._rows import trusted
from pipelinekit.calculators import Calculator
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._placement import Layout, ProbabilitySource, is_forecaster
from pipelinekit.forecasts.new_business import NewBusinessLag, no_evidence_note
from pipelinekit.forecasts.result import LATER, DealForecast, Forecast, ForecastRow
from pipelinekit.history import History
from pipelinekit.money import EXACT, total

_ZERO = Decimal(0)
_DEAL_FIELDS = set(DealForecast.model_fields)


def source_forecast(
    probabilities: ProbabilitySource, history: History, when: datetime
) -> ProbabilitySource:
    """The probability source as used at ``when``: a forecaster is run there (on
    ``history.until(when)``); anything else is returned as it is.

    Raises:
        ArgumentError: (``probabilities``) the forecaster did not return a Forecast.
    """
    if not is_forecaster(probabilities):
        return probabilities
    made = cast(Calculator[Forecast], probabilities).compute(history.until(when), as_of=when)
    if not isinstance(made, Forecast):
        raise ArgumentError(
            "probabilities",
            f"the forecaster {probabilities!r} returned {type(made).__name__}, not a Forecast",
        )
    return made


def says_when(source: ProbabilitySource, layout: Layout) -> bool:
    """Whether ``source`` is a forecast whose deals carry per-period chances for (at
    least) this layout's periods.

    Raises:
        ArgumentError: (``probabilities``) its deals say when, but over other periods.
    """
    if not isinstance(source, Forecast) or not any(d.periods for d in source.deals):
        return False
    labels = [p.label for p in layout.periods]
    theirs: list[str] = []
    for r in source.rows:
        if r.end is not None and r.bucket not in theirs:
            theirs.append(r.bucket)
    if theirs[: len(labels)] != labels or any(len(d.periods) < len(labels) for d in source.deals):
        raise ArgumentError(
            "probabilities",
            f"the given forecast's periods {theirs} do not start with this forecast's "
            f"{labels}: make it at the same as_of with the same period kind and tz, and a "
            f"horizon of at least {len(labels)}",
        )
    return True


def chances(deal: DealForecast, periods: int) -> tuple[Decimal, ...]:
    """The deal's chance in each of the first ``periods`` periods, then in ``later``."""
    inside = tuple(Decimal(repr(p)) for p in deal.periods[:periods])
    rest = EXACT.subtract(Decimal(repr(deal.win_probability)), total(inside))
    return (*inside, max(rest, _ZERO))


def spread_deals(layout: Layout, source: Forecast) -> tuple[DealForecast, ...]:
    """One :class:`DealForecast` per placed open deal, with the source's chances.

    ``bucket`` is where the deal is most likely won (``later`` when it is not won within
    the horizon with the most chance); ``expected`` the amount times its chances.

    Raises:
        ArgumentError: (``probabilities``) the source has no chances for an open deal, or
            a chance outside [0, 1].
    """
    table = {d.opportunity_id: d for d in source.deals}
    labels = [p.label for p in layout.periods]
    out: list[DealForecast] = []
    for placed in layout.open:
        oid = placed.opportunity.id
        theirs = table.get(oid)
        if theirs is None:
            raise ArgumentError(
                "probabilities",
                f"the given forecast has no win probability for open opportunity {oid!r}",
            )
        values = (theirs.win_probability, *theirs.periods[: len(labels)])
        if not all(math.isfinite(p) and 0 <= p <= 1 for p in values):
            raise ArgumentError(
                "probabilities",
                f"the chances of {oid!r} are {values}, not numbers in [0, 1]",
            )
        spread = chances(theirs, len(labels))
        best = max(range(len(spread)), key=lambda i: (spread[i], -i))
        out.append(
            trusted(
                DealForecast,
                {
                    "opportunity_id": oid,
                    "stage": placed.opportunity.stage,
                    "amount": placed.amount,
                    "win_probability": theirs.win_probability,
                    "expected": EXACT.multiply(placed.amount, total(spread)),
                    "bucket": labels[best] if best < len(labels) else LATER,
                    "group": placed.group,
                    "category": placed.category,
                    "periods": tuple(theirs.periods[: len(labels)]),
                },
                _DEAL_FIELDS,
            )
        )
    return tuple(out)


def spread_rows(
    layout: Layout, deals: Iterable[DealForecast], grouped: bool
) -> dict[tuple[str, str | None], ForecastRow]:
    """Rows with won, expected and deal counts, keyed by (bucket, group), in row order.

    Every horizon period gets a row for every group seen (ungrouped: the one ``None``
    group); ``later`` a row for a group when one of its deals has a chance there.
    """
    deals = tuple(deals)
    labels = [p.label for p in layout.periods]
    groups: list[str | None]
    if grouped:
        seen = {d.group for d in deals} | {w.group for w in layout.won}
        groups = sorted(seen, key=lambda g: (g is not None, g or ""))
    else:
        groups = [None]
    expected: dict[tuple[str, str | None], Decimal] = {}
    count: dict[tuple[str, str | None], int] = {}
    for d in deals:
        for bucket, c in zip((*labels, LATER), chances(d, len(labels)), strict=True):
            if c > 0:
                key = (bucket, d.group)
                expected[key] = EXACT.add(expected.get(key, _ZERO), EXACT.multiply(d.amount, c))
                count[key] = count.get(key, 0) + 1
    won: dict[tuple[str, str | None], Decimal] = {}
    for w in layout.won:
        won[(w.bucket, w.group)] = EXACT.add(won.get((w.bucket, w.group), _ZERO), w.amount)
    rows: dict[tuple[str, str | None], ForecastRow] = {}
    for period in layout.periods:
        for g in groups:
            key = (period.label, g)
            rows[key] = ForecastRow(
                bucket=period.label,
                start=period.start,
                end=period.end,
                group=g,
                won=won.get(key, _ZERO),
                expected=expected.get(key, _ZERO),
                deals=count.get(key, 0),
            )
    for g in groups:
        key = (LATER, g)
        if key in count:
            rows[key] = ForecastRow(
                bucket=LATER,
                start=layout.periods[-1].end,
                group=g,
                expected=expected[key],
                deals=count[key],
            )
    return rows


def new_business_of(source: Forecast, labels: list[str]) -> tuple[NewBusinessLag, ...]:
    """The source's new-business table for these periods (empty when it has none)."""
    table = getattr(source, "new_business", ())
    if not isinstance(table, tuple):
        return ()
    return tuple(x for x in table if isinstance(x, NewBusinessLag) and x.bucket in labels)


def with_new_business(
    rows: dict[tuple[str, str | None], ForecastRow],
    source: Forecast,
    labels: list[str],
    grouped: bool,
    notes: list[str],
) -> tuple[NewBusinessLag, ...]:
    """Copy the source's ``new`` into the ungrouped period rows; return its table."""
    new = {r.bucket: r.new for r in source.rows if r.end is not None and r.group is None}
    if not any(new.get(label) for label in labels):
        table = new_business_of(source, labels)
        note = no_evidence_note(table)
        if note is not None:
            notes.append(note)
        return table
    if grouped:
        notes.append(
            "new business is not forecast by group: the grouped rows leave out the "
            "source's new column"
        )
        return ()
    for label in labels:
        rows[(label, None)] = rows[(label, None)].model_copy(update={"new": new.get(label, _ZERO)})
    table = new_business_of(source, labels)
    note = no_evidence_note(table)
    if note is not None:
        notes.append(note)
    if not any(x.values for x in table):
        notes.append(
            "the given forecast's new business carries no spread (no new-business table "
            "with past values): it counts as a fixed amount in the quantiles"
        )
    return table
