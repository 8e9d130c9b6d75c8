"""Pipeline by stage: the Polish pipeline article's pipeline report, the "inverted pyramid".

For the snapshot at ``as_of``, :class:`PipelineByStage` reports per stage in funnel order
(and per owner, product, source or account when grouped): how many opportunities sit there,
their total amount, their weighted amount (amount x probability / 100) and their share of
their section's total, open stages and closed stages apart (the ``section`` column is
``"open"``, ``"won"`` or ``"lost"``), with a total row per section.

- **No weights, no guess.** On a scheme whose open stages have no weights the report still
  counts and adds amounts; every weighted figure is ``None`` and
  :attr:`PipelineByStageResult.weighted_available` is ``False``. A closed stage without a
  weight has no weighted figure either (per-deal overrides alone do not make a partial
  weighted total appear).
- **Money is exact.** Amounts are ``Decimal``, brought into one reporting currency with
  :class:`~pipelinekit.money.ReportingCurrency` at ``as_of``'s date; a mix of currencies
  without rates is a :class:`~pipelinekit.errors.CurrencyError`.
- **Nothing dropped.** An opportunity without an amount is counted in ``count`` and in
  ``unpriced``, and adds nothing to the amounts.
- **Mergeable.** The result stores sums only; shares (floats) are computed from the sums
  when rows are produced, so a merge of results on disjoint opportunities equals the result
  on all of them, shares included.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.pipeline_by_stage import PipelineByStage
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-01-05T00:00:00Z",
    ...    "stage": "prospecting", "amount": "1000", "currency": "EUR"},
    ...   {"type": "opened", "opportunity_id": "b", "at": "2024-01-06T00:00:00Z",
    ...    "stage": "negotiation-review", "amount": "3000", "currency": "EUR"},
    ...   {"type": "opened", "opportunity_id": "c", "at": "2024-01-07T00:00:00Z",
    ...    "stage": "prospecting"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = PipelineByStage(include_closed=False).compute(h, as_of="2024-02-01T00:00:00Z")
    >>> row = r.rows[0]
    >>> row.stage, row.count, row.unpriced, row.amount, row.weighted, row.amount_share
    ('prospecting', 2, 1, Decimal('1000'), Decimal('100'), 0.25)
    >>> total = r.rows[-1]
    >>> total.level, total.count, total.amount, total.weighted
    ('total', 3, Decimal('4000'), Decimal('2800'))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, percent_of
from pipelinekit.opportunity import Opportunity
from pipelinekit.pipeline import Deal, Pipeline
from pipelinekit.reports._grouping import (
    FIELDS,
    Field,
    field_arg,
    group_of,
    group_order,
    same_config,
)
from pipelinekit.reports._windows import currency_args, merged_currency
from pipelinekit.results import Result
from pipelinekit.stages import Stage, StageScheme

__all__ = ["PipelineByStage", "PipelineByStageResult", "StageCell", "StageRow"]

Section = Literal["open", "won", "lost"]
Level = Literal["stage", "total", "grand total"]
SECTIONS: tuple[Section, ...] = ("open", "won", "lost")

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ZERO = Decimal(0)


def _section(stage: Stage) -> Section:
    if stage.is_won:
        return "won"
    if stage.is_lost:
        return "lost"
    return "open"


class StageCell(BaseModel):
    """The sums of one stage (and group): what a result stores and what merges add.

    Attributes:
        group: the group value (``None`` when ungrouped or the field is unset).
        stage, section: the stage key and ``"open"``, ``"won"`` or ``"lost"``.
        count: opportunities at the stage, priced or not.
        unpriced: how many of them have no amount.
        amount: the sum of their amounts in the reporting currency.
        weighted: the sum of amount x probability / 100 (``None`` when unavailable).
    """

    model_config = _FROZEN

    group: str | None = None
    stage: str
    section: Section
    count: int = 0
    unpriced: int = 0
    amount: Decimal = _ZERO
    weighted: Decimal | None = None

    def plus(self, other: StageCell) -> StageCell:
        """The cell with ``other``'s sums added (same group and stage)."""
        weighted = None
        if self.weighted is not None and other.weighted is not None:
            weighted = EXACT.add(self.weighted, other.weighted)
        return self.model_copy(
            update={
                "count": self.count + other.count,
                "unpriced": self.unpriced + other.unpriced,
                "amount": EXACT.add(self.amount, other.amount),
                "weighted": weighted,
            }
        )


