"""Events: the immutable, timestamped facts of an opportunity's history.

Every event is a frozen pydantic model named in the past tense, one per record ``type`` of
the wire format (see ``docs/concepts.md``). :data:`Event` is their discriminated union on
``type``. Records travel as plain dicts; :func:`event_from_record` and
``event.model_dump(mode="json")`` convert losslessly between the two.

Money is ``Decimal`` (strings or numbers in, never float inside); timestamps must carry a
timezone unless the caller names the zone to assume; a bare date means the start of that day.

Example:
    >>> from pipelinekit.events import event_from_record
    >>> e = event_from_record({"type": "opened", "opportunity_id": "o-1",
    ...     "at": "2024-01-05T10:00:00+00:00", "stage": "lead", "amount": "12000.00",
    ...     "currency": "EUR"})
    >>> type(e).__name__, e.amount
    ('Opened', Decimal('12000.00'))
    >>> event_from_record(e.model_dump(mode="json")) == e
    True
"""

from __future__ import annotations

import re
import reprlib
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import ErrorDetails, PydanticCustomError, SchemaValidator
from pydantic_core import core_schema as cs

from pipelinekit._time import time_zone
from pipelinekit.errors import RecordError
from pipelinekit.records import plain_record

__all__ = [
    "EARLIEST",
    "LATEST",
    "ActivityLogged",
    "AmountChanged",
    "CloseDateChanged",
    "Event",
    "EventBase",
    "NextActionScheduled",
    "Opened",
    "OwnerChanged",
    "ProbabilitySet",
    "StageChanged",
    "abbreviated",
    "event_from_record",
    "record_error",
    "unreadable_number",
]


SHARED_TZ = "pipelinekit.shared_tz"
"""Validation-context key of a per-call ``dict`` that makes equal offsets share one tzinfo."""
_fromisoformat = datetime.fromisoformat


