"""Pipedrive: the deals export and the deals' change log (deal flow / updates).

Pure functions, no I/O. Pipedrive keeps *won* and *lost* as a deal's status, not as stages:
the adapter turns a status change into a move to the scheme's won or lost stage. The stage
scheme defaults to the ``pipedrive`` preset (the starting pipeline's stage names, plus won
and lost, no weights); :func:`scheme` builds one from your pipeline's stages (Pipedrive's
stages export or API: ``id``, ``name``, ``order_nr``, ``deal_probability``), with their
probabilities as weights.

Mapping (default column names, the CSV export's first and the API field names second;
rename any with ``columns={"deals": {...}}``):

    =============================================  =============================================
    export column                                  becomes
    =============================================  =============================================
    ``Deal - ID`` / ``id``                         ``opportunity_id``
    ``Deal - Deal created`` / ``add_time``         ``opened`` at that time, in the stage the
                                                   change log says the deal started in (else
                                                   ``Deal - Stage``)
    ``Deal - Stage`` / ``stage_id``                the stage (an id is named through
                                                   ``stages=``)
    ``Deal - Value``, ``Deal - Currency``          ``opened`` amount and currency
    ``Deal - Expected close date``                 ``opened`` expected_close
    ``Deal - Title``, ``Deal - Owner``,            ``opened`` name, owner, account
    ``Deal - Organization``
    ``Deal - Status`` with ``Deal - Won time`` /   ``stage_changed`` to the won / lost stage at
    ``Deal - Lost time``, ``Deal - Lost reason``   that time (the lost reason as ``reason``),
                                                   unless the change log has the status changes
    change log row: ``field_key`` ``stage_id``     ``stage_changed`` at ``log_time`` to
                                                   ``new_value`` (or ``new_value_formatted``)
    ``field_key`` ``status``                       ``won``/``lost``: to the won/lost stage;
                                                   ``open``: back to the deal's last stage (a
                                                   reopening: the scheme must allow it)
    ``field_key`` ``value``, ``expected_close_``   ``amount_changed``, ``close_date_changed``,
    ``date``, ``user_id``                          ``owner_changed``; other fields are skipped
    =============================================  =============================================

Pipedrive writes times as ``2024-01-05 10:00:00`` in UTC (its API) or in the exporting
user's zone (a CSV export): give that zone as ``tz``.

Example:
    >>> from pipelinekit.adapters import pipedrive
    >>> deals = [{"Deal - ID": 1, "Deal - Title": "Acme", "Deal - Value": 800,
    ...           "Deal - Currency": "EUR", "Deal - Stage": "Proposal Made",
    ...           "Deal - Status": "Won", "Deal - Deal created": "2024-01-05 10:00:00",
    ...           "Deal - Won time": "2024-02-01 12:00:00"}]
    >>> h = pipedrive.to_history(deals=deals)
    >>> deal = h.as_of("2024-03-01T00:00:00Z")["1"]
    >>> deal.stage, deal.is_won, deal.closed_at.date().isoformat()
    ('won', True, '2024-02-01')
"""

from __future__ import annotations

import re
import unicodedata
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
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.ingestion import Mode
from pipelinekit.stages import StageScheme

__all__ = ["COLUMNS", "scheme", "to_history", "to_records"]

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "deals": {
        "id": ("Deal - ID", "id", "ID"),
        "created": ("Deal - Deal created", "add_time"),
        "stage": ("Deal - Stage", "stage_id"),
        "status": ("Deal - Status", "status"),
        "won_time": ("Deal - Won time", "won_time"),
        "lost_time": ("Deal - Lost time", "lost_time"),
        "lost_reason": ("Deal - Lost reason", "lost_reason"),
        "amount": ("Deal - Value", "value"),
        "currency": ("Deal - Currency", "currency"),
        "close_date": ("Deal - Expected close date", "expected_close_date"),
        "name": ("Deal - Title", "title"),
        "owner": ("Deal - Owner", "owner_name", "user_id"),
        "account": ("Deal - Organization", "org_name", "org_id"),
    },
    "changes": {
        "id": ("id",),
        "deal": ("item_id", "deal_id", "Deal - ID"),
        "field": ("field_key",),
        "old": ("old_value",),
        "new": ("new_value",),
        "old_name": ("old_value_formatted",),
        "new_name": ("new_value_formatted",),
        "at": ("log_time", "timestamp"),
    },
    "stages": {
        "id": ("id", "Stage - ID", "ID"),
        "name": ("name", "Stage - Name", "Name"),
        "order": ("order_nr", "Stage - Order", "Order"),
        "probability": ("deal_probability", "Stage - Deal probability", "Probability"),
        "pipeline": ("pipeline_id", "pipeline_name", "Pipeline"),
    },
}
"""The columns each field is read from, per input, alternatives in order of preference."""

