"""What every CRM adapter shares: reading export rows, finding columns, reading dates.

Rows come as an iterable of mappings (``csv.DictReader``, JSON, database rows) or as a
pandas or polars DataFrame (recognised by the module of its type: neither library is
imported). Values follow :mod:`pipelinekit.records` (NaN, NaT, ``pd.NA`` and ``None`` are
missing); an empty or blank string counts as missing too, as a CSV cell cannot say ``None``.

A value the adapter cannot read (a date in another format, say) is passed on unchanged, so
that validation rejects that record naming its field and ``event_id`` (every adapter record
has one, built from the export row), in strict mode as an error and in lenient mode as a
rejection: nothing is guessed and nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.records import plain_record
from pipelinekit.stages import StageScheme

__all__ = [
    "Changes",
    "DateOrder",
    "Row",
    "Table",
    "build_history",
    "day",
    "flag",
    "identifier",
    "instant",
    "read_input",
    "stage_key",
]

Row = dict[str, Any]
DateOrder = Literal["ymd", "dmy", "mdy"]
"""How a date written with slashes or dots reads: ``"ymd"`` (ISO, the default), ``"dmy"``
(``14/03/2022``, as in UK exports) or ``"mdy"`` (``03/14/22``, as in US exports)."""

_NUMERIC = re.compile(
    r"^(\d{1,4})[/.-](\d{1,2})[/.-](\d{1,4})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)


def _frame_rows(data: Any) -> list[Mapping[str, Any]] | None:
    """The rows of a pandas or polars DataFrame, or ``None`` for anything else."""
    root = type(data).__module__.partition(".")[0]
    if root == "pandas" and hasattr(data, "to_dict") and hasattr(data, "columns"):
        rows: list[Mapping[str, Any]] = data.to_dict("records")
        return rows
    if root == "polars" and hasattr(data, "to_dicts"):
        polars_rows: list[Mapping[str, Any]] = data.to_dicts()
        return polars_rows
    return None


def _blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class Table:
    """Export rows, made plain, with their columns found by name.

    Args:
        data: an iterable of mappings or a pandas/polars DataFrame.
        argument: the name of the argument the rows came in (for error messages).
        columns: the column each field is read from by default, as alternatives in order
            of preference (the first present wins).
        rename: the caller's own column names, by field, overriding ``columns``.
        required: fields whose column must be present.

    Raises:
        ArgumentError: ``data`` is not rows, a row is not a mapping, ``rename`` names an
            unknown field, or a required column is absent (the message lists the columns
            the rows have).
    """

    def __init__(
        self,
        data: Any,
        *,
        argument: str,
        columns: Mapping[str, Sequence[str]],
        rename: Mapping[str, str] | None = None,
        required: Sequence[str] = (),
    ) -> None:
        self.argument = argument
        rows = _frame_rows(data)
        if rows is None:
            if isinstance(data, str | bytes | Mapping) or not isinstance(data, Iterable):
                raise ArgumentError(
                    argument,
                    f"expected rows (an iterable of mappings, or a pandas or polars "
                    f"DataFrame), got {type(data).__name__}",
                )
            rows = list(data)
        self.rows: list[Row] = []
        present: dict[str, None] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ArgumentError(
                    argument, f"row {i} is a {type(row).__name__}, not a mapping of columns"
                )
            clean = {str(k): _blank(v) for k, v in plain_record(row).items()}
            self.rows.append(clean)
            present.update(dict.fromkeys(clean))
        self.present = tuple(present)
        unknown = sorted(set(rename or {}) - set(columns))
        if unknown:
            raise ArgumentError(
                "columns",
                f"unknown field(s) {unknown} for {argument}; the fields are {sorted(columns)}",
            )
        self.column: dict[str, str | None] = {}
        for field, names in columns.items():
            chosen = (rename or {}).get(field)
            if chosen is None:
                chosen = next((n for n in names if n in present), None)
            elif chosen not in present and self.rows:
                raise ArgumentError(
                    "columns",
                    f"{argument} has no column {chosen!r} (given for {field!r}); its "
                    f"columns are {list(self.present)}",
                )
            self.column[field] = chosen
        missing = [f for f in required if self.column.get(f) is None]
        if missing and self.rows:
            wanted = [f"{f!r} (one of {list(columns[f])})" for f in missing]
            raise ArgumentError(
                argument,
                f"no column for {', '.join(wanted)}; its columns are {list(self.present)}; "
                "name yours with columns={...}",
            )

    def get(self, row: Row, field: str) -> Any:
        """The value of ``field`` in ``row`` (``None`` when missing or not exported)."""
        column = self.column.get(field)
        return None if column is None else row.get(column)

    def has(self, field: str) -> bool:
        """Whether the rows have a column for ``field``."""
        return self.column.get(field) is not None

    def __len__(self) -> int:
        return len(self.rows)


def read_input(
    data: Any,
    name: str,
    *,
    inputs: Mapping[str, Mapping[str, Sequence[str]]],
    required: Mapping[str, Sequence[str]],
    columns: Mapping[str, Mapping[str, str]] | None,
) -> Table:
    """The :class:`Table` of the adapter input ``name``, whose fields are ``inputs[name]``,
    with the caller's ``columns`` (renames per input) checked first.

    Raises:
        ArgumentError: ``columns`` names an input the adapter does not have, or see
            :class:`Table`.
    """
    unknown = sorted(set(columns or {}) - set(inputs))
    if unknown:
        raise ArgumentError(
            "columns", f"unknown input(s) {unknown}; the inputs are {sorted(inputs)}"
        )
    return Table(
        data,
        argument=name,
        columns=inputs[name],
        rename=(columns or {}).get(name),
        required=required.get(name, ()),
    )


def identifier(value: Any) -> Any:
    """An id as text: a whole float (an id column that pandas read as float because a cell
    was empty) loses its ``.0``; anything else is left to validation."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _numeric(text: str, order: DateOrder) -> tuple[date, tuple[int, int, int]] | None:
    match = _NUMERIC.match(text)
    if match is None:
        return None
    a, b, c, hh, mm, ss, half = match.groups()
    if order == "dmy":
        d, m, y = int(a), int(b), c
    elif order == "mdy":
        m, d, y = int(a), int(b), c
    else:
        y, m, d = a, int(b), int(c)
    year = int(y) + (2000 if len(y) <= 2 else 0)
    try:
        day_ = date(year, m, d)
    except ValueError:
        return None
    hour, minute, second = int(hh or 0), int(mm or 0), int(ss or 0)
    if half is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return day_, (hour, minute, second)


