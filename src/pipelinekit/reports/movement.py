"""Pipeline movement: the waterfall from a target period's pipeline at one date to another.

Managers ask "our Q3 pipeline was 1.2 M on July 1st and is 0.9 M today: what happened?"
(Salesforce Pipeline Inspection, Gong's change reasons, Dynamics' deal flow).
:class:`PipelineMovement` answers with a bridge that always balances to the cent::

    start + new + pulled in + pushed in + dated + reopened + increased - decreased
          - pulled out - pushed out - undated - won - lost  (+- moved between owners or
          categories, which nets to zero)  = end

The **target period's pipeline** at an instant is the open opportunities whose expected close
date falls in the target period, at their amount then. Every movement is a row attributed to
one opportunity, so the report can be grouped by owner or category and still balance.

**Attribution (a per-deal state comparison).** Each opportunity's state at ``start`` is
compared with its state at ``as_of``; what happened in between is not replayed, so the
bridge balances by construction. A deal is *in* at an instant when it is open and its
expected close is in the target period.

- In at both ends: ``moved_owner`` (if the owner changed: minus the start amount at the old
  owner, plus it at the new one), ``moved_category`` (likewise between forecast categories),
  then ``increased``/``decreased`` by end amount - start amount.
- In at start, out at ``as_of`` (an *exit*): ``moved_owner`` if the owner changed, then
  ``increased``/``decreased`` to the amount at ``as_of``, then the exit at that amount,
  the first that applies: ``won``, ``lost``; still open with no close date: ``undated``;
  close date before the target period: ``pulled_out``; after it: ``pushed_out``.
  Exit rows keep the start category.
- Out at start, in at ``as_of`` (an *entry*): the entry, at the start amount if the deal
  existed at start (else at its amount at ``as_of``): ``new`` (opened after start),
  ``reopened`` (closed at start), ``dated`` (open with no close date at start),
  ``pulled_in`` (close date after the target period at start), ``pushed_in`` (before it);
  then ``moved_owner`` and ``increased``/``decreased`` as above. Entry rows carry the
  category at ``as_of``.
- Out at both ends but closed in ``(start, as_of]`` with its expected close in the target
  period: the deal passed through and closed; it gets an entry, any amount change and its
  ``won``/``lost`` exit (net zero), in category ``closed`` or ``omitted``.
- A deal that entered and left again between the two ends other than by closing nets to
  zero and is not shown.

Amounts are in the reporting currency, converted at the rate of the ``as_of`` date at both
ends (a constant-currency bridge: exchange-rate moves are not reported as increases). A deal
without an amount counts as zero. Money is ``Decimal``; ``merge`` concatenates rows and adds
sums exactly.

**Slippage** (:attr:`MovementResult.slippage`): per opportunity of the report, the close-date
changes recorded in ``(start, as_of]``: how many moved the date later (*pushes*) and by how
many days in total, and how many moved it earlier (*pulls*).

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.movement import PipelineMovement
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-06-01T00:00:00Z",
    ...    "stage": "prospecting", "amount": "100", "currency": "EUR",
    ...    "expected_close": "2024-08-15"},
    ...   {"type": "close_date_changed", "opportunity_id": "a", "at": "2024-07-10T00:00:00Z",
    ...    "expected_close": "2024-10-15"},
    ...   {"type": "opened", "opportunity_id": "b", "at": "2024-07-02T00:00:00Z",
    ...    "stage": "prospecting", "amount": "40", "currency": "EUR",
    ...    "expected_close": "2024-09-01"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> m = PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-08-01"))
    >>> r = m.compute(h, as_of="2024-09-30T00:00:00Z")
    >>> r.starting, r.ending, [(x.kind, x.amount) for x in r.movements]
    (Decimal('100'), Decimal('40'), [('pushed_out', Decimal('-100')), ('new', Decimal('40'))])
    >>> r.slippage[0].pushes, r.slippage[0].days_slipped
    (1, 61)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.categories import CategoryMap, ForecastCategory, category_overrides
from pipelinekit.errors import ArgumentError
from pipelinekit.events import CloseDateChanged, Opened
from pipelinekit.history import History, Pipeline
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, total
from pipelinekit.opportunity import Opportunity
from pipelinekit.periods import Period, PeriodKind, period_kind
from pipelinekit.results import Result, html_table

__all__ = [
    "MovementKind",
    "MovementResult",
    "MovementRow",
    "PipelineMovement",
    "SlippageRow",
]

MovementKind = Literal[
    "new",
    "pulled_in",
    "pushed_in",
    "dated",
    "reopened",
    "increased",
    "decreased",
    "moved_owner",
    "moved_category",
    "pulled_out",
    "pushed_out",
    "undated",
    "won",
    "lost",
]
"""The kinds of movement, in bridge order (see the module docstring)."""

KINDS: tuple[str, ...] = get_args(MovementKind)
_ORDER = {k: i for i, k in enumerate(KINDS)}
TRANSFERS = ("moved_owner", "moved_category")
_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ZERO = Decimal(0)


class MovementRow(BaseModel):
    """One movement of one opportunity.

    Attributes:
        opportunity_id: the opportunity.
        kind: the :data:`MovementKind`.
        amount: the signed change to the target pipeline (reporting currency).
        owner, category: who and which forecast category the amount is booked to (a
            transfer is two rows: minus at the old value, plus at the new one).
        detail: what changed, e.g. ``"2024-08-15 -> 2024-10-15"`` or ``"ann -> bob"``.
    """

    model_config = _FROZEN

    opportunity_id: str
    kind: MovementKind
    amount: Decimal
    owner: str | None
    category: ForecastCategory
    detail: str | None = None


class SlippageRow(BaseModel):
    """Close-date changes of one opportunity recorded in ``(start, as_of]``.

    Attributes:
        opportunity_id: the opportunity.
        pushes: changes to a later date; ``days_slipped`` their total in days.
        pulls: changes to an earlier date; ``days_pulled`` their total in days.
        close_before: the expected close just before the first change in the window.
        close_after: the expected close after the last one.
    """

    model_config = _FROZEN

    opportunity_id: str
    pushes: int
    days_slipped: int
    pulls: int
    days_pulled: int
    close_before: date | None
    close_after: date | None


class MovementResult(Result):
    """The pipeline-movement bridge of one target period between two instants.

    Attributes:
        start, as_of: the two ends of the bridge.
        period: the target period.
        currency: the reporting currency (``None`` if no amount was seen).
        settings: the calculator's configuration (compared by :meth:`merge`).
        starting, ending: the target pipeline at ``start`` and at ``as_of``.
        starting_deals, ending_deals: how many deals it held then.
        movements: every movement, ordered by opportunity id and bridge order.
        slippage: per opportunity, its close-date changes in ``(start, as_of]``.
        start_by_owner, start_by_category: the starting pipeline per owner and per
            category (for :meth:`bridge_records`).
    """

    start: datetime
    as_of: datetime
    period: Period
    currency: str | None
    settings: tuple[tuple[str, str], ...]
    starting: Decimal
    ending: Decimal
    starting_deals: int
    ending_deals: int
    movements: tuple[MovementRow, ...]
    slippage: tuple[SlippageRow, ...]
    start_by_owner: tuple[tuple[str | None, Decimal], ...]
    start_by_category: tuple[tuple[str | None, Decimal], ...]

    def total(self, kind: MovementKind) -> Decimal:
        """The net amount of one kind of movement (zero for transfers)."""
        return total(r.amount for r in self.movements if r.kind == kind)

    @property
    def balances(self) -> bool:
        """True when start + every movement == end, exactly (always, by construction)."""
        return EXACT.add(self.starting, total(r.amount for r in self.movements)) == self.ending

    def to_records(self) -> list[dict[str, Any]]:
        """The bridge: one row per step (start, each kind of movement, end).

        Each row has ``step``, ``deals`` (distinct opportunities), ``amount`` (net) and
        ``moved`` (for transfers, the amount moved; else ``None``).
        """
        rows: list[dict[str, Any]] = [
            {"step": "start", "deals": self.starting_deals, "amount": self.starting, "moved": None}
        ]
        for kind in KINDS:
            picked = [r for r in self.movements if r.kind == kind]
            moved = total(r.amount for r in picked if r.amount > 0)
            rows.append(
                {
                    "step": kind,
                    "deals": len({r.opportunity_id for r in picked}),
                    "amount": total(r.amount for r in picked),
                    "moved": moved if kind in TRANSFERS else None,
                }
            )
        rows.append(
            {"step": "end", "deals": self.ending_deals, "amount": self.ending, "moved": None}
        )
        return rows

    def movement_records(self) -> list[dict[str, Any]]:
        """Every movement as a row (opportunity, kind, amount, owner, category, detail)."""
        return [
            {
                "opportunity_id": r.opportunity_id,
                "kind": r.kind,
                "amount": r.amount,
                "owner": r.owner,
                "category": r.category.value,
                "detail": r.detail,
            }
            for r in self.movements
        ]

    def slippage_records(self) -> list[dict[str, Any]]:
        """The slippage table as rows."""
        return [r.model_dump() for r in self.slippage]

    def bridge_records(self, by: Literal["owner", "category"]) -> list[dict[str, Any]]:
        """The bridge per owner or per category: start, net of each kind, end per group.

        Each group's row balances: start + the movements = end.

        Raises:
            ArgumentError: ``by`` is not ``"owner"`` or ``"category"``.
        """
        if by not in ("owner", "category"):
            raise ArgumentError("by", f"expected 'owner' or 'category', got {by!r}")
        groups: dict[str | None, dict[str, Any]] = {}

        def group(key: str | None) -> dict[str, Any]:
            if key not in groups:
                groups[key] = {by: key, "start": _ZERO, **dict.fromkeys(KINDS, _ZERO)}
            return groups[key]

        for r in self.movements:
            key = r.owner if by == "owner" else r.category.value
            row = group(key)
            row[r.kind] = EXACT.add(row[r.kind], r.amount)
        for key, amount in self.start_by_owner if by == "owner" else self.start_by_category:
            row = group(key)
            row["start"] = EXACT.add(row["start"], amount)
        rows = []
        for key in sorted(groups, key=lambda k: (k is None, k or "")):
            row = groups[key]
            row["end"] = EXACT.add(row["start"], total(row[k] for k in KINDS))
            rows.append(row)
        return rows

    def merge(self, other: MovementResult) -> MovementResult:
        """The bridge over both results' opportunities (disjoint sets, same configuration).

        Raises:
            ArgumentError: (naming ``other``) different ends, period, settings or
                currencies.
        """
        if not isinstance(other, MovementResult):
            raise ArgumentError("other", f"expected a MovementResult, got {type(other).__name__}")
        for name in ("start", "as_of", "period", "settings"):
            if getattr(self, name) != getattr(other, name):
                raise ArgumentError(
                    "other",
                    f"cannot merge results with different {name}: "
                    f"{getattr(self, name)!r} != {getattr(other, name)!r}",
                )
        if None not in (self.currency, other.currency) and self.currency != other.currency:
            raise ArgumentError(
                "other", f"cannot merge results in {self.currency} and {other.currency}"
            )
        return self.model_copy(
            update={
                "currency": self.currency or other.currency,
                "starting": EXACT.add(self.starting, other.starting),
                "ending": EXACT.add(self.ending, other.ending),
                "starting_deals": self.starting_deals + other.starting_deals,
                "ending_deals": self.ending_deals + other.ending_deals,
                "movements": tuple(sorted(self.movements + other.movements, key=_row_key)),
                "slippage": tuple(
                    sorted(self.slippage + other.slippage, key=lambda r: r.opportunity_id)
                ),
                "start_by_owner": _add_groups(self.start_by_owner, other.start_by_owner),
                "start_by_category": _add_groups(self.start_by_category, other.start_by_category),
            }
        )

    def _html_title(self) -> str:
        return (
            f"Pipeline movement of {self.period.label} from {self.start.isoformat(sep=' ')} "
            f"to {self.as_of.isoformat(sep=' ')} ({self.currency or 'no currency'})"
        )

    def _repr_html_(self) -> str:
        return html_table(self.to_records(), title=self._html_title())


def _row_key(row: MovementRow) -> tuple[str, int]:
    return (row.opportunity_id, _ORDER[row.kind])


def _group_key(key: str | None) -> tuple[bool, str]:
    return (key is None, key or "")


def _add_groups(
    a: tuple[tuple[str | None, Decimal], ...], b: tuple[tuple[str | None, Decimal], ...]
) -> tuple[tuple[str | None, Decimal], ...]:
    summed: dict[str | None, Decimal] = dict(a)
    for key, amount in b:
        summed[key] = EXACT.add(summed.get(key, _ZERO), amount)
    return tuple(sorted(summed.items(), key=lambda kv: _group_key(kv[0])))


def target_period(period: object, *, argument: str = "period") -> Period:
    """Resolve a target period given as a :class:`Period` or as ``(kind, date)``.

    ``kind`` is a :class:`PeriodKind` or a spec such as ``"quarter"``; ``date`` a date or
    an ISO date string inside the period.

    Raises:
        ArgumentError: (naming ``argument``) anything else.

    Example:
        >>> target_period(("quarter", "2024-08-01")).label
        '2024-Q3'
    """
    if isinstance(period, Period):
        return period
    if not isinstance(period, tuple) or len(period) != 2:
        raise ArgumentError(
            argument,
            f"expected a Period or a (kind, date) pair like ('quarter', '2024-07-01'), "
            f"got {period!r}",
        )
    spec, day = period
    if not isinstance(spec, str | PeriodKind):
        raise ArgumentError(argument, f"expected a period kind or spec, got {spec!r}")
    try:
        kind = period_kind(spec)
    except ArgumentError as exc:
        raise ArgumentError(argument, exc.reason) from None
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise ArgumentError(argument, f"expected an ISO date, got {day!r}") from None
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ArgumentError(argument, f"expected a date inside the period, got {day!r}")
    return kind.period_of(day)


def _settings(
    currency: str | None,
    rates: FxRates | None,
    categories: CategoryMap | None,
    overrides: tuple[tuple[str, ForecastCategory], ...],
) -> tuple[tuple[str, str], ...]:
    return (
        ("currency", str(currency)),
        ("rates", "" if rates is None else rates.model_dump_json()),
        ("categories", "" if categories is None else categories.model_dump_json()),
        ("overrides", repr([(k, v.value) for k, v in overrides])),
    )


class PipelineMovement:
    """The waterfall of a target period's pipeline between ``start`` and ``as_of``.

    Args:
        start: the first end of the bridge (an aware datetime or ISO string).
        period: the target period whose pipeline is tracked: a
            :class:`~pipelinekit.periods.Period` or ``(kind, date)``, e.g.
            ``("quarter", "2024-07-01")``.
        currency, rates: the reporting currency and :class:`~pipelinekit.money.FxRates`
            (needed when deals are in several currencies).
        categories: the :class:`~pipelinekit.categories.CategoryMap` for the category
            transfers (default: the scheme's default map).
        overrides: per-deal forecast categories, opportunity id -> category.

    Raises:
        ArgumentError: a bad argument, naming it.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=30, seed=3)
        >>> r = PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-07-01")
        ...                      ).compute(h, as_of="2024-09-30T00:00:00Z")
        >>> r.balances
        True
    """

    def __init__(
        self,
        *,
        start: Instant,
        period: Period | tuple[str | PeriodKind, date | str],
        currency: str | None = None,
        rates: FxRates | None = None,
        categories: CategoryMap | None = None,
        overrides: Mapping[str, ForecastCategory | str] | None = None,
    ) -> None:
        self.start = instant(start, argument="start")
        self.period = target_period(period)
        ReportingCurrency(currency, rates)  # validates both
        if categories is not None and not isinstance(categories, CategoryMap):
            raise ArgumentError(
                "categories", f"expected a CategoryMap, got {type(categories).__name__}"
            )
        self.currency = currency
        self.rates = rates
        self.categories = categories
        self.overrides = category_overrides(overrides)

    def compute(self, history: History, *, as_of: Instant) -> MovementResult:
        """The bridge from ``start`` to ``as_of`` (only events up to ``as_of`` are seen).

        Raises:
            ArgumentError: ``as_of`` is before ``start`` (naming ``as_of``), or the
                category map does not fit the history's scheme (naming ``categories``).
            CurrencyError: amounts in several currencies without a reporting currency
                and rates.
        """
        end = instant(as_of, argument="as_of")
        if end < self.start:
            raise ArgumentError(
                "as_of",
                f"the window ends ({end.isoformat()}) before it starts ({self.start.isoformat()})",
            )
        history = history.until(end)
        cmap = self.categories or CategoryMap.for_scheme(history.scheme)
        cmap.check(history.scheme)
        overrides = dict(self.overrides)
        money = ReportingCurrency(self.currency, self.rates)
        on = end.date()
        period = self.period

        def amount(o: Opportunity) -> Decimal:
            return _ZERO if o.amount is None else money(o.amount, o.currency, on)

        def inside(o: Opportunity) -> bool:
            return o.is_open and o.expected_close is not None and o.expected_close in period

        at_start: Pipeline = history.as_of(self.start)
        at_end: Pipeline = history.as_of(end)
        rows: list[MovementRow] = []
        starting = ending = _ZERO
        n_start = n_end = 0
        by_owner: dict[str | None, Decimal] = {}
        by_category: dict[str | None, Decimal] = {}
        relevant: set[str] = set()
        for oid in sorted(at_end):
            e = at_end[oid]
            s = at_start.get(oid)
            was_in = s is not None and inside(s)
            now_in = inside(e)
            passed = (
                not was_in
                and not now_in
                and not e.is_open
                and e.closed_at is not None
                and self.start < e.closed_at
                and e.expected_close is not None
                and e.expected_close in period
            )
            if not (was_in or now_in or passed):
                continue
            relevant.add(oid)
            a_end = amount(e)
            cat_end = cmap.category_of(e, overrides)
            a_start = _ZERO if s is None else amount(s)
            cat_start = cat_end if s is None else cmap.category_of(s, overrides)
            if was_in:
                assert s is not None  # was_in implies a start state
                starting = EXACT.add(starting, a_start)
                n_start += 1
                by_owner[s.owner] = EXACT.add(by_owner.get(s.owner, _ZERO), a_start)
                by_category[cat_start.value] = EXACT.add(
                    by_category.get(cat_start.value, _ZERO), a_start
                )
            rows.extend(
                _Deal(s, e, a_start, a_end, cat_start, cat_end, period).rows(
                    was_in=was_in, now_in=now_in
                )
            )
            if now_in:
                ending = EXACT.add(ending, a_end)
                n_end += 1
        return MovementResult(
            start=self.start,
            as_of=end,
            period=period,
            currency=money.currency,
            settings=_settings(self.currency, self.rates, self.categories, self.overrides),
            starting=starting,
            ending=ending,
            starting_deals=n_start,
            ending_deals=n_end,
            movements=tuple(sorted(rows, key=_row_key)),
            slippage=_slippage(history, self.start, relevant),
            start_by_owner=tuple(sorted(by_owner.items(), key=lambda kv: _group_key(kv[0]))),
            start_by_category=tuple(sorted(by_category.items(), key=lambda kv: _group_key(kv[0]))),
        )


def _where(close: date | None, period: Period) -> str:
    if close is None:
        return "none"
    if close < period.start:
        return "before"
    if close >= period.end:
        return "after"
    return "inside"


def _entry(
    s: Opportunity | None, period: Period, e: Opportunity
) -> tuple[MovementKind, str | None]:
    if s is None:
        return "new", f"opened {e.opened_at.date().isoformat()}"
    if not s.is_open:
        return "reopened", f"was {s.stage}"
    detail = f"{s.expected_close} -> {e.expected_close}"
    where = _where(s.expected_close, period)
    if where == "none":
        return "dated", detail
    return ("pulled_in" if where == "after" else "pushed_in"), detail


def _exit(e: Opportunity, period: Period, s: Opportunity | None) -> tuple[MovementKind, str | None]:
    if e.is_won or e.is_lost:
        assert e.closed_at is not None  # a closed deal has a close instant
        return ("won" if e.is_won else "lost"), f"closed {e.closed_at.date().isoformat()}"
    before = None if s is None else s.expected_close
    detail = f"{before} -> {e.expected_close}"
    where = _where(e.expected_close, period)
    if where == "none":
        return "undated", detail
    return ("pulled_out" if where == "before" else "pushed_out"), detail


def _slippage(history: History, start: datetime, relevant: set[str]) -> tuple[SlippageRow, ...]:
    close: dict[str, date | None] = {}
    found: dict[str, list[Any]] = {}
    for event in history:  # events built one at a time, not kept
        oid = event.opportunity_id
        if isinstance(event, Opened):
            close[oid] = event.expected_close
        elif isinstance(event, CloseDateChanged):
            old, new = close.get(oid), event.expected_close
            close[oid] = new
            if oid not in relevant or event.at <= start:
                continue
            row = found.setdefault(oid, [0, 0, 0, 0, old, new])
            row[5] = new
            if old is not None and new is not None and new != old:
                days = (new - old).days
                if days > 0:
                    row[0] += 1
                    row[1] += days
                else:
                    row[2] += 1
                    row[3] -= days
    return tuple(
        SlippageRow(
            opportunity_id=oid,
            pushes=v[0],
            days_slipped=v[1],
            pulls=v[2],
            days_pulled=v[3],
            close_before=v[4],
            close_after=v[5],
        )
        for oid, v in sorted(found.items())
    )


class _Deal:
    """The movement rows of one opportunity, from its states at both ends (see the module
    docstring for the attribution rules)."""

    def __init__(
        self,
        s: Opportunity | None,
        e: Opportunity,
        a_start: Decimal,
        a_end: Decimal,
        cat_start: ForecastCategory,
        cat_end: ForecastCategory,
        period: Period,
    ) -> None:
        self.s, self.e, self.period = s, e, period
        self.a_start, self.a_end = a_start, a_end
        self.cat_start, self.cat_end = cat_start, cat_end
        self.out: list[MovementRow] = []

    def add(
        self,
        kind: MovementKind,
        amount: Decimal,
        owner: str | None,
        category: ForecastCategory,
        detail: str | None,
    ) -> None:
        self.out.append(
            MovementRow(
                opportunity_id=self.e.id,
                kind=kind,
                amount=amount,
                owner=owner,
                category=category,
                detail=detail,
            )
        )

    def change(self, before: Decimal, category: ForecastCategory) -> None:
        after = self.a_end
        if after != before:
            kind: MovementKind = "increased" if after > before else "decreased"
            change = EXACT.subtract(after, before)
            self.add(kind, change, self.e.owner, category, f"{before} -> {after}")

    def moved_owner(self, amount: Decimal, old: str | None, category: ForecastCategory) -> None:
        new = self.e.owner
        if old != new:
            self.add("moved_owner", -amount, old, category, f"{old} -> {new}")
            self.add("moved_owner", amount, new, category, f"{old} -> {new}")

    def rows(self, *, was_in: bool, now_in: bool) -> list[MovementRow]:
        s, e = self.s, self.e
        if was_in:
            assert s is not None  # was_in implies a start state
            self.moved_owner(self.a_start, s.owner, self.cat_start)
            if now_in:
                if self.cat_start is not self.cat_end:
                    moved = f"{self.cat_start.value} -> {self.cat_end.value}"
                    self.add("moved_category", -self.a_start, e.owner, self.cat_start, moved)
                    self.add("moved_category", self.a_start, e.owner, self.cat_end, moved)
                self.change(self.a_start, self.cat_end)
            else:
                self.change(self.a_start, self.cat_start)
                kind, detail = _exit(e, self.period, s)
                self.add(kind, -self.a_end, e.owner, self.cat_start, detail)
            return self.out
        # an entry (now_in), or a deal that passed through and closed
        kind, detail = _entry(s, self.period, e)
        a_entry = self.a_end if s is None else self.a_start
        owner_entry = e.owner if s is None else s.owner
        self.add(kind, a_entry, owner_entry, self.cat_end, detail)
        self.moved_owner(a_entry, owner_entry, self.cat_end)
        self.change(a_entry, self.cat_end)
        if not now_in:
            kind, detail = _exit(e, self.period, s)
            self.add(kind, -self.a_end, e.owner, self.cat_end, detail)
        return self.out
