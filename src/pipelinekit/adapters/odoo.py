"""Odoo CRM: ``crm.lead`` rows and the changes tracked on them (``mail.tracking.value``).

Pure functions, no I/O. In Odoo a won opportunity sits in a won stage (``is_won``) and a
lost one is *archived* (``active`` false, with a lost reason), not moved to a stage: the
adapter turns archiving into a move to the scheme's lost stage. The stage scheme defaults to
the ``odoo`` preset (New, Qualified, Proposition, Won, plus Lost; no weights). Odoo's stages
carry no probability; each lead has its own (predictive lead scoring, or typed in), which the
adapter sets as the opportunity's probability override (``probabilities=False`` to leave
the scheme's weights in charge).

Mapping (default column names, the technical field names first and the export's labels
second; rename any with ``columns={"leads": {...}}``):

    ============================================  ==============================================
    ``crm.lead`` column                           becomes
    ============================================  ==============================================
    ``id``                                        ``opportunity_id``
    ``create_date`` / ``Created on``              ``opened`` at that time, in the stage the
                                                  first tracked stage change left (else: the
                                                  lead's ``stage_id``, or for a won lead the
                                                  scheme's first stage, see below)
    ``stage_id`` / ``Stage``                      the stage, by name
    ``expected_revenue``, ``company_currency``    ``opened`` amount and currency
    ``date_deadline`` / ``Expected Closing``      ``opened`` expected_close
    ``name``, ``user_id``, ``partner_id``,        ``opened`` name, owner, account, source
    ``source_id``
    ``probability``                               ``opened`` probability override (with
                                                  ``probabilities=True``, the default)
    ``active`` false (archived)                   ``stage_changed`` to the lost stage at
                                                  ``date_closed``, ``lost_reason_id`` as reason,
                                                  unless the tracking has the archiving
    ``mail.tracking.value`` row of ``stage_id``   ``stage_changed`` at the message's date to
                                                  ``new_value_char``
    of ``expected_revenue``, ``probability``      ``amount_changed``, ``probability_set`` (with
                                                  ``probabilities=True``), from
                                                  ``new_value_float`` (or
                                                  ``new_value_monetary``)
    of ``date_deadline``, ``user_id``             ``close_date_changed``
                                                  (``new_value_datetime``), ``owner_changed``
                                                  (``new_value_char``)
    of ``active``                                 ``new_value_integer`` 0: to the lost stage; 1:
                                                  back to the lead's stage (a reopening: the
                                                  scheme must allow it); other fields skipped
    ============================================  ==============================================

The tracking rows need the lead they belong to and when: export ``mail.tracking.value``
with its message's ``res_id`` and ``date`` (``mail_message_id/res_id`` and
``mail_message_id/date``); rows of other models (``mail_message_id/model``) are skipped.

**Without tracking** a lead export has only the current stage. A won lead is then opened in
the scheme's first stage and moved to the won stage at ``date_closed`` (the stages in
between are unknown), so that its won date and cycle length are right; every other lead is
opened in its current stage. Its current probability applies from its creation on, which a
backtest would see as look-ahead: export the tracking for a history.

Example:
    >>> from pipelinekit.adapters import odoo
    >>> leads = [{"id": 7, "name": "Office chairs", "stage_id": "Proposition",
    ...           "expected_revenue": 2400.0, "probability": 40.0, "active": True,
    ...           "create_date": "2024-01-05 10:00:00"}]
    >>> tracking = [{"mail_message_id/res_id": 7, "mail_message_id/date": "2024-01-20 09:00:00",
    ...              "field_id": "stage_id", "old_value_char": "New",
    ...              "new_value_char": "Proposition"}]
    >>> h = odoo.to_history(leads=leads, tracking=tracking)
    >>> lead = h.as_of("2024-02-01T00:00:00Z")["7"]
    >>> lead.stage, lead.probability, lead.weighted_amount
    ('proposition', Decimal('40.0'), Decimal('960.00'))
"""

from __future__ import annotations

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
    flag,
    identifier,
    instant,
    number,
    read_input,
    stage_key,
)
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.ingestion import Mode
from pipelinekit.stages import StageScheme