def instant(value: Any, *, order: DateOrder = "ymd", tz: tzinfo = UTC) -> Any:
    """A timestamp from an export cell: a ``datetime`` (naive ones in ``tz``), a ``date``
    (its start), an ISO string, a date in ``order`` with an optional time (``14/03/2022``,
    ``02/23/26 08:55 PM``) or epoch milliseconds (as HubSpot's API gives them; at least
    10**11, so epoch seconds are never mistaken for them). Anything else is returned
    unchanged, for validation to reject; ``None`` stays ``None``.

    Example:
        >>> instant("14/03/2022 16:11", order="dmy").isoformat()
        '2022-03-14T16:11:00+00:00'
        >>> instant("02/23/26 08:55 PM", order="mdy").isoformat()
        '2026-02-23T20:55:00+00:00'
        >>> instant("1709251200000").isoformat()
        '2024-03-01T00:00:00+00:00'
        >>> instant("not a date"), instant("1709251200"), instant(45000)
        ('not a date', '1709251200', 45000)
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _epoch_ms(value) if value >= _EPOCH_MS_FROM else value
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.isdigit() and int(text) >= _EPOCH_MS_FROM:
        return _epoch_ms(int(text))
    numeric = _numeric(text, order)
    if numeric is not None:
        d, (h, m, s) = numeric
        return datetime(d.year, d.month, d.day, h, m, s, tzinfo=tz)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


_EPOCH_MS_FROM = 10**11
"""Numbers from here on are epoch milliseconds (1973-03-03 on); smaller ones (epoch seconds,
spreadsheet serial dates) are not guessed at: validation rejects them."""


def _epoch_ms(value: int | float | Decimal) -> Any:
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=float(value))
    except (OverflowError, ValueError):
        return value


def day(value: Any, *, order: DateOrder = "ymd") -> Any:
    """A calendar date from an export cell (the date part of a timestamp); anything
    unreadable is returned unchanged, for validation to reject.

    Example:
        >>> day("24/03/2022", order="dmy"), day("2024-05-31"), day("02/03/24", order="mdy")
        (datetime.date(2022, 3, 24), datetime.date(2024, 5, 31), datetime.date(2024, 2, 3))
    """
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        numeric = _numeric(value.strip(), order)
        if numeric is not None:
            return numeric[0]
    moment = instant(value, order=order)
    return moment.date() if isinstance(moment, datetime) else value


def flag(value: Any) -> bool | None:
    """A yes/no cell: ``True``/``False``, ``"TRUE"``/``"false"``, ``1``/``0``; ``None``
    when missing or unreadable.

    Example:
        >>> flag("TRUE"), flag("false"), flag(1), flag(None), flag("maybe")
        (True, False, True, None, None)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return None if value not in (0, 1) else bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "t", "yes", "y", "1"):
            return True
        if text in ("false", "f", "no", "n", "0"):
            return False
    return None


