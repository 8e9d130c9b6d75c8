"""What calculators return: frozen results that turn into rows, HTML and DataFrames.

Every report and forecast result subclasses :class:`Result`. It implements
:meth:`~Result.to_records` (a list of plain dicts, one per row, money as ``Decimal``); the
notebook HTML and the pandas/polars conversions are built from those same rows.

Example:
    >>> from decimal import Decimal
    >>> class Totals(Result):
    ...     amounts: tuple[tuple[str, Decimal], ...]
    ...     def to_records(self):
    ...         return [{"stage": s, "amount": a} for s, a in self.amounts]
    >>> t = Totals(amounts=(("lead", Decimal("10")), ("<offer>", Decimal("5"))))
    >>> t.to_records()[1]
    {'stage': '<offer>', 'amount': Decimal('5')}
    >>> "&lt;offer&gt;" in t._repr_html_()
    True
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import polars

__all__ = [
    "PERCENT_COLUMNS",
    "Result",
    "html_table",
    "records_to_pandas",
    "records_to_polars",
    "text_table",
]

MAX_HTML_ROWS = 60
MAX_TEXT_ROWS = 20
MAX_TEXT_CELL = 60

PERCENT_COLUMNS: frozenset[str] = frozenset(
    {
        "probability",
        "win_probability",
        "weight",
        "rate",
        "low",
        "high",
        "observed",
        "mean_predicted",
        "cumulative",
        "to_next",
        "to_won",
        "stage_to_won",
        "attainment",
        "wape",
    }
)
"""Columns shown as percentages in tables, besides those whose name ends in ``_share`` or
``_rate``: a float there is a share (``0.25`` shows as ``25.0%``), a ``Decimal`` is a
percentage already (a stage weight or probability, ``25`` shows as ``25%``). The rows
themselves (``to_records()``) keep the numbers as they are."""


class Result(BaseModel):
    """Base of every calculator result: frozen data with rows, HTML and DataFrames."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_records(self) -> list[dict[str, Any]]:
        """The result as rows of plain values (money stays ``Decimal``)."""
        raise NotImplementedError

    def _html_title(self) -> str:
        return type(self).__name__

    def _repr_html_(self) -> str:
        return html_table(self.to_records(), title=self._html_title())

    def __str__(self) -> str:
        """A short aligned text table of the rows (the first :data:`MAX_TEXT_ROWS`)."""
        return text_table(self.to_records(), title=self._html_title())

    def to_pandas(self, *, money: Literal["decimal", "float"] = "decimal") -> pandas.DataFrame:
        """The rows as a pandas DataFrame (needs the ``pandas`` extra).

        Args:
            money: ``"decimal"`` keeps ``Decimal`` values in object columns (exact);
                ``"float"`` converts them to float64 columns (convenient, inexact).
        """
        return records_to_pandas(self.to_records(), money=money)

    def to_polars(self) -> polars.DataFrame:
        """The rows as a polars DataFrame (needs the ``polars`` extra); money as Decimal."""
        return records_to_polars(self.to_records())


def require_same(what: str, mine: object, theirs: object, names: Iterable[str]) -> None:
    """Refuse to merge two results whose settings ``names`` differ (the mergeable results'
    shared check).

    Raises:
        ArgumentError: (argument ``other``) naming the first attribute that differs.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> require_same("counts", NS(as_of=1), NS(as_of=1), ["as_of"])
        >>> try:
        ...     require_same("counts", NS(as_of=1), NS(as_of=2), ["as_of"])
        ... except ArgumentError as err:
        ...     print(err)
        argument 'other': cannot merge counts with different as_of: 1 vs 2
    """
    for name in names:
        a, b = getattr(mine, name), getattr(theirs, name)
        if a != b:
            message = f"cannot merge {what} with different {name}: {a!r} vs {b!r}"
            raise ArgumentError("other", message)


