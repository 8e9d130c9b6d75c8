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

from collections.abc import Mapping
from datetime import UTC, date, datetime, timezone, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from pipelinekit.errors import RecordError
from pipelinekit.records import plain_record

__all__ = [
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
    "event_from_record",
    "record_error",
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


def _timestamp(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> datetime:
    """Parse a timestamp and give it a fixed-offset ``datetime.timezone``.

    The usual ``...T10:00:00+00:00`` strings are parsed by ``datetime.fromisoformat`` (about
    3x faster than pydantic's parser plus a conversion, measured at 1M records); everything
    else goes through pydantic's ``datetime`` validation and its errors.
    """
    if type(value) is str and _canonical_shape(value):
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            parsed = handler(value)
    else:
        parsed = handler(value)
    zone = parsed.tzinfo
    if zone is UTC:
        return parsed
    return _fixed_offset(parsed, info)


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


Timestamp = Annotated[datetime, WrapValidator(_timestamp)]
"""A timezone-aware instant with a fixed-offset ``datetime.timezone``; naive values take the
``assume_tz`` from the validation context."""

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
        actor: optional user who caused it (seed 001: who opened, who closed).
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
    """The next action was scheduled (seed 001's "action date"); ``due=None`` clears it.

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


def event_from_record(
    record: Mapping[str, Any], *, assume_tz: tzinfo | None = None, index: int | None = None
) -> Event:
    """Validate one plain-dict record into its event.

    Missing values (``None``, NaN, ``NaT``, ``pd.NA``) and numpy/pandas scalars follow the
    rule of :mod:`pipelinekit.records`.

    Raises:
        RecordError: the record is malformed; the error names the field and what was
            expected, and the record's ``index``, ``event_id`` and ``opportunity_id``.

    Example:
        >>> from zoneinfo import ZoneInfo
        >>> e = event_from_record({"type": "owner_changed", "opportunity_id": "o-1",
        ...     "at": "2024-03-01", "owner": "bob"}, assume_tz=ZoneInfo("Europe/Warsaw"))
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
        record = plain_record(record, _FIELDS.get(record.get("type")))
    try:
        return EVENT_ADAPTER.validate_python(record, context={"assume_tz": assume_tz})
    except ValidationError as exc:
        raise record_error(exc.errors(include_url=False)[0], record, index=index) from None


_FIELDS: dict[object, frozenset[str]] = {
    cls.model_fields["type"].default: frozenset(cls.model_fields)
    for cls in (
        Opened,
        StageChanged,
        AmountChanged,
        CloseDateChanged,
        ProbabilitySet,
        OwnerChanged,
        ActivityLogged,
        NextActionScheduled,
    )
}
"""The fields of each record type, by its ``type`` tag."""


_TYPES = (
    "opened, stage_changed, amount_changed, close_date_changed, probability_set, "
    "owner_changed, activity_logged, next_action_scheduled"
)


def _id_text(value: object) -> str | None:
    """An id as the record gave it, for error messages (bools are not ids)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def record_error(
    error: ErrorDetails, record: object, *, index: int | None, loc_offset: int = 0
) -> RecordError:
    """Turn one pydantic error about ``record`` into a :class:`RecordError`.

    ``loc_offset`` skips leading location parts (the list index in bulk validation).
    """
    loc = tuple(error["loc"])[loc_offset:]
    event_id = opportunity_id = None
    if isinstance(record, Mapping):
        raw_eid, raw_oid = record.get("event_id"), record.get("opportunity_id")
        event_id = _id_text(raw_eid)
        opportunity_id = _id_text(raw_oid)
    kind = error["type"]
    if kind == "union_tag_invalid":
        tag = record.get("type") if isinstance(record, Mapping) else None
        return RecordError(
            f"unknown record type {tag!r}; expected one of: {_TYPES}",
            index=index,
            event_id=event_id,
            opportunity_id=opportunity_id,
            field="type",
        )
    if kind == "union_tag_not_found":
        return RecordError(
            f"the record has no 'type'; expected one of: {_TYPES}",
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
    field = ".".join(str(p) for p in field_parts) or None
    message = error["msg"]
    missing_value = "input" in error and error["input"] is None
    if kind in ("extra_forbidden", "none_required"):  # (none_required: see pipelinekit._rows)
        message = "unknown field for this record type"
    elif kind == "missing":
        message = "missing: this record type requires it"
    elif missing_value:
        message = (
            "missing value: this record type requires one (None, NaN, NaT and pd.NA all "
            "mean missing)"
        )
    if kind != "missing" and not missing_value and "input" in error:
        shown = repr(error["input"])
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message = f"{message} (got {shown})"
    return RecordError(
        message, index=index, event_id=event_id, opportunity_id=opportunity_id, field=field
    )