__all__ = ["COLUMNS", "to_history", "to_records"]

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "leads": {
        "id": ("id", "ID"),
        "created": ("create_date", "Created on"),
        "stage": ("stage_id", "Stage", "stage_id/name"),
        "amount": ("expected_revenue", "Expected Revenue", "planned_revenue"),
        "currency": ("company_currency", "currency_id", "Currency"),
        "probability": ("probability", "Probability"),
        "close_date": ("date_deadline", "Expected Closing"),
        "closed": ("date_closed", "Closed Date"),
        "name": ("name", "Opportunity"),
        "owner": ("user_id", "Salesperson"),
        "account": ("partner_id", "Customer", "partner_name"),
        "source": ("source_id", "Source"),
        "active": ("active", "Active"),
        "lost_reason": ("lost_reason_id", "Lost Reason", "lost_reason"),
    },
    "tracking": {
        "id": ("id",),
        "lead": ("mail_message_id/res_id", "res_id", "lead_id"),
        "model": ("mail_message_id/model", "model"),
        "at": ("mail_message_id/date", "date", "create_date"),
        "field": ("field_id/name", "field_id", "field"),
        "old_char": ("old_value_char",),
        "new_char": ("new_value_char",),
        "new_float": ("new_value_float",),
        "new_monetary": ("new_value_monetary",),
        "new_integer": ("new_value_integer",),
        "new_datetime": ("new_value_datetime",),
    },
}
"""The columns each field is read from, per input, alternatives in order of preference."""

_REQUIRED = {"leads": ("id", "created"), "tracking": ("lead", "at", "field")}
_FIELDS = {
    "stage_id": "stage",
    "stage": "stage",
    "expected_revenue": "amount",
    "expected revenue": "amount",
    "planned_revenue": "amount",
    "probability": "probability",
    "date_deadline": "close_date",
    "expected closing": "close_date",
    "user_id": "owner",
    "salesperson": "owner",
    "active": "active",
}
_FROM = "_from"
"""Scratch key of a stage change: the stage it left."""
_REOPEN = "_reopened"
"""Scratch stage of an unarchiving: the lead's last open stage, filled in once the changes
are in time order."""


def _table(data: Any, name: str, columns: Mapping[str, Mapping[str, str]] | None) -> Table:
    return read_input(data, name, inputs=COLUMNS, required=_REQUIRED, columns=columns)


def _field(value: Any) -> str | None:
    """A tracked field's role (``"stage"``, ``"amount"``...) from its technical name or
    description, e.g. ``"Stage (crm.lead)"``."""
    if not isinstance(value, str):
        return None
    text = value.strip().casefold().removesuffix("(crm.lead)").strip()
    return _FIELDS.get(text)