def number(value: Any) -> Any:
    """A decimal from an export cell (``"1,234.50"`` too); unreadable values unchanged."""
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            return Decimal(text)
        except InvalidOperation:
            return value
    return value


def stage_key(scheme: StageScheme, name: Any) -> Any:
    """The key of the stage an export calls ``name`` (:meth:`StageScheme.key_for`); a name
    the scheme does not know is passed on unchanged, for validation to reject it with a
    "did you mean" hint."""
    if not isinstance(name, str):
        return name
    try:
        return scheme.key_for(name)
    except ArgumentError:
        return name


def _sortable(at: Any) -> tuple[int, str]:
    """A sort key for a timestamp that may be unreadable (those sort last, as text)."""
    if isinstance(at, datetime):
        return (0, at.astimezone(UTC).isoformat())
    return (1, str(at))


class Changes:
    """The changes of each opportunity, collected from any number of export rows, and the
    records they make once the opportunities are opened (:meth:`records`)."""

    def __init__(self) -> None:
        self._by_opportunity: dict[Any, list[tuple[tuple[int, str], float, int, Row]]] = {}
        self._count = 0

    def add(self, opportunity_id: Any, at: Any, record: Row, *, order: float = 0.0) -> None:
        """A change of ``opportunity_id`` at ``at``; changes at one time keep ``order``,
        then the order they were added in."""
        self._count += 1
        item = (_sortable(at), order, self._count, {**record, "at": at})
        self._by_opportunity.setdefault(opportunity_id, []).append(item)

    def first(self, opportunity_id: Any, kind: str, having: str = "type") -> Row | None:
        """The earliest change of ``opportunity_id`` of record type ``kind`` that has the
        key ``having``, or ``None``."""
        items = [
            c
            for c in self._by_opportunity.get(opportunity_id, ())
            if c[3]["type"] == kind and c[3].get(having) is not None
        ]
        return min(items, key=lambda c: c[:3])[3] if items else None

    def records(self, opened: Sequence[Row]) -> list[Row]:
        """Each ``opened`` record followed by its opportunity's changes in time order; then
        the changes of opportunities no ``opened`` record names, so that validation reports
        each (``not-opened``) instead of their vanishing."""
        out: list[Row] = []
        pending = dict(self._by_opportunity)
        for record in opened:
            oid = record.get("opportunity_id")
            out.append(record)
            for *_, change in sorted(pending.pop(oid, []), key=lambda c: c[:3]):
                out.append(drop_none({**change, "opportunity_id": oid}))
        for oid, items in pending.items():
            for *_, change in sorted(items, key=lambda c: c[:3]):
                out.append(drop_none({**change, "opportunity_id": oid}))
        return out


def build_history(
    records: list[dict[str, Any]], scheme: StageScheme, mode: Literal["strict", "lenient"]
) -> History:
    """The History of an adapter's records (timestamps are all aware already)."""
    return History.from_records(records, scheme=scheme, mode=mode)


def drop_none(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its empty optional fields (records stay short and readable)."""
    return {k: v for k, v in record.items() if v is not None}