def records_to_pandas(
    rows: Sequence[dict[str, Any]], *, money: Literal["decimal", "float"] = "decimal"
) -> pandas.DataFrame:
    """Rows as a pandas DataFrame: Decimal kept (object) or converted to float64.

    Dates stay ``datetime.date`` objects and timestamps become timezone-aware datetime64.
    """
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas() needs pandas: pip install 'pipelinekit[pandas]'") from exc
    if money not in ("decimal", "float"):
        raise ArgumentError("money", f"expected 'decimal' or 'float', got {money!r}")
    frame = pd.DataFrame.from_records(list(rows)) if rows else pd.DataFrame()
    for column in frame.columns:
        values = [v for v in frame[column] if v is not None]
        if values and all(isinstance(v, datetime) for v in values):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        elif money == "float" and values and all(isinstance(v, Decimal) for v in values):
            frame[column] = frame[column].astype("float64")
    return frame


def records_to_polars(rows: Sequence[dict[str, Any]]) -> polars.DataFrame:
    """Rows as a polars DataFrame (Decimal columns stay Decimal)."""
    try:
        import polars as pl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_polars() needs polars: pip install 'pipelinekit[polars]'") from exc
    return pl.DataFrame(list(rows), infer_schema_length=None)


def is_percent(column: str) -> bool:
    """Whether ``column`` holds shares or percentages (see :data:`PERCENT_COLUMNS`).

    Example:
        >>> is_percent("amount_share"), is_percent("win_rate"), is_percent("amount")
        (True, True, False)
    """
    return column in PERCENT_COLUMNS or column.endswith(("_share", "_rate"))


def _cell(value: object, column: str = "") -> str:
    """One value as tables show it (money with thousands separators, shares as %)."""
    if value is None:
        return ""
    if isinstance(value, float | Decimal) and not isinstance(value, bool) and is_percent(column):
        if isinstance(value, float):
            return f"{value:.1%}"
        return f"{value.normalize():f}%" if value == value.to_integral_value() else f"{value}%"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return (
            f"{value:,.2f}" if value == value.to_integral_value() or abs(value) >= 1 else str(value)
        )
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CELL else text[: MAX_TEXT_CELL - 3] + "..."


def text_table(
    rows: Sequence[dict[str, Any]], *, title: str = "", max_rows: int = MAX_TEXT_ROWS
) -> str:
    """``rows`` as a short aligned text table: the first ``max_rows`` rows, columns that
    are empty in every row left out, numbers right-aligned, shares as percentages, cells cut
    at :data:`MAX_TEXT_CELL` characters.

    Example:
        >>> from decimal import Decimal
        >>> print(text_table([{"stage": "lead", "amount": Decimal("1200"), "win_rate": 0.25,
        ...                    "note": None},
        ...                   {"stage": "offer", "amount": Decimal("800.5"), "win_rate": None,
        ...                    "note": None}], title="By stage"))
        By stage
        stage    amount  win_rate
        -----  --------  --------
        lead   1,200.00     25.0%
        offer    800.50
    """
    shown = rows[:max_rows]
    columns = [c for c in _columns(rows) if any(row.get(c) is not None for row in shown)]
    cells = [[_clip(_cell(row.get(c), c)) for c in columns] for row in shown]
    numeric = [
        all(
            isinstance(row.get(c), int | float | Decimal) and not isinstance(row.get(c), bool)
            for row in shown
            if row.get(c) is not None
        )
        for c in columns
    ]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    if not rows:
        return "\n".join([*out, "(no rows)"])
    out += [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    if len(rows) > max_rows:
        out.append(f"... {len(rows) - max_rows} more rows; use to_records() or to_pandas()")
    return "\n".join(out)


def html_table(
    rows: Sequence[dict[str, Any]], *, title: str = "", max_rows: int = MAX_HTML_ROWS
) -> str:
    """A small HTML table of ``rows``: capped at ``max_rows``, every string escaped, shares
    as percentages (:func:`is_percent`).

    Example:
        >>> print(html_table([{"a": 1}], title="T"))  # doctest: +ELLIPSIS
        <div class="pipelinekit"><strong>T</strong><table>...<td>1</td>...</table></div>
    """
    columns = _columns(rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows[:max_rows]:
        cells = "".join(f"<td>{html.escape(_cell(row.get(c), c))}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if len(rows) > max_rows:
        more = f"<p>{len(rows) - max_rows} more rows; use to_records() or to_pandas()</p>"
    caption = f"<strong>{html.escape(title)}</strong>" if title else ""
    return (
        f'<div class="pipelinekit">{caption}<table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}</div>"
    )