def to_records(
    *,
    leads: Any,
    tracking: Any = None,
    scheme: StageScheme | None = None,
    probabilities: bool = True,
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """pipelinekit records from an Odoo export (see the module's mapping table).

    Args:
        leads: ``crm.lead`` rows (an iterable of mappings or a DataFrame).
        tracking: ``mail.tracking.value`` rows with their message's ``res_id`` and
            ``date``, if exported.
        scheme: the stage scheme whose labels are your stage names (the ``odoo`` preset
            when ``None``); it needs a lost stage.
        probabilities: carry each lead's probability as its override (the default: Odoo's
            stages have none).
        tz: the zone of times that carry none (Odoo stores UTC).
        columns: your column names, per input and field (fields: :data:`COLUMNS`).

    Raises:
        ArgumentError: an input is not rows, a required column is absent, an argument is
            unknown, or the scheme has no lost stage.
    """
    plan = schemes.get("odoo") if scheme is None else scheme
    if not plan.lost_stages:
        raise ArgumentError("scheme", f"scheme {plan.name!r} has no lost stage for lost leads")
    lost, first_stage = plan.lost_stages[0].key, plan.stages[0].key
    won = {s.key for s in plan.won_stages}
    table = _table(leads, "leads", columns)
    found = Changes()
    archived: set[Any] = set()
    tracked_stage: set[Any] = set()
    if tracking is not None:
        log = _table(tracking, "tracking", columns)
        for i, row in enumerate(log.rows):
            model = log.get(row, "model")
            if model is not None and model != "crm.lead":
                continue
            oid = identifier(log.get(row, "lead"))
            role = _field(log.get(row, "field"))
            record: dict[str, Any] | None = None
            if role == "stage":
                record = {"type": "stage_changed",
                          "stage": stage_key(plan, log.get(row, "new_char")),
                          _FROM: stage_key(plan, log.get(row, "old_char"))}  # fmt: skip
                tracked_stage.add(oid)
            elif role == "amount":  # (a monetary field until Odoo 16: new_value_monetary)
                value = log.get(row, "new_float")
                value = log.get(row, "new_monetary") if value is None else value
                record = {"type": "amount_changed", "amount": number(value)}
            elif role == "probability" and probabilities:
                record = {"type": "probability_set",
                          "probability": number(log.get(row, "new_float"))}  # fmt: skip
            elif role == "close_date":
                record = {"type": "close_date_changed",
                          "expected_close": day(log.get(row, "new_datetime"))}  # fmt: skip
            elif role == "owner":
                record = {"type": "owner_changed", "owner": identifier(log.get(row, "new_char"))}
            elif role == "active":
                archived.add(oid)
                gone = number(log.get(row, "new_integer")) == 0
                record = {"type": "stage_changed", "stage": lost if gone else _REOPEN}
            if record is not None:
                event_id = f"{oid}/tracking/{identifier(log.get(row, 'id')) or i}"
                found.add(oid, instant(log.get(row, "at"), tz=tz), {**record, "event_id": event_id})
    opened: list[dict[str, Any]] = []
    reasons: dict[Any, Any] = {}
    for row in table.rows:
        oid = identifier(table.get(row, "id"))
        stage = stage_key(plan, table.get(row, "stage"))
        created = instant(table.get(row, "created"), tz=tz)
        closed = instant(table.get(row, "closed"), tz=tz)
        first = found.first(oid, "stage_changed", _FROM)
        start = stage if first is None else first[_FROM]
        if oid not in tracked_stage and stage in won:
            start = first_stage  # (won, no tracking: see the module docstring)
            found.add(oid, closed or created, {"type": "stage_changed", "stage": stage,
                                               "event_id": f"{oid}/won"})  # fmt: skip
        reasons[oid] = identifier(table.get(row, "lost_reason"))
        if flag(table.get(row, "active")) is False and oid not in archived:
            found.add(oid, closed or created, {"type": "stage_changed", "stage": lost,
                                               "event_id": f"{oid}/lost"})  # fmt: skip
        opened.append(
            drop_none(
                {
                    "type": "opened",
                    "opportunity_id": oid,
                    "at": created,
                    "stage": start,
                    "amount": number(table.get(row, "amount")),
                    "currency": table.get(row, "currency"),
                    "expected_close": day(table.get(row, "close_date")),
                    "name": table.get(row, "name"),
                    "owner": identifier(table.get(row, "owner")),
                    "account": identifier(table.get(row, "account")),
                    "source": identifier(table.get(row, "source")),
                    "probability": number(table.get(row, "probability")) if probabilities else None,
                    "event_id": f"{oid}/opened",
                }
            )
        )
    out = found.records(opened)
    current: dict[Any, Any] = {}
    for record in out:
        oid = record.get("opportunity_id")
        record.pop(_FROM, None)
        if record["type"] == "opened" or (
            record["type"] == "stage_changed" and record["stage"] not in (lost, _REOPEN)
        ):
            current[oid] = record["stage"]
        if record.get("stage") == _REOPEN:
            record["stage"] = current.get(oid, _REOPEN)
        if record.get("stage") == lost and reasons.get(oid) is not None:
            record["reason"] = reasons[oid]
    return out


def to_history(
    *,
    leads: Any,
    tracking: Any = None,
    scheme: StageScheme | None = None,
    mode: Mode = "strict",
    probabilities: bool = True,
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> History:
    """A History from an Odoo export: :func:`to_records`, then ``History.from_records`` in
    ``mode`` (the arguments are :func:`to_records`'s).

    Raises:
        RecordError: (strict mode) a bad record or an illegal move.
        ArgumentError: see :func:`to_records`.
    """
    plan = schemes.get("odoo") if scheme is None else scheme
    records = to_records(
        leads=leads,
        tracking=tracking,
        scheme=plan,
        probabilities=probabilities,
        tz=tz,
        columns=columns,
    )
    return build_history(records, plan, mode)
