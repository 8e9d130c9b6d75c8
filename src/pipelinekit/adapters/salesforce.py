"""Salesforce: Opportunity, OpportunityHistory and OpportunityFieldHistory exports.

Pure functions, no I/O: give the rows of each object as exported (Data Loader, a report
export, a SOQL query, ``pd.read_csv``), get pipelinekit records or a History. The stage
scheme defaults to the ``salesforce`` preset (Salesforce's standard stages and default
probabilities); stage names are matched to keys by label (:meth:`StageScheme.key_for`), so a
scheme of your own works as long as its labels are your org's stage names.

Mapping (default column names; rename any with ``columns={"opportunities": {...}}``):

    ==========================================  ================================================
    export column                               becomes
    ==========================================  ================================================
    Opportunity ``Id``                          ``opportunity_id``
    Opportunity ``CreatedDate``                 ``opened`` at that time, in the stage of the
                                                earliest history row (OpportunityHistory, else
                                                the first StageName change's OldValue in
                                                OpportunityFieldHistory, else ``StageName``)
    Opportunity ``Amount``, ``CurrencyIsoCode``  ``opened`` amount and currency (``currency=``
                                                when the export has no currency column)
    Opportunity ``CloseDate``                   ``opened`` expected_close
    Opportunity ``Name``, ``OwnerId``,          ``opened`` name, owner, account, source
    ``AccountId``, ``LeadSource``
    Opportunity ``Probability`` or              ``opened`` probability override, only with
    ``ExpectedRevenue``                         ``overrides="probability"`` or
                                                ``"expected_revenue"`` (ExpectedRevenue /
                                                Amount x 100)
    Opportunity ``IsClosed``, ``IsWon``         never change a stage: checked against
                                                ``StageName`` (:func:`contradictions`)
    OpportunityHistory row (``OpportunityId``,  ``stage_changed`` at ``CreatedDate`` to
    ``CreatedDate``, ``StageName``)             ``StageName``; rows of one time ordered by
                                                ``SortOrder``; event_id = its ``Id``
    OpportunityHistory ``Probability`` /        ``probability_set`` when it changes, only with
    ``ExpectedRevenue``                         ``overrides=``
    OpportunityFieldHistory row (``Field``,     ``StageName``: ``stage_changed``; ``Amount``:
    ``NewValue``, ``CreatedDate``)              ``amount_changed``; ``CloseDate``:
                                                ``close_date_changed``; ``Owner``:
                                                ``owner_changed``; ``Probability``:
                                                ``probability_set`` (with ``overrides=``); other
                                                fields are not events and are skipped
    ==========================================  ================================================

Dates: ISO strings, ``datetime``/``date`` objects, or ``14/03/2022`` (``date_order="dmy"``)
and ``02/23/26 08:55 PM`` (``date_order="mdy"``) as Salesforce's exports write them in the
user's locale; times without a zone are in ``tz`` (UTC unless given).

**IsClosed/IsWon against StageName.** An export may hold opportunities whose ``StageName``
is a closed stage while ``IsClosed`` is false (or the reverse, or a won stage that is not
``IsWon``). The adapter never resolves that silently: the stage always comes from the stage
names, and :func:`contradictions` lists every such deal. :func:`to_history` raises a
``RecordError`` naming the first one in strict mode and emits a
:class:`ContradictionWarning` in lenient mode, unless ``closed_flags="ignore"`` says the
stage names are to be trusted.

Example:
    >>> from pipelinekit.adapters import salesforce
    >>> opportunities = [
    ...     {"Id": "006A", "CreatedDate": "2024-01-05", "StageName": "Negotiation/Review",
    ...      "Amount": "12000", "CloseDate": "2024-03-31", "IsClosed": "false",
    ...      "IsWon": "false"}]
    >>> history = [
    ...     {"OpportunityId": "006A", "CreatedDate": "2024-01-05", "StageName": "Prospecting"},
    ...     {"OpportunityId": "006A", "CreatedDate": "2024-02-01",
    ...      "StageName": "Negotiation/Review"}]
    >>> h = salesforce.to_history(opportunities=opportunities, history=history)
    >>> deal = h.as_of("2024-02-15T00:00:00Z")["006A"]
    >>> deal.stage, deal.weighted_amount
    ('negotiation-review', Decimal('10800'))
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit import schemes
from pipelinekit.adapters._table import (
    Changes,
    DateOrder,
    Row,
    Table,
    build_history,
    day,
    drop_none,
    flag,
    identifier,
    instant,
    number,
    read_input,
    stage_key,
)
from pipelinekit.errors import ArgumentError, RecordError
from pipelinekit.history import History
from pipelinekit.ingestion import Mode
from pipelinekit.results import Result
from pipelinekit.stages import StageScheme

__all__ = [
    "COLUMNS",
    "Contradiction",
    "ContradictionWarning",
    "Contradictions",
    "contradictions",
    "to_history",
    "to_records",
]

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "opportunities": {
        "id": ("Id", "OpportunityId", "OppID"),
        "created": ("CreatedDate",),
        "stage": ("StageName",),
        "amount": ("Amount",),
        "currency": ("CurrencyIsoCode",),
        "close_date": ("CloseDate",),
        "name": ("Name",),
        "owner": ("OwnerId", "Owner.Name", "Owner"),
        "account": ("AccountId", "Account.Name", "Account"),
        "source": ("LeadSource",),
        "probability": ("Probability",),
        "expected_revenue": ("ExpectedRevenue",),
        "is_closed": ("IsClosed",),
        "is_won": ("IsWon",),
    },
    "history": {
        "id": ("Id",),
        "opportunity": ("OpportunityId", "OppID"),
        "at": ("CreatedDate",),
        "stage": ("StageName",),
        "sort_order": ("SortOrder",),
        "probability": ("Probability",),
        "amount": ("Amount",),
        "expected_revenue": ("ExpectedRevenue",),
    },
    "field_history": {
        "id": ("Id",),
        "opportunity": ("OpportunityId", "OppID"),
        "at": ("CreatedDate",),
        "field": ("Field",),
        "old": ("OldValue",),
        "new": ("NewValue",),
    },
}
"""The columns each field is read from, per input, alternatives in order of preference."""

_REQUIRED = {
    "opportunities": ("id", "created", "stage"),
    "history": ("opportunity", "at", "stage"),
    "field_history": ("opportunity", "at", "field", "new"),
}
Overrides = Literal["probability", "expected_revenue"] | None
_STARTED = "_started_in"
"""Scratch key of a stage change: the stage name the deal was in before it, were it the
first change (OpportunityHistory's first row is the creation stage itself)."""


class ContradictionWarning(UserWarning):
    """Opportunities whose StageName disagrees with IsClosed/IsWon were loaded in lenient
    mode (the stage follows the stage names); :func:`contradictions` lists them."""


class Contradiction(BaseModel):
    """One opportunity whose ``StageName`` disagrees with its ``IsClosed``/``IsWon``.

    Attributes:
        index: the opportunity's row in the input.
        opportunity_id: its ``Id``.
        stage_name: its ``StageName``.
        is_closed, is_won: the flags as exported.
        field: the flag that disagrees (``IsClosed`` first when both do).
        reason: what disagrees, in words.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    opportunity_id: str
    stage_name: str
    is_closed: bool | None
    is_won: bool | None
    field: str
    reason: str


class Contradictions(Result):
    """Every opportunity whose ``StageName`` disagrees with ``IsClosed``/``IsWon``.

    Attributes:
        checked: how many opportunities were checked.
        rows: the ones that disagree, in input order.
    """

    checked: int
    rows: tuple[Contradiction, ...] = ()

    def _html_title(self) -> str:
        return (
            f"{len(self.rows)} of {self.checked} opportunities: StageName disagrees with "
            "IsClosed/IsWon"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One row per contradicting opportunity."""
        return [r.model_dump() for r in self.rows]


def _table(data: Any, name: str, columns: Mapping[str, Mapping[str, str]] | None) -> Table:
    return read_input(data, name, inputs=COLUMNS, required=_REQUIRED, columns=columns)


def _scheme(scheme: StageScheme | None) -> StageScheme:
    return schemes.get("salesforce") if scheme is None else scheme


def _probability(table: Table, row: Row, overrides: Overrides) -> Any:
    """The probability override a row asks for (``None`` without ``overrides``)."""
    if overrides == "probability":
        return number(table.get(row, "probability"))
    if overrides == "expected_revenue":
        revenue, amount = (
            number(table.get(row, "expected_revenue")),
            number(table.get(row, "amount")),
        )
        try:
            if isinstance(revenue, Decimal) and isinstance(amount, Decimal) and amount:
                return revenue / amount * 100
        except InvalidOperation:
            return revenue
        return None
    if overrides is not None:
        raise ArgumentError(
            "overrides", f"expected 'probability', 'expected_revenue' or None, got {overrides!r}"
        )
    return None


def to_records(
    *,
    opportunities: Any,
    history: Any = None,
    field_history: Any = None,
    scheme: StageScheme | None = None,
    overrides: Overrides = None,
    currency: str | None = None,
    date_order: DateOrder = "ymd",
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """pipelinekit records from a Salesforce export (see the module's mapping table).

    Args:
        opportunities: Opportunity rows (an iterable of mappings or a DataFrame).
        history: OpportunityHistory rows, if exported.
        field_history: OpportunityFieldHistory rows, if exported.
        scheme: the stage scheme whose labels the stage names are (the ``salesforce``
            preset when ``None``).
        overrides: ``"probability"`` or ``"expected_revenue"`` to carry Salesforce's
            probabilities as overrides; ``None`` (the default) lets the scheme's stage
            weights decide.
        currency: the currency of every amount when the export has no
            ``CurrencyIsoCode`` column.
        date_order: how dates with slashes read (``"dmy"``, ``"mdy"``; ISO is always read).
        tz: the zone of times that carry none.
        columns: your column names, per input and field, e.g.
            ``{"history": {"opportunity": "OppID"}}`` (fields: :data:`COLUMNS`).

    Raises:
        ArgumentError: an input is not rows, a required column is absent, or an argument
            is unknown.

    Example:
        >>> from pipelinekit.adapters import salesforce
        >>> recs = salesforce.to_records(opportunities=[
        ...     {"Id": "006A", "CreatedDate": "14/03/2022", "StageName": "Prospecting",
        ...      "Amount": "1000", "Probability": "35"}],
        ...     date_order="dmy", overrides="probability", currency="USD")
        >>> recs[0]["at"].isoformat(), recs[0]["stage"], recs[0]["probability"]
        ('2022-03-14T00:00:00+00:00', 'prospecting', Decimal('35'))
    """
    stages = _scheme(scheme)
    _probability(Table([], argument="x", columns={}), {}, overrides)  # checks the argument
    opps = _table(opportunities, "opportunities", columns)
    changes = Changes()
    probed: set[Any] = set()  # opportunities whose history carries probabilities
    if history is not None:
        hist = _table(history, "history", columns)
        for i, row in enumerate(hist.rows):
            oid = identifier(hist.get(row, "opportunity"))
            at = instant(hist.get(row, "at"), order=date_order, tz=tz)
            order = _sort_order(hist.get(row, "sort_order"))
            event_id = identifier(hist.get(row, "id")) or f"{oid}/history/{i}"
            name = hist.get(row, "stage")
            record = {"type": "stage_changed", "stage": stage_key(stages, name),
                      "event_id": event_id, _STARTED: name}  # fmt: skip
            changes.add(oid, at, record, order=order)
            probability = _probability(hist, row, overrides)
            if overrides is not None and probability is not None:
                setting = {"type": "probability_set", "probability": probability,
                           "event_id": f"{event_id}/probability"}  # fmt: skip
                changes.add(oid, at, setting, order=order)
                probed.add(oid)
    if field_history is not None:
        fields = _table(field_history, "field_history", columns)
        for i, row in enumerate(fields.rows):
            oid = identifier(fields.get(row, "opportunity"))
            at = instant(fields.get(row, "at"), order=date_order, tz=tz)
            change = _field_change(fields, row, stages, overrides, date_order)
            if change is not None:
                event_id = identifier(fields.get(row, "id")) or f"{oid}/field-history/{i}"
                changes.add(oid, at, {**change, "event_id": event_id})
    out: list[dict[str, Any]] = []
    for row in opps.rows:
        oid = identifier(opps.get(row, "id"))
        first = changes.first(oid, "stage_changed")  # (where the deal started)
        name = opps.get(row, "stage") if first is None else first[_STARTED]
        out.append(
            drop_none(
                {
                    "type": "opened",
                    "opportunity_id": oid,
                    "at": instant(opps.get(row, "created"), order=date_order, tz=tz),
                    "stage": stage_key(stages, name),
                    "amount": number(opps.get(row, "amount")),
                    "currency": opps.get(row, "currency") or currency,
                    "expected_close": day(opps.get(row, "close_date"), order=date_order),
                    "name": opps.get(row, "name"),
                    "owner": identifier(opps.get(row, "owner")),
                    "account": identifier(opps.get(row, "account")),
                    "source": opps.get(row, "source"),
                    # (with history, its first row sets the probability at creation)
                    "probability": None if oid in probed else _probability(opps, row, overrides),
                    "event_id": f"{oid}/opened",
                }
            )
        )
    return [{k: v for k, v in r.items() if k != _STARTED} for r in changes.records(out)]


def _sort_order(value: Any) -> float:
    parsed = number(value)
    try:
        return float(parsed) if parsed is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _field_change(
    table: Table, row: Row, scheme: StageScheme, overrides: Overrides, order: DateOrder
) -> dict[str, Any] | None:
    field = table.get(row, "field")
    new = table.get(row, "new")
    if field == "StageName":
        return {"type": "stage_changed", "stage": stage_key(scheme, new),
                _STARTED: table.get(row, "old") or new}  # fmt: skip
    if field == "Amount":
        return {"type": "amount_changed", "amount": number(new)}
    if field == "CloseDate":
        return {"type": "close_date_changed", "expected_close": day(new, order=order)}
    if field == "Owner":
        return {"type": "owner_changed", "owner": identifier(new)}
    if field == "Probability" and overrides is not None:
        return {"type": "probability_set", "probability": number(new)}
    return None


def contradictions(
    *,
    opportunities: Any,
    scheme: StageScheme | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> Contradictions:
    """Every opportunity whose ``StageName`` disagrees with ``IsClosed`` or ``IsWon``:
    a closed stage (won or lost in the scheme) that is not ``IsClosed``, an open stage that
    is, a won stage that is not ``IsWon``, a lost or open one that is. Rows without the
    flags, or whose stage name the scheme does not know, are not judged.

    Example:
        >>> from pipelinekit.adapters import salesforce
        >>> found = salesforce.contradictions(opportunities=[
        ...     {"Id": "006A", "CreatedDate": "2024-01-05", "StageName": "Closed Lost",
        ...      "IsClosed": "FALSE", "IsWon": "FALSE"},
        ...     {"Id": "006B", "CreatedDate": "2024-01-05", "StageName": "Closed Won",
        ...      "IsClosed": "TRUE", "IsWon": "TRUE"}])
        >>> found.checked, [(r.opportunity_id, r.field) for r in found.rows]
        (2, [('006A', 'IsClosed')])
        >>> print(found.rows[0].reason)
        StageName 'Closed Lost' is a lost stage, but IsClosed is false
    """
    stages = _scheme(scheme)
    opps = _table(opportunities, "opportunities", columns)
    found: list[Contradiction] = []
    for i, row in enumerate(opps.rows):
        name = opps.get(row, "stage")
        key = stage_key(stages, name)
        if not isinstance(key, str) or not stages.has_stage(key):
            continue
        stage = stages.stage(key)
        kind = "won" if stage.is_won else "lost" if stage.is_lost else "open"
        closed, won = flag(opps.get(row, "is_closed")), flag(opps.get(row, "is_won"))
        problem: tuple[str, str] | None = None
        if closed is not None and closed != (not stage.is_open):
            problem = ("IsClosed", f"is {'true' if closed else 'false'}")
        elif won is not None and won != stage.is_won:
            problem = ("IsWon", f"is {'true' if won else 'false'}")
        if problem is None:
            continue
        found.append(
            Contradiction(
                index=i,
                opportunity_id=str(identifier(opps.get(row, "id"))),
                stage_name=str(name),
                is_closed=closed,
                is_won=won,
                field=problem[0],
                reason=f"StageName {name!r} is {'an' if kind == 'open' else 'a'} {kind} "
                f"stage, but {problem[0]} {problem[1]}",
            )
        )
    return Contradictions(checked=len(opps), rows=tuple(found))


def to_history(
    *,
    opportunities: Any,
    history: Any = None,
    field_history: Any = None,
    scheme: StageScheme | None = None,
    mode: Mode = "strict",
    closed_flags: Literal["check", "ignore"] = "check",
    overrides: Overrides = None,
    currency: str | None = None,
    date_order: DateOrder = "ymd",
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> History:
    """A History from a Salesforce export: :func:`to_records`, then
    ``History.from_records`` in ``mode``.

    Args:
        closed_flags: ``"check"`` (the default) compares ``StageName`` with
            ``IsClosed``/``IsWon`` (:func:`contradictions`): in strict mode the first
            disagreement is a ``RecordError``, in lenient mode a
            :class:`ContradictionWarning` says how many there are. ``"ignore"`` skips the
            check: the stage names are trusted, as they always are for the stage.
        (the other arguments are :func:`to_records`'s)

    Raises:
        RecordError: (strict mode) a bad record, an illegal move, or a contradiction.
        ArgumentError: see :func:`to_records`.
    """
    if closed_flags not in ("check", "ignore"):
        raise ArgumentError("closed_flags", f"expected 'check' or 'ignore', got {closed_flags!r}")
    stages = _scheme(scheme)
    records = to_records(
        opportunities=opportunities,
        history=history,
        field_history=field_history,
        scheme=stages,
        overrides=overrides,
        currency=currency,
        date_order=date_order,
        tz=tz,
        columns=columns,
    )
    if closed_flags == "check":
        found = contradictions(opportunities=opportunities, scheme=stages, columns=columns)
        if found.rows and mode == "strict":
            first = found.rows[0]
            raise RecordError(
                f"{first.reason} ({len(found.rows)} of {found.checked} opportunities "
                "disagree; list them with salesforce.contradictions(), load them anyway with "
                "mode='lenient' or closed_flags='ignore')",
                index=first.index,
                opportunity_id=first.opportunity_id,
                field=first.field,
            )
        if found.rows:
            warnings.warn(
                ContradictionWarning(
                    f"{len(found.rows)} of {found.checked} opportunities: StageName disagrees "
                    "with IsClosed/IsWon; their stage follows StageName (list them with "
                    "salesforce.contradictions())"
                ),
                stacklevel=2,
            )
    return build_history(records, stages, mode)