class StageRow(BaseModel):
    """One output row: a stage, a section total, or (when grouped) a total over groups.

    Attributes:
        level: ``"stage"``; ``"total"`` (a section's total within the group, or of the whole
            report when ungrouped); ``"grand total"`` (a section's total over all groups,
            only when grouped, with ``group=None``).
        group, section, stage, label: where the row sits (``stage`` is ``None`` on totals).
        count, unpriced, amount, weighted: the sums (see :class:`StageCell`).
        amount_share, count_share: floats in [0, 1]: a stage row's share of its section's
            total in its group (for open stages: of the open pipeline); a group's total row's
            share of the section's total over all groups; ``1.0`` for the outermost total.
            ``None`` when the denominator is zero.
    """

    model_config = _FROZEN

    level: Level
    group: str | None
    section: Section
    stage: str | None
    label: str
    count: int
    unpriced: int
    amount: Decimal
    weighted: Decimal | None
    amount_share: float | None
    count_share: float | None


def _share(part: Decimal | int, whole: Decimal | int) -> float | None:
    return float(part / whole) if whole else None


def _sum_cells(cells: Iterable[StageCell], *, group: str | None, section: Section) -> StageCell:
    total = StageCell(group=group, stage="", section=section, weighted=_ZERO)
    for cell in cells:
        total = total.plus(cell)
    return total