_REQUIRED = {
    "deals": ("id", "created"),
    "changes": ("deal", "field", "new", "at"),
    "stages": ("id", "name"),
}


def _table(data: Any, name: str, columns: Mapping[str, Mapping[str, str]] | None) -> Table:
    return read_input(data, name, inputs=COLUMNS, required=_REQUIRED, columns=columns)


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.casefold()).strip("-")


def scheme(
    stages: Any,
    *,
    pipeline: Any = None,
    name: str = "pipedrive",
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> StageScheme:
    """A stage scheme from your Pipedrive pipeline's stages, with their deal probabilities
    as weights, plus the closed stages ``won`` (100) and ``lost`` (0).

    Args:
        stages: Pipedrive's stages (``id``, ``name``, ``order_nr``, ``deal_probability``,
            ``pipeline_id``), as rows or a DataFrame.
        pipeline: keep only the stages of this pipeline (its id or name), when the rows
            hold several.
        name: the scheme's name.
        columns: your column names for ``stages`` (fields: :data:`COLUMNS`).

    Raises:
        ArgumentError: no stage is left, or see :func:`to_records`.
        SchemeError: the stages do not make a valid scheme.

    Example:
        >>> from pipelinekit.adapters import pipedrive
        >>> s = pipedrive.scheme([
        ...     {"id": 2, "name": "Contact Made", "order_nr": 2, "deal_probability": 30},
        ...     {"id": 1, "name": "Lead In", "order_nr": 1, "deal_probability": 10}])
        >>> [(st.key, st.weight) for st in s.stages]
        [('lead-in', Decimal('10')), ('contact-made', Decimal('30')), ('won', Decimal('100')),
         ('lost', Decimal('0'))]
    """
    table = _table(stages, "stages", columns)
    rows = [
        r
        for r in table.rows
        if pipeline is None or identifier(table.get(r, "pipeline")) == identifier(pipeline)
    ]
    if not rows:
        raise ArgumentError("stages", f"no stage of pipeline {pipeline!r} in the rows")
    ordered = sorted(
        enumerate(rows), key=lambda p: (float(number(table.get(p[1], "order")) or 0), p[0])
    )
    data: list[dict[str, Any]] = []
    taken: set[str] = set()
    for _, row in ordered:
        label = str(table.get(row, "name"))
        key = _slug(label) or f"stage-{identifier(table.get(row, 'id'))}"
        while key in taken or key in ("won", "lost"):
            key += "-2"
        taken.add(key)
        data.append(
            {
                "key": key,
                "label": label,
                "weight": number(table.get(row, "probability")),
                "description": f"Pipedrive stage {identifier(table.get(row, 'id'))}.",
            }
        )
    data += [
        {"key": "won", "label": "Won", "weight": "100", "outcome": "won",
         "description": "The deal's status is won."},
        {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost",
         "description": "The deal's status is lost."},
    ]  # fmt: skip
    return StageScheme.model_validate({"name": name, "stages": data})


def _stage_names(stages: Any, columns: Mapping[str, Mapping[str, str]] | None) -> dict[Any, Any]:
    if stages is None:
        return {}
    if isinstance(stages, Mapping):
        return {identifier(k): v for k, v in stages.items()}
    table = _table(stages, "stages", columns)
    return {identifier(table.get(r, "id")): table.get(r, "name") for r in table.rows}


def to_records(
    *,
    deals: Any,
    changes: Any = None,
    stages: Any = None,
    scheme: StageScheme | None = None,
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """pipelinekit records from a Pipedrive export (see the module's mapping table).

    Args:
        deals: the deals (an iterable of mappings or a DataFrame).
        changes: the deals' change log (deal flow ``dealChange`` entries, or the
            ``deals/{id}/changelog`` rows), if exported.
        stages: Pipedrive's stages, as rows (``id``, ``name``...) or an ``{id: name}``
            mapping: needed only where stages are given by id.
        scheme: the stage scheme whose labels are your stage names (the ``pipedrive``
            preset when ``None``; see :func:`scheme`). It needs a won and a lost stage.
        tz: the zone of times that carry none.
        columns: your column names, per input and field (fields: :data:`COLUMNS`).

    Raises:
        ArgumentError: an input is not rows, a required column is absent, an argument is
            unknown, or the scheme has no lost stage.
    """
    plan = schemes.get("pipedrive") if scheme is None else scheme
    if not plan.lost_stages:
        raise ArgumentError("scheme", f"scheme {plan.name!r} has no lost stage for lost deals")
    won, lost = plan.won_stages[0].key, plan.lost_stages[0].key
    names = _stage_names(stages, columns)

    def key_of(value: Any, formatted: Any = None) -> Any:
        name = formatted if formatted is not None else names.get(identifier(value), value)
        return stage_key(plan, identifier(name))

    table = _table(deals, "deals", columns)
    found = Changes()
    logged_status: set[Any] = set()
    if changes is not None:
        log = _table(changes, "changes", columns)
        for i, row in enumerate(log.rows):
            oid = identifier(log.get(row, "deal"))
            at = instant(log.get(row, "at"), tz=tz)
            field, new = log.get(row, "field"), log.get(row, "new")
            event_id = f"{oid}/change/{identifier(log.get(row, 'id')) or i}"
            record: dict[str, Any] | None = None
            if field == "stage_id":
                record = {"type": "stage_changed", "stage": key_of(new, log.get(row, "new_name")),
                          _FROM: key_of(log.get(row, "old"), log.get(row, "old_name"))}  # fmt: skip
            elif field == "status":
                logged_status.add(oid)
                target = {"won": won, "lost": lost}.get(str(new).lower(), _REOPEN)
                record = {"type": "stage_changed", "stage": target}
            elif field == "value":
                record = {"type": "amount_changed", "amount": number(new)}
            elif field == "expected_close_date":
                record = {"type": "close_date_changed", "expected_close": day(new)}
            elif field == "user_id":
                owner = log.get(row, "new_name")
                record = {"type": "owner_changed", "owner": identifier(owner or new)}
            if record is not None:
                found.add(oid, at, {**record, "event_id": event_id})
    opened: list[dict[str, Any]] = []
    reasons: dict[Any, Any] = {}
    for row in table.rows:
        oid = identifier(table.get(row, "id"))
        first = found.first(oid, "stage_changed", _FROM)
        start = key_of(table.get(row, "stage")) if first is None else first[_FROM]
        reasons[oid] = table.get(row, "lost_reason")
        opened.append(
            drop_none(
                {
                    "type": "opened",
                    "opportunity_id": oid,
                    "at": instant(table.get(row, "created"), tz=tz),
                    "stage": start,
                    "amount": number(table.get(row, "amount")),
                    "currency": table.get(row, "currency"),
                    "expected_close": day(table.get(row, "close_date")),
                    "name": table.get(row, "name"),
                    "owner": identifier(table.get(row, "owner")),
                    "account": identifier(table.get(row, "account")),
                    "event_id": f"{oid}/opened",
                }
            )
        )
        status = str(table.get(row, "status") or "").lower()
        if oid not in logged_status and status in ("won", "lost"):
            at = instant(table.get(row, f"{status}_time"), tz=tz)
            if at is None:
                at = instant(table.get(row, "created"), tz=tz)
            found.add(oid, at, {"type": "stage_changed", "stage": won if status == "won" else lost,
                                "event_id": f"{oid}/{status}"})  # fmt: skip
    out = found.records(opened)
    current: dict[Any, Any] = {}
    for record in out:
        oid = record.get("opportunity_id")
        record.pop(_FROM, None)
        if record["type"] == "opened" or (
            record["type"] == "stage_changed" and record["stage"] not in (won, lost, _REOPEN)
        ):
            current[oid] = record["stage"]
        if record.get("stage") == _REOPEN:
            record["stage"] = current.get(oid, _REOPEN)
        if record.get("stage") == lost and reasons.get(oid) is not None:
            record["reason"] = reasons[oid]
    return out


_FROM = "_from"
"""Scratch key of a stage change: the stage it left (where the deal started, were it the
first)."""
_REOPEN = "_reopened"
"""Scratch stage of a status change back to open: the deal's last open stage, filled in once
the changes are in time order."""


def to_history(
    *,
    deals: Any,
    changes: Any = None,
    stages: Any = None,
    scheme: StageScheme | None = None,
    mode: Mode = "strict",
    tz: tzinfo = UTC,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> History:
    """A History from a Pipedrive export: :func:`to_records`, then
    ``History.from_records`` in ``mode`` (the arguments are :func:`to_records`'s).

    Raises:
        RecordError: (strict mode) a bad record or an illegal move.
        ArgumentError: see :func:`to_records`.
    """
    plan = schemes.get("pipedrive") if scheme is None else scheme
    records = to_records(
        deals=deals, changes=changes, stages=stages, scheme=plan, tz=tz, columns=columns
    )
    return build_history(records, plan, mode)
