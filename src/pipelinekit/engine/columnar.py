"""The columnar engine (the ``fast`` extra, on polars): the reference's answers, in bulk.

It validates records as columns, orders them with one sort of an index, checks every move
against the scheme by joining the distinct (from, to) pairs, and takes snapshots at
``as_of`` as the last value of each field per opportunity, all inside polars. It accepts
only what it can prove valid under exactly the reference's rules and returns ``None``
otherwise, so the caller falls back to the reference engine
(:mod:`pipelinekit.engine.reference`), which then gives the located errors. What it
proves:

- every record is a ``dict`` whose keys are fields of its ``type`` with values of the
  shape of the usual JSON export: identifiers and texts within their lengths, timestamps
  as ``YYYY-MM-DDTHH:MM:SS+HH:MM`` or ``...Z``, amounts and probabilities as plain decimal
  strings (at most 15 integer and 4 fractional digits; probabilities 0-100), currencies
  as three capitals, dates as ``YYYY-MM-DD``; frames (``from_polars``, ``from_pandas``,
  ``from_arrow``) may also hold those fields as typed columns (see :func:`normalize`);
- no ``event_id`` repeats (de-duplication is left to the reference);
- every opportunity's first event in time order is its only ``opened`` one, every stage is
  in the scheme, and every stage change is a legal move.

Snapshot objects (:class:`~pipelinekit.opportunity.Opportunity`) are built only when
asked for, by replaying the opportunities' rows through the reference state machine; the
fast calculator paths read :class:`DealColumns` instead.

Importing this module imports polars; :mod:`pipelinekit.engine` does so only when the
engine is used.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import chain
from operator import countOf
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import polars as pl

from pipelinekit._rows import ROW_CLASSES, Row
from pipelinekit.events import EVENT_CLASSES
from pipelinekit.ingestion import IngestReport
from pipelinekit.money import EXACT
from pipelinekit.opportunity import Opportunity
from pipelinekit.partitions import partition_of
from pipelinekit.pipeline import DealView, Pipeline, StageSum
from pipelinekit.stages import Outcome, StageScheme

__all__ = ["ColumnStore", "DealColumns", "columns_of_records", "from_frame", "from_records"]

# -- what the event models say -----------------------------------------------------------

_TAGS: tuple[str, ...] = tuple(c.model_fields["type"].default for c in EVENT_CLASSES)
_KIND = {tag: code for code, tag in enumerate(_TAGS)}
OPENED, STAGE_CHANGED, AMOUNT_CHANGED = (
    _KIND["opened"],
    _KIND["stage_changed"],
    _KIND["amount_changed"],
)
CLOSE_DATE_CHANGED, PROBABILITY_SET, OWNER_CHANGED = (
    _KIND["close_date_changed"],
    _KIND["probability_set"],
    _KIND["owner_changed"],
)
_FIELDS: tuple[tuple[str, ...], ...] = tuple(
    tuple(n for n in c.model_fields if n != "type") for c in EVENT_CLASSES
)


def _nullable(annotation: object) -> bool:
    origin = get_origin(annotation)
    return (origin is Union or origin is UnionType) and NoneType in get_args(annotation)


_REQUIRED: tuple[frozenset[str], ...] = tuple(
    frozenset(n for n, f in c.model_fields.items() if n != "type" and f.is_required())
    for c in EVENT_CLASSES
)
_NULLABLE_REQUIRED: tuple[frozenset[str], ...] = tuple(
    frozenset(
        n
        for n, f in c.model_fields.items()
        if n != "type" and f.is_required() and _nullable(f.annotation)
    )
    for c in EVENT_CLASSES
)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(n for fields in _FIELDS for n in fields))
"""Every field name of every record type (``type`` aside)."""

_ID_LIMIT, _TEXT_LIMIT = 256, 100_000
_RULES: dict[str, str] = {
    "opportunity_id": "id",
    "event_id": "id",
    "actor": "id",
    "stage": "id",
    "owner": "id",
    "account": "id",
    "product": "id",
    "source": "id",
    "kind": "id",
    "name": "text",
    "reason": "text",
    "note": "text",
    "at": "instant",
    "amount": "money",
    "probability": "percent",
    "currency": "currency",
    "expected_close": "date",
    "due": "date",
}
SUPPORTED = set(NAMES) <= set(_RULES)
"""Whether every field of the event models has a columnar rule here (else the engine is
never used: a new field must be taught to it first)."""

_INSTANT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$"
_MONEY = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$"
_PERCENT = r"^(100(\.0{1,4})?|[1-9]?[0-9](\.[0-9]{1,4})?)$"
_CURRENCY = r"^[A-Z]{3}$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- from records to checked columns -----------------------------------------------------


def columns_of_records(records: list[Any]) -> tuple[pl.DataFrame, Given] | None:
    """The records as one String column per field, with what each record gave; ``None``
    unless every record is a ``dict`` whose values are ``str`` or ``None`` and whose keys
    with a ``str`` value are all field names.

    polars would turn other values into strings silently (``12.0`` into ``"12"``), so the
    value types are collected first, in one pass at C speed. A ``None`` is a missing value
    (see :mod:`pipelinekit.records`): given as ``None`` for a field of the record's type,
    ignored for any other key. Where there are ``None`` values, the key set of every
    record is kept too (a column ``keyset``), for the fields-sets and for the fields where
    an explicit ``None`` differs from an absent key.

    polars reads one column per key it is given, and each costs a lookup in every record,
    so the columns asked for are the keys that occur: known exactly from the key sets when
    they are kept, else guessed from a sample of the records and then proved: every
    string must land in a column (the count of non-null values equals the count of
    strings), or the keys are collected from every record and the records read again.
    """
    if not records or not SUPPORTED:
        return None
    try:
        kinds = set(map(type, chain.from_iterable(map(dict.values, records))))
    except TypeError:  # a record that is not a dict
        return None
    if not kinds <= {str, NoneType}:
        return None  # numbers, dates...: the reference reads them
    values = sum(map(len, records))
    if NoneType in kinds:
        nones = countOf(chain.from_iterable(map(dict.values, records)), None)
        found: dict[tuple[str, ...], int] = {}
        codes = [found.setdefault(keys, len(found)) for keys in map(tuple, records)]
        keys = set(chain.from_iterable(found))
        frame = _read(records, keys, values - nones)
        if frame is None:
            return None
        keysets = tuple(frozenset(keys) for keys in found)
        frame = frame.with_columns(pl.Series("keyset", codes, dtype=pl.UInt32))
        return frame, Given(keysets=keysets)
    step = max(1, len(records) // _SAMPLE)
    guess = set(chain.from_iterable(chain(records[:_SAMPLE], records[::step])))
    frame = _read(records, guess, values)
    if frame is None:  # a key the sample missed (or one that is no field)
        frame = _read(records, set(chain.from_iterable(records)), values)
    return None if frame is None else (frame, Given())


_SAMPLE = 2048
"""Records sampled (from the start and spread over the rest) to guess the keys."""


def _read(records: list[Any], keys: set[str], strings: int) -> pl.DataFrame | None:
    """The records' String columns of those ``keys`` that are record fields (all-null
    columns left out); ``None`` unless they hold all ``strings`` strings."""
    schema = {name: pl.String for name in _COLUMNS if name in keys}
    frame = pl.from_dicts(records, schema=schema)
    frame = frame.select(c for c in frame.iter_columns() if c.null_count() < frame.height)
    if sum(frame.height - c.null_count() for c in frame.iter_columns()) != strings:
        return None  # a str under a key outside every record type (or not read)
    return frame


@dataclass(frozen=True)
class Given:
    """Which fields each record gave: every column of a frame (``columns``); the keys of
    records with ``None`` values, by the code in their ``keyset`` column (``keysets``);
    or, for records without any ``None``, the fields whose column is not null."""

    columns: frozenset[str] | None = None
    keysets: tuple[frozenset[str], ...] | None = None

    def gives(self, name: str, value: pl.Expr) -> pl.Expr:
        """Whether each row gives field ``name`` (``value``: whether it is not null)."""
        if self.columns is not None:
            return pl.lit(name in self.columns)
        if self.keysets is not None:
            codes = [k for k, keys in enumerate(self.keysets) if name in keys]
            return pl.col("keyset").is_in(codes)
        return value

    def fields_set(
        self, fields: tuple[str, ...], values: tuple[Any, ...], keyset: int | None
    ) -> frozenset[str]:
        """The fields-set of one record of ``fields`` with ``values``."""
        if self.columns is not None:
            return frozenset(("type", *(f for f in fields if f in self.columns)))
        if self.keysets is not None and keyset is not None:
            keys = self.keysets[keyset]
            return frozenset(("type", *(f for f in fields if f in keys)))
        given = (f for f, v in zip(fields, values, strict=True) if v is not None)
        return frozenset(("type", *given))


_COLUMNS = ("type", *NAMES)


def normalize(frame: pl.DataFrame) -> tuple[pl.DataFrame, Given] | None:
    """A frame's columns in the form :func:`columns_of_records` gives, with what every
    row gives (all the frame's columns); ``None`` for a column this engine does not read.

    Typed columns become the strings the record path reads as the same values: integers
    into decimal strings (ids, as pydantic turns numbers into strings, and amounts);
    floats in amounts and probabilities into the digits of their ``repr`` (what the
    record path makes a ``Decimal`` of); dates into ``YYYY-MM-DD``; categoricals into
    their strings. A tz-aware ``at`` in UTC becomes the columns ``at_us`` and ``at_off``
    (0). A null is a missing value (None, NaN, NaT and ``pd.NA`` alike); so is a float
    NaN (which the record path also calls missing) only after it is made a null.
    """
    if not SUPPORTED:
        return None
    names = frozenset(frame.columns)
    if "type" not in names or not names <= {"type", *NAMES}:
        return None
    out: list[pl.Series] = []
    for column in frame.iter_columns():
        if column.name == "at" and isinstance(column.dtype, pl.Datetime):
            instants = _typed_instants(column)
            if instants is None:
                return None
            out += instants
            continue
        converted = _as_strings(column)
        if converted is None:
            return None
        out.append(converted)
    return pl.DataFrame(out), Given(columns=names - {"type"})


# instants well inside the years the reference accepts without a closer look (11 to 9988)
_FIRST_US = -61_819_977_600 * _US  # 0011-01-02T00:00:00Z
_LAST_US = 253_055_059_200 * _US  # 9988-12-30T00:00:00Z


def _typed_instants(column: pl.Series) -> list[pl.Series] | None:
    """A tz-aware UTC datetime column as ``at_us`` and ``at_off``; ``None`` for a naive
    one (the reference then applies ``assume_tz`` or refuses it), another zone, or
    nanoseconds that a ``datetime`` cannot hold."""
    dtype = column.dtype
    assert isinstance(dtype, pl.Datetime)
    if dtype.time_zone not in ("UTC", "Etc/UTC"):
        return None
    raw = column.dt.replace_time_zone(None).cast(pl.Int64)
    if dtype.time_unit == "ns":
        if (raw.drop_nulls() % 1000 != 0).any():
            return None
        us = raw // 1000
    elif dtype.time_unit == "ms":
        us = raw * 1000
    else:
        us = raw
    values = us.drop_nulls()
    if len(values) and (values.min() < _FIRST_US or values.max() > _LAST_US):  # type: ignore[operator]
        return None
    return [us.alias("at_us"), pl.Series("at_off", [0] * len(us), dtype=pl.Int16)]


def _as_strings(column: pl.Series) -> pl.Series | None:
    dtype = column.dtype
    rule = _RULES.get(column.name, "type")
    if dtype == pl.String:
        return column
    if (
        dtype == pl.Null
        or column.null_count() == len(column)  # (pandas makes an empty column float)
        or isinstance(dtype, pl.Categorical | pl.Enum)
    ):
        return column.cast(pl.String)
    if dtype == pl.Date and rule == "date":
        return column.dt.strftime("%Y-%m-%d")
    if dtype.is_integer() and rule in ("id", "text", "money", "percent"):
        return column.cast(pl.String)
    if isinstance(dtype, pl.Decimal) and rule in ("money", "percent"):
        return column.cast(pl.String)
    if dtype.is_float() and rule in ("money", "percent"):
        text = column.cast(pl.String)
        # polars writes the shortest digits that read back (as repr does) but 12.0 as "12"
        plain = text.str.contains(r"^[0-9]+$")
        return pl.select(pl.when(plain).then(text + ".0").otherwise(text)).to_series()
    return None


def _string_checks(frame: pl.DataFrame) -> list[pl.Expr]:
    """One expression per column: true where the value is null or valid for its field."""
    checks: list[pl.Expr] = []
    for name in frame.columns:
        if name == "type":
            continue
        rule, col = _RULES[name], pl.col(name)
        if rule == "id":
            ok = col.str.len_chars().is_between(1, _ID_LIMIT)
        elif rule == "text":
            ok = col.str.len_chars() <= _TEXT_LIMIT
        elif rule == "money":
            ok = col.str.contains(_MONEY)
        elif rule == "percent":
            ok = col.str.contains(_PERCENT)
        elif rule == "currency":
            ok = col.str.contains(_CURRENCY)
        elif rule == "date":
            ok = col.str.contains(_DATE) & (_year(col) >= 1) & _valid_date(col)
        else:  # instant: see _instants_of
            continue
        checks.append(col.is_null() | ok)
    return checks


def _part(col: pl.Expr, start: int) -> pl.Expr:
    return col.str.slice(start, 2).cast(pl.Int32, strict=False)


def _year(col: pl.Expr) -> pl.Expr:
    return col.str.slice(0, 4).cast(pl.Int32, strict=False)


def _valid_date(col: pl.Expr) -> pl.Expr:
    return col.str.to_date("%Y-%m-%d", strict=False).is_not_null()


def _instants_of(frame: pl.DataFrame) -> pl.DataFrame | None:
    """The ``at`` strings as microseconds since the epoch (``at_us``, UTC) and offsets in
    minutes (``at_off``); ``None`` unless every one is an instant of the usual export shape
    that ``datetime.fromisoformat`` reads (what the reference reads them with)."""
    col = pl.col("at")
    zulu = col.str.slice(19, 1) == "Z"
    sign = pl.when(col.str.slice(19, 1) == "-").then(-1).otherwise(1)
    parts = frame.select(
        col.str.contains(_INSTANT).alias("shape"),
        col.str.slice(0, 19)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False)
        .alias("local"),
        _year(col).alias("year"),
        _part(col, 17).alias("second"),  # (chrono reads a leap second 60; Python does not)
        zulu.alias("zulu"),
        _part(col, 20).alias("off_h"),
        _part(col, 23).alias("off_m"),
        sign.alias("sign"),
    )
    ok = parts.select(
        (
            pl.col("shape")
            & pl.col("local").is_not_null()
            & pl.col("year").is_between(11, 9988)  # (the reference looks closer outside)
            & (pl.col("second") <= 59)
            & (pl.col("zulu") | ((pl.col("off_h") <= 23) & (pl.col("off_m") <= 59)))
        ).all()
    ).item()
    if not ok:
        return None
    offset = (
        pl.when(pl.col("zulu"))
        .then(0)
        .otherwise(pl.col("sign") * (pl.col("off_h") * 60 + pl.col("off_m")))
        .cast(pl.Int16)
    )
    return parts.select(
        (pl.col("local").cast(pl.Int64) - offset.cast(pl.Int64) * 60 * _US).alias("at_us"),
        offset.alias("at_off"),
    )


# -- ingestion ---------------------------------------------------------------------------


def from_records(
    records: list[Any], scheme: StageScheme
) -> tuple[ColumnStore, IngestReport] | None:
    """The store of plain-dict records, or ``None`` when they are not provably valid."""
    try:
        found = columns_of_records(records)
        return None if found is None else ingest(found[0], scheme, given=found[1])
    except pl.exceptions.PolarsError:  # a shape this engine did not foresee: the reference
        return None


def from_frame(
    frame: Any, kind: str, scheme: StageScheme
) -> tuple[ColumnStore, IngestReport] | None:
    """The store of a polars or pandas DataFrame's or an Arrow table's rows, or ``None``
    when they are not provably valid (or the frame cannot be read as polars columns:
    a pandas frame of strings needs pyarrow)."""
    try:
        if kind == "pandas":
            frame = pl.from_pandas(frame)  # NaN and NaT become nulls
        elif kind == "arrow":
            converted = pl.from_arrow(frame)
            if not isinstance(converted, pl.DataFrame):
                return None
            frame = converted
        normalized = normalize(frame)
        if normalized is None:
            return None
        columns, given = normalized
        return ingest(columns, scheme, given=given)
    except (pl.exceptions.PolarsError, ImportError, TypeError, ValueError):
        return None


def ingest(
    frame: pl.DataFrame, scheme: StageScheme, *, given: Given
) -> tuple[ColumnStore, IngestReport] | None:
    """Check and order checked-shape columns (see :func:`columns_of_records`,
    :func:`normalize`); ``None`` unless every record is provably valid and legal.

    ``given``: which fields each record gave (a null is ``None`` for a field of the
    record's type that it gives, and is ignored for any other).
    """
    n = frame.height
    if n == 0 or n >= 2**32:
        return None
    kind = frame["type"].replace_strict(
        _TAGS, range(len(_TAGS)), default=None, return_dtype=pl.UInt8
    )
    if kind.null_count():
        return None
    frame = frame.with_columns(kind.alias("tcode"))
    typed = "at_us" in frame.columns
    if typed:  # instants from a datetime column (see normalize)
        frame = frame.with_columns(pl.col("at_us").alias("at"))
    present = set(frame.columns) - {"type", "tcode", "keyset", "at_us", "at_off"}
    if "opportunity_id" not in present or "at" not in present:
        return None
    checks = _string_checks(frame.select(sorted(present)))
    checks += _shape_checks(present, given)
    ok = frame.select(pl.all_horizontal(checks).all()).item()
    if not ok:
        return None
    if "event_id" in present:
        ids = frame["event_id"].drop_nulls()
        if ids.n_unique() != len(ids):
            return None  # de-duplication (and its errors) are the reference's
    at = frame.select("at_us", "at_off") if typed else _instants_of(frame)
    if at is None:
        return None
    keep = [c for c in frame.columns if c not in ("type", "at", "at_us", "at_off")]
    events = pl.concat([frame.select(keep), at], how="horizontal")
    return ColumnStore.checked(events, scheme, given)


def _shape_checks(present: set[str], given: Given) -> list[pl.Expr]:
    """Per row: no value in a field outside its type, every required field there with a
    value (or, where ``None`` is allowed, given at least)."""
    kind = pl.col("tcode")
    checks: list[pl.Expr] = []
    for name in NAMES:
        has = [k for k, fields in enumerate(_FIELDS) if name in fields]
        nullable = [k for k, fields in enumerate(_NULLABLE_REQUIRED) if name in fields]
        needs = [
            k for k, required in enumerate(_REQUIRED) if name in required and k not in nullable
        ]
        value = pl.col(name).is_not_null() if name in present else pl.lit(False)
        checks.append(~value | kind.is_in(has))
        if needs:
            checks.append(~(kind.is_in(needs) & ~value))
        if nullable:
            checks.append(~(kind.is_in(nullable) & ~given.gives(name, value)))
    return checks


# -- the store ---------------------------------------------------------------------------


class ColumnStore:
    """The events of a History as columns, grouped by opportunity (each one's events in
    time order, ties in input order), with the index that orders them all by time.

    A prefix shares the columns and indices and only lowers ``limit`` (the last instant
    kept, in microseconds): an opportunity's events up to an instant are the first ones
    of its group.
    """

    __slots__ = (
        "_count",
        "_events",
        "_given",
        "_ids",
        "_snapshot",
        "_time_order",
        "_times",
        "limit",
        "scheme",
    )

    def __init__(
        self,
        scheme: StageScheme,
        events: pl.DataFrame,
        ids: pl.Series,
        given: Given,
        *,
        time_order: pl.Series | None = None,
        limit: int | None = None,
    ) -> None:
        self.scheme = scheme
        self._events = events  # grouped order; columns described in ``checked``
        if time_order is None:
            time_order = events.select(pl.arg_sort_by("at_us", "pos")).to_series()
        self._time_order = time_order  # positions in ``events``, in time order
        self._times = events["at_us"].gather(time_order)
        self._ids = ids  # opportunity ids by code (String)
        self._given = given
        self.limit = limit
        self._count = len(time_order)
        if limit is not None:
            self._count = int(self._times.search_sorted(limit, "right"))
        self._snapshot: Pipeline | None = None

    @classmethod
    def checked(
        cls, events: pl.DataFrame, scheme: StageScheme, given: Given
    ) -> tuple[ColumnStore, IngestReport] | None:
        """Order valid records and check the moves; ``None`` on anything illegal.

        Columns kept: ``oid`` (the opportunity's code in ``ids``), ``pos`` (the input
        position), ``tcode`` (the record type's code), ``at_us``/``at_off``, ``stage`` (its
        index in the scheme), the other fields as strings, and on every stage entry (the
        opening and each real change of stage) its ``outcome`` code and ``run_at`` /
        ``run_off``: when the run of entries with that outcome began (``closed_at``).
        """
        n = events.height
        keys = list(scheme.keys)
        has_stage = "stage" in events.columns
        stage = (
            events["stage"].replace_strict(keys, range(len(keys)), default=None)
            if has_stage
            else pl.Series("stage", [None] * n, dtype=pl.Int64)
        ).cast(pl.UInt16)
        if stage.null_count() != (events["stage"].null_count() if has_stage else n):
            return None  # a stage the scheme lacks
        names = events["opportunity_id"]
        head = (names != names.shift(1)).fill_null(True)
        ids = names.filter(head)
        grouped = ids.n_unique() == len(ids)  # each opportunity's records are together
        if grouped:  # as CRM exports usually come: number the runs, sort only if needed
            oid = (head.cum_sum() - 1).cast(pl.UInt32)
        else:
            ids = names.unique().sort()
            oid = (names.rank("dense") - 1).cast(pl.UInt32)
        events = (
            events.with_columns(stage.alias("stage"), oid.alias("oid"))
            .drop("opportunity_id")
            .with_row_index("pos")
        )
        in_order = (
            grouped
            and events.select(
                (head | (pl.col("at_us") >= pl.col("at_us").shift(1)).fill_null(True)).all()
            ).item()
        )
        if not in_order:
            events = events.sort("oid", "at_us", "pos")
        first = (pl.col("oid") != pl.col("oid").shift(1)).fill_null(True)
        events = events.with_columns(
            first.alias("first"),
            pl.when(first)
            .then(None)
            .otherwise(pl.col("stage").forward_fill().shift(1))
            .alias("prev"),
        )
        if not events.select((pl.col("first") == (pl.col("tcode") == OPENED)).all()).item():
            return None  # not opened first, or opened twice
        change = (pl.col("tcode") == STAGE_CHANGED) & (pl.col("stage") != pl.col("prev"))
        moves = events.filter(change).select("prev", "stage").unique()
        for a, b in moves.iter_rows():
            if scheme.move_rule(keys[a], keys[b]) is not None:
                return None
        # Stage entries (the opening and every real change) and the run of equal outcomes
        # each belongs to: closed_at is when the last run began, if it is a closed one.
        outcomes = [_outcome_code(s.outcome) for s in scheme.stages]
        entry = (pl.col("tcode") == OPENED) | change
        outcome = pl.when(entry).then(
            pl.col("stage").replace_strict(range(len(outcomes)), outcomes, return_dtype=pl.UInt8)
        )
        events = events.with_columns(entry.alias("entry"), outcome.alias("outcome"))
        run = pl.col("entry") & (
            pl.col("first") | (pl.col("outcome") != pl.col("outcome").forward_fill().shift(1))
        )
        events = events.with_columns(
            pl.when(run).then(pl.col("at_us")).forward_fill().alias("run_at"),
            pl.when(run).then(pl.col("at_off")).forward_fill().alias("run_off"),
        )
        events = events.with_columns(
            pl.when(pl.col("entry")).then(pl.col("run_at")).alias("run_at"),
            pl.when(pl.col("entry")).then(pl.col("run_off")).alias("run_off"),
        ).drop("first", "prev", "entry")
        store = cls(scheme, events, ids, given)
        return store, IngestReport(total=n, applied=n)

    # -- the Store protocol ---------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def start(self) -> datetime | None:
        return self._instant(0) if self._count else None

    @property
    def end(self) -> datetime | None:
        return self._instant(self._count - 1) if self._count else None

    def _instant(self, rank: int) -> datetime:
        row = self._events.row(int(self._time_order[rank]), named=True)
        instant: datetime = _instants([row["at_us"]], [row["at_off"]])[0]
        return instant

    def opportunity_ids(self) -> tuple[str, ...]:
        return tuple(self.deals().ids)

    def cut(self, when: datetime) -> int:
        us = _micros_of(when)
        return min(self._count, int(self._times.search_sorted(us, "right")))

    def prefix(self, cut: int) -> ColumnStore:
        limit = -(2**63) if cut == 0 else int(self._times[cut - 1])
        return ColumnStore(
            self.scheme,
            self._events,
            self._ids,
            self._given,
            time_order=self._time_order,
            limit=limit,
        )

    def select(self, ids: set[str]) -> ColumnStore:
        wanted = self._ids.is_in(pl.Series(list(ids), dtype=pl.String)).arg_true()
        live = self._live()
        return ColumnStore(
            self.scheme, live.filter(pl.col("oid").is_in(wanted)), self._ids, self._given
        )

    def split(self, partitions: int) -> list[ColumnStore]:
        part = pl.Series([partition_of(oid, partitions) for oid in self._ids], dtype=pl.UInt32)
        live = self._live()
        owner = part.gather(live["oid"])
        return [
            ColumnStore(self.scheme, live.filter(owner == k), self._ids, self._given)
            for k in range(partitions)
        ]

    def _live(self) -> pl.DataFrame:
        """The columns of the events this store holds (all, or those up to ``limit``)."""
        if self.limit is None:
            return self._events
        return self._events.filter(pl.col("at_us") <= self.limit)

    def rows(self) -> Sequence[Row]:
        positions = self._time_order.head(self._count)
        return _rows(self._events[positions], self._ids, self.scheme, self._given)

    def rows_of(self, code: int) -> list[Row]:
        """The rows of one opportunity (by its code) that this store holds, in order: its
        events lie together, in time order (``oid`` ascends through the columns)."""
        oids = self._events["oid"]
        first = int(oids.search_sorted(code, "left"))
        events = self._events.slice(first, int(oids.search_sorted(code, "right")) - first)
        if self.limit is not None:
            events = events.filter(pl.col("at_us") <= self.limit)
        return _rows(events, self._ids, self.scheme, self._given)

    def snapshot(self) -> Pipeline:
        if self._snapshot is None:
            deals = self.deals()
            when = self.end or datetime.min.replace(tzinfo=UTC)
            states = _LazyStates(self, deals.ids)
            self._snapshot = Pipeline(self.scheme, when, states, _deals=deals)
        return self._snapshot

    # -- snapshots as columns ------------------------------------------------------------

    def deals(self) -> DealColumns:
        """Every opportunity's snapshot fields at ``limit``, in order of opening: for each
        field, the value of the last event at or before ``limit`` that set it (found by
        carrying each setter's row number forward within the opportunity's group)."""
        events = self._events
        tcode = pl.col("tcode")
        row = pl.int_range(pl.len(), dtype=pl.UInt32)
        setters = {
            "stage": pl.col("outcome").is_not_null(),
            "amount": tcode.is_in([OPENED, AMOUNT_CHANGED]),
            "currency": (tcode == OPENED)
            | ((tcode == AMOUNT_CHANGED) & pl.col("currency").is_not_null())
            if "currency" in events.columns
            else tcode == OPENED,
            "probability": tcode.is_in([OPENED, PROBABILITY_SET]),
            "expected_close": tcode.is_in([OPENED, CLOSE_DATE_CHANGED]),
            "owner": tcode.is_in([OPENED, OWNER_CHANGED]),
            "opened": tcode == OPENED,
        }
        inside = pl.lit(True) if self.limit is None else pl.col("at_us") <= self.limit
        last = inside & (
            (pl.col("oid") != pl.col("oid").shift(-1)).fill_null(True)
            | ~(
                pl.col("at_us").shift(-1) <= (self.limit if self.limit is not None else 0)
            ).fill_null(False)
            if self.limit is not None
            else (pl.col("oid") != pl.col("oid").shift(-1)).fill_null(True)
        )
        marks = events.select(
            last.alias("last"),
            *(pl.when(m).then(row).forward_fill().alias(f"at_{k}") for k, m in setters.items()),
        ).filter(pl.col("last"))
        take = {k: marks[f"at_{k}"] for k in setters}
        opened = events.select("pos", "at_us", "oid").gather(take["opened"])
        order = opened.select(pl.arg_sort_by("at_us", "pos")).to_series()

        def field(name: str, source: str) -> pl.Series:
            if name not in events.columns:
                return pl.Series(name, [None] * len(order), dtype=pl.String)
            return events[name].gather(take[source].gather(order))

        snap = pl.DataFrame(
            [
                opened["oid"].gather(order),
                field("stage", "stage"),
                field("outcome", "stage"),
                field("run_at", "stage"),
                field("run_off", "stage"),
                field("amount", "amount"),
                field("currency", "currency"),
                field("probability", "probability"),
                field("expected_close", "expected_close"),
                field("owner", "owner"),
                field("account", "opened"),
                field("product", "opened"),
                field("source", "opened"),
            ]
        )
        return DealColumns(
            self.scheme, snap.insert_column(0, self._ids.gather(snap["oid"]).alias("id"))
        )


class DealColumns:
    """Every opportunity's snapshot fields as columns (what the fast calculator paths read):
    id, stage, outcome, amount, currency, probability override, expected close, owner,
    account, product, source and when it was closed, in order of opening."""

    __slots__ = ("_snap", "_views", "scheme")

    def __init__(self, scheme: StageScheme, snap: pl.DataFrame) -> None:
        self.scheme = scheme
        self._snap = snap  # ``id`` and the columns of ColumnStore.deals, by opening
        self._views: list[DealView] | None = None

    def __len__(self) -> int:
        return self._snap.height

    @property
    def ids(self) -> list[str]:
        """The opportunities' ids, in order of opening."""
        return self._snap["id"].to_list()

    def views(self) -> list[DealView]:
        """One :class:`~pipelinekit.pipeline.DealView` per opportunity, in order (built
        once, then kept with the snapshot)."""
        if self._views is None:
            self._views = self._build_views()
        return self._views

    def _build_views(self) -> list[DealView]:
        weights = [s.weight for s in self.scheme.stages]
        keys = self.scheme.keys
        stage_codes = self._snap["stage"].to_list()
        columns = [
            self.ids,
            [keys[i] for i in stage_codes],
            [weights[i] for i in stage_codes],
            *(
                self.column(name)
                for name in (
                    "outcome",
                    "amount",
                    "currency",
                    "expected_close",
                    "probability_override",
                    "owner",
                    "account",
                    "product",
                    "source",
                    "closed_at",
                )
            ),
        ]
        return list(map(DealView._make, zip(*columns, strict=True)))

    def _at(self, stages: Iterable[str]) -> pl.DataFrame:
        codes = [self.scheme.index(key) for key in stages]
        return self._snap.filter(pl.col("stage").is_in(codes))

    def currencies(self, stages: Iterable[str]) -> frozenset[str | None]:
        """The currencies of the priced deals at these stages (``None`` for an amount
        without one)."""
        priced = self._at(stages).filter(pl.col("amount").is_not_null())
        return frozenset(priced["currency"].unique().to_list())

    def stage_sums(self, stages: Iterable[str], group_by: str | None) -> list[StageSum] | None:
        """The exact sums per (group, stage) of the deals at these stages (see
        :class:`~pipelinekit.pipeline.StageSum`), groups in name order (``None`` last),
        stages in scheme order; ``None`` when a stage weight has more than four decimals.

        Amounts and probabilities are held as integers (value x 10^4) with their decimal
        exponents, so the sums are the exact sums of :mod:`pipelinekit.money`, exponent
        included: an exact sum has the smallest exponent of its terms (and of the ``0``
        it starts from), and ``amount x p / 100`` has the largest exponent at or below
        the sum of the two that holds it exactly. Any column fits an Int128: at most
        2^32 deals of at most 10^19 x 10^6.
        """
        weights = [_scaled(s.weight) for s in self.scheme.stages]
        if any(
            w is None and s.weight is not None
            for w, s in zip(weights, self.scheme.stages, strict=True)
        ):
            return None
        codes = range(len(weights))
        stage_p = pl.col("stage").replace_strict(
            codes, [None if w is None else w[0] for w in weights], return_dtype=pl.Int128
        )
        stage_e = pl.col("stage").replace_strict(
            codes, [None if w is None else w[1] for w in weights], return_dtype=pl.Int32
        )
        amount, amount_e = _parts(pl.col("amount"))
        override, override_e = _parts(pl.col("probability"))
        given = pl.col("probability").is_not_null()
        percent = pl.when(given).then(override).otherwise(stage_p)
        # ``probability or 0``: a zero probability counts as Decimal(0), exponent 0
        percent_e = pl.when(percent == 0).then(0).when(given).then(override_e).otherwise(stage_e)
        terms = self._at(stages).select(
            pl.col("stage"),
            (pl.col(group_by) if group_by is not None else pl.lit(None, pl.String)).alias("group"),
            amount.alias("a"),
            amount_e.alias("ae"),
            (amount * percent).alias("w"),
            (amount_e + percent_e).alias("k"),
        )
        ten = pl.lit(10, dtype=pl.Int128)
        w, k = pl.col("w"), pl.col("k")
        exponent = (
            pl.when(w.is_null())
            .then(None)
            .when(w % ten.pow(k + 10) == 0)
            .then(k)
            .when(w % ten.pow(k + 9) == 0)
            .then(k - 1)
            .otherwise(k - 2)
        )
        sums = (
            terms.with_columns(exponent.alias("we"))
            .group_by("group", "stage")
            .agg(
                pl.len().alias("count"),
                pl.col("a").null_count().alias("unpriced"),
                pl.col("a").sum().alias("a"),
                pl.col("ae").min().alias("ae"),
                pl.col("w").sum().alias("w"),
                pl.col("we").min().alias("we"),
            )
            .sort(pl.col("group").is_null(), "group", "stage")
        )
        keys = self.scheme.keys
        return [
            StageSum(
                group,
                keys[stage],
                count,
                unpriced,
                _exact(a, 4, ae),
                _exact(w, 10, we),
            )
            for group, stage, count, unpriced, a, ae, w, we in sums.iter_rows()
        ]

    def column(self, name: str) -> list[Any]:
        """One field's values as the snapshot's ``Opportunity`` objects would hold them."""
        return _values(self._snap, name, self.scheme)

    def select(
        self,
        names: Sequence[str],
        *,
        outcome: Outcome | None,
        closed_from: datetime | None = None,
    ) -> list[list[Any]]:
        """Fields (as :meth:`column` gives them) of the priced deals with ``outcome``
        (``None``: the open ones), closed at or after ``closed_from`` if given, in order
        of id (as Python orders strings: UTF-8 bytes sort the same way)."""
        wanted = (pl.col("outcome") == _outcome_code(outcome)) & pl.col("amount").is_not_null()
        if closed_from is not None:
            wanted &= pl.col("run_at") >= _micros_of(closed_from)
        deals = self._snap.filter(wanted).sort("id")
        return [_values(deals, name, self.scheme) for name in names]


def _parts(col: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A column of plain decimal strings (digits, an optional dot and at most four
    decimals, as the checks admit) as their values x 10^4 (Int128) and their exponents
    (0 to -4, as ``Decimal(s)`` has them)."""
    decimals = col.str.extract(r"\.([0-9]+)$").str.len_chars().fill_null(0).cast(pl.Int32)
    digits = col.str.replace(".", "", literal=True).cast(pl.Int128)
    scale = pl.lit(10, dtype=pl.Int128).pow(4 - decimals)
    return digits * scale, pl.when(col.is_not_null()).then(-decimals)


def _scaled(value: Decimal | None) -> tuple[int, int] | None:
    """A Decimal as (value x 10^4, exponent), ``None`` unless that is a whole number."""
    if value is None or not value.is_finite():
        return None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    scaled = value.scaleb(4, EXACT)
    if exponent < -4:
        return None
    return int(scaled), exponent


def _exact(scaled: int | None, scale: int, exponent: int | None) -> Decimal:
    """The Decimal ``scaled / 10^scale`` with exponent ``min(0, exponent)`` (exactly what
    :data:`~pipelinekit.money.EXACT` sums give: ``scaled`` is a multiple of it)."""
    e = 0 if exponent is None else min(0, exponent)
    coefficient = (scaled or 0) // 10 ** (scale + e)
    return Decimal(f"{coefficient}E{e}")


def _values(snap: pl.DataFrame, name: str, scheme: StageScheme) -> list[Any]:
    """One field of a snapshot's deals as their ``Opportunity`` objects would hold it;
    ``probability`` is the override, else the stage weight."""
    if name == "stage":
        keys = scheme.keys
        return [keys[i] for i in snap["stage"].to_list()]
    if name in ("amount", "probability_override"):
        source = "amount" if name == "amount" else "probability"
        return [None if s is None else Decimal(s) for s in snap[source].to_list()]
    if name == "probability":
        weights = [s.weight for s in scheme.stages]
        return [
            weights[i] if s is None else Decimal(s)
            for i, s in zip(snap["stage"].to_list(), snap["probability"].to_list(), strict=True)
        ]
    if name == "expected_close":
        return [None if s is None else date.fromisoformat(s) for s in snap[name]]
    if name == "outcome":
        return [_OUTCOMES[k] for k in snap["outcome"].to_list()]
    if name == "closed_at":
        closed = snap.select(
            pl.when(pl.col("outcome") == 0).then(None).otherwise(pl.col("run_at"))
        ).to_series()
        return _instants(closed.to_list(), snap["run_off"].to_list())
    return snap[name].to_list()


_OUTCOMES: tuple[Outcome | None, ...] = (None, Outcome.WON, Outcome.LOST)


def _outcome_code(outcome: Outcome | None) -> int:
    return _OUTCOMES.index(outcome)


class _LazyStates(Mapping[str, Opportunity]):
    """A snapshot's opportunities by id, each built when first asked for, by replaying its
    own rows through the reference state machine; all of them at once (one replay of
    every row, cheaper per opportunity) when they are iterated as values or items, or
    when so many were asked for one by one that the rest will likely follow."""

    __slots__ = ("_all", "_built", "_codes", "_ids", "_known", "_store")

    def __init__(self, store: ColumnStore, ids: list[str]) -> None:
        self._store = store
        self._ids = ids
        self._known: set[str] | None = None
        self._codes: dict[str, int] | None = None  # id -> its code in the store
        self._built: dict[str, Opportunity] = {}
        self._all = False

    def _build_all(self) -> dict[str, Opportunity]:
        if not self._all:
            from pipelinekit.engine.reference import RowStore

            rows = list(self._store.rows())
            self._built = dict(RowStore(self._store.scheme, rows).snapshot().items())
            self._all = True
        return self._built

    def __getitem__(self, key: str) -> Opportunity:
        found = self._built.get(key)
        if found is not None or self._all:
            return found if found is not None else self._build_all()[key]
        if key not in self:
            raise KeyError(key)
        if len(self._built) >= _ONE_BY_ONE + len(self._ids) // 16:
            return self._build_all()[key]
        from pipelinekit.engine.reference import RowStore

        if self._codes is None:
            self._codes = {oid: code for code, oid in enumerate(self._store._ids.to_list())}
        rows = self._store.rows_of(self._codes[key])
        opportunity = RowStore(self._store.scheme, rows).snapshot()[key]
        self._built[key] = opportunity
        return opportunity

    def values(self) -> ValuesView[Opportunity]:
        return self._build_all().values()

    def items(self) -> ItemsView[str, Opportunity]:
        return self._build_all().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        if self._known is None:
            self._known = set(self._ids)
        return key in self._known


_ONE_BY_ONE = 64
"""Opportunities of a snapshot built one by one before the rest (beyond a sixteenth of
them) are all built at once."""


# -- rows and values -----------------------------------------------------------------------

_ZONES: dict[int, timezone] = {0: UTC}


def _zone(minutes: int) -> timezone:
    zone = _ZONES.get(minutes)
    if zone is None:
        zone = _ZONES[minutes] = timezone(timedelta(minutes=minutes))
    return zone


def _micros_of(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def _instants(micros: list[int | None], offsets: list[int | None]) -> list[Any]:
    """Datetimes with their offsets (``None`` where the instant is)."""
    out: list[datetime | None] = []
    for us, off in zip(micros, offsets, strict=True):
        if us is None or off is None:
            out.append(None)
            continue
        local = datetime(1970, 1, 1) + timedelta(microseconds=us + off * 60 * _US)
        out.append(local.replace(tzinfo=_zone(off)))
    return out


def _rows(frame: pl.DataFrame, ids: pl.Series, scheme: StageScheme, given: Given) -> list[Row]:
    """The rows (:mod:`pipelinekit._rows`) of ``frame``'s events, in its order."""
    n = frame.height
    kinds = frame["tcode"].to_list()
    keysets = frame["keyset"].to_list() if "keyset" in frame.columns else None
    keys = scheme.keys
    values: dict[str, list[Any]] = {
        "opportunity_id": ids.gather(frame["oid"]).to_list(),
        "at": _instants(frame["at_us"].to_list(), frame["at_off"].to_list()),
    }
    for name in NAMES:
        if name in values:
            continue
        if name not in frame.columns:
            values[name] = [None] * n
        elif name == "stage":
            values[name] = [None if s is None else keys[s] for s in frame[name].to_list()]
        elif _RULES[name] in ("money", "percent"):
            values[name] = [None if s is None else Decimal(s) for s in frame[name].to_list()]
        elif _RULES[name] == "date":
            values[name] = [None if s is None else date.fromisoformat(s) for s in frame[name]]
        else:
            values[name] = frame[name].to_list()
    shared: dict[frozenset[str], set[str]] = {}
    out: list[Row] = []
    row_classes = [ROW_CLASSES[c] for c in EVENT_CLASSES]
    for i in range(n):
        k = kinds[i]
        fields = _FIELDS[k]
        got = tuple(values[f][i] for f in fields)
        named = given.fields_set(fields, got, keysets[i] if keysets is not None else None)
        fields_set = shared.get(named)
        if fields_set is None:
            fields_set = shared[named] = set(named)
        out.append(tuple.__new__(row_classes[k], (_TAGS[k], *got, fields_set)))
    return out