class PipelineByStageResult(Result):
    """Counts, amounts and weighted amounts per stage (and group) at ``as_of``.

    Attributes:
        as_of: the snapshot's instant; scheme: the scheme's name.
        group_by: the grouping field, or ``None``.
        currency: the reporting currency (``None`` when no amount was seen).
        include_closed: whether the won and lost sections are reported.
        stages: the stage keys reported, in funnel order.
        labels: each reported stage's label, in the same order.
        weighted_available: ``False`` on a scheme without weights (weighted figures are
            ``None``).
        cells: the sums per group and stage (groups in name order, ``None`` last).
    """

    as_of: datetime
    scheme: str
    group_by: Field | None = None
    currency: str | None = None
    include_closed: bool = True
    stages: tuple[str, ...]
    labels: tuple[str, ...]
    weighted_available: bool
    cells: tuple[StageCell, ...]

    def _html_title(self) -> str:
        return f"Pipeline by stage as of {self.as_of.isoformat(sep=' ')}"

    @property
    def groups(self) -> tuple[str | None, ...]:
        """The groups present, in report order (``(None,)`` when ungrouped)."""
        return tuple(dict.fromkeys(c.group for c in self.cells))

    def cell(self, stage: str, group: str | None = None) -> StageCell:
        """The sums of ``stage`` (in ``group``).

        Raises:
            ArgumentError: no such stage or group in the result.
        """
        for c in self.cells:
            if c.stage == stage and c.group == group:
                return c
        raise ArgumentError(
            "stage", f"no cell for stage {stage!r} in group {group!r}; have {list(self.stages)}"
        )

    def total(self, section: Section = "open") -> StageCell:
        """The sums of a section over every stage and group."""
        return _sum_cells(
            (c for c in self.cells if c.section == section), group=None, section=section
        )

    @property
    def rows(self) -> tuple[StageRow, ...]:
        """Stage rows and total rows with their shares, computed from the stored sums."""
        label = dict(zip(self.stages, self.labels, strict=True))
        sections = [s for s in SECTIONS if any(c.section == s for c in self.cells)]
        grand = {s: self.total(s) for s in sections}
        rows: list[StageRow] = []
        for group in self.groups:
            mine = [c for c in self.cells if c.group == group]
            for section in sections:
                in_section = [c for c in mine if c.section == section]
                total = _sum_cells(in_section, group=group, section=section)
                rows.extend(_row("stage", c, label[c.stage], total) for c in in_section)
                parent = grand[section] if self.group_by is not None else total
                rows.append(_row("total", total, f"Total {section}", parent))
        if self.group_by is not None:
            rows.extend(
                _row("grand total", grand[s], f"Total {s}, all groups", grand[s]) for s in sections
            )
        return tuple(rows)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row of :attr:`rows` (the ``group`` key only when grouped)."""
        records = []
        for row in self.rows:
            record = row.model_dump()
            if self.group_by is None:
                del record["group"]
            records.append(record)
        return records

    def merge(self, other: PipelineByStageResult) -> PipelineByStageResult:
        """The result over both sets of opportunities (computed with the same settings).

        A ``where`` filter is a function and is not recorded in the result: merge only
        results computed by calculators with the same filter.

        Raises:
            ArgumentError: the results differ in ``as_of``, scheme, grouping or stages.
            CurrencyError: they are in different reporting currencies.
        """
        names = ("as_of", "scheme", "group_by", "include_closed", "stages", "weighted_available")
        same_config(
            "pipeline-by-stage",
            {n: getattr(self, n) for n in names},
            {n: getattr(other, n) for n in names},
        )
        currency = merged_currency(self.currency, other.currency)
        merged: dict[tuple[str | None, str], StageCell] = {}
        for c in (*self.cells, *other.cells):
            key = (c.group, c.stage)
            merged[key] = merged[key].plus(c) if key in merged else c
        position = {s: i for i, s in enumerate(self.stages)}
        cells = sorted(merged.values(), key=lambda c: (group_order(c.group), position[c.stage]))
        return self.model_copy(update={"currency": currency, "cells": tuple(cells)})


def _row(level: Level, cell: StageCell, label: str, parent: StageCell) -> StageRow:
    return StageRow(
        level=level,
        group=None if level == "grand total" else cell.group,
        section=cell.section,
        stage=cell.stage if level == "stage" else None,
        label=label,
        count=cell.count,
        unpriced=cell.unpriced,
        amount=cell.amount,
        weighted=cell.weighted,
        amount_share=_share(cell.amount, parent.amount),
        count_share=_share(cell.count, parent.count),
    )


class PipelineByStage:
    """The pipeline report: count, amount, weighted amount and share per stage.

    Args:
        group_by: ``None``, ``"owner"``, ``"product"``, ``"source"`` or ``"account"`` (the
            opportunity's value at ``as_of``).
        currency: the reporting currency; without it all amounts must share one currency.
        rates: :class:`~pipelinekit.money.FxRates` for the other currencies (converted at
            ``as_of``'s date).
        include_closed: also report the won and lost stages (every deal closed by
            ``as_of``, in its closed stage).
        where: a filter: only opportunities for which it returns ``True`` are reported.
        stages: report only these stage keys (validated against the scheme when
            computing); opportunities elsewhere are left out of every figure.

    Raises:
        ArgumentError: a bad argument, named (``group_by``, ``currency``, ``rates``,
            ``include_closed``, ``where``, ``stages``).

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=30, seed=3)
        >>> r = PipelineByStage(group_by="owner").compute(h, as_of="2024-06-30T00:00:00Z")
        >>> r.groups
        ('ann', 'bob', 'chen')
        >>> r.total("open").count == len(h.as_of("2024-06-30T00:00:00Z").open())
        True
    """

    def __init__(
        self,
        *,
        group_by: Field | None = None,
        currency: str | None = None,
        rates: FxRates | None = None,
        include_closed: bool = True,
        where: Callable[[Opportunity], bool] | None = None,
        stages: tuple[str, ...] | None = None,
    ) -> None:
        self.group_by: Field | None = field_arg(
            group_by, argument="group_by", allowed=(None, *FIELDS)
        )
        currency_args(currency, rates)
        if not isinstance(include_closed, bool):
            raise ArgumentError("include_closed", f"expected True or False, got {include_closed!r}")
        if where is not None and not callable(where):
            raise ArgumentError("where", f"expected a callable or None, got {where!r}")
        if stages is not None and (
            isinstance(stages, str)
            or not isinstance(stages, Iterable)
            or not all(isinstance(s, str) for s in stages)
        ):
            raise ArgumentError("stages", f"expected a tuple of stage keys, got {stages!r}")
        self.currency = currency
        self.rates = rates
        self.include_closed = include_closed
        self.where = where
        self.stages = None if stages is None else tuple(stages)

    def __repr__(self) -> str:
        return (
            f"PipelineByStage(group_by={self.group_by!r}, currency={self.currency!r}, "
            f"include_closed={self.include_closed!r}, stages={self.stages!r})"
        )

    def _stage_keys(self, scheme: StageScheme) -> tuple[str, ...]:
        if self.stages is None:
            keys = scheme.keys
        else:
            unknown = [s for s in self.stages if not scheme.has_stage(s)]
            if unknown:
                raise ArgumentError(
                    "stages",
                    f"unknown stage keys {unknown}; scheme {scheme.name!r} has {list(scheme.keys)}",
                )
            keys = tuple(sorted(set(self.stages), key=scheme.index))
        if not self.include_closed:
            closed = [k for k in keys if not scheme.stage(k).is_open]
            if self.stages is not None and closed:
                raise ArgumentError(
                    "stages", f"closed stages {closed} were asked for with include_closed=False"
                )
            keys = tuple(k for k in keys if scheme.stage(k).is_open)
        return keys

    def _add_columns(
        self,
        pipeline: Pipeline,
        keys: tuple[str, ...],
        to_rep: ReportingCurrency,
        sums: dict[tuple[str | None, str], list[Any]],
        add_group: Callable[[str | None], None],
    ) -> bool:
        """Add the sums of the snapshot's columns (the columnar engine's) to ``sums``, when
        there are columns and no amount needs converting; ``False`` (nothing added) else,
        and the deals are summed one by one (which also converts, or raises the
        currency error the first mismatched deal gives)."""
        table = pipeline.table()
        if table is None:
            return False
        currencies = table.currencies(keys)
        if len(currencies) > 1 or (
            to_rep.currency is not None and currencies and currencies != {to_rep.currency}
        ):
            return False
        found = table.stage_sums(keys, self.group_by)
        if found is None:
            return False
        for currency in currencies:  # what the one-by-one sum would report
            to_rep(_ZERO, currency)
        for row in found:
            if (row.group, row.stage) not in sums:
                add_group(row.group)
            acc = sums[(row.group, row.stage)]
            acc[0], acc[1], acc[2] = row.deals, row.unpriced, row.amount
            if acc[3] is not None:  # the stage has a weight: every deal a probability
                acc[3] = row.weighted
        return True

    def compute(self, history: History, *, as_of: Instant) -> PipelineByStageResult:
        """The pipeline by stage at ``as_of`` (sees only ``history.until(as_of)``).

        Raises:
            ArgumentError: ``as_of`` is not an aware instant; ``stages`` names a stage the
                scheme lacks.
            CurrencyError: amounts in several currencies without a reporting currency and
                rates for them.
        """
        with bulk_work():  # no GC passes over the transient snapshot: docs/performance.md
            return self._compute(history, as_of)

    def _compute(self, history: History, as_of: Instant) -> PipelineByStageResult:
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        keys = self._stage_keys(scheme)
        wanted = set(keys)
        weighted_available = scheme.has_weights
        to_rep = ReportingCurrency(self.currency, self.rates)
        on = when.date()
        # per (group, stage): [count, unpriced, amount, weighted or None]
        sums: dict[tuple[str | None, str], list[Any]] = {}

        def add_group(group: str | None) -> None:
            for key in keys:
                stage = scheme.stage(key)
                has_weight = weighted_available and stage.weight is not None
                sums[(group, key)] = [0, 0, _ZERO, _ZERO if has_weight else None]

        if self.group_by is None:
            add_group(None)
        pipeline = history.as_of(when)
        if self.where is None and self._add_columns(pipeline, keys, to_rep, sums, add_group):
            deals: Iterable[Deal] = ()  # summed from the snapshot's columns already
        else:  # a filter reads whole opportunities; without one, the fields suffice
            deals = pipeline.deals() if self.where is None else pipeline.values()
        for opp in deals:
            if opp.stage not in wanted or (
                self.where is not None and not self.where(cast(Opportunity, opp))
            ):
                continue
            group = group_of(opp, self.group_by)
            if (group, opp.stage) not in sums:
                add_group(group)
            acc = sums[(group, opp.stage)]
            acc[0] += 1
            if opp.amount is None:
                acc[1] += 1
                continue
            amount = to_rep(opp.amount, opp.currency, on=on)
            acc[2] = EXACT.add(acc[2], amount)
            if acc[3] is not None:
                # the stage has a weight, so the probability is known
                acc[3] = EXACT.add(acc[3], percent_of(amount, opp.probability or _ZERO))
        position = {k: i for i, k in enumerate(keys)}
        ordered = sorted(sums, key=lambda gk: (group_order(gk[0]), position[gk[1]]))
        cells = tuple(
            StageCell(
                group=group,
                stage=key,
                section=_section(scheme.stage(key)),
                count=sums[(group, key)][0],
                unpriced=sums[(group, key)][1],
                amount=sums[(group, key)][2],
                weighted=sums[(group, key)][3],
            )
            for group, key in ordered
        )
        return PipelineByStageResult(
            as_of=when,
            scheme=scheme.name,
            group_by=self.group_by,
            currency=to_rep.currency,
            include_closed=self.include_closed,
            stages=keys,
            labels=tuple(scheme.stage(k).label for k in keys),
            weighted_available=weighted_available,
            cells=cells,
        )