def _canonical_shape(value: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS+HH:MM``, the usual export form, in
    which ``datetime.fromisoformat`` and pydantic accept and read exactly the same strings
    (tested in ``tests/test_timestamps.py``); any other string goes to pydantic's parser."""
    n = len(value)
    return (
        (n == 25 and value[19] in "+-" and value[22] == ":") or (n == 20 and value[19] == "Z")
    ) and (value[4] == value[7] == "-" and value[10] == "T" and value[13] == value[16] == ":")


EARLIEST = datetime(10, 1, 1, tzinfo=UTC)
"""The earliest instant a timestamp may name (inclusive)."""
LATEST = datetime(9990, 1, 1, tzinfo=UTC)
"""The first instant past the timestamps accepted (exclusive).

Between the two, every period of any calendar containing an instant (a fiscal year, in any
zone), and the periods around it, are dates Python can represent; placeholders such as
``0001-01-01`` or ``9999-12-31`` that some CRMs store for "no date" are refused at
ingestion rather than breaking a forecast later.
"""
_RANGE_TEXT = "from 0010-01-01T00:00:00Z up to (not including) 9990-01-01T00:00:00Z"
_NAIVE_EARLIEST = EARLIEST.replace(tzinfo=None)
_NAIVE_LATEST = LATEST.replace(tzinfo=None)
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_OFFSET_WITH_SECONDS = re.compile(r"([+-])(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?\Z")


def _timestamp(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> datetime:
    """Parse a timestamp and give it a fixed-offset ``datetime.timezone``.

    The usual ``...T10:00:00+00:00`` strings are parsed by ``datetime.fromisoformat`` (about
    3x faster than pydantic's parser plus a conversion, measured at 1M records); everything
    else goes through pydantic's ``datetime`` validation and its errors, except numbers
    (seconds since 1970 carry no zone, and ``"20240101"`` would read as one), and offsets
    with seconds (historical local mean times, such as Amsterdam's +00:19:32 before 1937),
    which pydantic cannot read and which are written back with their seconds.
    """
    if type(value) is str and _canonical_shape(value):
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            parsed = handler(value)
    else:
        parsed = _other_timestamp(value, handler)
    zone = parsed.tzinfo
    if zone is not UTC:
        parsed = _fixed_offset(parsed, info)
    if not 10 < parsed.year < 9989 and not _in_range(parsed):
        raise PydanticCustomError(
            "timestamp_out_of_range",
            "timestamp {at} is outside the supported range, " + _RANGE_TEXT,
            {"at": parsed.isoformat()},
        )
    return parsed


def _other_timestamp(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    """A timestamp that is not a canonical string: a datetime, a date, or another string."""
    if isinstance(value, datetime | date):
        given: datetime = handler(value)
        return given
    if not isinstance(value, str):
        raise PydanticCustomError(
            "timestamp_type",
            "expected an ISO 8601 timestamp with a zone (e.g. '2024-01-05T10:00:00+00:00') "
            "or a datetime, got {kind}; numbers are not timestamps (seconds since 1970 carry "
            "no zone: convert them with datetime.fromtimestamp(x, tz=UTC))",
            {"kind": type(value).__name__},
        )
    if _NUMBER.fullmatch(value):
        raise PydanticCustomError(
            "timestamp_number",
            "a number is not a timestamp; give an ISO 8601 timestamp with a zone "
            "(e.g. '2024-01-05T10:00:00+00:00')",
        )
    seconds = _OFFSET_WITH_SECONDS.search(value)
    if seconds is None:
        parsed: datetime = handler(value)
        return parsed
    sign, hours, minutes, secs, fraction = seconds.groups()
    head = value[: seconds.start()]
    if _NUMBER.fullmatch(head):
        raise PydanticCustomError("timestamp_number", "a number is not a timestamp")
    local: datetime = handler(head)
    if local.tzinfo is not None or int(hours) > 23 or int(minutes) > 59 or int(secs) > 59:
        raise PydanticCustomError(
            "timestamp_offset", "the offset must be from -23:59:59 to +23:59:59"
        )
    offset = timedelta(
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(secs),
        microseconds=int((fraction or "0").ljust(6, "0")),
    )
    return local.replace(tzinfo=timezone(-offset if sign == "-" else offset))


def _in_range(value: datetime) -> bool:
    """Whether an aware ``value`` lies in ``[EARLIEST, LATEST)`` (its UTC time may not be
    representable: then it does not)."""
    offset = value.utcoffset()
    assert offset is not None  # aware by now
    try:
        utc = value.replace(tzinfo=None) - offset
    except OverflowError:
        return False
    return _NAIVE_EARLIEST <= utc < _NAIVE_LATEST


def _timestamp_json(value: datetime) -> str:
    """The ISO 8601 text of a timestamp as pydantic writes it (UTC as ``Z``), except that
    an offset with seconds keeps them (pydantic would cut it to whole minutes)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _fixed_offset(value: datetime, info: ValidationInfo) -> datetime:
    """The same instant and offset with a ``datetime.timezone`` tzinfo.

    Naive values take the ``assume_tz`` of the validation context (else they are an error).
    Python subtracts two datetimes that share a tzinfo object by wall clock, ignoring
    daylight-saving changes between them; with a zone such as ``ZoneInfo("Europe/Warsaw")``
    a stage stay across the March change would come out an hour long or short. Fixed
    offsets make every difference an exact elapsed time.

    Aware datetimes whose tzinfo objects differ compare by calling ``utcoffset()`` on both
    sides, several times slower than with one shared object, and History sorts,
    order-checks and bisects on them; so bulk ingestion passes a per-call cache in the
    context (``SHARED_TZ``) and equal offsets end up sharing one ``timezone`` (UTC is
    always ``datetime.UTC``). The value is unchanged: same instant, same offset.
    """
    context = info.context if isinstance(info.context, Mapping) else {}
    if value.tzinfo is None or value.utcoffset() is None:
        assumed = context.get("assume_tz")
        if not isinstance(assumed, tzinfo):
            raise PydanticCustomError(
                "naive_datetime",
                "timestamp has no timezone; give an offset (e.g. '+00:00') or pass assume_tz=",
            )
        value = value.replace(tzinfo=assumed)
    zone = value.tzinfo
    if type(zone) is not timezone:  # pydantic's TzInfo, a ZoneInfo, ...: its offset then
        offset = value.utcoffset()
        assert offset is not None  # aware by now
        zone = timezone(offset)  # timezone(timedelta(0)) is datetime.UTC
    shared = context.get(SHARED_TZ)
    if isinstance(shared, dict):
        zone = shared.setdefault(zone, zone)  # timezones are equal when their offsets are
    return value if value.tzinfo is zone else value.replace(tzinfo=zone)


Timestamp = Annotated[
    datetime, WrapValidator(_timestamp), PlainSerializer(_timestamp_json, when_used="json")
]
"""A timezone-aware instant with a fixed-offset ``datetime.timezone``, from :data:`EARLIEST`
up to :data:`LATEST`; naive values take the ``assume_tz`` from the validation context."""

Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e15"), max_digits=28, allow_inf_nan=False)]
"""A non-negative amount, exact, at most 10^15 and 28 significant digits."""

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=28, allow_inf_nan=False)]
"""A percentage between 0 and 100."""

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 code such as ``"EUR"``."""

Identifier = Annotated[str, Field(min_length=1, max_length=256)]
Text = Annotated[str, Field(max_length=100_000)]


class EventBase(BaseModel):
    """Fields every event carries.

    Attributes:
        type: the record type, the union's discriminator.
        opportunity_id: the opportunity this fact is about.
        at: when it happened (timezone-aware).
        event_id: optional identity used to de-duplicate records.
        actor: optional user who caused it (who opened, who closed...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    type: str
    opportunity_id: Identifier
    at: Timestamp
    event_id: Identifier | None = None
    actor: Identifier | None = None


class Opened(EventBase):
    """An opportunity was created, at ``stage``, with its initial facts.

    Example:
        >>> Opened(opportunity_id="o-1", at="2024-01-05T10:00:00Z", stage="lead").type
        'opened'
    """

    type: Literal["opened"] = "opened"
    stage: Identifier
    amount: Money | None = None
    currency: Currency | None = None
    owner: Identifier | None = None
    account: Identifier | None = None
    product: Identifier | None = None
    source: Identifier | None = None
    expected_close: date | None = None
    probability: Percent | None = None
    name: Text | None = None


class StageChanged(EventBase):
    """The opportunity moved to ``stage``; ``reason`` says why (e.g. a loss reason).

    Example:
        >>> StageChanged(opportunity_id="o-1", at="2024-02-01T09:00:00Z", stage="won").stage
        'won'
    """

    type: Literal["stage_changed"] = "stage_changed"
    stage: Identifier
    reason: Text | None = None


class AmountChanged(EventBase):
    """The amount changed; a ``currency`` of ``None`` keeps the current currency.

    Example:
        >>> AmountChanged(opportunity_id="o-1", at="2024-02-01T09:00:00Z", amount=15000).amount
        Decimal('15000')
    """

    type: Literal["amount_changed"] = "amount_changed"
    amount: Money
    currency: Currency | None = None


class CloseDateChanged(EventBase):
    """The expected close date changed (``None`` clears it).

    Example:
        >>> CloseDateChanged(opportunity_id="o-1", at="2024-02-01T09:00:00Z",
        ...                  expected_close="2024-04-30").expected_close
        datetime.date(2024, 4, 30)
    """

    type: Literal["close_date_changed"] = "close_date_changed"
    expected_close: date | None


class ProbabilitySet(EventBase):
    """A probability override was set (``None`` clears it, falling back to the stage weight).

    Example:
        >>> ProbabilitySet(opportunity_id="o-1", at="2024-02-01T09:00:00Z",
        ...                probability="35").probability
        Decimal('35')
    """

    type: Literal["probability_set"] = "probability_set"
    probability: Percent | None


class OwnerChanged(EventBase):
    """The opportunity was handed to another owner.

    Example:
        >>> OwnerChanged(opportunity_id="o-1", at="2024-02-01T09:00:00Z", owner="bob").owner
        'bob'
    """

    type: Literal["owner_changed"] = "owner_changed"
    owner: Identifier


class ActivityLogged(EventBase):
    """An activity (call, meeting, e-mail...) was done.

    Example:
        >>> ActivityLogged(opportunity_id="o-1", at="2024-02-01T09:00:00Z", kind="call").kind
        'call'
    """

    type: Literal["activity_logged"] = "activity_logged"
    kind: Identifier
    note: Text | None = None


class NextActionScheduled(EventBase):
    """The next action was scheduled (its "action date"); ``due=None`` clears it.

    Example:
        >>> NextActionScheduled(opportunity_id="o-1", at="2024-02-01T09:00:00Z",
        ...                     due="2024-02-10", note="send offer").due
        datetime.date(2024, 2, 10)
    """

    type: Literal["next_action_scheduled"] = "next_action_scheduled"
    due: date | None
    note: Text | None = None


Event = Annotated[
    Opened
    | StageChanged
    | AmountChanged
    | CloseDateChanged
    | ProbabilitySet
    | OwnerChanged
    | ActivityLogged
    | NextActionScheduled,
    Field(discriminator="type"),
]
"""Any event: the discriminated union of every record type on ``type``."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENTS_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

RECORD_TYPE_ERROR = "record_type"
"""The error type of a record whose ``type`` is missing or unknown (a custom one: pydantic's
own prints the tag, which fails for an integer too long to print)."""
EVENT_CLASSES: tuple[type[EventBase], ...] = get_args(get_args(Event)[0])
"""Every event class, in the order of the :data:`Event` union."""


def _record_validator() -> SchemaValidator:
    """What ``TypeAdapter(Event)`` validates, with :data:`RECORD_TYPE_ERROR` for a bad type
    (pydantic only takes a custom error for a tag found by a function, a slower path)."""
    return SchemaValidator(
        cs.tagged_union_schema(
            {c.model_fields["type"].default: c.__pydantic_core_schema__ for c in EVENT_CLASSES},
            discriminator="type",
            custom_error_type=RECORD_TYPE_ERROR,
            custom_error_message="bad type",
        )
    )


_RECORD = _record_validator()


def event_from_record(
    record: Mapping[str, Any],
    *,
    assume_tz: tzinfo | str | None = None,
    index: int | None = None,
) -> Event:
    """Validate one plain-dict record into its event.

    Missing values (``None``, NaN, ``NaT``, ``pd.NA``) and numpy/pandas scalars follow the
    rule of :mod:`pipelinekit.records`.

    Args:
        record: the record (see the record format in ``docs/concepts.md``).
        assume_tz: the zone of timestamps that carry none: a ``tzinfo`` or an IANA name
            such as ``"Europe/Warsaw"`` (else such timestamps are an error).
        index: the record's position in its input, named in errors.

    Raises:
        RecordError: the record is malformed; the error names the field and what was
            expected, and the record's ``index``, ``event_id`` and ``opportunity_id``.
        ArgumentError: ``assume_tz`` is neither a tzinfo nor a known zone name.

    Example:
        >>> e = event_from_record({"type": "owner_changed", "opportunity_id": "o-1",
        ...     "at": "2024-03-01", "owner": "bob"}, assume_tz="Europe/Warsaw")
        >>> e.at.isoformat()
        '2024-03-01T00:00:00+01:00'
        >>> try:
        ...     event_from_record({"type": "owner_changed", "opportunity_id": "o-1",
        ...                        "at": "2024-03-01T00:00:00Z"})
        ... except RecordError as err:
        ...     print(err)
        record (opportunity 'o-1'), field 'owner': missing: this record type requires it
        >>> event_from_record({"type": "owner_changed", "opportunity_id": "o-1",
        ...     "at": "2024-03-01T00:00:00Z", "owner": "bob", "stage": float("nan")}).owner
        'bob'
    """
    if isinstance(record, Mapping):
        tag = record.get("type")  # (an unhashable tag, such as a list, is no known type)
        record = plain_record(record, _FIELDS.get(tag) if isinstance(tag, str) else None)
    context = {"assume_tz": time_zone(assume_tz, argument="assume_tz")}
    try:
        event: Event = _RECORD.validate_python(record, context=context)
    except ValidationError as exc:
        raise record_error(exc.errors(include_url=False)[0], record, index=index) from None
    except ValueError:
        unreadable = unreadable_number(record, index=index)
        if unreadable is None:
            raise
        raise unreadable from None
    return event


_FIELDS: dict[object, frozenset[str]] = {
    cls.model_fields["type"].default: frozenset(cls.model_fields) for cls in EVENT_CLASSES
}
"""The fields of each record type, by its ``type`` tag."""


_TYPES = (
    "opened, stage_changed, amount_changed, close_date_changed, probability_set, "
    "owner_changed, activity_logged, next_action_scheduled"
)


class _Abbreviating(reprlib.Repr):
    """``reprlib`` with short limits, and integers too long for ``str()`` described."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxlong = self.maxother = 200  # abbreviated() cuts at 80

    def repr_int(self, x: int, level: int) -> str:
        if _too_long(x):
            return f"<an integer of about {_digits(x)} digits>"
        return super().repr_int(x, level)


_ABBREVIATING = _Abbreviating()


def abbreviated(value: object, width: int = 80) -> str:
    """``repr(value)`` cut to ``width`` characters, safe for any input: nesting is cut at
    three levels (a list nested a thousand deep would exhaust the recursion limit) and an
    integer too long to print is described by its size.

    Example:
        >>> abbreviated([[[[["deep"]]]]]), abbreviated(10**5000)
        ('[[[[...]]]]', '<an integer of about 5001 digits>')
    """
    shown = _ABBREVIATING.repr(value)
    return shown if len(shown) <= width else shown[: width - 3] + "..."


def _too_long(value: int) -> bool:
    """Whether ``str(value)`` exceeds Python's integer-to-text limit."""
    limit = sys.get_int_max_str_digits()
    if not limit or value.bit_length() < 3 * limit:  # 3 bits a digit is never too many
        return False
    try:
        str(value)
    except ValueError:
        return True
    return False


def _digits(value: int) -> int:
    """About how many decimal digits ``value`` has (it may be too long to print)."""
    return int(abs(value).bit_length() * 0.30102999566398120) + 1


def unreadable_number(record: object, *, index: int | None) -> RecordError | None:
    """The error of a record holding an integer too long to convert to text (pydantic then
    raises a bare ``ValueError`` instead of a validation error), or ``None``."""
    if not isinstance(record, Mapping):
        return None
    event_id, opportunity_id = _ids(record)
    limit = sys.get_int_max_str_digits()
    for key, value in record.items():
        for part, what in ((key, "the field name"), (value, "the value")):
            if isinstance(part, int) and not isinstance(part, bool) and _too_long(part):
                return RecordError(
                    f"{what} is an integer of about {_digits(part)} digits; Python reads "
                    f"at most {limit} digits",
                    index=index,
                    event_id=event_id,
                    opportunity_id=opportunity_id,
                    field=key if isinstance(key, str) else abbreviated(key),
                )
    return None


def _id_text(value: object) -> str | None:
    """An id as the record gave it, for error messages (bools are not ids)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return value if isinstance(value, str) else abbreviated(value)


def _ids(record: Mapping[Any, Any]) -> tuple[str | None, str | None]:
    return _id_text(record.get("event_id")), _id_text(record.get("opportunity_id"))


def record_error(
    error: ErrorDetails, record: object, *, index: int | None, loc_offset: int = 0
) -> RecordError:
    """Turn one pydantic error about ``record`` into a :class:`RecordError`.

    ``loc_offset`` skips leading location parts (the list index in bulk validation).
    """
    loc = tuple(error["loc"])[loc_offset:]
    event_id = opportunity_id = None
    if isinstance(record, Mapping):
        event_id, opportunity_id = _ids(record)
    kind = error["type"]
    if kind == RECORD_TYPE_ERROR and isinstance(record, Mapping):
        reason = (
            f"unknown record type {abbreviated(record['type'])}"
            if "type" in record
            else "the record has no 'type'"
        )
        return RecordError(
            f"{reason}; expected one of: {_TYPES}",
            index=index,
            event_id=event_id,
            opportunity_id=opportunity_id,
            field="type",
        )
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        hint = (
            " (an event object: use History.from_events)" if isinstance(record, EventBase) else ""
        )
        return RecordError(
            f"a record must be a mapping of fields, got {type(record).__name__}{hint}",
            index=index,
        )
    # loc is (type-tag, field, ...) for a union member
    field_parts = loc[1:] if loc and isinstance(record, Mapping) else loc
    field = ".".join(p if isinstance(p, str) else abbreviated(p) for p in field_parts)
    message = error["msg"]
    missing_value = "input" in error and error["input"] is None
    if kind in ("extra_forbidden", "none_required"):  # (none_required: see pipelinekit._rows)
        message = "unknown field for this record type" + (" (an empty name)" if not field else "")
    elif kind == "missing":
        message = "missing: this record type requires it"
    elif missing_value:
        message = (
            "missing value: this record type requires one (None, NaN, NaT and pd.NA all "
            "mean missing)"
        )
    if kind != "missing" and not missing_value and "input" in error:
        message = f"{message} (got {abbreviated(error['input'])})"
    return RecordError(
        message,
        index=index,
        event_id=event_id,
        opportunity_id=opportunity_id,
        field=field if field_parts else None,
    )
