"""HubSpot: the deals export (with its "Date entered" stage columns) and the deal stage
history.

Pure functions, no I/O. The stage scheme defaults to the ``hubspot`` preset (HubSpot's
default deal pipeline, keyed by its internal stage ids, with its default probabilities);
stage values may be ids (``appointmentscheduled``, as the API gives them) or labels
(``Appointment Scheduled``, as a CSV export from the deals view gives them).

Mapping (default column names, the CSV export's first and the API property names second;
rename any with ``columns={"deals": {...}}``):

    ===============================================  ===========================================
    export column                                    becomes
    ===============================================  ===========================================
    ``Record ID`` / ``hs_object_id``                 ``opportunity_id``
    ``Create Date`` / ``createdate``                 ``opened`` at that time, in the first stage
                                                     the deal entered (else ``Deal Stage``)
    ``Deal Stage`` / ``dealstage``                   the stage, when no stage dates say more
    ``Amount`` / ``amount``, ``Currency`` /          ``opened`` amount and currency
    ``deal_currency_code``
    ``Close Date`` / ``closedate``                   ``opened`` expected_close
    ``Deal Name``, ``Deal owner``,                   ``opened`` name, owner, account, source
    ``Associated Company``, ``Original Source Type``
    ``Date entered "<stage> (<pipeline>)"`` /        ``stage_changed`` to that stage at that time,
    ``hs_date_entered_<stage id>``                   for every stage with a date, in time order
    ``Closed Lost Reason`` / ``closed_lost_reason``  the ``reason`` of the move to a lost stage
    deal stage history row (``Record ID``,           ``stage_changed`` at ``timestamp`` to
    ``value``, ``timestamp``)                        ``value``: with ``stage_history=``, these
                                                     replace the "Date entered" columns
    ===============================================  ===========================================

The "Date entered" columns hold one date per stage (one entry of it), so a deal that went
back and forth shows each stage once; the stage history (the ``dealstage`` property's
versions, one row each, as the API's ``propertiesWithHistory=dealstage`` lists them) holds
every move. Timestamps: ISO strings, datetimes, or epoch milliseconds (the API's form); a
CSV export writes ``2024-03-01 10:00``, read in ``tz`` (UTC unless given).

Example:
    >>> from pipelinekit.adapters import hubspot
    >>> deals = [{"Record ID": 101, "Deal Name": "Acme renewal", "Deal Stage": "Contract Sent",
    ...           "Amount": 5000, "Create Date": "2024-01-05 09:00",
    ...           'Date entered "Appointment Scheduled (Sales Pipeline)"': "2024-01-05 09:00",
    ...           'Date entered "Contract Sent (Sales Pipeline)"': "2024-02-01 10:00"}]
    >>> h = hubspot.to_history(deals=deals)
    >>> deal = h.as_of("2024-03-01T00:00:00Z")["101"]
    >>> deal.stage, deal.weighted_amount
    ('contractsent', Decimal('4500'))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any

from pipelinekit import schemes
from pipelinekit.adapters._table import (
    Changes,
    Table,
    build_history,
    day,
    drop_none,
    identifier,
    instant,
    number,
    read_input,
    stage_key,
)
from pipelinekit.history import History
from pipelinekit.ingestion import Mode
from pipelinekit.stages import StageScheme

__all__ = ["COLUMNS", "to_history", "to_records"]

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "deals": {
        "id": ("Record ID", "hs_object_id", "Deal ID", "dealId", "id"),
        "created": ("Create Date", "createdate"),
        "stage": ("Deal Stage", "dealstage"),
        "amount": ("Amount", "amount"),
        "currency": ("Currency", "deal_currency_code"),
        "close_date": ("Close Date", "closedate"),
        "name": ("Deal Name", "dealname"),
        "owner": ("Deal owner", "Deal Owner", "hubspot_owner_id"),
        "account": ("Associated Company", "Company"),
        "source": ("Original Source Type", "Original Traffic Source", "hs_analytics_source"),
        "lost_reason": ("Closed Lost Reason", "closed_lost_reason"),
    },
    "stage_history": {
        "deal": ("Record ID", "hs_object_id", "Deal ID", "dealId", "objectId"),
        "stage": ("value", "Deal Stage", "dealstage"),
        "at": ("timestamp", "Timestamp", "Date"),
    },
}
"""The columns each field is read from, per input, alternatives in order of preference."""

_REQUIRED = {"deals": ("id", "created"), "stage_history": ("deal", "stage", "at")}
_ENTERED = (
    # (a CSV reader that keeps the header's doubled quotes, as polars does, gives "")
    re.compile(r'^Date entered "{1,2}(?P<stage>.+) \((?P<pipeline>[^()]*)\)"{1,2}$'),
    re.compile(r"^hs_(?:v2_)?date_entered_(?P<stage>.+)$"),
)


def _table(data: Any, name: str, columns: Mapping[str, Mapping[str, str]] | None) -> Table:
    return read_input(data, name, inputs=COLUMNS, required=_REQUIRED, columns=columns)


def entered_columns(columns: tuple[str, ...]) -> dict[str, str]:
    """The "Date entered" columns among ``columns``, each with the stage it names.

    Example:
        >>> entered_columns(('Amount', 'Date entered "Closed Won (Sales Pipeline)"',
        ...                  'hs_date_entered_qualifiedtobuy'))
        {'Date entered "Closed Won (Sales Pipeline)"': 'Closed Won',
         'hs_date_entered_qualifiedtobuy': 'qualifiedtobuy'}
    """
    found: dict[str, str] = {}
    for column in columns:
        for pattern in _ENTERED:
            match = pattern.match(column)
            if match:
                found[column] = match["stage"]
                break
    return found


def to_records(
    *,
    deals: Any,
    stage_history: Any = None,
    scheme: StageScheme | None = None,
    currency: str | None = None,
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """pipelinekit records from a HubSpot deals export (see the module's mapping table).

    Args:
        deals: the deals (an iterable of mappings or a DataFrame).
        stage_history: the deal stage history, one row per ``dealstage`` version; when
            given, the "Date entered" columns are not used.
        scheme: the stage scheme (the ``hubspot`` preset when ``None``); its keys or labels
            must be your pipeline's stage ids or names.
        currency: the currency of every amount when the export has no currency column.
        tz: the zone of times that carry none.
        columns: your column names, per input and field (fields: :data:`COLUMNS`).

    Raises:
        ArgumentError: an input is not rows, a required column is absent, or an argument is
            unknown.

    Example:
        >>> from pipelinekit.adapters import hubspot
        >>> recs = hubspot.to_records(
        ...     deals=[{"hs_object_id": "7", "createdate": "1709251200000",
        ...             "dealstage": "qualifiedtobuy"}],
        ...     stage_history=[{"hs_object_id": "7", "value": "appointmentscheduled",
        ...                     "timestamp": "1709251200000"},
        ...                    {"hs_object_id": "7", "value": "qualifiedtobuy",
        ...                     "timestamp": "2024-03-04T10:00:00Z"}])
        >>> [(r["type"], r["stage"], r["at"].date().isoformat()) for r in recs]
        [('opened', 'appointmentscheduled', '2024-03-01'),
         ('stage_changed', 'appointmentscheduled', '2024-03-01'),
         ('stage_changed', 'qualifiedtobuy', '2024-03-04')]
    """
    stages = schemes.get("hubspot") if scheme is None else scheme
    table = _table(deals, "deals", columns)
    changes = Changes()
    lost = {s.key for s in stages.lost_stages}
    if stage_history is not None:
        history = _table(stage_history, "stage_history", columns)
        for i, row in enumerate(history.rows):
            oid = identifier(history.get(row, "deal"))
            key = stage_key(stages, history.get(row, "stage"))
            record = {"type": "stage_changed", "stage": key, "event_id": f"{oid}/stage-history/{i}"}
            changes.add(oid, instant(history.get(row, "at"), tz=tz), record)
    else:
        entered = entered_columns(table.present)
        for row in table.rows:
            oid = identifier(table.get(row, "id"))
            for position, (column, name) in enumerate(entered.items()):
                value = row.get(column)
                if value is None:
                    continue
                key = stage_key(stages, name)
                record = {"type": "stage_changed", "stage": key,
                          "event_id": f"{oid}/entered/{key}"}  # fmt: skip
                changes.add(oid, instant(value, tz=tz), record, order=position)
    opened: list[dict[str, Any]] = []
    reasons: dict[Any, Any] = {}
    for row in table.rows:
        oid = identifier(table.get(row, "id"))
        first = changes.first(oid, "stage_changed")
        stage = stage_key(stages, table.get(row, "stage")) if first is None else first["stage"]
        reasons[oid] = table.get(row, "lost_reason")
        opened.append(
            drop_none(
                {
                    "type": "opened",
                    "opportunity_id": oid,
                    "at": instant(table.get(row, "created"), tz=tz),
                    "stage": stage,
                    "amount": number(table.get(row, "amount")),
                    "currency": table.get(row, "currency") or currency,
                    "expected_close": day(table.get(row, "close_date")),
                    "name": table.get(row, "name"),
                    "owner": identifier(table.get(row, "owner")),
                    "account": identifier(table.get(row, "account")),
                    "source": table.get(row, "source"),
                    "event_id": f"{oid}/opened",
                }
            )
        )
    out = changes.records(opened)
    for record in out:  # the lost reason goes with the move to a lost stage
        if record["type"] == "stage_changed" and record.get("stage") in lost:
            reason = reasons.get(record.get("opportunity_id"))
            if reason is not None:
                record["reason"] = reason
    return out


def to_history(
    *,
    deals: Any,
    stage_history: Any = None,
    scheme: StageScheme | None = None,
    mode: Mode = "strict",
    currency: str | None = None,
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> History:
    """A History from a HubSpot export: :func:`to_records`, then ``History.from_records``
    in ``mode`` (the arguments are :func:`to_records`'s).

    Raises:
        RecordError: (strict mode) a bad record or an illegal move.
        ArgumentError: see :func:`to_records`.
    """
    stages = schemes.get("hubspot") if scheme is None else scheme
    records = to_records(
        deals=deals,
        stage_history=stage_history,
        scheme=stages,
        currency=currency,
        tz=tz,
        columns=columns,
    )
    return build_history(records, stages, mode)
