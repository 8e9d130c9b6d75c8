"""Pipeline: a snapshot, every opportunity's state at one instant.

``History.as_of(t)`` gives one (see :mod:`pipelinekit.history`).
"""

from __future__ import annotations

from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple, Protocol

from pipelinekit.errors import ArgumentError, CurrencyError, PipelineError
from pipelinekit.money import total
from pipelinekit.opportunity import Opportunity
from pipelinekit.results import html_table, records_to_pandas, text_table
from pipelinekit.stages import Outcome, StageScheme

__all__ = ["Deal", "DealTable", "DealView", "Pipeline", "StageSum", "UnknownOpportunityError"]


class Deal(Protocol):
    """The snapshot fields of one opportunity that sums over a pipeline read (an
    :class:`~pipelinekit.opportunity.Opportunity` has them all; so has a
    :class:`DealView`)."""

    @property
    def id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def stage_weight(self) -> Decimal | None: ...
    @property
    def outcome(self) -> Outcome | None: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def expected_close(self) -> date | None: ...
    @property
    def probability_override(self) -> Decimal | None: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def account(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def probability(self) -> Decimal | None: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def is_won(self) -> bool: ...


class DealView(NamedTuple):
    """An opportunity's snapshot fields without its stage path, activities and next
    action: what the columnar engine hands the calculators' sums instead of building an
    :class:`~pipelinekit.opportunity.Opportunity` per deal. Equal field by field to the
    Opportunity the reference engine builds.

    Example:
        >>> from decimal import Decimal
        >>> d = DealView("o-1", "lead", Decimal(10), None, Decimal(500), "EUR", None, None,
        ...              None, None, None, None, None)
        >>> d.probability, d.is_open
        (Decimal('10'), True)
    """

    id: str
    stage: str
    stage_weight: Decimal | None
    outcome: Outcome | None
    amount: Decimal | None
    currency: str | None
    expected_close: date | None
    probability_override: Decimal | None
    owner: str | None
    account: str | None
    product: str | None
    source: str | None
    closed_at: datetime | None

    @property
    def probability(self) -> Decimal | None:
        """The override if set, else the stage's weight (as ``Opportunity.probability``)."""
        if self.probability_override is not None:
            return self.probability_override
        return self.stage_weight

    @property
    def is_open(self) -> bool:
        """True while neither won nor lost."""
        return self.outcome is None

    @property
    def is_won(self) -> bool:
        """True at a won stage."""
        return self.outcome is Outcome.WON


class StageSum(NamedTuple):
    """The exact sums of one stage (and group) over a snapshot's deals, as a
    :class:`DealTable` gives them to the pipeline report.

    Attributes:
        group: the deals' value of the grouping field (``None`` when ungrouped or unset).
        stage: the stage key.
        deals: how many deals are at the stage; unpriced: those without an amount.
        amount: the exact sum of their amounts (:func:`~pipelinekit.money.total`).
        weighted: the exact sum of ``percent_of(amount, probability or 0)`` over the
            priced deals with a probability (override, else stage weight), ``0`` when
            none has one.

    Example:
        >>> from decimal import Decimal
        >>> StageSum(None, "lead", 2, 1, Decimal("500"), Decimal("50")).unpriced
        1
    """

    group: str | None
    stage: str
    deals: int
    unpriced: int
    amount: Decimal
    weighted: Decimal


class DealTable(Protocol):
    """A snapshot's fields as columns (the columnar engine's
    :class:`~pipelinekit.engine.columnar.DealColumns`): what sums over many deals read
    instead of one object per deal. Its answers equal the reference's sums over the
    :class:`~pipelinekit.opportunity.Opportunity` objects, to the last digit."""

    def views(self) -> list[DealView]:
        """One :class:`DealView` per opportunity, in order."""
        ...

    def currencies(self, stages: Iterable[str]) -> frozenset[str | None]:
        """The currencies of the priced deals at these stages."""
        ...

    def select(
        self, names: Sequence[str], *, outcome: Outcome | None, closed_from: datetime | None = None
    ) -> list[list[Any]]:
        """Fields of the priced deals with ``outcome`` (``None``: open), closed at or after
        ``closed_from`` if given, in order of id: one list per name, values as the
        Opportunity objects hold them (``probability``: the override, else the weight)."""
        ...

    def stage_sums(self, stages: Iterable[str], group_by: str | None) -> list[StageSum] | None:
        """The sums per (group, stage) of the deals at these stages, groups in name order
        (``None`` last), stages in scheme order; ``None`` when the columns cannot give
        them exactly (a stage weight with more than four decimals)."""
        ...


class UnknownOpportunityError(PipelineError, KeyError):
    """A pipeline was asked for an opportunity it does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Pipeline(Mapping[str, Opportunity]):
    """A snapshot: every opportunity's state at one instant, keyed by id.

    Attributes:
        scheme: the scheme of the history it came from.
        as_of: the instant of the snapshot.

    Example:
        >>> import pipelinekit as pk
        >>> recs = [
        ...   {"type": "opened", "opportunity_id": "a", "stage": "prospecting",
        ...    "at": "2024-01-05T10:00:00Z", "amount": "1000", "currency": "USD"},
        ...   {"type": "opened", "opportunity_id": "b", "stage": "negotiation-review",
        ...    "at": "2024-01-06T10:00:00Z", "amount": "2000", "currency": "USD"},
        ...   {"type": "stage_changed", "opportunity_id": "a", "stage": "closed-lost",
        ...    "at": "2024-01-07T10:00:00Z"}]
        >>> pipe = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce")).as_of(
        ...     "2024-02-01T00:00:00Z")
        >>> len(pipe), list(pipe.open()), list(pipe.lost())
        (2, ['b'], ['a'])
        >>> pipe.total_amount(), pipe.weighted_total()
        (Decimal('2000'), Decimal('1800'))
    """

    __slots__ = ("_deals", "_opps", "as_of", "scheme")

    def __init__(
        self,
        scheme: StageScheme,
        as_of: datetime,
        opportunities: Mapping[str, Opportunity],
        *,
        _deals: DealTable | None = None,
    ):
        self.scheme = scheme
        self.as_of = as_of
        self._opps = opportunities
        # the columnar engine's snapshot fields (pipelinekit.engine.columnar.DealColumns),
        # which the fast calculator paths read instead of building every Opportunity
        self._deals = _deals

    def at(self, when: datetime) -> Pipeline:
        """The same states labelled with another instant (no events in between)."""
        return Pipeline(self.scheme, when, self._opps, _deals=self._deals)

    def __getitem__(self, opportunity_id: str) -> Opportunity:
        try:
            return self._opps[opportunity_id]
        except KeyError:
            raise UnknownOpportunityError(
                f"no opportunity {opportunity_id!r} at {self.as_of.isoformat()} "
                f"({len(self._opps)} opportunities are known then)"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._opps)

    def __len__(self) -> int:
        return len(self._opps)

    def __contains__(self, key: object) -> bool:
        return key in self._opps

    # the dict's own views: Mapping's would look every value up through __getitem__
    def keys(self) -> KeysView[str]:
        return self._opps.keys()

    def values(self) -> ValuesView[Opportunity]:
        return self._opps.values()

    def items(self) -> ItemsView[str, Opportunity]:
        return self._opps.items()

    def deals(self) -> Iterable[Deal]:
        """Every opportunity's snapshot fields, in the order of :meth:`values`: the
        ``Opportunity`` objects themselves, or, from the columnar engine, a
        :class:`DealView` per opportunity (the same fields, without building the
        opportunities' stage paths and activities). Sums over a pipeline read these.

        Example:
            >>> from pipelinekit import demo
            >>> pipe = demo.demo_history(opportunities=5, seed=1).as_of("2024-12-31T00:00:00Z")
            >>> [d.id for d in pipe.deals()] == list(pipe)
            True
        """
        if self._deals is not None:
            views: Iterable[Deal] = self._deals.views()
            return views
        return self._opps.values()

    def table(self) -> DealTable | None:
        """The snapshot's fields as columns when the columnar engine made it, else ``None``:
        calculators that only sum snapshot fields read these instead of every deal.

        Example:
            >>> from pipelinekit import demo
            >>> pipe = demo.demo_history(opportunities=5, seed=1).as_of("2024-12-31T00:00:00Z")
            >>> table = pipe.table()  # None from the reference engine
            >>> table is None or [view.id for view in table.views()] == list(pipe)
            True
        """
        return self._deals

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return (
            self.as_of == other.as_of and self.scheme == other.scheme and self._opps == other._opps
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<Pipeline as_of={self.as_of.isoformat()}: {len(self)} opportunities, "
            f"{sum(1 for o in self.values() if o.is_open)} open>"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One row per opportunity: stage, amount, probability, weighted amount, dates.

        Example:
            >>> from pipelinekit import demo
            >>> pipe = demo.demo_history(opportunities=3, seed=1).as_of("2024-12-31T00:00:00Z")
            >>> sorted(pipe.to_records()[0])[:5]
            ['account', 'amount', 'closed_at', 'currency', 'expected_close']
        """
        rows = []
        for o in self._opps.values():
            rows.append(
                {
                    "opportunity_id": o.id,
                    "name": o.name,
                    "stage": o.stage,
                    "outcome": None if o.outcome is None else o.outcome.value,
                    "amount": o.amount,
                    "currency": o.currency,
                    "probability": o.probability,
                    "weighted_amount": o.weighted_amount,
                    "expected_close": o.expected_close,
                    "owner": o.owner,
                    "account": o.account,
                    "product": o.product,
                    "source": o.source,
                    "opened_at": o.opened_at,
                    "stage_entered_at": o.stage_entered_at,
                    "closed_at": o.closed_at,
                    "next_action_due": None if o.next_action is None else o.next_action.due,
                }
            )
        return rows

    def _repr_html_(self) -> str:
        title = f"Pipeline as of {self.as_of.isoformat(sep=' ')} ({len(self)} opportunities)"
        return html_table(self.to_records(), title=title)

    def __str__(self) -> str:
        """A short text table: the counts, then the first opportunities' stage, amount,
        probability, weighted amount, expected close and owner.

        Example:
            >>> from pipelinekit import demo
            >>> pipe = demo.demo_history(opportunities=30, seed=1).as_of("2024-12-31T00:00:00Z")
            >>> print(str(pipe).splitlines()[0])
            Pipeline as of 2024-12-31 00:00+00:00: 30 opportunities (11 open, 11 won, 8 lost)
        """
        outcomes = [o.outcome for o in self.values()]
        counts = [outcomes.count(kind) for kind in (None, Outcome.WON, Outcome.LOST)]
        title = (
            f"Pipeline as of {self.as_of.isoformat(sep=' ', timespec='minutes')}: {len(self)} "
            f"opportunities ({counts[0]} open, {counts[1]} won, {counts[2]} lost)"
        )
        columns = _SHOWN
        rows = [{c: r[c] for c in columns} for r in self.to_records()]
        return text_table(rows, title=title)

    def to_pandas(self, *, money: Literal["decimal", "float"] = "decimal") -> Any:
        """The rows of :meth:`to_records` as a pandas DataFrame (needs pandas)."""
        return records_to_pandas(self.to_records(), money=money)

    def _subset(self, keep: Any) -> Pipeline:
        return Pipeline(self.scheme, self.as_of, {k: o for k, o in self._opps.items() if keep(o)})

    def open(self) -> Pipeline:
        """The opportunities that are neither won nor lost."""
        return self._subset(lambda o: o.is_open)

    def won(self) -> Pipeline:
        """The won opportunities."""
        return self._subset(lambda o: o.is_won)

    def lost(self) -> Pipeline:
        """The lost opportunities."""
        return self._subset(lambda o: o.is_lost)

    def currencies(self) -> frozenset[str]:
        """The currencies of the opportunities that have an amount."""
        return frozenset(o.currency for o in self.values() if o.amount is not None and o.currency)

    def total_amount(self) -> Decimal:
        """Sum of the open opportunities' amounts (those without an amount add nothing).

        Raises:
            CurrencyError: the open opportunities are in more than one currency.
        """
        opps = [o for o in self.values() if o.is_open and o.amount is not None]
        _single_currency(opps)
        return total(o.amount for o in opps if o.amount is not None)

    def weighted_total(self) -> Decimal:
        """Sum of the open opportunities' weighted amounts (amount x probability / 100).

        Raises:
            CurrencyError: the open opportunities are in more than one currency.
            ArgumentError: an open opportunity with an amount has no probability (its
                stage has no weight and no override is set).
        """
        opps = [o for o in self.values() if o.is_open and o.amount is not None]
        _single_currency(opps)
        weights: list[Decimal] = []
        for o in opps:
            weighted = o.weighted_amount
            if weighted is None:
                raise ArgumentError(
                    "scheme",
                    f"opportunity {o.id!r} at stage {o.stage!r} has no probability: the "
                    "stage has no weight and no override is set; weighted totals are "
                    "unavailable",
                )
            weights.append(weighted)
        return total(weights)


_SHOWN = (
    "opportunity_id",
    "stage",
    "amount",
    "currency",
    "probability",
    "weighted_amount",
    "expected_close",
    "owner",
)


def _single_currency(opps: list[Opportunity]) -> None:
    currencies = {o.currency for o in opps}
    if len(currencies) > 1:
        shown = sorted(c or "<none>" for c in currencies)
        raise CurrencyError(
            f"open opportunities are in several currencies {shown}; convert with FxRates "
            "to a reporting currency before adding amounts"
        )
