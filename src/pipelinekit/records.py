"""What a value in a record may be, and what counts as *missing*: the one rule every way in
(``History.from_records``, :func:`~pipelinekit.events.event_from_record`, the CRM adapters,
any columnar reader) follows.

**Missing.** ``None``, a float NaN (Python's or numpy's), pandas' ``NaT`` and ``NA`` and
numpy's ``NaT`` all mean the same thing: *no value* (:func:`is_missing`). For a field of the
record's type a missing value is ``null``: an optional field stays empty, and where ``null``
means "clear" (``probability`` of ``probability_set``, ``expected_close`` of
``close_date_changed``, ``due`` of ``next_action_scheduled``) it clears. A field the record's
type does not have is ignored when its value is missing (so one DataFrame can hold records
of several types, each row leaving the other types' columns empty) and is an error
otherwise. A field the type requires (``opportunity_id``, ``at``, ``stage`` ...) cannot be
missing: that record is a :class:`~pipelinekit.errors.RecordError` naming the field.

**numpy and pandas scalars** are read as their Python counterparts (:func:`plain_value`):
numpy integers, floats, bools and strings as ``int``, ``float``, ``bool`` and ``str``; a
pandas ``Timestamp`` and a numpy ``datetime64`` as a ``datetime`` (microseconds: the
nanoseconds a ``datetime`` cannot hold are dropped; without a zone, ``assume_tz`` applies as
for any naive timestamp). Neither library is imported: their values are recognised by the
module their type comes from.

Example:
    >>> from decimal import Decimal
    >>> is_missing(None), is_missing(float("nan")), is_missing(""), is_missing(0)
    (True, True, False, False)
    >>> plain_record({"type": "opened", "amount": float("nan"), "owner": "ann"})
    {'type': 'opened', 'amount': None, 'owner': 'ann'}
    >>> plain_record({"type": "opened", "reason": float("nan")}, fields={"type", "stage"})
    {'type': 'opened'}
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any

__all__ = ["is_missing", "plain_record", "plain_records", "plain_value"]

_PLAIN: frozenset[type] = frozenset({str, int, bool, Decimal, datetime, date, type(None)})
"""Types whose values are plain as they are (``float`` is not: it may be NaN)."""
_MISSING_TYPES = frozenset({"NAType", "NaTType"})  # pandas' NA and NaT


def _foreign(kind: type) -> bool:
    """Whether ``kind`` comes from numpy or pandas (by its module: neither is imported)."""
    module = kind.__module__
    return module.partition(".")[0] in ("numpy", "pandas")


def is_missing(value: object) -> bool:
    """Whether ``value`` means *no value*: ``None``, a float NaN (Python's or numpy's),
    pandas' ``NaT`` or ``NA``, numpy's ``NaT``.

    An empty string is not missing (it is a value, and fields that need text reject it),
    nor is ``Decimal("NaN")`` (it is an error where a number is expected).

    Example:
        >>> is_missing(None), is_missing(float("nan")), is_missing(0.0), is_missing("nan")
        (True, True, False, False)
    """
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    kind = type(value)
    if not _foreign(kind):
        return False
    if kind.__name__ in _MISSING_TYPES:
        return True
    try:
        return bool(value != value)  # numpy's NaN and NaT are the values unequal to themselves
    except (TypeError, ValueError):
        return False


def plain_value(value: Any) -> Any:
    """``value`` as a record holds it: ``None`` when it is missing (:func:`is_missing`), a
    numpy or pandas scalar as its Python counterpart, anything else unchanged (validation
    decides whether it fits its field).

    Example:
        >>> plain_value(float("nan")) is None, plain_value(1.5), plain_value("x")
        (True, 1.5, 'x')
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if is_missing(value):
        return None
    if not _foreign(kind):
        return value
    if isinstance(value, datetime):  # a pandas Timestamp
        converted: Any = value.to_pydatetime(warn=False)  # type: ignore[attr-defined]
        return converted if type(converted) is datetime else value
    if kind.__name__ == "datetime64":
        converted = value.astype("datetime64[us]").item()
        return converted if isinstance(converted, datetime) else value  # out of range: as is
    item = getattr(value, "item", None)
    if item is None:
        return value
    try:
        converted = item()
    except (TypeError, ValueError):
        return value
    if type(converted) in _PLAIN or type(converted) is float:
        return None if is_missing(converted) else converted
    return value


def plain_record(
    record: Mapping[str, Any], fields: Collection[str] | None = None
) -> dict[str, Any]:
    """A copy of ``record`` with every value made plain (:func:`plain_value`); when
    ``fields`` (the fields of the record's type) is given, a key outside it whose value is
    missing is dropped.

    Example:
        >>> plain_record({"stage": "lead", "due": None, "reason": None}, fields={"stage", "due"})
        {'stage': 'lead', 'due': None}
    """
    out = {key: plain_value(value) for key, value in record.items()}
    if fields is not None:
        out = {k: v for k, v in out.items() if v is not None or k in fields}
    return out


def plain_records(records: list[Any]) -> list[Any]:
    """``records`` with every mapping's values made plain (:func:`plain_record`, no key
    dropped); the very list when every value is plain already (the usual case, checked in
    one pass at C speed). Anything that is not a mapping is left for validation to reject.

    Example:
        >>> recs = [{"stage": "lead", "at": "2024-01-05"}]
        >>> plain_records(recs) is recs
        True
        >>> plain_records([{"amount": float("nan")}, "oops"])
        [{'amount': None}, 'oops']
    """
    try:
        if _PLAIN.issuperset(map(type, chain.from_iterable(map(dict.values, records)))):
            return records
    except TypeError:  # a record that is not a dict
        pass
    out: list[Any] = []
    for record in records:
        if isinstance(record, Mapping) and not _PLAIN.issuperset(map(type, record.values())):
            record = plain_record(record)
        out.append(record)
    return out
